"""Cases: the case and its returnee, stages, intake sections, plan, household, child safeguards, consents,
interventions, progress notes, the timeline, the name search index and the reference counters.

Revision ID: 0002_cases
Revises: 0001_foundation
Create Date: 2026-11-23
"""
import sqlalchemy as sa
from alembic import op

revision = "0002_cases"
down_revision = "0001_foundation"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)
NameToken = sa.String(64).with_variant(sa.String(64, collation="C"), "postgresql")


def _case_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name=op.f(f"fk_{table}_case_id_cases"),
                                   ondelete="CASCADE")


def _user_fk(table: str, column: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], ["users.id"], name=op.f(f"fk_{table}_{column}_users"))


def upgrade() -> None:
    op.create_table(
        "cases",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("reference", sa.String(32), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("current_stage", sa.String(40), nullable=True),
        sa.Column("assigned_user_id", sa.Integer(), nullable=True),
        sa.Column("team", sa.String(64), nullable=True),
        sa.Column("given_names", sa.String(200), nullable=False),
        sa.Column("family_name", sa.String(200), nullable=False),
        sa.Column("given_names_native", sa.String(200), nullable=True),
        sa.Column("family_name_native", sa.String(200), nullable=True),
        sa.Column("date_of_birth", sa.Date(), nullable=False),
        sa.Column("child_at_intake", sa.Boolean(), nullable=False),
        sa.Column("sex_or_gender", sa.String(100), nullable=True),
        sa.Column("nationality", sa.String(2), nullable=True),
        sa.Column("languages", sa.JSON(), nullable=False),
        sa.Column("phone", sa.String(40), nullable=True),
        sa.Column("email", sa.String(254), nullable=True),
        sa.Column("address", sa.String(500), nullable=True),
        sa.Column("contact_notes", sa.String(1000), nullable=True),
        sa.Column("destination_country", sa.String(2), nullable=False),
        sa.Column("destination_locality", sa.String(200), nullable=True),
        sa.Column("destination_partner", sa.String(128), nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        _user_fk("cases", "assigned_user_id"),
        _user_fk("cases", "created_by"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cases")),
        sa.UniqueConstraint("reference", name=op.f("uq_cases_reference")),
    )
    visible = ["assigned_user_id", "team"]
    op.create_index("ix_cases_created_at", "cases", ["created_at", *visible])
    op.create_index("ix_cases_status_created_at", "cases", ["status", "created_at", *visible])
    op.create_index("ix_cases_stage_created_at", "cases", ["current_stage", "created_at", *visible])
    op.create_index("ix_cases_destination_created_at", "cases",
                    ["destination_country", "created_at", *visible])

    op.create_table(
        "case_stages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.String(36), nullable=False),
        sa.Column("stage_key", sa.String(40), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("responsible", sa.String(20), nullable=False),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("started_on", sa.Date(), nullable=True),
        sa.Column("completed_on", sa.Date(), nullable=True),
        sa.Column("updated_at", TZ, nullable=False),
        sa.Column("updated_by", sa.Integer(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        _case_fk("case_stages"),
        _user_fk("case_stages", "updated_by"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_stages")),
        sa.UniqueConstraint("case_id", "stage_key", name="uq_case_stages_case_id_stage_key"),
    )
    op.create_index("ix_case_stages_key_status", "case_stages", ["stage_key", "status", "case_id"])

    op.create_table(
        "intake_sections",
        sa.Column("case_id", sa.String(36), nullable=False),
        sa.Column("section", sa.String(20), nullable=False),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.Column("updated_by", sa.Integer(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        _case_fk("intake_sections"),
        _user_fk("intake_sections", "updated_by"),
        sa.PrimaryKeyConstraint("case_id", "section", name=op.f("pk_intake_sections")),
    )

    op.create_table(
        "case_plans",
        sa.Column("case_id", sa.String(36), nullable=False),
        sa.Column("end_date", sa.Date(), nullable=True),
        sa.Column("milestones", sa.JSON(), nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.Column("updated_by", sa.Integer(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        _case_fk("case_plans"),
        _user_fk("case_plans", "updated_by"),
        sa.PrimaryKeyConstraint("case_id", name=op.f("pk_case_plans")),
    )

    op.create_table(
        "household_members",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("case_id", sa.String(36), nullable=False),
        sa.Column("relation", sa.String(20), nullable=False),
        sa.Column("given_names", sa.String(200), nullable=True),
        sa.Column("family_name", sa.String(200), nullable=True),
        sa.Column("date_of_birth", sa.Date(), nullable=True),
        sa.Column("travelling", sa.Boolean(), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        _case_fk("household_members"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_household_members")),
    )
    op.create_index(op.f("ix_household_members_case_id"), "household_members", ["case_id"])

    op.create_table(
        "child_safeguards",
        sa.Column("case_id", sa.String(36), nullable=False),
        sa.Column("guardian_name", sa.String(200), nullable=True),
        sa.Column("guardian_relation", sa.String(100), nullable=True),
        sa.Column("guardian_organisation", sa.String(200), nullable=True),
        sa.Column("guardian_contact", sa.String(500), nullable=True),
        sa.Column("guardian_consent_at", TZ, nullable=True),
        sa.Column("child_views", sa.Text(), nullable=True),
        sa.Column("best_interests_outcome", sa.Text(), nullable=True),
        sa.Column("assessed_at", TZ, nullable=True),
        sa.Column("assessed_by", sa.String(200), nullable=True),
        sa.Column("updated_at", TZ, nullable=False),
        sa.Column("updated_by", sa.Integer(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        _case_fk("child_safeguards"),
        _user_fk("child_safeguards", "updated_by"),
        sa.PrimaryKeyConstraint("case_id", name=op.f("pk_child_safeguards")),
    )

    op.create_table(
        "consents",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("case_id", sa.String(36), nullable=False),
        sa.Column("categories", sa.JSON(), nullable=False),
        sa.Column("recipients", sa.JSON(), nullable=False),
        sa.Column("purpose", sa.String(1000), nullable=False),
        sa.Column("valid_until", sa.Date(), nullable=False),
        sa.Column("method", sa.String(20), nullable=False),
        sa.Column("language", sa.String(35), nullable=True),
        sa.Column("interpreter", sa.String(200), nullable=True),
        sa.Column("given_at", TZ, nullable=False),
        sa.Column("recorded_by", sa.Integer(), nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("withdrawn_at", TZ, nullable=True),
        sa.Column("withdrawal_reason", sa.String(1000), nullable=True),
        sa.Column("withdrawn_by", sa.Integer(), nullable=True),
        _case_fk("consents"),
        _user_fk("consents", "recorded_by"),
        _user_fk("consents", "withdrawn_by"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consents")),
    )
    op.create_index(op.f("ix_consents_case_id"), "consents", ["case_id"])

    op.create_table(
        "interventions",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("case_id", sa.String(36), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("provider", sa.String(200), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=True),
        sa.Column("end_date", sa.Date(), nullable=True),
        sa.Column("amount_cents", sa.BigInteger(), nullable=True),
        sa.Column("currency", sa.String(3), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("author_id", sa.Integer(), nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        _case_fk("interventions"),
        _user_fk("interventions", "author_id"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_interventions")),
    )
    op.create_index(op.f("ix_interventions_case_id"), "interventions", ["case_id"])

    op.create_table(
        "progress_notes",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("case_id", sa.String(36), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("stage_changes", sa.JSON(), nullable=True),
        sa.Column("author_id", sa.Integer(), nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        _case_fk("progress_notes"),
        _user_fk("progress_notes", "author_id"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_progress_notes")),
    )
    op.create_index("ix_progress_notes_case_created", "progress_notes", ["case_id", "created_at"])

    op.create_table(
        "case_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.String(36), nullable=False),
        sa.Column("occurred_at", TZ, nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("source", sa.String(128), nullable=False),
        sa.Column("verified", sa.Boolean(), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("object_type", sa.String(40), nullable=True),
        sa.Column("object_id", sa.String(64), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=True),
        _case_fk("case_events"),
        _user_fk("case_events", "actor_id"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_events")),
    )
    op.create_index("ix_case_events_case_timeline", "case_events", ["case_id", "occurred_at", "id"])

    op.create_table(
        "case_name_tokens",
        sa.Column("token", NameToken, nullable=False),
        sa.Column("case_id", sa.String(36), nullable=False),
        _case_fk("case_name_tokens"),
        sa.PrimaryKeyConstraint("token", "case_id", name=op.f("pk_case_name_tokens")),
    )
    op.create_index(op.f("ix_case_name_tokens_case_id"), "case_name_tokens", ["case_id"])

    op.create_table(
        "reference_counters",
        sa.Column("scope", sa.String(32), nullable=False),
        sa.Column("last_value", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("scope", name=op.f("pk_reference_counters")),
    )


def downgrade() -> None:
    op.drop_table("reference_counters")
    op.drop_index(op.f("ix_case_name_tokens_case_id"), table_name="case_name_tokens")
    op.drop_table("case_name_tokens")
    op.drop_index("ix_case_events_case_timeline", table_name="case_events")
    op.drop_table("case_events")
    op.drop_index("ix_progress_notes_case_created", table_name="progress_notes")
    op.drop_table("progress_notes")
    op.drop_index(op.f("ix_interventions_case_id"), table_name="interventions")
    op.drop_table("interventions")
    op.drop_index(op.f("ix_consents_case_id"), table_name="consents")
    op.drop_table("consents")
    op.drop_table("child_safeguards")
    op.drop_index(op.f("ix_household_members_case_id"), table_name="household_members")
    op.drop_table("household_members")
    op.drop_table("case_plans")
    op.drop_table("intake_sections")
    op.drop_index("ix_case_stages_key_status", table_name="case_stages")
    op.drop_table("case_stages")
    for name in ("destination", "stage", "status"):
        op.drop_index(f"ix_cases_{name}_created_at", table_name="cases")
    op.drop_index("ix_cases_created_at", table_name="cases")
    op.drop_table("cases")
