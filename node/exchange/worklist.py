"""The work queues of the staff home page: what needs the member of staff now, and what they shared.

:func:`needs_me_now` gathers, for the cases the actor may see (``node.cases.access``, the same condition the
API applies):

- ``answered``: outgoing handovers a partner accepted or declined within the last ``recent_days``, newest
  answer first;
- ``progress``: progress updates received from a partner (verified inbound messages) within the last
  ``recent_days``, newest first, with the first 120 characters of the note;
- ``erasures``: erasure requests no holder has confirmed yet, oldest first. A request is overdue once
  ``confirm_within`` has passed since it was sent (:func:`~node.exchange.chain.disclosures.is_overdue`), so
  oldest first is overdue first;
- ``incoming``: for roles that may accept handovers, the node's intake queue (incoming handovers still
  pending), oldest first; as in ``GET /handovers?direction=incoming`` it is not limited by case visibility;
- ``stages_due``: stages of cases not closed, neither done nor not applicable, due within ``STAGE_DUE_DAYS``
  days of today (``now.date()``) or earlier, by due date, so the overdue ones (due before today) come first.

:func:`shared_by_me` lists the outgoing handovers of the visible cases by outcome: ``awaiting`` an answer,
``accepted``, ``declined``. Each list is capped at ``limit``; ``counts`` holds every list's uncapped size.

Handovers are shown as the API shows them (:func:`~node.exchange.handovers.status.present`) with the case's
reference and the returnee's name added. Each list costs one query for its page and one for its count, and
the handover lists one more for their outbound messages; the partners' names are read once per call. Every
call is one audited read (counts only, no personal data).

:func:`partner_condition` and :func:`partner_choices` give the case list its partner filter: the condition
is handed to :func:`node.cases.search.search_cases` as ``extra``, since the cases layer may not import the
exchange.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm

from node.audit import record
from node.auth import Actor, can, require
from node.cases.access import visible_cases_filter
from node.cases.models import Case, CaseStage
from node.exchange.chain.disclosures import is_overdue
from node.exchange.chain.models import ErasureRequest
from node.exchange.chain.withdrawal import present_request
from node.exchange.handovers.models import Handover, ProgressUpdate
from node.exchange.handovers.status import present
from node.exchange.models import OutboundMessage, Partner

#: How much of a progress note the queue shows.
PREVIEW_CHARS = 120
#: How many days ahead the ``stages_due`` queue looks (a stage due today + 7 days is in it).
STAGE_DUE_DAYS = 7
#: The stage statuses of work still to do (``done`` and ``not_applicable`` are not due).
OPEN_STAGE_STATUSES = ("not_started", "in_progress")
#: The case statuses whose stages are still worked on.
OPEN_CASE_STATUSES = ("open", "handed_over", "in_reintegration")
#: The outcomes :func:`shared_by_me` groups outgoing handovers by (the handover's stored status).
SHARED_GROUPS = {"awaiting": "pending", "accepted": "accepted", "declined": "declined"}

_CASE_COLUMNS = (Case.reference, Case.given_names, Case.family_name)


def returnee_name(given_names: str, family_name: str) -> str:
    """The returnee's name as the case stores it (given names, then family name)."""
    return f"{given_names} {family_name}".strip()


def _case_fields(row: sa.Row[Any], case_id: str | None) -> dict[str, Any]:
    return {"case_id": case_id, "case_reference": row.reference,
            "returnee_name": returnee_name(row.given_names, row.family_name)}


def _partner_names(session: orm.Session) -> dict[str, str]:
    """Every partner's name by node id (one small table, read once per call)."""
    return {row.node_id: row.name for row in session.execute(sa.select(Partner.node_id, Partner.name))}


def _page_and_count(session: orm.Session, columns: Sequence[Any], source: Any, where: Sequence[Any],
                    order: Sequence[Any], limit: int) -> tuple[list[sa.Row[Any]], int]:
    """The first ``limit`` rows of ``columns`` from ``source`` where ``where``, in ``order``, and how many
    rows there are in all."""
    total = session.scalar(sa.select(sa.func.count()).select_from(source).where(*where)) or 0
    rows = list(session.execute(sa.select(*columns).select_from(source).where(*where)
                                .order_by(*order).limit(limit))) if limit > 0 and total else []
    return rows, total


