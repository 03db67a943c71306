"""The case domain's tables.

One ``cases`` row holds the case, the returnee (one per case) and the destination; everything else hangs
off it by ``case_id`` (``ON DELETE CASCADE``, so that a retention job can delete a case in one statement).

Every record a case worker edits carries a ``version`` that SQLAlchemy checks and increments on each UPDATE
(``version_id_col``): the services compare it with the version the caller read (If-Match or a ``version``
field), and the ``UPDATE ... WHERE version = :read`` closes the race between two writers that both passed that
check. Bookkeeping columns (``cases.updated_at``, ``cases.current_stage``) are written with plain Core updates
so that adding a note never makes someone else's edit of the case look stale.

Intake sections, the plan and the child safeguards are created on their first write: until then they read as
empty with version 0, and the first write must say so (``If-Match: "0"``).

``case_name_tokens`` is the name search index: accent-folded, lower-cased name tokens, searched by prefix with
a range condition (``token >= 'sehic' AND token < 'sehid'``). The column compares bytewise on both databases
(SQLite's default BINARY collation; ``COLLATE "C"`` on PostgreSQL), so the range is an index range scan there.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy import orm
from sqlalchemy.orm import Mapped, mapped_column

from node.accounts import User
from node.at_rest import EncryptedJSON, EncryptedText
from node.db import Base, UTCDateTime

STATUSES = ("open", "handed_over", "in_reintegration", "closed")
STAGE_STATUSES = ("not_started", "in_progress", "done", "not_applicable")
RESPONSIBLE_SIDES = ("origin", "destination", "returnee", "shared")
INTAKE_SECTIONS = ("family", "health", "background", "education", "work", "wishes", "future_work")
CONSENT_CATEGORIES = ("identity", "contact", "family", "health", "background", "education", "work", "wishes",
                      "plan")
#: How consent was given, and what it may be used for: the protocol's own values (SPEC.md 9.2, 9.3), since the
#: consent record travels with every handover.
CONSENT_METHODS = ("written_signature", "digital_signature", "oral_witnessed")
CONSENT_PURPOSES = ("return_preparation", "reintegration_support", "follow_up")
CONSENT_STATUSES = ("pending", "active", "expired", "withdrawn")
INTERVENTION_KINDS = ("education", "business_course", "job", "housing", "documents", "health",
                      "financial_support", "other")
INTERVENTION_STATUSES = ("proposed", "planned", "in_progress", "completed", "cancelled")
HOUSEHOLD_RELATIONS = ("spouse", "partner", "child", "parent", "sibling", "grandparent", "grandchild",
                       "other_relative", "other")
MARITAL_STATUSES = ("single", "married", "partnership", "separated", "divorced", "widowed", "other")

#: ``token`` compares bytewise on both databases (see the module docstring).
NameToken = sa.String(64).with_variant(sa.String(64, collation="C"), "postgresql")


def _case_fk() -> sa.ForeignKey:
    return sa.ForeignKey("cases.id", ondelete="CASCADE")


class Case(Base):
    __tablename__ = "cases"

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    reference: Mapped[str] = mapped_column(sa.String(32), unique=True)
    status: Mapped[str] = mapped_column(sa.String(20))
    current_stage: Mapped[str | None] = mapped_column(sa.String(40))
    assigned_user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    team: Mapped[str | None] = mapped_column(sa.String(64))
    # the returnee
    given_names: Mapped[str] = mapped_column(sa.String(200))
    family_name: Mapped[str] = mapped_column(sa.String(200))
    given_names_native: Mapped[str | None] = mapped_column(sa.String(200))
    family_name_native: Mapped[str | None] = mapped_column(sa.String(200))
    date_of_birth: Mapped[dt.date] = mapped_column(sa.Date())
    child_at_intake: Mapped[bool] = mapped_column(sa.Boolean())
    sex_or_gender: Mapped[str | None] = mapped_column(sa.String(100))
    nationality: Mapped[str | None] = mapped_column(sa.String(2))
    languages: Mapped[list[str]] = mapped_column(sa.JSON())
    phone: Mapped[str | None] = mapped_column(sa.String(40))
    email: Mapped[str | None] = mapped_column(sa.String(254))
    address: Mapped[str | None] = mapped_column(sa.String(500))
    contact_notes: Mapped[str | None] = mapped_column(EncryptedText("cases.contact_notes", 1000))
    # the destination
    destination_country: Mapped[str] = mapped_column(sa.String(2))
    destination_locality: Mapped[str | None] = mapped_column(sa.String(200))
    destination_partner: Mapped[str | None] = mapped_column(sa.String(128))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    version: Mapped[int] = mapped_column(sa.Integer())

    # Each filter's index is ordered by creation time (pages come newest first without a sort) and carries
    # the two visibility columns, so that counting a filter's matches reads the index only. There is no
    # index led by assigned_user_id or team: the visibility condition matches most of a team's cases, and
    # without statistics SQLite would drive every search from such an index instead of the name tokens.
    __table_args__ = (
        sa.Index("ix_cases_created_at", "created_at", "assigned_user_id", "team"),
        sa.Index("ix_cases_status_created_at", "status", "created_at", "assigned_user_id", "team"),
        sa.Index("ix_cases_stage_created_at", "current_stage", "created_at", "assigned_user_id", "team"),
        sa.Index("ix_cases_destination_created_at", "destination_country", "created_at", "assigned_user_id",
                 "team"),
        # the combined filters of the web's case list
        sa.Index("ix_cases_status_destination_created_at", "status", "destination_country", "created_at",
                 "assigned_user_id", "team"),
        sa.Index("ix_cases_stage_destination_created_at", "current_stage", "destination_country", "created_at",
                 "assigned_user_id", "team"),
    )
    __mapper_args__: ClassVar[dict[str, Any]] = {"version_id_col": version}


class CaseStage(Base):
    __tablename__ = "case_stages"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[str] = mapped_column(sa.String(36), _case_fk())
    stage_key: Mapped[str] = mapped_column(sa.String(40))
    position: Mapped[int] = mapped_column(sa.Integer())
    status: Mapped[str] = mapped_column(sa.String(20))
    responsible: Mapped[str] = mapped_column(sa.String(20))
    notes: Mapped[str | None] = mapped_column(EncryptedText("case_stages.notes"))
    started_on: Mapped[dt.date | None] = mapped_column(sa.Date())
    completed_on: Mapped[dt.date | None] = mapped_column(sa.Date())
    #: when the stage should be done by (the home page's "stages due" queue); null: no due date
    due_on: Mapped[dt.date | None] = mapped_column(sa.Date())
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    updated_by: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    version: Mapped[int] = mapped_column(sa.Integer())

    __table_args__ = (
        sa.UniqueConstraint("case_id", "stage_key", name="uq_case_stages_case_id_stage_key"),
        sa.Index("ix_case_stages_key_status", "stage_key", "status", "case_id"),
        sa.Index("ix_case_stages_due", "status", "due_on"),
    )
    __mapper_args__: ClassVar[dict[str, Any]] = {"version_id_col": version}


class IntakeSection(Base):
    __tablename__ = "intake_sections"

    case_id: Mapped[str] = mapped_column(sa.String(36), _case_fk(), primary_key=True)
    section: Mapped[str] = mapped_column(sa.String(20), primary_key=True)
    text: Mapped[str | None] = mapped_column(EncryptedText("intake_sections.text"))
    data: Mapped[dict[str, Any]] = mapped_column(EncryptedJSON("intake_sections.data"))
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    updated_by: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    version: Mapped[int] = mapped_column(sa.Integer())

    __mapper_args__: ClassVar[dict[str, Any]] = {"version_id_col": version}


class CasePlan(Base):
    __tablename__ = "case_plans"

    case_id: Mapped[str] = mapped_column(sa.String(36), _case_fk(), primary_key=True)
    end_date: Mapped[dt.date | None] = mapped_column(sa.Date())
    milestones: Mapped[list[dict[str, Any]]] = mapped_column(EncryptedJSON("case_plans.milestones"))
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    updated_by: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    version: Mapped[int] = mapped_column(sa.Integer())

    __mapper_args__: ClassVar[dict[str, Any]] = {"version_id_col": version}


class HouseholdMember(Base):
    __tablename__ = "household_members"

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    case_id: Mapped[str] = mapped_column(sa.String(36), _case_fk(), index=True)
    relation: Mapped[str] = mapped_column(sa.String(20))
    given_names: Mapped[str | None] = mapped_column(EncryptedText("household_members.given_names", 200))
    family_name: Mapped[str | None] = mapped_column(EncryptedText("household_members.family_name", 200))
    date_of_birth: Mapped[dt.date | None] = mapped_column(sa.Date())
    travelling: Mapped[bool] = mapped_column(sa.Boolean())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    version: Mapped[int] = mapped_column(sa.Integer())

    __mapper_args__: ClassVar[dict[str, Any]] = {"version_id_col": version}


class ChildSafeguards(Base):
    """What a child's case needs before any consent to share can become active."""

    __tablename__ = "child_safeguards"

    case_id: Mapped[str] = mapped_column(sa.String(36), _case_fk(), primary_key=True)
    guardian_name: Mapped[str | None] = mapped_column(EncryptedText("child_safeguards.guardian_name", 200))
    guardian_relation: Mapped[str | None] = mapped_column(EncryptedText("child_safeguards.guardian_relation", 100))
    guardian_organisation: Mapped[str | None] = mapped_column(sa.String(200))
    guardian_contact: Mapped[str | None] = mapped_column(EncryptedText("child_safeguards.guardian_contact", 500))
    guardian_consent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    child_views: Mapped[str | None] = mapped_column(EncryptedText("child_safeguards.child_views"))
    best_interests_outcome: Mapped[str | None] = mapped_column(EncryptedText("child_safeguards.best_interests_outcome"))
    assessed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    assessed_by: Mapped[str | None] = mapped_column(sa.String(200))
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    updated_by: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    version: Mapped[int] = mapped_column(sa.Integer())

    __mapper_args__: ClassVar[dict[str, Any]] = {"version_id_col": version}


