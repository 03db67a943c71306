"""Case search at 100,000 cases for the web's case list: a composite index for each combined filter a list page
offers (status + destination, stage + destination; ordered by creation time and carrying the visibility
columns, as the single-filter indexes are), and the name tokens indexed by (case_id, token) instead of case_id
alone, so that the second word of a name query is checked per case with one index seek.

Revision ID: 0010_search_indexes
Revises: 0009_web_sessions
Create Date: 2026-12-05
"""
from alembic import op

revision = "0010_search_indexes"
down_revision = "0009_web_sessions"
branch_labels = None
depends_on = None

VISIBILITY = ["created_at", "assigned_user_id", "team"]


def upgrade() -> None:
    op.create_index("ix_cases_status_destination_created_at", "cases",
                    ["status", "destination_country", *VISIBILITY])
    op.create_index("ix_cases_stage_destination_created_at", "cases",
                    ["current_stage", "destination_country", *VISIBILITY])
    op.create_index("ix_case_name_tokens_case_token", "case_name_tokens", ["case_id", "token"])
    op.drop_index("ix_case_name_tokens_case_id", table_name="case_name_tokens")


def downgrade() -> None:
    op.create_index("ix_case_name_tokens_case_id", "case_name_tokens", ["case_id"])
    op.drop_index("ix_case_name_tokens_case_token", table_name="case_name_tokens")
    op.drop_index("ix_cases_stage_destination_created_at", table_name="cases")
    op.drop_index("ix_cases_status_destination_created_at", table_name="cases")
