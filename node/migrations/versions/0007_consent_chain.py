"""Consent across the chain: withdrawals, erasure requests, tombstones and custody notices; handovers learn kind,
custody, erasure and closing.

Revision ID: 0007_consent_chain
Revises: 0006_node_keys
Create Date: 2026-11-23
"""
import sqlalchemy as sa
from alembic import op

revision = "0007_consent_chain"
down_revision = "0006_node_keys"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def _fk(table: str, column: str, target: str, ondelete: str | None = None) -> sa.ForeignKeyConstraint:
    target_table = target.split(".")[0]
    return sa.ForeignKeyConstraint([column], [target], name=op.f(f"fk_{table}_{column}_{target_table}"),
                                   ondelete=ondelete)


def upgrade() -> None:
    with op.batch_alter_table("handovers") as batch:
        batch.add_column(sa.Column("kind", sa.String(16), server_default="handover", nullable=False))
        batch.add_column(sa.Column("origin_node", sa.String(80), nullable=True))
        batch.add_column(sa.Column("upstream_id", sa.String(36), nullable=True))
        batch.add_column(sa.Column("custody", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("erased_at", TZ, nullable=True))
        batch.add_column(sa.Column("closed_at", TZ, nullable=True))
        batch.add_column(sa.Column("close_outcome", sa.JSON(), nullable=True))
        batch.create_foreign_key(op.f("fk_handovers_upstream_id_handovers"), "handovers", ["upstream_id"], ["id"],
                                 ondelete="SET NULL")
    op.create_index("ix_handovers_partner_thread", "handovers", ["partner_node", "thread"])
    op.create_table(
        "consent_withdrawals",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("origin", sa.String(80), nullable=False),
        sa.Column("consent_id", sa.String(128), nullable=False),
        sa.Column("case_id", sa.String(36), nullable=True),
        sa.Column("scope", sa.JSON(), nullable=True),
        sa.Column("revocation", sa.Boolean(), nullable=False),
        sa.Column("handover_id", sa.String(36), nullable=True),
        sa.Column("withdrawn_at", TZ, nullable=False),
        sa.Column("recorded_at", TZ, nullable=False),
        sa.Column("recorded_by", sa.Integer(), nullable=True),
        sa.Column("sender", sa.String(80), nullable=True),
        sa.Column("message_id", sa.String(22), nullable=True),
        _fk("consent_withdrawals", "case_id", "cases.id", "SET NULL"),
        _fk("consent_withdrawals", "handover_id", "handovers.id", "SET NULL"),
        _fk("consent_withdrawals", "recorded_by", "users.id"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent_withdrawals")),
    )
    op.create_index(op.f("ix_consent_withdrawals_case_id"), "consent_withdrawals", ["case_id"])
    op.create_index("ix_consent_withdrawals_consent", "consent_withdrawals", ["origin", "consent_id"])
    op.create_table(
        "erasure_requests",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("handover_id", sa.String(36), nullable=False),
        sa.Column("withdrawal_id", sa.String(36), nullable=True),
        sa.Column("case_id", sa.String(36), nullable=True),
        sa.Column("consent_id", sa.String(128), nullable=False),
        sa.Column("partner_node", sa.String(80), nullable=False),
        sa.Column("holder", sa.String(80), nullable=False),
        sa.Column("cause", sa.String(16), nullable=False),
        sa.Column("scope", sa.JSON(), nullable=True),
        sa.Column("requested_at", TZ, nullable=True),
        sa.Column("message_id", sa.String(22), nullable=True),
        sa.Column("confirmed_at", TZ, nullable=True),
        sa.Column("erased_at", TZ, nullable=True),
        sa.Column("confirmation_message_id", sa.String(22), nullable=True),
        sa.Column("tombstone", sa.JSON(), nullable=True),
        sa.Column("flagged_at", TZ, nullable=True),
        _fk("erasure_requests", "handover_id", "handovers.id", "CASCADE"),
        _fk("erasure_requests", "withdrawal_id", "consent_withdrawals.id", "SET NULL"),
        _fk("erasure_requests", "case_id", "cases.id", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_erasure_requests")),
    )
    op.create_index(op.f("ix_erasure_requests_handover_id"), "erasure_requests", ["handover_id"])
    op.create_index(op.f("ix_erasure_requests_case_id"), "erasure_requests", ["case_id"])
    op.create_index("ix_erasure_requests_open", "erasure_requests", ["confirmed_at", "requested_at"])
    op.create_table(
        "tombstones",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("handover_id", sa.String(36), nullable=False),
        sa.Column("withdrawal_id", sa.String(36), nullable=True),
        sa.Column("sender", sa.String(80), nullable=False),
        sa.Column("consent_id", sa.String(128), nullable=False),
        sa.Column("cause", sa.String(16), nullable=False),
        sa.Column("scope", sa.JSON(), nullable=True),
        sa.Column("erased_at", TZ, nullable=False),
        sa.Column("message_ids", sa.JSON(), nullable=False),
        sa.Column("content_hashes", sa.JSON(), nullable=False),
        sa.Column("confirmation_message_id", sa.String(22), nullable=True),
        _fk("tombstones", "handover_id", "handovers.id", "CASCADE"),
        _fk("tombstones", "withdrawal_id", "consent_withdrawals.id", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tombstones")),
    )
    op.create_index(op.f("ix_tombstones_handover_id"), "tombstones", ["handover_id"])
    op.create_table(
        "custody_notices",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("handover_id", sa.String(36), nullable=False),
        sa.Column("forwarded_by", sa.String(80), nullable=False),
        sa.Column("holder", sa.String(80), nullable=False),
        sa.Column("forwarded_at", TZ, nullable=False),
        sa.Column("forward_id", sa.String(22), nullable=False),
        sa.Column("message_hash", sa.String(43), nullable=False),
        sa.Column("purpose", sa.String(32), nullable=False),
        sa.Column("categories", sa.JSON(), nullable=False),
        sa.Column("card", sa.Text(), nullable=True),
        sa.Column("sender", sa.String(80), nullable=False),
        sa.Column("message_id", sa.String(22), nullable=False),
        sa.Column("received_at", TZ, nullable=False),
        _fk("custody_notices", "handover_id", "handovers.id", "CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_custody_notices")),
    )
    op.create_index(op.f("ix_custody_notices_handover_id"), "custody_notices", ["handover_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_custody_notices_handover_id"), table_name="custody_notices")
    op.drop_table("custody_notices")
    op.drop_index(op.f("ix_tombstones_handover_id"), table_name="tombstones")
    op.drop_table("tombstones")
    op.drop_index("ix_erasure_requests_open", table_name="erasure_requests")
    op.drop_index(op.f("ix_erasure_requests_case_id"), table_name="erasure_requests")
    op.drop_index(op.f("ix_erasure_requests_handover_id"), table_name="erasure_requests")
    op.drop_table("erasure_requests")
    op.drop_index("ix_consent_withdrawals_consent", table_name="consent_withdrawals")
    op.drop_index(op.f("ix_consent_withdrawals_case_id"), table_name="consent_withdrawals")
    op.drop_table("consent_withdrawals")
    op.drop_index("ix_handovers_partner_thread", table_name="handovers")
    with op.batch_alter_table("handovers") as batch:
        batch.drop_constraint(op.f("fk_handovers_upstream_id_handovers"), type_="foreignkey")
        for column in ("close_outcome", "closed_at", "erased_at", "custody", "upstream_id", "origin_node", "kind"):
            batch.drop_column(column)
