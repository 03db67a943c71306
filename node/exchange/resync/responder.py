"""The responder's side of a resync: a partner that was restored from a backup asks what passed between us.

On a verified request from an active partner (``protocol.verify_request``: addressed to us, signed by the
partner's key, fresh) the first page (no cursor) queues again, per thread, what this node delivered to that
partner since the request's ``since`` and every later message of the thread (the same envelopes, in chain
order, so the partner's inbox answers those it still holds with its stored receipt and applies the others
once), and every page lists what this node received from the partner since then, with the receipt it signed
for each, 500 at a time (``protocol.make_answer``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm

from node.audit import record as audit
from node.exchange.chain.erasure import BLANK
from node.exchange.delivery.queue import reset_backoff
from node.exchange.models import InboundMessage, OutboundMessage, Partner
from node.exchange.trust.partners import partner_card
from protocol import MalformedError, NodeKeys, UnknownSenderError, strict_loads
from protocol.errors import OversizedError
from protocol.resync import MAX_REQUEST_BYTES, PAGE_SIZE, make_answer, verify_request

#: The last failure of a message refused for a chain link the partner did not know (``retry.classify`` parks it).
BROKEN_CHAIN = "broken_chain"


@dataclass(frozen=True)
class Answered:
    """The signed answer page and what it did (for the log and the tests)."""

    answer: dict[str, Any]
    requeued: int
    listed: int


def _threads_to_requeue(session: orm.Session, partner: Partner, since: datetime) -> dict[str, int]:
    """Thread → the first seq to send again: the first delivered at or after ``since``, or the first parked
    for a broken chain link (sent while the partner was out of step)."""
    out = OutboundMessage
    first: dict[str, int] = {}
    queries = (
        sa.select(out.thread, sa.func.min(out.seq)).where(
            out.partner_id == partner.id, out.status == "delivered", out.delivered_at >= since, out.seq > 0),
        sa.select(out.thread, sa.func.min(out.seq)).where(
            out.partner_id == partner.id, out.status == "parked", out.last_error == BROKEN_CHAIN, out.seq > 0),
    )
    for query in queries:
        for thread, seq in session.execute(query.group_by(out.thread)):
            first[thread] = min(seq, first.get(thread, seq))
    return first


def requeue(session: orm.Session, partner: Partner, since: datetime, now: datetime) -> int:
    """Queue again, in chain order, what was delivered to ``partner`` since ``since`` and what follows it in
    each thread (no commit). A thread stops at a message whose sealed bytes were erased (its case was erased
    here: the partner's copy goes with the erasure it was told of) or whose lifetime is over, and at one in
    flight (it follows the others by itself).

    Returns:
        How many messages were queued again.
    """
    out = OutboundMessage
    ids: list[int] = []
    for thread, first_seq in sorted(_threads_to_requeue(session, partner, since).items()):
        rows = session.execute(
            sa.select(out.id, out.status, out.expires_at, out.envelope == BLANK)
            .where(out.partner_id == partner.id, out.thread == thread, out.seq >= first_seq).order_by(out.seq)
        ).all()
        for row_id, status, expires_at, blank in rows:
            if blank or expires_at <= now or status == "sending":
                break
            if status in ("delivered", "parked", "undeliverable"):
                ids.append(row_id)
    for start in range(0, len(ids), 500):
        session.execute(
            sa.update(out).where(out.id.in_(ids[start:start + 500]))
            .values(status="queued", next_attempt_at=now, queued_at=now, attempts=0, last_error=None,
                    claimed_by=None, lease_until=None, delivered_at=None)
            .execution_options(synchronize_session=False))
    reset_backoff(session, partner, now)
    return len(ids)


def received_page(session: orm.Session, partner: Partner, since: datetime,
                  after: int | None) -> tuple[list[dict[str, Any]], int | None]:
    """One page of what this node received from ``partner`` since ``since``, in the order received.

    Returns:
        The entries (``protocol.make_answer``'s form) and the cursor of the next page (None: the last page).
    """
    inbound = InboundMessage
    query = (sa.select(inbound.id, inbound.thread, inbound.message_id, inbound.type, inbound.prev,
                       inbound.message_hash, inbound.receipt)
             .where(inbound.partner_id == partner.id, inbound.received_at >= since)
             .order_by(inbound.id).limit(PAGE_SIZE + 1))
    if after is not None:
        query = query.where(inbound.id > after)
    rows = session.execute(query).all()
    page = rows[:PAGE_SIZE]
    entries = [{"thread": r.thread, "id": r.message_id, "type": r.type, "prev": r.prev,
                "message_hash": r.message_hash, "receipt": json.loads(r.receipt)} for r in page]
    return entries, (page[-1].id if len(rows) > PAGE_SIZE else None)


def answer_resync(session: orm.Session, data: bytes, *, keys: NodeKeys, now: datetime) -> Answered:
    """Verify a resync request and answer it, in the caller's transaction (the caller commits).

    Raises:
        ProtocolError: oversized, not strict JSON, not from an active partner (``unknown_sender``), or refused
            by ``protocol.verify_request``; nothing was changed.
    """
    if len(data) > MAX_REQUEST_BYTES:
        raise OversizedError("resync request too large")
    doc = strict_loads(data)
    if not isinstance(doc, dict):
        raise MalformedError("resync request must be an object")
    sender = doc.get("from")
    partner = session.scalar(sa.select(Partner).where(Partner.node_id == sender)) if isinstance(sender, str) \
        else None
    if partner is None or partner.status != "active":
        raise UnknownSenderError("resync request from a node that is not an active partner")
    request = verify_request(doc, partner_card(partner), responder=keys.node_id, now=now)
    requeued = requeue(session, partner, request.since, now) if request.after is None else 0
    entries, next_after = received_page(session, partner, request.since, request.after)
    audit(session, actor=None, action="retry", object_type="partner", object_id=partner.node_id, case_id=None,
          now=now, detail={"resync": request.id, "requeued": requeued, "listed": len(entries),
                           "page_after": request.after})
    answer = make_answer(keys, request, requeued=requeued, received=entries, next_after=next_after, now=now)
    return Answered(answer, requeued, len(entries))
