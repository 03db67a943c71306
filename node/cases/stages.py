"""The stages of a case: one row per stage the node's configuration lists (CLDD's 8-step model by default),
created with the case. Each has a status, the side responsible, notes and dates (started, completed, and the
date it is due by, which feeds the home page's "stages due" queue).

A case's ``current_stage`` (stored on the case for search and reporting) is the first stage in progress, or
else the first not started; null when every stage is done or not applicable.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm
from sqlalchemy.orm.attributes import set_committed_value

from node.audit import record
from node.auth import Actor
from node.concurrency import Expected, check_version, flush_versioned
from node.config import Stage
from node.errors import ValidationFailed

from .access import case_for
from .models import Case, CaseStage
from .timeline import record_event

DEFAULT_RESPONSIBLE = "shared"


def initial_stage_rows(case_id: str, stages: Sequence[Stage], now: dt.datetime,
                       actor_id: int | None) -> list[dict[str, Any]]:
    """The rows a new case's stages start with (all ``not_started``)."""
    return [{"case_id": case_id, "stage_key": stage.key, "position": i, "status": "not_started",
             "responsible": DEFAULT_RESPONSIBLE, "notes": None, "started_on": None, "completed_on": None,
             "due_on": None, "updated_at": now, "updated_by": actor_id, "version": 1} for i, stage in enumerate(stages)]


def current_stage_of(ordered: Sequence[tuple[str, str]]) -> str | None:
    """The stage being worked on, from ``(key, status)`` pairs in stage order."""
    for key, status in ordered:
        if status == "in_progress":
            return key
    for key, status in ordered:
        if status == "not_started":
            return key
    return None


def refresh_current_stage(session: orm.Session, case: Case) -> None:
    """Recompute ``cases.current_stage`` (a bookkeeping column: the case's version is not touched)."""
    session.flush()
    rows = session.execute(sa.select(CaseStage.stage_key, CaseStage.status)
                           .where(CaseStage.case_id == case.id).order_by(CaseStage.position)).all()
    current = current_stage_of([(r.stage_key, r.status) for r in rows])
    if current != case.current_stage:
        table = Case.__table__
        session.execute(sa.update(table).where(table.c.id == case.id).values(current_stage=current))
        set_committed_value(case, "current_stage", current)


def present(stage: CaseStage, titles: dict[str, str]) -> dict[str, Any]:
    return {"stage_key": stage.stage_key, "title": titles.get(stage.stage_key, stage.stage_key),
            "position": stage.position, "status": stage.status, "responsible": stage.responsible,
            "notes": stage.notes, "started_on": stage.started_on, "completed_on": stage.completed_on,
            "due_on": stage.due_on, "updated_at": stage.updated_at, "version": stage.version}


def titles_of(stages: Sequence[Stage]) -> dict[str, str]:
    return {s.key: s.title for s in stages}


def case_stages(session: orm.Session, case_id: str) -> list[CaseStage]:
    return list(session.scalars(sa.select(CaseStage).where(CaseStage.case_id == case_id)
                                .order_by(CaseStage.position)))


def _find(session: orm.Session, case: Case, key: str) -> CaseStage | None:
    return session.scalar(sa.select(CaseStage).where(CaseStage.case_id == case.id,
                                                     CaseStage.stage_key == key))


def _stage(session: orm.Session, case: Case, key: str) -> CaseStage:
    stage = _find(session, case, key)
    if stage is None:
        raise ValidationFailed("Unknown stage.", {"stage": [f"Unknown stage key {key[:40]!r}."]})
    return stage


def list_stages(session: orm.Session, actor: Actor, case_id: str, stages: Sequence[Stage],
                now: dt.datetime) -> list[dict[str, Any]]:
    """The case's stages in order (audited read)."""
    case = case_for(session, actor, case_id, "case.read")
    items = [present(s, titles_of(stages)) for s in case_stages(session, case.id)]
    record(session, actor=actor, action="read", object_type="stage", object_id=None, case_id=case.id, now=now)
    return items


