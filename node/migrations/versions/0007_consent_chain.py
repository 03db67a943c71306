"""Consent across the chain: withdrawals, erasure, disclosures, retention, closing, forwarding.

Revision ID: 0007_consent_chain
Revises: 0006_node_keys
Create Date: 2026-11-23
"""
import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = "0007_consent_chain"
down_revision = "0006_node_keys"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
