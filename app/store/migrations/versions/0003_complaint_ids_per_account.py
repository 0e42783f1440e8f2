"""complaint external ids are unique per account, not across accounts (issue 14)

Another account's carrier id answered 409 with that account's complaint id: idempotency keys
are now scoped by account.

Revision ID: 0003
Revises: 0002
"""
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("complaints") as batch:
        batch.drop_constraint("uq_complaints_source_external_id", type_="unique")
        batch.create_unique_constraint("uq_complaints_account_id_source_external_id",
                                       ["account_id", "source", "external_id"])


def downgrade() -> None:
    with op.batch_alter_table("complaints") as batch:
        batch.drop_constraint("uq_complaints_account_id_source_external_id", type_="unique")
        batch.create_unique_constraint("uq_complaints_source_external_id", ["source", "external_id"])
