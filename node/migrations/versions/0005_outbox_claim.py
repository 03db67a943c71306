"""The outbox claim index (delivery worker).

Revision ID: 0005_outbox_claim
Revises: 0004_handovers
Create Date: 2026-11-23
"""
import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = "0005_outbox_claim"
down_revision = "0004_handovers"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
