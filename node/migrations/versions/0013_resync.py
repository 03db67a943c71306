"""Resync after a restore: per partner, the time a restored node asks about (``resync_since``; set by
``ccm-node backup restore``, cleared once the partner's answer is applied) and the cursor of the next page to
ask for (``resync_after``). While ``resync_since`` is set nothing is delivered to that partner
(node/exchange/resync).

Revision ID: 0013_resync
Revises: 0012_protection_at_rest
Create Date: 2026-12-06
"""
import sqlalchemy as sa
from alembic import op

revision = "0013_resync"
down_revision = "0012_protection_at_rest"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("partners", sa.Column("resync_since", sa.DateTime(timezone=True), nullable=True))
    op.add_column("partners", sa.Column("resync_after", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    # In place (SQLite 3.35+ drops a column in place): a batch copy would drop the table others refer to.
    op.drop_column("partners", "resync_after")
    op.drop_column("partners", "resync_since")