def get_stage(session: orm.Session, actor: Actor, case_id: str, key: str, stages: Sequence[Stage],
              now: dt.datetime) -> dict[str, Any]:
    """One stage (audited read).

    Raises:
        ValidationFailed: unknown stage key.
    """
    case = case_for(session, actor, case_id, "case.read")
    stage = _stage(session, case, key)
    record(session, actor=actor, action="read", object_type="stage", object_id=key, case_id=case.id, now=now)
    return present(stage, titles_of(stages))


def _apply(stage: CaseStage, changes: dict[str, Any], today: dt.date) -> list[str]:
    """Apply ``changes`` to ``stage`` (any of status, responsible, notes, started_on, completed_on, due_on);
    fill in the start/completion date a status change implies. A due date is set or cleared (null) as given,
    whatever the status.

    Returns:
        The names of the fields that changed.
    Raises:
        ValidationFailed: the resulting dates are out of order.
    """
    changed = [name for name, value in changes.items() if getattr(stage, name) != value]
    for name in changed:
        setattr(stage, name, changes[name])
    if "status" in changed:
        started = stage.status in ("in_progress", "done")
        if started and stage.started_on is None and "started_on" not in changes:
            stage.started_on = today
            changed.append("started_on")
        if stage.status == "done" and stage.completed_on is None and "completed_on" not in changes:
            stage.completed_on = today
            changed.append("completed_on")
    if stage.started_on and stage.completed_on and stage.completed_on < stage.started_on:
        raise ValidationFailed("Dates out of order.", {"completed_on": ["Must not be before started_on."]})
    return changed


def change_stage(session: orm.Session, actor: Actor, case: Case, stage: CaseStage, changes: dict[str, Any],
                 expected: Expected, now: dt.datetime, note_id: str | None = None) -> list[str]:
    """Change one stage of a visible case, record the event, and refresh the case's current stage.

    Returns:
        The names of the fields that changed (empty: nothing changed, nothing recorded).
    Raises:
        VersionConflict | Conflict: ``expected`` is stale.
        ValidationFailed: dates out of order.
    """
    check_version(stage.version, expected, f"stage {stage.stage_key!r}")
    previous = stage.status
    changed = _apply(stage, changes, now.date())
    if not changed:
        return []
    stage.updated_at = now
    stage.updated_by = actor.user_id
    flush_versioned(session, expected, f"stage {stage.stage_key!r}")
    detail: dict[str, Any] = {"stage": stage.stage_key, "fields": sorted(changed)}
    if "status" in changed:
        detail["status"] = {"from": previous, "to": stage.status}
    if note_id is not None:
        detail["note_id"] = note_id
    record_event(session, case, kind="stage.updated", now=now, actor=actor, object_type="stage",
                 object_id=stage.stage_key, detail=detail)
    record(session, actor=actor, action="update", object_type="stage", object_id=stage.stage_key,
           case_id=case.id, now=now, detail={"fields": sorted(changed)})
    refresh_current_stage(session, case)
    return changed


def update_stage(session: orm.Session, actor: Actor, case_id: str, key: str, changes: dict[str, Any],
                 expected: Expected, stages: Sequence[Stage], now: dt.datetime) -> dict[str, Any]:
    """``PATCH /cases/{id}/stages/{key}``.

    Raises:
        Forbidden, NotFound: see :func:`~node.cases.access.case_for`.
        ValidationFailed: unknown stage key or dates out of order.
        VersionConflict | Conflict: ``expected`` is stale.
    """
    case = case_for(session, actor, case_id, "case.update")
    stage = _stage(session, case, key)
    change_stage(session, actor, case, stage, changes, expected, now)
    return present(stage, titles_of(stages))


def stage_for_change(session: orm.Session, case: Case, key: str, index: int) -> CaseStage:
    """The stage a progress note's ``stage_changes[index]`` names.

    Raises:
        ValidationFailed: unknown stage key (reported at ``stage_changes.<index>.stage``).
    """
    stage = _find(session, case, key)
    if stage is None:
        raise ValidationFailed("Unknown stage.", {"stage_changes": {str(index): {"stage": [
            f"Unknown stage key {key[:40]!r}."]}}})
    return stage
