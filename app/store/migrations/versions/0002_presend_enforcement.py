"""pre-send frequency counters and complaint-rate indexes (issue 6)

Revision ID: 0002
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "send_counters",
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("phone", sa.String(length=32), nullable=False),
        sa.Column("msg_type", sa.String(length=16), nullable=False),
        sa.Column("minute_start", sa.BigInteger(), nullable=False),
        sa.Column("minute_count", sa.Integer(), nullable=False),
        sa.Column("hour_start", sa.BigInteger(), nullable=False),
        sa.Column("hour_count", sa.Integer(), nullable=False),
        sa.Column("day_start", sa.BigInteger(), nullable=False),
        sa.Column("day_count", sa.Integer(), nullable=False),
        sa.Column("last_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"],
                                name=op.f("fk_send_counters_account_id_accounts")),
        sa.PrimaryKeyConstraint("account_id", "phone", "msg_type", name=op.f("pk_send_counters")),
    )
    with op.batch_alter_table("send_counters", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_send_counters_last_at"), ["last_at"], unique=False)
    with op.batch_alter_table("complaints", schema=None) as batch_op:
        batch_op.create_index("ix_complaints_account_id_created_at", ["account_id", "created_at"], unique=False)
    with op.batch_alter_table("account_state_changes", schema=None) as batch_op:
        batch_op.create_index("ix_account_state_changes_account_id_created_at", ["account_id", "created_at"],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table("account_state_changes", schema=None) as batch_op:
        batch_op.drop_index("ix_account_state_changes_account_id_created_at")
    with op.batch_alter_table("complaints", schema=None) as batch_op:
        batch_op.drop_index("ix_complaints_account_id_created_at")
    with op.batch_alter_table("send_counters", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_send_counters_last_at"))
    op.drop_table("send_counters")
