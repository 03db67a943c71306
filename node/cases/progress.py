"""Interventions (what the adviser proposes and the returnee takes up) and progress notes (how the work goes,
optionally moving stages along).

A note is never edited. A note may carry stage changes, each with the version of the stage its author read;
they are applied with the note, or (any stale version, any unknown stage) none of them and no note.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm

from node.accounts import User
from node.audit import record
from node.auth import Actor, require
from node.concurrency import Expected, check_version, flush_versioned
from node.errors import NotFound, ValidationFailed

from .access import case_for, case_record
from .models import Case, Intervention, ProgressNote
from .stages import change_stage, stage_for_change
from .timeline import record_event

_INTERVENTION_FIELDS = ("kind", "provider", "status", "start_date", "end_date", "amount_cents", "currency",
                        "notes")


def _cents(amount: Decimal | None) -> int | None:
    return None if amount is None else int(amount * 100)


def _intervention_values(data: dict[str, Any]) -> dict[str, Any]:
    values = {name: value for name, value in data.items() if name != "amount"}
    if "amount" in data:
        values["amount_cents"] = _cents(data["amount"])
    return values


_INTERVENTIONS = (sa.select(Intervention).where(Intervention.case_id == sa.bindparam("case_id"))  # built once
                  .order_by(Intervention.created_at, Intervention.id))


def interventions(session: orm.Session, case_id: str) -> list[Intervention]:
    return list(session.scalars(_INTERVENTIONS, {"case_id": case_id}))


def list_interventions(session: orm.Session, actor: Actor, case_id: str,
                       now: dt.datetime) -> list[Intervention]:
    """The case's interventions, oldest first (audited read)."""
    case = case_for(session, actor, case_id, "case.read")
    record(session, actor=actor, action="read", object_type="intervention", object_id=None, case_id=case.id,
           now=now)
    return interventions(session, case.id)


def _intervention(session: orm.Session, case: Case, intervention_id: str) -> Intervention:
    item = case_record(session, Intervention, intervention_id, case)
    if item is None:
        raise NotFound("No such intervention.")
    return item


def get_intervention(session: orm.Session, actor: Actor, case_id: str, intervention_id: str,
                     now: dt.datetime) -> Intervention:
    """One intervention (audited read).

    Raises:
        NotFound: no such intervention on a case visible to the actor.
    """
    case = case_for(session, actor, case_id, "case.read")
    item = _intervention(session, case, intervention_id)
    record(session, actor=actor, action="read", object_type="intervention", object_id=item.id,
           case_id=case.id, now=now)
    return item


def create_intervention(session: orm.Session, actor: Actor, case_id: str, data: dict[str, Any],
                        now: dt.datetime) -> Intervention:
    """``POST /cases/{id}/interventions``.

    Raises:
        Forbidden: the role may not write progress.
    """
    case = case_for(session, actor, case_id, "progress.write")
    values = {name: None for name in _INTERVENTION_FIELDS} | _intervention_values(data)
    item = Intervention(id=str(uuid.uuid4()), case_id=case.id, author=session.get(User, actor.user_id),
                        created_at=now, updated_at=now, **values)
    session.add(item)
    session.flush()
    record_event(session, case, kind="intervention.added", now=now, actor=actor, object_type="intervention",
                 object_id=item.id, detail={"kind": item.kind, "status": item.status})
    record(session, actor=actor, action="create", object_type="intervention", object_id=item.id,
           case_id=case.id, now=now)
    return item


