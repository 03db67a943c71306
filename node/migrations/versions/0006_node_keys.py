"""Keys over time: partner key history, rotations and revocations.

Revision ID: 0006_node_keys
Revises: 0005_outbox_claim
Create Date: 2026-11-23
"""
import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = "0006_node_keys"
down_revision = "0005_outbox_claim"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
