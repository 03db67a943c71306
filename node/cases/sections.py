"""Intake sections and the individual plan.

Both are created on their first write: until then they read as empty with version 0, and the first write
must carry version 0 (``If-Match: "0"``). Two people creating the same section at once cannot both win: the
second insert hits the primary key and answers the same conflict as a stale version.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc, orm

from node.audit import record
from node.auth import Actor
from node.concurrency import Expected, check_version, flush_versioned
from node.errors import ValidationFailed

from .access import case_for
from .models import INTAKE_SECTIONS, Case, CasePlan, IntakeSection
from .timeline import record_event

#: The structured fields each intake section has, besides its free text.
SECTION_FIELDS: dict[str, tuple[str, ...]] = {
    "family": ("marital_status", "number_of_children"),
    "health": (),
    "background": (),
    "education": ("education_level",),
    "work": ("occupations", "skills"),
    "wishes": (),
    "future_work": ("occupations", "skills"),
}
_LIST_FIELDS = frozenset({"occupations", "skills"})
_ALL_STRUCTURED = frozenset(f for fields in SECTION_FIELDS.values() for f in fields)


def flush_created(session: orm.Session, expected: Expected, what: str) -> None:
    """Flush a first write; a concurrent first write of the same record becomes the writer's conflict."""
    try:
        flush_versioned(session, expected, what)
    except exc.IntegrityError:
        raise expected.conflict(what) from None


def check_section(section: str, data: dict[str, Any], path: tuple[str, ...] = ()) -> None:
    """Refuse structured fields the section does not have.

    Raises:
        ValidationFailed: unknown section, or a field of another section.
    """
    if section not in SECTION_FIELDS:
        raise ValidationFailed("Unknown intake section.", {"section": [
            f"Unknown intake section; the sections are: {', '.join(INTAKE_SECTIONS)}."]})
    wrong = sorted(set(data) & (_ALL_STRUCTURED - set(SECTION_FIELDS[section])))
    if wrong:
        errors: dict[str, Any] = {name: [f"Not a field of the {section!r} section."] for name in wrong}
        for key in reversed(path):
            errors = {key: errors}
        raise ValidationFailed("Invalid intake section.", errors)


def section_values(section: str, data: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    """The text and structured data a section stores for ``data`` (absent fields become empty)."""
    structured = {name: data.get(name, [] if name in _LIST_FIELDS else None)
                  for name in SECTION_FIELDS[section]}
    return data.get("text"), structured


def new_section(case_id: str, section: str, data: dict[str, Any], actor: Actor,
                now: dt.datetime) -> IntakeSection:
    text, structured = section_values(section, data)
    return IntakeSection(case_id=case_id, section=section, text=text, data=structured, updated_at=now,
                         updated_by=actor.user_id)


def present_section(section: str, row: IntakeSection | None) -> dict[str, Any]:
    text, structured = section_values(section, {}) if row is None else (row.text, row.data or {})
    result: dict[str, Any] = {"section": section, "text": text, "updated_at": row.updated_at if row else None,
                              "version": row.version if row else 0}
    for name in SECTION_FIELDS[section]:
        result[name] = structured.get(name, [] if name in _LIST_FIELDS else None)
    return result


def intake_sections(session: orm.Session, case_id: str) -> list[dict[str, Any]]:
    rows = {row.section: row for row in session.scalars(
        sa.select(IntakeSection).where(IntakeSection.case_id == case_id))}
    return [present_section(section, rows.get(section)) for section in INTAKE_SECTIONS]


def list_intake(session: orm.Session, actor: Actor, case_id: str, now: dt.datetime) -> list[dict[str, Any]]:
    """All intake sections of the case, in order (audited read)."""
    case = case_for(session, actor, case_id, "case.read")
    record(session, actor=actor, action="read", object_type="intake_section", object_id=None, case_id=case.id,
           now=now)
    return intake_sections(session, case.id)


def get_intake_section(session: orm.Session, actor: Actor, case_id: str, section: str,
                       now: dt.datetime) -> dict[str, Any]:
    """One intake section (audited read).

    Raises:
        ValidationFailed: unknown section.
    """
    case = case_for(session, actor, case_id, "case.read")
    check_section(section, {})
    record(session, actor=actor, action="read", object_type="intake_section", object_id=section,
           case_id=case.id, now=now)
    return present_section(section, session.get(IntakeSection, (case.id, section)))


def write_intake_section(session: orm.Session, actor: Actor, case_id: str, section: str, data: dict[str, Any],
                         expected: Expected, now: dt.datetime) -> dict[str, Any]:
    """``PUT /cases/{id}/intake/{section}``: replace the section's text and structured fields.

    Raises:
        ValidationFailed: unknown section or a field of another section.
        VersionConflict | Conflict: ``expected`` is stale.
    """
    case = case_for(session, actor, case_id, "case.update")
    check_section(section, data)
    row = session.get(IntakeSection, (case.id, section))
    what = f"intake section {section!r}"
    check_version(row.version if row else 0, expected, what)
    text, structured = section_values(section, data)
    if row is None:
        changed = (["text"] if text else []) + sorted(k for k, v in structured.items() if v not in (None, []))
        row = new_section(case.id, section, data, actor, now)
        session.add(row)
        flush_created(session, expected, what)
    else:
        old = {"text": row.text, **(row.data or {})}
        new = {"text": text, **structured}
        changed = sorted(k for k in new if old.get(k) != new[k])
        if not changed:
            return present_section(section, row)
        row.text, row.data, row.updated_at, row.updated_by = text, structured, now, actor.user_id
        flush_versioned(session, expected, what)
    record_event(session, case, kind="intake.updated", now=now, actor=actor, object_type="intake_section",
                 object_id=section, detail={"section": section, "fields": changed})
    record(session, actor=actor, action="update", object_type="intake_section", object_id=section,
           case_id=case.id, now=now, detail={"fields": changed})
    return present_section(section, row)


# --- the plan ---------------------------------------------------------------------------------------------

def _milestones(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"title": m["title"], "due_date": m["due_date"].isoformat() if m.get("due_date") else None,
             "done": bool(m.get("done", False))} for m in items]


