"""Keys over time: partner key history, rotations and revocations.

Revision ID: 0006_node_keys
Revises: 0005_outbox_claim
Create Date: 2026-11-23
"""
import sqlalchemy as sa
from alembic import op

revision = "0006_node_keys"
down_revision = "0005_outbox_claim"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("partners", sa.Column("keys_changed_at", TZ, nullable=True))
    op.create_table(
        "partner_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("partner_id", sa.Integer(), nullable=False),
        sa.Column("signing_kid", sa.String(22), nullable=False),
        sa.Column("signing_key", sa.String(64), nullable=False),
        sa.Column("encryption_kid", sa.String(22), nullable=False),
        sa.Column("encryption_key", sa.String(64), nullable=False),
        sa.Column("card", sa.Text(), nullable=False),
        sa.Column("fingerprint", sa.String(71), nullable=False),
        sa.Column("trusted_by", sa.String(16), nullable=False),
        sa.Column("trusted_at", TZ, nullable=False),
        sa.Column("retired_at", TZ, nullable=True),
        sa.Column("accept_until", TZ, nullable=True),
        sa.Column("revoked_at", TZ, nullable=True),
        sa.ForeignKeyConstraint(["partner_id"], ["partners.id"], name=op.f("fk_partner_keys_partner_id_partners")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_partner_keys")),
        sa.UniqueConstraint("partner_id", "signing_kid", name=op.f("uq_partner_keys_signing")),
    )
    op.create_index(op.f("ix_partner_keys_partner_id"), "partner_keys", ["partner_id"])
    op.create_table(
        "key_revocations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("partner_id", sa.Integer(), nullable=False),
        sa.Column("kid", sa.String(22), nullable=False),
        sa.Column("reason", sa.String(16), nullable=False),
        sa.Column("revoked_at", TZ, nullable=False),
        sa.Column("statement", sa.Text(), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("received_at", TZ, nullable=False),
        sa.ForeignKeyConstraint(["partner_id"], ["partners.id"],
                                name=op.f("fk_key_revocations_partner_id_partners")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_key_revocations")),
        sa.UniqueConstraint("partner_id", "kid", name=op.f("uq_key_revocations_partner_kid")),
    )
    # Every partner trusted so far has one generation: the card its fingerprint was confirmed for.
    op.execute(
        "INSERT INTO partner_keys (partner_id, signing_kid, signing_key, encryption_kid, encryption_key, card, "
        "fingerprint, trusted_by, trusted_at) SELECT id, signing_kid, signing_key, encryption_kid, encryption_key, "
        "card, fingerprint, 'fingerprint', created_at FROM partners"
    )


def downgrade() -> None:
    op.drop_table("key_revocations")
    op.drop_index(op.f("ix_partner_keys_partner_id"), table_name="partner_keys")
    op.drop_table("partner_keys")
    op.drop_column("partners", "keys_changed_at")  # SQLite 3.35+ drops a column in place