class Consent(Base):
    """A consent record. It is never edited; withdrawal is recorded on it once."""

    __tablename__ = "consents"

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    case_id: Mapped[str] = mapped_column(sa.String(36), _case_fk(), index=True)
    categories: Mapped[list[str]] = mapped_column(sa.JSON())
    recipients: Mapped[list[str]] = mapped_column(sa.JSON())
    purpose: Mapped[str] = mapped_column(sa.String(1000))
    valid_until: Mapped[dt.date] = mapped_column(sa.Date())
    method: Mapped[str] = mapped_column(sa.String(20))
    language: Mapped[str | None] = mapped_column(sa.String(35))
    interpreter: Mapped[str | None] = mapped_column(sa.String(200))
    given_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    recorded_by: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    withdrawn_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    withdrawal_reason: Mapped[str | None] = mapped_column(EncryptedText("consents.withdrawal_reason", 1000))
    withdrawn_by: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))


class Intervention(Base):
    __tablename__ = "interventions"

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    case_id: Mapped[str] = mapped_column(sa.String(36), _case_fk(), index=True)
    kind: Mapped[str] = mapped_column(sa.String(20))
    provider: Mapped[str | None] = mapped_column(EncryptedText("interventions.provider", 200))
    status: Mapped[str] = mapped_column(sa.String(20))
    start_date: Mapped[dt.date | None] = mapped_column(sa.Date())
    end_date: Mapped[dt.date | None] = mapped_column(sa.Date())
    #: the amount in hundredths of the currency unit (exact on both databases; the API speaks decimals)
    amount_cents: Mapped[int | None] = mapped_column(sa.BigInteger())
    currency: Mapped[str | None] = mapped_column(sa.String(3))
    notes: Mapped[str | None] = mapped_column(EncryptedText("interventions.notes"))
    author_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    version: Mapped[int] = mapped_column(sa.Integer())

    author: Mapped[User | None] = orm.relationship(lazy="joined")

    __mapper_args__: ClassVar[dict[str, Any]] = {"version_id_col": version}