def new_plan(case_id: str, data: dict[str, Any], actor: Actor, now: dt.datetime) -> CasePlan:
    return CasePlan(case_id=case_id, end_date=data.get("end_date"),
                    milestones=_milestones(data.get("milestones", [])), updated_at=now,
                    updated_by=actor.user_id)


def present_plan(plan: CasePlan | None) -> dict[str, Any]:
    if plan is None:
        return {"end_date": None, "milestones": [], "updated_at": None, "version": 0}
    milestones = [{**m, "due_date": dt.date.fromisoformat(m["due_date"]) if m.get("due_date") else None}
                  for m in plan.milestones]
    return {"end_date": plan.end_date, "milestones": milestones, "updated_at": plan.updated_at,
            "version": plan.version}


def get_plan(session: orm.Session, actor: Actor, case_id: str, now: dt.datetime) -> dict[str, Any]:
    """The case's individual plan (audited read)."""
    case = case_for(session, actor, case_id, "case.read")
    record(session, actor=actor, action="read", object_type="plan", object_id=None, case_id=case.id, now=now)
    return present_plan(session.get(CasePlan, case.id))


def plan_detail(plan: CasePlan, changed: list[str]) -> dict[str, Any]:
    return {"fields": changed, "milestones": len(plan.milestones),
            "milestones_done": sum(1 for m in plan.milestones if m.get("done"))}


def write_plan(session: orm.Session, actor: Actor, case_id: str, data: dict[str, Any], expected: Expected,
               now: dt.datetime) -> dict[str, Any]:
    """``PUT /cases/{id}/plan``: replace the end date and the milestones.

    Raises:
        VersionConflict | Conflict: ``expected`` is stale.
    """
    case = case_for(session, actor, case_id, "case.update")
    plan = session.get(CasePlan, case.id)
    check_version(plan.version if plan else 0, expected, "plan")
    milestones = _milestones(data.get("milestones", []))
    if plan is None:
        plan = new_plan(case.id, {**data, "milestones": data.get("milestones", [])}, actor, now)
        changed = [name for name in ("end_date", "milestones") if getattr(plan, name)]
        session.add(plan)
        flush_created(session, expected, "plan")
    else:
        changed = [name for name, new in (("end_date", data.get("end_date")), ("milestones", milestones))
                   if getattr(plan, name) != new]
        if not changed:
            return present_plan(plan)
        plan.end_date, plan.milestones = data.get("end_date"), milestones
        plan.updated_at, plan.updated_by = now, actor.user_id
        flush_versioned(session, expected, "plan")
    record_event(session, case, kind="plan.updated", now=now, actor=actor, object_type="plan",
                 object_id=None, detail=plan_detail(plan, changed))
    record(session, actor=actor, action="update", object_type="plan", object_id=None, case_id=case.id,
           now=now, detail={"fields": changed})
    return present_plan(plan)


def add_initial_sections(session: orm.Session, case: Case, intake: dict[str, Any],
                         plan: dict[str, Any] | None, actor: Actor, now: dt.datetime) -> list[str]:
    """Store the intake sections and plan given with a new case.

    Returns:
        The names of what was stored (``intake.<section>``, ``plan``).
    Raises:
        ValidationFailed: a structured field given in the wrong section.
    """
    stored = []
    for section, data in intake.items():
        check_section(section, data, ("intake", section))
        session.add(new_section(case.id, section, data, actor, now))
        stored.append(f"intake.{section}")
    if plan is not None:
        session.add(new_plan(case.id, plan, actor, now))
        stored.append("plan")
    return stored
