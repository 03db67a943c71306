"""The outbox claim index (delivery worker).

The delivery worker claims due messages oldest first: ``status = 'queued' AND next_attempt_at <= now ORDER BY
next_attempt_at, id LIMIT n`` (node/exchange/queue.py). With ``id`` in the index the walk stops after ``n``
entries; without it, PostgreSQL read and sorted every message queued in the same instant as the first one (a
backlog queued in one transaction: thousands). On SQLite the old index already ended with the rowid (the id).

Revision ID: 0005_outbox_claim
Revises: 0004_handovers
Create Date: 2026-11-23
"""
from alembic import op

revision = "0005_outbox_claim"
down_revision = "0004_handovers"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_outbound_messages_claim", "outbound_messages", ["status", "next_attempt_at", "id"])
    op.drop_index("ix_outbound_messages_due", table_name="outbound_messages")


def downgrade() -> None:
    op.create_index("ix_outbound_messages_due", "outbound_messages", ["status", "next_attempt_at"])
    op.drop_index("ix_outbound_messages_claim", table_name="outbound_messages")
