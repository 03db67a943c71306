"""Closing a case on either side of a handover, with its outcome (SPEC.md 8.11).

:func:`close_case` closes a local case and queues ``case_closed`` to every partner the case is shared with: the
recipients of its pending or accepted handovers (at the origin) and the node it came from (at a receiver), in
the same transaction. The applier records a partner's closing on the case's timeline (and, if it is the first
side to close, on the handover); it does not close the local case, whose own staff decide that.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm

from node.audit import record
from node.auth import Actor
from node.cases.access import case_for
from node.cases.models import Case
from node.cases.timeline import record_event
from node.errors import Conflict
from node.exchange.delivery.outbox import enqueue
from node.exchange.handovers.models import Handover
from node.exchange.models import InboundMessage, Partner
from node.exchange.trust.partners import PartnerStateError
from protocol import BoxCache, MalformedError, NodeKeys, OpenedMessage
from protocol.times import format_time, parse_time


def _shared_with(session: orm.Session, case_id: str) -> list[Handover]:
    return list(session.scalars(sa.select(Handover).where(
        Handover.case_id == case_id,
        sa.or_(sa.and_(Handover.direction == "outgoing", Handover.status.in_(("pending", "accepted"))),
               sa.and_(Handover.direction == "incoming", Handover.status == "accepted")))
        .order_by(Handover.created_at, Handover.id)))


def close_case(session: orm.Session, actor: Actor, case_id: str, data: dict[str, Any], *, keys: NodeKeys,
               now: dt.datetime, boxes: BoxCache | None = None) -> dict[str, Any]:
    """``POST /cases/{id}/close``: close the case with its outcome and tell the partners (no commit).

    Args:
        data: ``outcome``: ``code`` (the protocol's outcomes) and optional ``text``.
    Returns:
        ``{"case_id", "status", "outcome", "notified", "not_notified"}``.
    Raises:
        Forbidden, NotFound: the actor may not update the case.
        Conflict: the case is closed already.
    """
    case = case_for(session, actor, case_id, "case.update")
    if case.status == "closed":
        raise Conflict("This case is closed already.")
    previous = case.status
    case.status = "closed"
    outcome = {"code": data["outcome"]["code"], **({"text": data["outcome"]["text"]}
                                                   if data["outcome"].get("text") else {})}
    notified, not_notified = [], []
    for handover in _shared_with(session, case.id):
        body = {"handover_id": handover.message_id, "closed_at": format_time(now), "outcome": outcome}
        try:
            enqueue(session, keys=keys, recipient=handover.partner_node, msg_type="case_closed", body=body,
                    thread=handover.thread, now=now, case_id=case.id, boxes=boxes, actor=actor)
        except PartnerStateError:
            not_notified.append(handover.partner_node)
            continue
        if handover.closed_at is None:  # the first side to close is kept on the handover; timelines keep both
            handover.closed_at, handover.close_outcome = now, {**outcome, "by": keys.node_id}
        notified.append(handover.partner_node)
    session.flush()
    record_event(session, case, kind="case.closed", now=now, actor=actor, object_type="case", object_id=case.id,
                 detail={"from": previous, "outcome": outcome["code"], "notified": notified})
    record(session, actor=actor, action="update", object_type="case", object_id=case.id, case_id=case.id, now=now,
           detail={"status": "closed", "outcome": outcome["code"], "notified": notified})
    return {"case_id": case.id, "status": "closed", "outcome": outcome, "notified": notified,
            "not_notified": not_notified}


def apply_closed(session: orm.Session, *, message: InboundMessage, opened: OpenedMessage, partner: Partner,
                 now: dt.datetime, keys: NodeKeys) -> None:
    """A partner closed its side of a case we share: record it on the handover and the case's timeline.

    Raises:
        MalformedError: ``handover_id`` is not the handover that opened the thread.
    """
    body = opened.body
    handover = session.scalar(sa.select(Handover).where(
        Handover.partner_node == partner.node_id, Handover.thread == opened.header.thread))
    if handover is None or handover.message_id != body["handover_id"]:
        raise MalformedError("handover_id is not the handover that opened this thread")
    outcome = dict(body["outcome"])
    if handover.closed_at is None:
        handover.closed_at, handover.close_outcome = parse_time(body["closed_at"]), {**outcome, "by": partner.node_id}
    message.case_id = handover.case_id
    case = session.get(Case, handover.case_id) if handover.case_id is not None else None
    if case is not None:
        record_event(session, case, kind="partner.case_closed", now=now, actor=None, object_type="handover",
                     object_id=handover.id, detail={"handover_id": handover.message_id, "partner": partner.node_id,
                                                    "partner_name": partner.name, "outcome": outcome["code"]},
                     source=partner.node_id, verified=True)