def _present_handovers(session: orm.Session, rows: Sequence[sa.Row[Any]],
                       names: dict[str, str]) -> list[dict[str, Any]]:
    """Rows of ``(Handover, reference, given_names, family_name)`` as the API shows them, plus the case."""
    ids = [row.Handover.message_id for row in rows]
    messages = {m.message_id: m for m in session.scalars(
        sa.select(OutboundMessage).where(OutboundMessage.message_id.in_(ids)))} if ids else {}
    items = []
    for row in rows:
        handover: Handover = row.Handover
        item = present(handover, messages.get(handover.message_id), partner_name=names.get(handover.partner_node))
        item.update(_case_fields(row, handover.case_id))
        item["answered_at"] = handover.decided_at if handover.status in ("accepted", "declined") else None
        items.append(item)
    return items


def _outgoing(session: orm.Session, actor: Actor, where: Sequence[Any], order: Sequence[Any], limit: int,
              names: dict[str, str]) -> tuple[list[dict[str, Any]], int]:
    """Outgoing handovers of the cases the actor may see, where ``where``, presented with their case."""
    rows, total = _page_and_count(
        session, (Handover, *_CASE_COLUMNS), sa.join(Handover, Case, Case.id == Handover.case_id),
        (Handover.direction == "outgoing", visible_cases_filter(actor), *where), order, limit)
    return _present_handovers(session, rows, names), total


def _answered(session: orm.Session, actor: Actor, since: dt.datetime, limit: int,
              names: dict[str, str]) -> tuple[list[dict[str, Any]], int]:
    return _outgoing(session, actor, (Handover.status.in_(("accepted", "declined")), Handover.decided_at >= since),
                     (Handover.decided_at.desc(), Handover.id.desc()), limit, names)


def _progress(session: orm.Session, actor: Actor, since: dt.datetime, limit: int,
              names: dict[str, str]) -> tuple[list[dict[str, Any]], int]:
    # the note is encrypted at rest (node/at_rest): it is read whole and cut here, not by the database
    head = ProgressUpdate.note.label("head")
    rows, total = _page_and_count(
        session, (ProgressUpdate.id, ProgressUpdate.case_id, ProgressUpdate.handover_id, ProgressUpdate.partner_node,
                  ProgressUpdate.update_id, ProgressUpdate.at, ProgressUpdate.created_at, head, *_CASE_COLUMNS),
        sa.join(ProgressUpdate, Case, Case.id == ProgressUpdate.case_id),
        (ProgressUpdate.direction == "received", ProgressUpdate.created_at >= since, visible_cases_filter(actor)),
        (ProgressUpdate.created_at.desc(), ProgressUpdate.id.desc()), limit)
    items = [{"id": row.id, **_case_fields(row, row.case_id), "handover_id": row.handover_id,
              "partner": row.partner_node, "partner_name": names.get(row.partner_node or ""),
              "update_id": row.update_id, "at": row.at, "received_at": row.created_at,
              "preview": row.head[:PREVIEW_CHARS] if row.head is not None else None,
              "truncated": row.head is not None and len(row.head) > PREVIEW_CHARS} for row in rows]
    return items, total


def _erasures(session: orm.Session, actor: Actor, now: dt.datetime, confirm_within: dt.timedelta, limit: int,
              names: dict[str, str]) -> tuple[list[dict[str, Any]], int]:
    # the overdue ones are exactly the oldest: ascending request time puts them first
    rows, total = _page_and_count(
        session, (ErasureRequest, *_CASE_COLUMNS), sa.join(ErasureRequest, Case, Case.id == ErasureRequest.case_id),
        (ErasureRequest.confirmed_at.is_(None), ErasureRequest.requested_at.is_not(None),
         visible_cases_filter(actor)), (ErasureRequest.requested_at, ErasureRequest.id), limit)
    items = []
    for row in rows:
        request: ErasureRequest = row.ErasureRequest
        items.append({**present_request(request), **_case_fields(row, request.case_id),
                      "partner_name": names.get(request.partner_node), "holder_name": names.get(request.holder),
                      "overdue": is_overdue(request, now, confirm_within)})
    return items, total


def _incoming(session: orm.Session, actor: Actor, limit: int,
              names: dict[str, str]) -> tuple[list[dict[str, Any]], int]:
    if not can(actor.role, "handover.accept"):
        return [], 0
    rows, total = _page_and_count(session, (Handover,), Handover,
                                  (Handover.direction == "incoming", Handover.status == "pending"),
                                  (Handover.created_at, Handover.id), limit)
    return [present(row.Handover, None, partner_name=names.get(row.Handover.partner_node)) for row in rows], total


