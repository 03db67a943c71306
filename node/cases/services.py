"""Cases and their households: create, read, change, export.

Services take a session, the actor and the time; they check the role matrix and the case's visibility,
validate what needs the clock or the database, write the change, its timeline event and its audit entry, and
flush. They never commit: the view (or job) owning the unit of work does, so that an error leaves nothing
half-saved.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm
from sqlalchemy.dialects import postgresql, sqlite

from node.accounts import User
from node.audit import record
from node.auth import Actor, require
from node.concurrency import Expected, check_version, flush_versioned
from node.config import Stage
from node.errors import NotFound, ValidationFailed

from .access import case_for, case_record
from .models import Case, CaseStage, HouseholdMember, ReferenceCounter
from .search import index_names
from .sections import add_initial_sections
from .stages import current_stage_of, initial_stage_rows
from .timeline import record_event

ADULT_AGE = 18
_RETURNEE_COLUMNS = ("given_names", "family_name", "given_names_native", "family_name_native",
                     "date_of_birth", "sex_or_gender", "nationality", "languages")
_CONTACT_COLUMNS = {"phone": "phone", "email": "email", "address": "address", "notes": "contact_notes"}
_CASE_COLUMNS = ("destination_country", "destination_locality", "destination_partner", "assigned_user_id",
                 "team")
_NAME_COLUMNS = frozenset({"given_names", "family_name", "given_names_native", "family_name_native"})
_ASSIGNABLE_ROLES = ("counsellor", "adviser")


# --- references -------------------------------------------------------------------------------------------

def allocate_numbers(session: orm.Session, scope: str, count: int = 1) -> int:
    """Reserve ``count`` consecutive numbers in ``scope`` (e.g. ``GI-2026``) and return the first.

    One ``INSERT ... ON CONFLICT DO UPDATE ... RETURNING`` on the counter row: concurrent transactions queue
    on that row (PostgreSQL) or are serialised already (SQLite), so two cases never get the same number.
    """
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table = ReferenceCounter.__table__
    stmt = (insert(table).values(scope=scope, last_value=count)
            .on_conflict_do_update(index_elements=["scope"], set_={"last_value": table.c.last_value + count})
            .returning(table.c.last_value))
    last: int = session.execute(stmt).scalar_one()
    return last - count + 1


def format_reference(prefix: str, year: int, number: int) -> str:
    """``GI-2026-0042``: short enough to say on the phone; more digits once a year passes 9999 cases."""
    return f"{prefix}-{year}-{number:04d}"


# --- validation that needs the clock or the database -------------------------------------------------------

def is_child(date_of_birth: dt.date, on: dt.date) -> bool:
    """Whether a person born on ``date_of_birth`` is under 18 on ``on`` (a 29 February birthday counts from
    1 March in common years)."""
    years = on.year - date_of_birth.year - ((on.month, on.day) < (date_of_birth.month, date_of_birth.day))
    return years < ADULT_AGE


def _check_birth_date(value: dt.date | None, today: dt.date, path: tuple[str, ...]) -> None:
    if value is not None and value > today:
        errors: dict[str, Any] = {path[-1]: ["Must not be in the future."]}
        for key in reversed(path[:-1]):
            errors = {key: errors}
        raise ValidationFailed("Invalid date of birth.", errors)


def _check_assignee(session: orm.Session, user_id: int | None) -> None:
    if user_id is None:
        return
    user = session.get(User, user_id)
    if user is None or not user.active or user.role not in _ASSIGNABLE_ROLES:
        raise ValidationFailed("Invalid assignee.", {"assigned_user_id": [
            "No active counsellor or adviser with this id."]})


# --- cases ------------------------------------------------------------------------------------------------

def create_case(session: orm.Session, actor: Actor, data: dict[str, Any], *, stages: Sequence[Stage],
                prefix: str, now: dt.datetime) -> Case:
    """``POST /cases``: open a case with its returnee, destination, stages and whatever else was given
    (household, intake sections, plan).

    Args:
        data: a :class:`~node.cases.schemas.CaseCreateSchema` load.
        stages: the node's configured stages (one row each is created).
        prefix: the node's reference prefix.
    Returns:
        The new case (flushed).
    Raises:
        Forbidden: the role may not create cases.
        ValidationFailed: a date of birth in the future, an unknown assignee, a misplaced intake field.
    """
    require(actor, "case.create")
    today = now.date()
    returnee = data["returnee"]
    _check_birth_date(returnee["date_of_birth"], today, ("returnee", "date_of_birth"))
    for i, member in enumerate(data.get("household", [])):
        _check_birth_date(member.get("date_of_birth"), today, ("household", str(i), "date_of_birth"))
    assignee = data.get("assigned_user_id", actor.user_id)
    _check_assignee(session, assignee)
    contact = returnee.get("contact") or {}
    case = Case(
        id=str(uuid.uuid4()),
        reference=format_reference(prefix, now.year, allocate_numbers(session, f"{prefix}-{now.year}")),
        status="open", current_stage=current_stage_of([(s.key, "not_started") for s in stages]),
        assigned_user_id=assignee, team=data.get("team", actor.team),
        **{name: returnee.get(name) for name in _RETURNEE_COLUMNS if name != "languages"},
        languages=list(dict.fromkeys(returnee.get("languages", []))),
        child_at_intake=is_child(returnee["date_of_birth"], today),
        **{column: contact.get(key) for key, column in _CONTACT_COLUMNS.items()},
        destination_country=data["destination_country"],
        destination_locality=data.get("destination_locality"),
        destination_partner=data.get("destination_partner"),
        created_at=now, updated_at=now, created_by=actor.user_id,
    )
    session.add(case)
    session.flush()
    if stages:
        session.execute(sa.insert(CaseStage), initial_stage_rows(case.id, stages, now, actor.user_id))
    index_names(session, case)
    for member in data.get("household", []):
        session.add(_new_member(case.id, member, now))
    stored = add_initial_sections(session, case, data.get("intake", {}), data.get("plan"), actor, now)
    session.flush()
    detail = {"household": len(data.get("household", [])), "sections": stored, "child": case.child_at_intake}
    record_event(session, case, kind="case.created", now=now, actor=actor, object_type="case",
                 object_id=case.id, detail=detail, touch_case=False)
    record(session, actor=actor, action="create", object_type="case", object_id=case.id, case_id=case.id,
           now=now, detail=detail)
    return case


def get_case(session: orm.Session, actor: Actor, case_id: str, now: dt.datetime) -> Case:
    """Read a case (audited).

    Raises:
        Forbidden: the role may not read cases.
        NotFound: no such case visible to the actor.
    """
    case = case_for(session, actor, case_id, "case.read")
    record(session, actor=actor, action="read", object_type="case", object_id=case.id, case_id=case.id,
           now=now)
    return case


def _case_changes(case: Case, data: dict[str, Any]) -> dict[str, Any]:
    """The columns ``data`` (a CasePatchSchema load) would change, keyed by column, with new values."""
    wanted: dict[str, Any] = {name: data[name] for name in ("status", *_CASE_COLUMNS) if name in data}
    returnee = data.get("returnee", {})
    wanted.update({name: returnee[name] for name in _RETURNEE_COLUMNS if name in returnee})
    if "languages" in wanted:
        wanted["languages"] = list(dict.fromkeys(wanted["languages"]))
    contact = returnee.get("contact", {})
    wanted.update({column: contact[key] for key, column in _CONTACT_COLUMNS.items() if key in contact})
    return {name: value for name, value in wanted.items() if getattr(case, name) != value}


def _field_name(column: str) -> str:
    if column in _RETURNEE_COLUMNS:
        return f"returnee.{column}"
    contact = {v: k for k, v in _CONTACT_COLUMNS.items()}
    return f"returnee.contact.{contact[column]}" if column in contact else column


def update_case(session: orm.Session, actor: Actor, case_id: str, data: dict[str, Any], expected: Expected,
                now: dt.datetime) -> Case:
    """``PATCH /cases/{id}``: change the status, assignment, returnee or destination.

    Raises:
        Forbidden, NotFound: see :func:`~node.cases.access.case_for`.
        VersionConflict | Conflict: ``expected`` is stale (nothing is changed).
        ValidationFailed: a date of birth in the future, an unknown assignee, a required field nulled.
    """
    case = case_for(session, actor, case_id, "case.update")
    check_version(case.version, expected, "case")
    changes = _case_changes(case, data)
    if "date_of_birth" in changes:
        _check_birth_date(changes["date_of_birth"], now.date(), ("returnee", "date_of_birth"))
        changes["child_at_intake"] = is_child(changes["date_of_birth"], case.created_at.date())
    if "assigned_user_id" in changes:
        _check_assignee(session, changes["assigned_user_id"])
    if not changes:
        return case
    previous_status = case.status
    for name, value in changes.items():
        setattr(case, name, value)
    case.updated_at = now
    flush_versioned(session, expected, "case")
    if _NAME_COLUMNS & set(changes):
        index_names(session, case, replace=True)
    fields = sorted(_field_name(c) for c in changes if c not in ("status", "child_at_intake"))
    if "status" in changes:
        record_event(session, case, kind="case.status_changed", now=now, actor=actor, object_type="case",
                     object_id=case.id, detail={"from": previous_status, "to": case.status}, touch_case=False)
    if fields:
        record_event(session, case, kind="case.updated", now=now, actor=actor, object_type="case",
                     object_id=case.id, detail={"fields": fields}, touch_case=False)
    record(session, actor=actor, action="update", object_type="case", object_id=case.id, case_id=case.id,
           now=now, detail={"fields": sorted(_field_name(c) for c in changes)})
    return case


# --- household --------------------------------------------------------------------------------------------

def _new_member(case_id: str, data: dict[str, Any], now: dt.datetime) -> HouseholdMember:
    return HouseholdMember(id=str(uuid.uuid4()), case_id=case_id, relation=data["relation"],
                           given_names=data.get("given_names"), family_name=data.get("family_name"),
                           date_of_birth=data.get("date_of_birth"), travelling=data.get("travelling", False),
                           created_at=now, updated_at=now)


def household(session: orm.Session, case_id: str) -> list[HouseholdMember]:
    return list(session.scalars(sa.select(HouseholdMember).where(HouseholdMember.case_id == case_id)
                                .order_by(HouseholdMember.created_at, HouseholdMember.id)))


def list_household(session: orm.Session, actor: Actor, case_id: str,
                   now: dt.datetime) -> list[HouseholdMember]:
    """The returnee's household members (audited read)."""
    case = case_for(session, actor, case_id, "case.read")
    record(session, actor=actor, action="read", object_type="household_member", object_id=None,
           case_id=case.id, now=now)
    return household(session, case.id)


