"""Notifications: what happened to a user's cases (a handover answered, progress received, an erasure confirmed
or overdue) or to the node's partners (unreachable for over a day), and each user's e-mail address and opt-out.

Revision ID: 0011_notifications
Revises: 0010_search_indexes
Create Date: 2026-12-06
"""
import sqlalchemy as sa
from alembic import op

revision = "0011_notifications"
down_revision = "0010_search_indexes"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("email", sa.String(254), nullable=True))
        batch.add_column(sa.Column("notify_email", sa.Boolean(), server_default=sa.true(), nullable=False))
    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("case_id", sa.String(36), nullable=True),
        sa.Column("case_reference", sa.String(64), nullable=True),
        sa.Column("partner_node", sa.String(80), nullable=True),
        sa.Column("subject_key", sa.String(160), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("read_at", TZ, nullable=True),
        sa.Column("emailed_at", TZ, nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_notifications_user_id_users"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name=op.f("fk_notifications_case_id_cases"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
        sa.UniqueConstraint("user_id", "kind", "subject_key", name="uq_notifications_subject"),
    )
    op.create_index("ix_notifications_user_read", "notifications", ["user_id", "read_at", "created_at"])
    op.create_index("ix_notifications_emailed", "notifications", ["emailed_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_notifications_emailed", table_name="notifications")
    op.drop_index("ix_notifications_user_read", table_name="notifications")
    op.drop_table("notifications")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("notify_email")
        batch.drop_column("email")
