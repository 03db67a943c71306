"""Handover lookups by index, not by scan: a received message's thread (partner, thread, direction) and a
case's handovers (case, direction, status: its open handover to a partner, its accepted incoming one) get
three-column indexes. With the one-column and two-column ones, SQLite's planner, which has no statistics, took
the prefix of ``uq_handovers_message`` (direction, partner) or of ``ix_handovers_direction_status*`` (direction,
status) instead and read every handover of that partner or in that status: an inbox, a send and a progress
update that grew slower with each handover.

Revision ID: 0015_handover_lookups
Revises: 0014_totp_at_rest
Create Date: 2026-12-06
"""
from alembic import op

revision = "0015_handover_lookups"
down_revision = "0014_totp_at_rest"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_handovers_thread", "handovers", ["partner_node", "thread", "direction"])
    op.create_index("ix_handovers_case", "handovers", ["case_id", "direction", "status"])
    op.drop_index("ix_handovers_partner_thread", table_name="handovers")
    op.drop_index("ix_handovers_case_id", table_name="handovers")


def downgrade() -> None:
    op.create_index("ix_handovers_case_id", "handovers", ["case_id"])
    op.create_index("ix_handovers_partner_thread", "handovers", ["partner_node", "thread"])
    op.drop_index("ix_handovers_case", table_name="handovers")
    op.drop_index("ix_handovers_thread", table_name="handovers")
