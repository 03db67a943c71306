"""Exchange: trusted partners, the outbox of sealed messages and the inbox of received ones.

Revision ID: 0003_exchange
Revises: 0002_cases
Create Date: 2026-11-23
"""
import sqlalchemy as sa
from alembic import op

revision = "0003_exchange"
down_revision = "0002_cases"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)
BigInt = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "partners",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("node_id", sa.String(80), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("base_url", sa.String(2048), nullable=False),
        sa.Column("card", sa.Text(), nullable=False),
        sa.Column("signing_key", sa.String(64), nullable=False),
        sa.Column("signing_kid", sa.String(22), nullable=False),
        sa.Column("encryption_key", sa.String(64), nullable=False),
        sa.Column("encryption_kid", sa.String(22), nullable=False),
        sa.Column("fingerprint", sa.String(71), nullable=False),
        sa.Column("agreement_id", sa.String(64), nullable=True),
        sa.Column("retention_days", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.Column("retry_interval", sa.Float(), nullable=False),
        sa.Column("retry_at", TZ, nullable=True),
        sa.Column("retry_last_at", TZ, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_partners")),
        sa.UniqueConstraint("node_id", name=op.f("uq_partners_node_id")),
    )
    op.create_table(
        "outbound_messages",
        sa.Column("id", BigInt, nullable=False),
        sa.Column("message_id", sa.String(22), nullable=False),
        sa.Column("partner_id", sa.Integer(), nullable=False),
        sa.Column("recipient", sa.String(80), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("thread", sa.String(22), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("prev", sa.String(43), nullable=True),
        sa.Column("message_hash", sa.String(43), nullable=False),
        sa.Column("envelope", sa.LargeBinary(), nullable=False),
        sa.Column("case_id", sa.String(36), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("queued_at", TZ, nullable=False),
        sa.Column("expires_at", TZ, nullable=False),
        sa.Column("next_attempt_at", TZ, nullable=False),
        sa.Column("last_attempt_at", TZ, nullable=True),
        sa.Column("last_error", sa.String(64), nullable=True),
        sa.Column("claimed_by", sa.String(64), nullable=True),
        sa.Column("lease_until", TZ, nullable=True),
        sa.Column("delivered_at", TZ, nullable=True),
        sa.Column("receipt", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["partner_id"], ["partners.id"],
                                name=op.f("fk_outbound_messages_partner_id_partners")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbound_messages")),
        sa.UniqueConstraint("message_id", name=op.f("uq_outbound_messages_message_id")),
        sa.UniqueConstraint("partner_id", "thread", "seq", name="uq_outbound_messages_chain"),
    )
    op.create_index(op.f("ix_outbound_messages_case_id"), "outbound_messages", ["case_id"])
    op.create_index("ix_outbound_messages_due", "outbound_messages", ["status", "next_attempt_at"])
    op.create_table(
        "inbound_messages",
        sa.Column("id", BigInt, nullable=False),
        sa.Column("partner_id", sa.Integer(), nullable=False),
        sa.Column("sender", sa.String(80), nullable=False),
        sa.Column("message_id", sa.String(22), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("thread", sa.String(22), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("prev", sa.String(43), nullable=True),
        sa.Column("message_hash", sa.String(43), nullable=False),
        sa.Column("envelope_hash", sa.String(43), nullable=False),
        sa.Column("agreement_id", sa.String(64), nullable=True),
        sa.Column("inner", sa.LargeBinary(), nullable=True),
        sa.Column("case_id", sa.String(36), nullable=True),
        sa.Column("received_at", TZ, nullable=False),
        sa.Column("receipt", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["partner_id"], ["partners.id"],
                                name=op.f("fk_inbound_messages_partner_id_partners")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbound_messages")),
        sa.UniqueConstraint("sender", "message_id", name="uq_inbound_messages_sender_message"),
        sa.UniqueConstraint("sender", "thread", "seq", name="uq_inbound_messages_chain"),
    )
    op.create_index(op.f("ix_inbound_messages_case_id"), "inbound_messages", ["case_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_inbound_messages_case_id"), table_name="inbound_messages")
    op.drop_table("inbound_messages")
    op.drop_index("ix_outbound_messages_due", table_name="outbound_messages")
    op.drop_index(op.f("ix_outbound_messages_case_id"), table_name="outbound_messages")
    op.drop_table("outbound_messages")
    op.drop_table("partners")
