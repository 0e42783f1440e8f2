"""the record of checks, feedback and the training store (issue 16)

- ``check_records``: every pre-send check and /v1/moderate call (time, account, message id,
  template id, verdict, categories, rules, score, versions, the text as SMSGUARD_CHECK_TEXT
  allows, the whole Verdict JSON), ``check_labels`` (a check's categories and rules, for the
  filters) and ``check_stats`` (hourly counts per account and over all accounts, for the
  dashboard and /v1/stats);
- ``feedback``: "this verdict was wrong", pending until a reviewer decides it;
- ``training_examples``: labelled examples made by reviewer decisions (read by
  ``smsguard export-training``);
- ``ix_complaints_account_id_message_id``: a check's complaints.

The tables are new and empty: nothing to fill. docs/checks.md describes them and the
PostgreSQL index plan.

Revision ID: 0006
Revises: 0005
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "check_records",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("account_id", sa.String(length=64), nullable=True),
        sa.Column("message_id", sa.String(length=128), nullable=True),
        sa.Column("template_id", sa.Integer(), nullable=True),
        sa.Column("phone", sa.String(length=32), nullable=True),
        sa.Column("phone_hash", sa.String(length=32), nullable=True),
        sa.Column("verdict", sa.String(length=8), nullable=False),
        sa.Column("categories", sa.Text(), nullable=False),
        sa.Column("rules", sa.Text(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("forced_by", sa.String(length=64), nullable=True),
        sa.Column("ruleset_version", sa.String(length=64), nullable=True),
        sa.Column("model_version", sa.String(length=64), nullable=True),
        sa.Column("text_mode", sa.String(length=8), nullable=False),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_check_records")),
    )
    with op.batch_alter_table("check_records", schema=None) as batch_op:
        batch_op.create_index("ix_check_records_at_id", ["at", "id"], unique=False)
        batch_op.create_index("ix_check_records_account_id_at_id", ["account_id", "at", "id"], unique=False)
        batch_op.create_index("ix_check_records_message_id", ["message_id"], unique=False)
        batch_op.create_index("ix_check_records_phone_hash_at", ["phone_hash", "at"], unique=False)

    op.create_table(
        "check_labels",
        sa.Column("check_id", BIG_ID, nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("value", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["check_id"], ["check_records.id"], ondelete="CASCADE",
                                name=op.f("fk_check_labels_check_id_check_records")),
        sa.PrimaryKeyConstraint("check_id", "kind", "value", name=op.f("pk_check_labels")),
    )
    with op.batch_alter_table("check_labels", schema=None) as batch_op:
        batch_op.create_index("ix_check_labels_kind_value_at_check_id", ["kind", "value", "at", "check_id"],
                              unique=False)
        batch_op.create_index("ix_check_labels_account_id_kind_value_at_check_id",
                              ["account_id", "kind", "value", "at", "check_id"], unique=False)

    op.create_table(
        "check_stats",
        sa.Column("bucket", sa.DateTime(timezone=True), nullable=False),
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("verdict", sa.String(length=8), nullable=False),
        sa.Column("dim", sa.String(length=8), nullable=False),
        sa.Column("value", sa.String(length=64), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("bucket", "account_id", "source", "verdict", "dim", "value",
                                name=op.f("pk_check_stats")),
    )
    with op.batch_alter_table("check_stats", schema=None) as batch_op:
        batch_op.create_index("ix_check_stats_account_id_dim_bucket", ["account_id", "dim", "bucket"], unique=False)

    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("account_id", sa.String(length=64), nullable=True),
        sa.Column("submitted_by", sa.String(length=128), nullable=False),
        sa.Column("submitted_role", sa.String(length=16), nullable=False),
        sa.Column("check_id", BIG_ID, nullable=True),
        sa.Column("message_id", sa.String(length=128), nullable=True),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("text_mode", sa.String(length=8), nullable=False),
        sa.Column("verdict", sa.JSON(), nullable=True),
        sa.Column("engine_verdict", sa.String(length=8), nullable=True),
        sa.Column("expected", sa.String(length=8), nullable=False),
        sa.Column("category", sa.String(length=64), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("decided_by", sa.String(length=128), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision_note", sa.Text(), nullable=False),
        sa.Column("actions", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["check_id"], ["check_records.id"], ondelete="SET NULL",
                                name=op.f("fk_feedback_check_id_check_records")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feedback")),
    )
    with op.batch_alter_table("feedback", schema=None) as batch_op:
        batch_op.create_index("ix_feedback_status_id", ["status", "id"], unique=False)
        batch_op.create_index("ix_feedback_account_id_id", ["account_id", "id"], unique=False)
        batch_op.create_index("ix_feedback_check_id", ["check_id"], unique=False)

    op.create_table(
        "training_examples",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("lang", sa.String(length=8), nullable=False),
        sa.Column("origin", sa.String(length=32), nullable=False),
        sa.Column("ref", sa.String(length=128), nullable=False),
        sa.Column("decided_by", sa.String(length=128), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_training_examples")),
        sa.UniqueConstraint("origin", "ref", name=op.f("uq_training_examples_origin_ref")),
    )
    with op.batch_alter_table("training_examples", schema=None) as batch_op:
        batch_op.create_index("ix_training_examples_decided_at", ["decided_at"], unique=False)

    with op.batch_alter_table("complaints", schema=None) as batch_op:
        batch_op.create_index("ix_complaints_account_id_message_id", ["account_id", "message_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("complaints", schema=None) as batch_op:
        batch_op.drop_index("ix_complaints_account_id_message_id")
    op.drop_table("training_examples")
    op.drop_table("feedback")
    op.drop_table("check_stats")
    op.drop_table("check_labels")
    op.drop_table("check_records")