class ProgressNote(Base):
    """A progress note. Notes are never edited: a correction is a new note."""

    __tablename__ = "progress_notes"

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    case_id: Mapped[str] = mapped_column(sa.String(36), _case_fk())
    text: Mapped[str] = mapped_column(EncryptedText("progress_notes.text"))
    stage_changes: Mapped[list[dict[str, Any]] | None] = mapped_column(sa.JSON())
    author_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())

    author: Mapped[User | None] = orm.relationship(lazy="joined")

    __table_args__ = (sa.Index("ix_progress_notes_case_created", "case_id", "created_at"),)


class CaseEvent(Base):
    """One entry on a case's timeline. ``kind`` is an open vocabulary (later issues add handover and partner
    events); ``source`` is ``local`` or the partner node id the event came from, ``verified`` whether its
    signature was checked. ``detail`` holds ids, field names and enumerated statuses, never personal data."""

    __tablename__ = "case_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[str] = mapped_column(sa.String(36), _case_fk())
    occurred_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    kind: Mapped[str] = mapped_column(sa.String(64))
    source: Mapped[str] = mapped_column(sa.String(128))
    verified: Mapped[bool] = mapped_column(sa.Boolean())
    actor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    object_type: Mapped[str | None] = mapped_column(sa.String(40))
    object_id: Mapped[str | None] = mapped_column(sa.String(64))
    detail: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON())

    actor: Mapped[User | None] = orm.relationship(lazy="joined")

    __table_args__ = (sa.Index("ix_case_events_case_timeline", "case_id", "occurred_at", "id"),)


class CaseNameToken(Base):
    __tablename__ = "case_name_tokens"

    token: Mapped[str] = mapped_column(NameToken, primary_key=True)
    case_id: Mapped[str] = mapped_column(sa.String(36), _case_fk(), primary_key=True)

    # a case's tokens (deleting them), and a word checked on one case: case_id = ? AND token in a range
    __table_args__ = (sa.Index("ix_case_name_tokens_case_token", "case_id", "token"),)


class ReferenceCounter(Base):
    """The last number handed out per reference scope (``GI-2026``)."""

    __tablename__ = "reference_counters"

    scope: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    last_value: Mapped[int] = mapped_column(sa.Integer())
