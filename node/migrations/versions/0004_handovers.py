"""Handovers: handovers sent and received, progress updates, and the origin's view of the partner's stages.

Revision ID: 0004_handovers
Revises: 0003_exchange
Create Date: 2026-11-23
"""
import sqlalchemy as sa
from alembic import op

revision = "0004_handovers"
down_revision = "0003_exchange"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def _case_fk(table: str, ondelete: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name=op.f(f"fk_{table}_case_id_cases"),
                                   ondelete=ondelete)


def _user_fk(table: str, column: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], ["users.id"], name=op.f(f"fk_{table}_{column}_users"))


def upgrade() -> None:
    op.create_table(
        "handovers",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("direction", sa.String(8), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("partner_id", sa.Integer(), nullable=False),
        sa.Column("partner_node", sa.String(80), nullable=False),
        sa.Column("thread", sa.String(22), nullable=False),
        sa.Column("message_id", sa.String(22), nullable=False),
        sa.Column("case_id", sa.String(36), nullable=True),
        sa.Column("consent_id", sa.String(128), nullable=False),
        sa.Column("purpose", sa.String(32), nullable=False),
        sa.Column("reference", sa.String(64), nullable=False),
        sa.Column("origin_case_id", sa.String(128), nullable=False),
        sa.Column("categories", sa.JSON(), nullable=False),
        sa.Column("withheld", sa.JSON(), nullable=False),
        sa.Column("body", sa.JSON(), nullable=True),
        sa.Column("consent", sa.JSON(), nullable=True),
        sa.Column("child", sa.Boolean(), nullable=False),
        sa.Column("destination_country", sa.String(2), nullable=False),
        sa.Column("retain_until", sa.Date(), nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("decided_at", TZ, nullable=True),
        sa.Column("decided_by", sa.Integer(), nullable=True),
        sa.Column("reason_code", sa.String(32), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("local_reference", sa.String(64), nullable=True),
        sa.Column("answer", sa.JSON(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["partner_id"], ["partners.id"], name=op.f("fk_handovers_partner_id_partners")),
        _case_fk("handovers", "SET NULL"),
        _user_fk("handovers", "created_by"),
        _user_fk("handovers", "decided_by"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_handovers")),
        sa.UniqueConstraint("direction", "partner_node", "message_id", name="uq_handovers_message"),
    )
    op.create_index(op.f("ix_handovers_case_id"), "handovers", ["case_id"])
    op.create_index("ix_handovers_direction_status", "handovers", ["direction", "status", "created_at"])
    op.create_table(
        "progress_updates",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("case_id", sa.String(36), nullable=False),
        sa.Column("direction", sa.String(8), nullable=False),
        sa.Column("handover_id", sa.String(36), nullable=True),
        sa.Column("partner_node", sa.String(80), nullable=True),
        sa.Column("update_id", sa.String(128), nullable=False),
        sa.Column("at", TZ, nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("stage_changes", sa.JSON(), nullable=False),
        sa.Column("interventions", sa.JSON(), nullable=False),
        sa.Column("meetings", sa.JSON(), nullable=False),
        sa.Column("indicators", sa.JSON(), nullable=False),
        sa.Column("message_id", sa.String(22), nullable=True),
        sa.Column("author_id", sa.Integer(), nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        _case_fk("progress_updates", "CASCADE"),
        sa.ForeignKeyConstraint(["handover_id"], ["handovers.id"],
                                name=op.f("fk_progress_updates_handover_id_handovers"), ondelete="SET NULL"),
        _user_fk("progress_updates", "author_id"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_progress_updates")),
        sa.UniqueConstraint("case_id", "direction", "partner_node", "update_id",
                            name="uq_progress_updates_update"),
    )
    op.create_index("ix_progress_updates_case_at", "progress_updates", ["case_id", "at"])
    op.create_table(
        "partner_stages",
        sa.Column("case_id", sa.String(36), nullable=False),
        sa.Column("partner_node", sa.String(80), nullable=False),
        sa.Column("stage_key", sa.String(64), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("changed_at", TZ, nullable=False),
        sa.Column("received_at", TZ, nullable=False),
        sa.Column("message_id", sa.String(22), nullable=False),
        _case_fk("partner_stages", "CASCADE"),
        sa.PrimaryKeyConstraint("case_id", "partner_node", "stage_key", name=op.f("pk_partner_stages")),
    )


def downgrade() -> None:
    op.drop_table("partner_stages")
    op.drop_index("ix_progress_updates_case_at", table_name="progress_updates")
    op.drop_table("progress_updates")
    op.drop_index("ix_handovers_direction_status", table_name="handovers")
    op.drop_index(op.f("ix_handovers_case_id"), table_name="handovers")
    op.drop_table("handovers")
