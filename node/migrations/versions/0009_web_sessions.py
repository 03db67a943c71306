"""The web interface: browser sessions, failed logins (throttling) and each user's second factor (TOTP); for
the home page's work queues, a stage's due date and the indexes the queues read by.

Revision ID: 0009_web_sessions
Revises: 0008_handover_not_carried
Create Date: 2026-12-05
"""
import sqlalchemy as sa
from alembic import op

revision = "0009_web_sessions"
down_revision = "0008_handover_not_carried"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("totp_secret", sa.String(64), nullable=True))
        batch.add_column(sa.Column("totp_last_step", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("totp_required", sa.Boolean(), server_default=sa.false(), nullable=False))
    op.create_table(
        "web_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("last_seen_at", TZ, nullable=False),
        sa.Column("second_factor_due", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_web_sessions_user_id_users"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_web_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_web_sessions_token_hash")),
    )
    op.create_index(op.f("ix_web_sessions_user_id"), "web_sessions", ["user_id"])
    op.create_table(
        "login_failures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("address", sa.String(64), nullable=False),
        sa.Column("at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_failures")),
    )
    op.create_index("ix_login_failures_username_at", "login_failures", ["username", "at"])
    op.create_index("ix_login_failures_address_at", "login_failures", ["address", "at"])
    # the home page's work queues: a stage's due date, and the indexes the queues read by
    with op.batch_alter_table("case_stages") as batch:
        batch.add_column(sa.Column("due_on", sa.Date(), nullable=True))
        batch.create_index("ix_case_stages_due", ["status", "due_on"])
    op.create_index("ix_handovers_direction_status_decided", "handovers", ["direction", "status", "decided_at"])
    op.create_index("ix_progress_updates_direction_created", "progress_updates", ["direction", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_progress_updates_direction_created", table_name="progress_updates")
    op.drop_index("ix_handovers_direction_status_decided", table_name="handovers")
    with op.batch_alter_table("case_stages") as batch:
        batch.drop_index("ix_case_stages_due")
        batch.drop_column("due_on")
    op.drop_index("ix_login_failures_address_at", table_name="login_failures")
    op.drop_index("ix_login_failures_username_at", table_name="login_failures")
    op.drop_table("login_failures")
    op.drop_index(op.f("ix_web_sessions_user_id"), table_name="web_sessions")
    op.drop_table("web_sessions")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("totp_required")
        batch.drop_column("totp_last_step")
        batch.drop_column("totp_secret")
