"""A handover's status as the API shows it, and the lists and pages that show it.

An outgoing handover's status is ``queued`` until the partner's signed receipt is stored with its message
(``delivered``), then ``accepted`` or ``declined`` as the partner's adviser answers (the answer can arrive
before the delivery worker has recorded the receipt: the status follows the answer whatever the receipt).
While pending, it is read from its message: ``queued``, ``delivered``, ``parked`` or ``undeliverable``.
Outgoing handovers follow their case's visibility; incoming ones are the node's intake queue, for those who
may accept them. Every list and page read is audited.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm

from node.audit import record
from node.auth import Actor, can, require
from node.cases.access import case_for, is_record_id, visible_cases_filter
from node.cases.models import Case
from node.errors import Forbidden, NotFound
from node.exchange.handovers.models import Handover
from node.exchange.models import OutboundMessage, Partner

_DELIVERY_STATUS = {"queued": "queued", "sending": "queued", "delivered": "delivered", "parked": "parked",
                    "undeliverable": "undeliverable"}
#: The statuses of a pending outgoing handover, read from its message.
DELIVERY_STATUSES = ("queued", "delivered", "parked", "undeliverable")
#: Every status a handover is shown with.
STATUSES = ("pending", *DELIVERY_STATUSES, "accepted", "declined")


def _message(session: orm.Session, handover: Handover) -> OutboundMessage | None:
    if handover.direction != "outgoing":
        return None
    return session.scalar(sa.select(OutboundMessage).where(OutboundMessage.message_id == handover.message_id))


def present(handover: Handover, message: OutboundMessage | None, *, partner_name: str | None = None,
            detail: bool = False) -> dict[str, Any]:
    """A handover as the API shows it: status, times, delivery and (``detail``, while pending) the summary."""
    status = handover.status
    delivery = None
    if message is not None:
        delivery = {"status": message.status, "attempts": message.attempts, "last_error": message.last_error,
                    "next_attempt_at": message.next_attempt_at if message.status == "queued" else None,
                    "delivered_at": message.delivered_at}
        if status == "pending":
            status = _DELIVERY_STATUS.get(message.status, message.status)
    result: dict[str, Any] = {
        "id": handover.id, "direction": handover.direction, "status": status,
        "partner": handover.partner_node, "partner_name": partner_name, "handover_id": handover.message_id,
        "thread": handover.thread, "case_id": handover.case_id, "reference": handover.reference,
        "consent_id": handover.consent_id, "purpose": handover.purpose, "child": handover.child,
        "destination_country": handover.destination_country, "categories": handover.categories,
        "withheld": handover.withheld, "not_carried": handover.not_carried or [],
        "created_at": handover.created_at,
        "delivered_at": message.delivered_at if message is not None else None,
        "accepted_at": handover.decided_at if handover.status == "accepted" else None,
        "declined_at": handover.decided_at if handover.status == "declined" else None,
        "reason_code": handover.reason_code, "reason": handover.reason,
        "local_reference": handover.local_reference, "answer": handover.answer, "delivery": delivery,
        "retain_until": handover.retain_until,
    }
    if detail and handover.body is not None:
        result.update({"summary": handover.body["summary"], "case": handover.body["case"],
                       "requested_support": handover.body["requested_support"],
                       "retention": handover.body["retention"], "consent": handover.consent})
    return result


def _names(session: orm.Session, node_ids: set[str]) -> dict[str, str]:
    if not node_ids:
        return {}
    rows = session.execute(sa.select(Partner.node_id, Partner.name).where(Partner.node_id.in_(node_ids)))
    return {row.node_id: row.name for row in rows}


def _present_all(session: orm.Session, handovers: list[Handover]) -> list[dict[str, Any]]:
    ids = [h.message_id for h in handovers if h.direction == "outgoing"]
    messages = {m.message_id: m for m in session.scalars(
        sa.select(OutboundMessage).where(OutboundMessage.message_id.in_(ids)))} if ids else {}
    names = _names(session, {h.partner_node for h in handovers})
    return [present(h, messages.get(h.message_id), partner_name=names.get(h.partner_node)) for h in handovers]


def case_handovers(session: orm.Session, actor: Actor, case_id: str, now: dt.datetime) -> list[dict[str, Any]]:
    """``GET /cases/{id}/handovers``: the case's handovers, oldest first (audited read)."""
    case = case_for(session, actor, case_id, "case.read")
    rows = list(session.scalars(sa.select(Handover).where(Handover.case_id == case.id)
                                .order_by(Handover.created_at, Handover.id)))
    record(session, actor=actor, action="read", object_type="handover", object_id=None, case_id=case.id,
           now=now, detail={"count": len(rows)})
    return _present_all(session, rows)


def list_handovers(session: orm.Session, actor: Actor, direction: str, status: str | None,
                   now: dt.datetime, limit: int = 200) -> list[dict[str, Any]]:
    """``GET /handovers``: incoming handovers (the node's intake queue, for those who may accept them) or the
    outgoing handovers of the cases the actor may see; newest first.

    Raises:
        Forbidden: incoming, without ``handover.accept``; outgoing, without ``case.read``.
    """
    query = sa.select(Handover).where(Handover.direction == direction)
    if direction == "incoming":
        require(actor, "handover.accept")
    else:
        require(actor, "case.read")
        query = query.join(Case, Case.id == Handover.case_id).where(visible_cases_filter(actor))
    if status is not None:
        query = query.where(Handover.status == ("pending" if status in DELIVERY_STATUSES else status))
    rows = list(session.scalars(query.order_by(Handover.created_at.desc(), Handover.id).limit(limit)))
    items = _present_all(session, rows)
    if status in DELIVERY_STATUSES:
        items = [item for item in items if item["status"] == status]
    record(session, actor=actor, action="read", object_type="handover_list", object_id=None, case_id=None,
           now=now, detail={"direction": direction, "count": len(items)})
    return items


def visible_handover(session: orm.Session, actor: Actor, handover_id: str) -> Handover:
    """A handover the actor may see: incoming ones for those who may accept them, outgoing ones with their
    case. Anything else answers like a handover that does not exist.

    Raises:
        NotFound: no such handover visible to the actor.
    """
    handover = session.get(Handover, handover_id) if is_record_id(handover_id) else None
    if handover is not None and handover.direction == "incoming" and can(actor.role, "handover.accept"):
        return handover
    if handover is not None and handover.direction == "outgoing" and handover.case_id is not None:
        try:
            case_for(session, actor, handover.case_id, "case.read")
        except (Forbidden, NotFound):
            pass
        else:
            return handover
    raise NotFound("No such handover.")


def get_handover(session: orm.Session, actor: Actor, handover_id: str, now: dt.datetime) -> dict[str, Any]:
    """``GET /handovers/{id}``: one handover; a pending incoming one with its summary (audited read)."""
    handover = visible_handover(session, actor, handover_id)
    record(session, actor=actor, action="read", object_type="handover", object_id=handover.id,
           case_id=handover.case_id, now=now)
    return present(handover, _message(session, handover),
                   partner_name=_names(session, {handover.partner_node}).get(handover.partner_node), detail=True)
