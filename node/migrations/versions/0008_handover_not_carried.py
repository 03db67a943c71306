"""Handovers keep what their summary could not carry, field by field, with the reason.

Revision ID: 0008_handover_not_carried
Revises: 0007_consent_chain
Create Date: 2026-12-04
"""
import sqlalchemy as sa
from alembic import op

revision = "0008_handover_not_carried"
down_revision = "0007_consent_chain"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("handovers") as batch:
        batch.add_column(sa.Column("not_carried", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("handovers") as batch:
        batch.drop_column("not_carried")