def update_intervention(session: orm.Session, actor: Actor, case_id: str, intervention_id: str,
                        data: dict[str, Any], expected: Expected, now: dt.datetime) -> Intervention:
    """``PATCH /cases/{id}/interventions/{iid}``.

    Raises:
        NotFound: no such intervention.
        VersionConflict | Conflict: ``expected`` is stale.
        ValidationFailed: dates out of order or an amount without a currency, after the change.
    """
    case = case_for(session, actor, case_id, "progress.write")
    item = _intervention(session, case, intervention_id)
    check_version(item.version, expected, "intervention")
    values = _intervention_values(data)
    changed = sorted(name for name, value in values.items() if getattr(item, name) != value)
    if not changed:
        return item
    previous_status = item.status
    for name in changed:
        setattr(item, name, values[name])
    if item.start_date and item.end_date and item.end_date < item.start_date:
        raise ValidationFailed("Dates out of order.", {"end_date": ["Must not be before start_date."]})
    if item.amount_cents is not None and item.currency is None:
        raise ValidationFailed("Amount without currency.", {"currency": ["Give the currency of the amount."]})
    item.updated_at = now
    flush_versioned(session, expected, "intervention")
    fields = [("amount" if name == "amount_cents" else name) for name in changed]
    detail: dict[str, Any] = {"kind": item.kind, "fields": fields}
    if "status" in changed:
        detail["status"] = {"from": previous_status, "to": item.status}
    record_event(session, case, kind="intervention.updated", now=now, actor=actor, object_type="intervention",
                 object_id=item.id, detail=detail)
    record(session, actor=actor, action="update", object_type="intervention", object_id=item.id,
           case_id=case.id, now=now, detail={"fields": fields})
    return item


# --- progress notes ---------------------------------------------------------------------------------------

def notes(session: orm.Session, case_id: str) -> list[ProgressNote]:
    return list(session.scalars(sa.select(ProgressNote).where(ProgressNote.case_id == case_id)
                                .order_by(ProgressNote.created_at, ProgressNote.id)))


def list_notes(session: orm.Session, actor: Actor, case_id: str, now: dt.datetime) -> list[ProgressNote]:
    """The case's progress notes, oldest first (audited read)."""
    case = case_for(session, actor, case_id, "case.read")
    record(session, actor=actor, action="read", object_type="progress_note", object_id=None, case_id=case.id,
           now=now)
    return notes(session, case.id)


def _check_distinct(changes: Sequence[dict[str, Any]]) -> None:
    seen: set[str] = set()
    for i, change in enumerate(changes):
        if change["stage"] in seen:
            raise ValidationFailed("Stage changed twice.", {"stage_changes": {str(i): {"stage": [
                "Each stage may appear once."]}}})
        seen.add(change["stage"])


def add_note(session: orm.Session, actor: Actor, case_id: str, data: dict[str, Any],
             now: dt.datetime) -> ProgressNote:
    """``POST /cases/{id}/notes``: add a progress note, applying its stage changes.

    Raises:
        Forbidden: the role may not write progress (or, with stage changes, update cases).
        ValidationFailed: an unknown or repeated stage.
        Conflict: a stage change carried a stale version (nothing is saved).
    """
    case = case_for(session, actor, case_id, "progress.write")
    changes = data.get("stage_changes") or []
    if changes:
        require(actor, "case.update")
        _check_distinct(changes)
    stages = [stage_for_change(session, case, change["stage"], i) for i, change in enumerate(changes)]
    for stage, change in zip(stages, changes, strict=True):
        check_version(stage.version, Expected(change["version"]), f"stage {stage.stage_key!r}")
    note = ProgressNote(id=str(uuid.uuid4()), case_id=case.id, text=data["text"],
                        author=session.get(User, actor.user_id), created_at=now, stage_changes=None)
    session.add(note)
    applied = []
    for stage, change in zip(stages, changes, strict=True):
        previous = stage.status
        if change_stage(session, actor, case, stage, {"status": change["status"]},
                        Expected(change["version"]), now, note_id=note.id):
            applied.append({"stage": stage.stage_key, "status": stage.status, "previous_status": previous})
    note.stage_changes = applied or None
    session.flush()
    record_event(session, case, kind="note.added", now=now, actor=actor, object_type="progress_note",
                 object_id=note.id, detail={"stages": [c["stage"] for c in applied]})
    record(session, actor=actor, action="create", object_type="progress_note", object_id=note.id,
           case_id=case.id, now=now)
    return note
