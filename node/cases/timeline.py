"""A case's timeline: every event on it in order (intake, changes, plan, stages, consents, interventions,
notes; later issues add handovers and partner updates with ``source`` = the partner's node id).

Services append events through :func:`record_event` in the same transaction as the change they describe;
nothing else writes ``case_events``. Events hold ids, field names and enumerated statuses, never values.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy import orm
from sqlalchemy.orm.attributes import set_committed_value

from node.audit import record
from node.auth import Actor
from node.db import insert_now

from .access import case_for
from .models import Case, CaseEvent

#: A case page shows at most this many events (the newest are kept when a case has more).
MAX_EVENTS = 2000
LOCAL = "local"


_CASES = cast(sa.Table, Case.__table__)
_TOUCH = sa.update(_CASES).where(_CASES.c.id == sa.bindparam("case_id")).values(  # built once
    updated_at=sa.bindparam("now"))


def touch(session: orm.Session, case: Case, now: dt.datetime) -> None:
    """Set ``cases.updated_at`` without touching the case's version (a note is not an edit of the case)."""
    session.execute(_TOUCH, {"case_id": case.id, "now": now})
    set_committed_value(case, "updated_at", now)


def record_event(session: orm.Session, case: Case, *, kind: str, now: dt.datetime, actor: Actor | None,
                 object_type: str | None = None, object_id: str | None = None,
                 detail: dict[str, Any] | None = None, source: str = LOCAL, verified: bool = True,
                 touch_case: bool = True) -> CaseEvent:
    """Append an event to the case's timeline (and bump the case's ``updated_at``).

    Args:
        kind: e.g. ``case.created``, ``stage.updated``; an open vocabulary.
        detail: ids, field names and statuses only.
        source: ``local`` or the node id of the partner the event came from.
        verified: whether the event's origin was verified (always true for local events).
        touch_case: false when the caller updates the case row itself.
    Returns:
        The new event, inserted at once (``db.insert_now``: not tracked by the session).
    """
    event = CaseEvent(case_id=case.id, occurred_at=now, kind=kind, source=source, verified=verified,
                      actor_id=actor.user_id if actor else None, object_type=object_type,
                      object_id=object_id, detail=detail)
    insert_now(session, event)
    if touch_case:
        touch(session, case, now)
    return event


def case_events(session: orm.Session, case_id: str) -> list[CaseEvent]:
    """The case's events, oldest first (at most :data:`MAX_EVENTS`, the newest)."""
    newest_first = list(session.scalars(
        sa.select(CaseEvent).where(CaseEvent.case_id == case_id)
        .order_by(CaseEvent.occurred_at.desc(), CaseEvent.id.desc()).limit(MAX_EVENTS)))
    newest_first.reverse()
    return newest_first


def get_timeline(session: orm.Session, actor: Actor, case_id: str, now: dt.datetime) -> dict[str, Any]:
    """Read a case's timeline (audited).

    Raises:
        Forbidden: the role may not read cases.
        NotFound: no such case visible to the actor.
    """
    case = case_for(session, actor, case_id, "case.read")
    items = case_events(session, case.id)
    record(session, actor=actor, action="read", object_type="timeline", object_id=case.id, case_id=case.id,
           now=now, detail={"events": len(items)})
    return {"case_id": case.id, "items": items}
