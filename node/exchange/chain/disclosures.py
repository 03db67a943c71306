"""The disclosure record: what of a case went to whom, when, under which consent, and whether erasure is
confirmed (``GET /cases/{id}/disclosures``, the subject-access export, and the admin's overdue list).

Every outgoing handover is one disclosure: its recipient, when it was sent and delivered (the partner's signed
receipt), the consent and purpose it relied on, the categories shared and withheld, the further holders the
partner passed the case on to (custody notices), and the erasure requests (withdrawal, revocation) or reports
(the holder's retention ended) with each holder's confirmation. A request not
confirmed within ``erasure_confirm_hours`` (node.toml) is *overdue*: the admin sees it in
``ccm-node erasures --overdue``, and the first time it is listed there it is marked as flagged (audited).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm

from node.audit import record
from node.auth import Actor
from node.exchange.chain.models import CustodyNotice, ErasureRequest
from node.exchange.chain.withdrawal import present_request
from node.exchange.handovers.models import Handover
from node.exchange.models import OutboundMessage, Partner


def is_overdue(request: ErasureRequest, now: dt.datetime, confirm_within: dt.timedelta) -> bool:
    return (request.confirmed_at is None and request.requested_at is not None
            and request.requested_at + confirm_within < now)


def _erasure_status(requests: Sequence[ErasureRequest], now: dt.datetime, within: dt.timedelta) -> str:
    if not requests:
        return "none"
    if any(is_overdue(r, now, within) for r in requests):
        return "overdue"
    if any(r.confirmed_at is None for r in requests):
        return "requested"
    return "confirmed"


def disclosures_of(session: orm.Session, case_id: str, now: dt.datetime,
                   confirm_within: dt.timedelta) -> list[dict[str, Any]]:
    """Every disclosure of a local case, oldest first (no access check: callers check and audit)."""
    handovers = list(session.scalars(sa.select(Handover).where(
        Handover.direction == "outgoing", Handover.case_id == case_id).order_by(Handover.created_at, Handover.id)))
    if not handovers:
        return []
    messages = {m.message_id: m for m in session.scalars(sa.select(OutboundMessage).where(
        OutboundMessage.message_id.in_([h.message_id for h in handovers])))}
    requests: dict[str, list[ErasureRequest]] = defaultdict(list)
    for row in session.scalars(sa.select(ErasureRequest).where(
            ErasureRequest.handover_id.in_([h.id for h in handovers]))
            .order_by(ErasureRequest.requested_at, ErasureRequest.id)):
        requests[row.handover_id].append(row)
    onward: dict[str, list[CustodyNotice]] = defaultdict(list)
    for notice in session.scalars(sa.select(CustodyNotice).where(
            CustodyNotice.handover_id.in_([h.id for h in handovers])).order_by(CustodyNotice.forwarded_at)):
        onward[notice.handover_id].append(notice)
    names = {row.node_id: row.name for row in session.execute(sa.select(Partner.node_id, Partner.name))}
    items = []
    for handover in handovers:
        message = messages.get(handover.message_id)
        mine = requests[handover.id]
        items.append({
            "handover_id": handover.id, "message_id": handover.message_id, "kind": handover.kind,
            "recipient": handover.partner_node, "recipient_name": names.get(handover.partner_node),
            "sent_at": handover.created_at, "delivered_at": message.delivered_at if message else None,
            "consent_id": handover.consent_id, "purpose": handover.purpose, "categories": handover.categories,
            "withheld": handover.withheld, "status": handover.status,
            "erasure": _erasure_status(mine, now, confirm_within),
            "erasure_requests": [{**present_request(r), "overdue": is_overdue(r, now, confirm_within)}
                                 for r in mine],
            "onward": [{"holder": n.holder, "forwarded_by": n.forwarded_by, "forwarded_at": n.forwarded_at,
                        "purpose": n.purpose, "categories": n.categories} for n in onward[handover.id]],
        })
    return items


def case_disclosures(session: orm.Session, actor: Actor, case_id: str, now: dt.datetime,
                     confirm_within: dt.timedelta) -> list[dict[str, Any]]:
    """``GET /cases/{id}/disclosures`` (audited read).

    Raises:
        Forbidden, NotFound: the actor may not read the case.
    """
    from node.cases.access import case_for

    case = case_for(session, actor, case_id, "case.read")
    items = disclosures_of(session, case.id, now, confirm_within)
    record(session, actor=actor, action="read", object_type="disclosure", object_id=None, case_id=case.id, now=now,
           detail={"count": len(items)})
    return items


def open_requests(session: orm.Session, now: dt.datetime, confirm_within: dt.timedelta, *,
                  overdue_only: bool) -> list[ErasureRequest]:
    """Erasure requests without a confirmation (only the overdue ones with ``overdue_only``), oldest first."""
    query = sa.select(ErasureRequest).where(ErasureRequest.confirmed_at.is_(None),
                                            ErasureRequest.requested_at.is_not(None))
    if overdue_only:
        query = query.where(ErasureRequest.requested_at < now - confirm_within)
    return list(session.scalars(query.order_by(ErasureRequest.requested_at, ErasureRequest.id)))


def flag_overdue(session: orm.Session, now: dt.datetime, confirm_within: dt.timedelta) -> list[ErasureRequest]:
    """Mark overdue requests as flagged to the admin (once each; audited). Returns the newly flagged ones."""
    flagged = [r for r in open_requests(session, now, confirm_within, overdue_only=True) if r.flagged_at is None]
    for request in flagged:
        request.flagged_at = now
        record(session, actor=None, action="update", object_type="erasure_request", object_id=request.id,
               case_id=request.case_id, now=now, detail={"overdue": True, "holder": request.holder})
    session.flush()
    return flagged