def _stages_due(session: orm.Session, actor: Actor, today: dt.date, limit: int,
                titles: dict[str, str]) -> tuple[list[dict[str, Any]], int]:
    horizon = today + dt.timedelta(days=STAGE_DUE_DAYS)
    rows, total = _page_and_count(
        session, (CaseStage.case_id, CaseStage.stage_key, CaseStage.status, CaseStage.due_on, *_CASE_COLUMNS),
        sa.join(CaseStage, Case, Case.id == CaseStage.case_id),
        (CaseStage.status.in_(OPEN_STAGE_STATUSES), CaseStage.due_on <= horizon,
         Case.status.in_(OPEN_CASE_STATUSES), visible_cases_filter(actor)),
        (CaseStage.due_on, Case.reference, CaseStage.position), limit)
    items = [{**_case_fields(row, row.case_id), "stage_key": row.stage_key,
              "stage_title": titles.get(row.stage_key, row.stage_key), "due_on": row.due_on,
              "overdue": row.due_on < today, "status": row.status} for row in rows]
    return items, total


def needs_me_now(session: orm.Session, actor: Actor, now: dt.datetime, *, confirm_within: dt.timedelta,
                 stage_titles: dict[str, str], recent_days: int = 14, limit: int = 20) -> dict[str, Any]:
    """The home page's "needs me now" queues (see the module docstring), one audited read.

    Args:
        confirm_within: how long a holder has to confirm an erasure (``erasure_confirm_hours``).
        stage_titles: each stage key's title (``node.cases.stages.titles_of``); a stage without one shows
            its key.
        recent_days: how far back answers and received progress are shown.
        limit: the most items per list.
    Returns:
        ``{"answered", "progress", "erasures", "incoming", "stages_due": [item, ...],
        "counts": {key: uncapped count}}``.
    Raises:
        Forbidden: the role may not read cases.
    """
    require(actor, "case.read")
    since = now - dt.timedelta(days=recent_days)
    names = _partner_names(session)
    lists = {
        "answered": _answered(session, actor, since, limit, names),
        "progress": _progress(session, actor, since, limit, names),
        "erasures": _erasures(session, actor, now, confirm_within, limit, names),
        "incoming": _incoming(session, actor, limit, names),
        "stages_due": _stages_due(session, actor, now.date(), limit, stage_titles),
    }
    return _finish(session, actor, now, "needs_me_now", lists)


def shared_by_me(session: orm.Session, actor: Actor, now: dt.datetime, *, limit: int = 20) -> dict[str, Any]:
    """The outgoing handovers of the cases the actor may see, by outcome, newest first; one audited read.

    ``awaiting``: not answered yet, whatever the delivery (the item's ``status`` says ``queued``,
    ``delivered``, ``parked`` or ``undeliverable``), newest sent first; ``accepted`` and ``declined`` (with
    ``reason_code`` and ``reason``), newest answer first. Revoked handovers are in none of them.

    Returns:
        ``{"awaiting", "accepted", "declined": [item, ...], "counts": {key: uncapped count}}``.
    Raises:
        Forbidden: the role may not read cases.
    """
    require(actor, "case.read")
    names = _partner_names(session)
    lists = {}
    for key, status in SHARED_GROUPS.items():
        when = Handover.created_at if status == "pending" else Handover.decided_at
        lists[key] = _outgoing(session, actor, (Handover.status == status,), (when.desc(), Handover.id.desc()),
                               limit, names)
    return _finish(session, actor, now, "shared_by_me", lists)


def _finish(session: orm.Session, actor: Actor, now: dt.datetime, queue: str,
            lists: dict[str, tuple[list[dict[str, Any]], int]]) -> dict[str, Any]:
    counts = {key: total for key, (_, total) in lists.items()}
    record(session, actor=actor, action="read", object_type="worklist", object_id=queue, case_id=None, now=now,
           detail={"counts": counts})
    return {**{key: items for key, (items, _) in lists.items()}, "counts": counts}


def partner_condition(node_id: str) -> sa.ColumnElement[bool]:
    """The cases this node handed over to ``node_id`` (any outgoing handover, whatever its outcome), for
    ``search_cases(..., extra=[partner_condition(node_id)], extra_names=["partner"])``."""
    return Case.id.in_(sa.select(Handover.case_id).where(
        Handover.partner_node == node_id, Handover.direction == "outgoing", Handover.case_id.is_not(None)))


def partner_choices(session: orm.Session) -> list[tuple[str, str]]:
    """Every partner of the node as ``(node id, name)``, by name: the options of the case list's filter."""
    rows = session.execute(sa.select(Partner.node_id, Partner.name).order_by(Partner.name, Partner.node_id))
    return [(row.node_id, row.name) for row in rows]