def add_member(session: orm.Session, actor: Actor, case_id: str, data: dict[str, Any],
               now: dt.datetime) -> HouseholdMember:
    """``POST /cases/{id}/household``.

    Raises:
        ValidationFailed: a date of birth in the future.
    """
    case = case_for(session, actor, case_id, "case.update")
    _check_birth_date(data.get("date_of_birth"), now.date(), ("date_of_birth",))
    member = _new_member(case.id, data, now)
    session.add(member)
    session.flush()
    record_event(session, case, kind="household.added", now=now, actor=actor,
                 object_type="household_member", object_id=member.id, detail={"relation": member.relation})
    record(session, actor=actor, action="create", object_type="household_member", object_id=member.id,
           case_id=case.id, now=now)
    return member


def _member(session: orm.Session, actor: Actor, case_id: str, member_id: str) -> tuple[Case, HouseholdMember]:
    case = case_for(session, actor, case_id, "case.update")
    member = case_record(session, HouseholdMember, member_id, case)
    if member is None:
        raise NotFound("No such household member.")
    return case, member


def update_member(session: orm.Session, actor: Actor, case_id: str, member_id: str, data: dict[str, Any],
                  expected: Expected, now: dt.datetime) -> HouseholdMember:
    """``PATCH /cases/{id}/household/{member_id}``.

    Raises:
        NotFound: no such member on this case.
        VersionConflict | Conflict: ``expected`` is stale.
    """
    case, member = _member(session, actor, case_id, member_id)
    check_version(member.version, expected, "household member")
    _check_birth_date(data.get("date_of_birth"), now.date(), ("date_of_birth",))
    changed = sorted(name for name, value in data.items() if getattr(member, name) != value)
    if not changed:
        return member
    for name in changed:
        setattr(member, name, data[name])
    member.updated_at = now
    flush_versioned(session, expected, "household member")
    record_event(session, case, kind="household.updated", now=now, actor=actor,
                 object_type="household_member", object_id=member.id, detail={"fields": changed})
    record(session, actor=actor, action="update", object_type="household_member", object_id=member.id,
           case_id=case.id, now=now, detail={"fields": changed})
    return member


def remove_member(session: orm.Session, actor: Actor, case_id: str, member_id: str, expected: Expected,
                  now: dt.datetime) -> None:
    """``DELETE /cases/{id}/household/{member_id}``.

    Raises:
        NotFound: no such member on this case.
        VersionConflict | Conflict: ``expected`` is stale.
    """
    case, member = _member(session, actor, case_id, member_id)
    check_version(member.version, expected, "household member")
    session.delete(member)
    flush_versioned(session, expected, "household member")
    record_event(session, case, kind="household.removed", now=now, actor=actor,
                 object_type="household_member", object_id=member_id, detail={"relation": member.relation})
    record(session, actor=actor, action="delete", object_type="household_member", object_id=member_id,
           case_id=case.id, now=now)
