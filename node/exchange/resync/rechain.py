"""The requester's side of a resync, applied: record what the partner received from us, and re-chain the rest.

``record_page``: every message the partner lists (``protocol.verify_answer`` checked its receipt) is delivered.
One still in our outbox is marked so, with the partner's receipt; one the restore made us forget (sent after
the backup) is recorded again as a *recovered* row: its id, type, chain link, hash and receipt, without its
sealed bytes (we no longer hold them, and the partner has the message). A message queued since the restore that
sits on the recovered one's place in the chain is moved aside (a negative ``seq``) for ``rechain``.

``rechain``: once the last page is recorded, each thread's messages not yet delivered are put back on the chain
after its last delivered one, in the order they were queued. One whose ``prev`` no longer names that message is
sealed again on the new link (``protocol.reseal``: same id, header and body; new ``prev``, nonce and signature).
One that cannot be (its sealed bytes erased, its lifetime over, sealed with keys no longer held) is marked
``undeliverable`` and left off the chain, so what follows it is not held up.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy import orm

from node.db import insert_now
from node.exchange.chain.erasure import BLANK
from node.exchange.handovers.models import Handover
from node.exchange.models import InboundMessage, OutboundMessage, Partner
from node.exchange.trust.keystore import NodeIdentity
from node.exchange.trust.partners import partner_card
from protocol import MalformedError, canonical_bytes
from protocol.errors import ProtocolError
from protocol.resync import ReceivedEntry, ResyncAnswer, reseal

#: ``last_error`` of a message that could not be put back on its chain after a restore.
CANNOT_RECHAIN = "cannot_rechain"


@dataclass
class Recorded:
    marked: int = 0
    recovered: int = 0


def _aside(row: OutboundMessage) -> None:
    """Move a message off its place in the chain (a negative ``seq`` no other row can hold)."""
    row.seq = -row.id


def _case_of(session: orm.Session, partner: Partner, thread: str) -> str | None:
    for query in (
        sa.select(OutboundMessage.case_id).where(OutboundMessage.partner_id == partner.id,
                                                 OutboundMessage.thread == thread,
                                                 OutboundMessage.case_id.is_not(None)),
        sa.select(Handover.case_id).where(Handover.partner_node == partner.node_id, Handover.thread == thread,
                                          Handover.case_id.is_not(None)),
        sa.select(InboundMessage.case_id).where(InboundMessage.partner_id == partner.id,
                                                InboundMessage.thread == thread,
                                                InboundMessage.case_id.is_not(None)),
    ):
        found = session.scalar(query.limit(1))
        if found is not None:
            return str(found)
    return None


def _place(session: orm.Session, partner: Partner, entry: ReceivedEntry) -> int:
    """The ``seq`` of a listed message we forgot: one after the message its ``prev`` names.

    Raises:
        MalformedError: its ``prev`` names no message we sent in that thread.
    """
    if entry.prev is None:
        return 1
    seq = session.scalar(sa.select(OutboundMessage.seq).where(
        OutboundMessage.partner_id == partner.id, OutboundMessage.thread == entry.thread,
        OutboundMessage.message_hash == entry.prev, OutboundMessage.seq > 0))
    if seq is None:
        raise MalformedError("a listed message follows one this node does not know it sent")
    return int(seq) + 1


def record_page(session: orm.Session, partner: Partner, answer: ResyncAnswer, now: datetime) -> Recorded:
    """Record the messages one answer page lists as delivered (no commit; see the module's description).

    Raises:
        MalformedError: a listed message is another partner's, or does not follow what we sent (the page is
            refused whole: the caller rolls back).
    """
    done = Recorded()
    for entry in answer.received:
        receipt = canonical_bytes(entry.receipt).decode("utf-8")
        row = session.scalar(sa.select(OutboundMessage).where(OutboundMessage.message_id == entry.message_id))
        if row is not None:
            if row.partner_id != partner.id or row.message_hash != entry.message_hash:
                raise MalformedError("a listed message is not the one this node sent with that id")
            if row.status != "delivered":
                row.status, row.delivered_at, row.receipt = "delivered", entry.received_at, receipt
                row.last_error = row.claimed_by = row.lease_until = None
                done.marked += 1
            continue
        seq = _place(session, partner, entry)
        taken = session.scalar(sa.select(OutboundMessage).where(
            OutboundMessage.partner_id == partner.id, OutboundMessage.thread == entry.thread,
            OutboundMessage.seq == seq))
        if taken is not None:
            if taken.status == "delivered":
                raise MalformedError("a listed message's place in the chain holds another delivered message")
            _aside(taken)
            session.flush()
        at = entry.received_at
        insert_now(session, OutboundMessage(
            message_id=entry.message_id, partner_id=partner.id, recipient=partner.node_id, type=entry.type,
            thread=entry.thread, seq=seq, prev=entry.prev, message_hash=entry.message_hash, envelope=BLANK,
            case_id=_case_of(session, partner, entry.thread), status="delivered", attempts=1, created_at=at,
            queued_at=at, expires_at=at, next_attempt_at=at, last_attempt_at=at, delivered_at=at,
            receipt=receipt))
        done.recovered += 1
    session.flush()
    return done


def _rechain_thread(session: orm.Session, partner: Partner, thread: str, identity: NodeIdentity,
                    now: datetime) -> int:
    rows = session.scalars(sa.select(OutboundMessage).where(
        OutboundMessage.partner_id == partner.id, OutboundMessage.thread == thread)).all()
    delivered = [r for r in rows if r.status == "delivered" and r.seq > 0]
    head = max(delivered, key=lambda r: r.seq, default=None)
    head_seq, head_hash = (head.seq, head.message_hash) if head is not None else (0, None)
    waiting = sorted((r for r in rows if r.status != "delivered" and (r.seq > head_seq or r.seq < 0)
                      and r.last_error != CANNOT_RECHAIN), key=lambda r: r.id)  # the order they were queued in
    for row in waiting:
        if row.seq > 0:
            _aside(row)
    session.flush()
    resealed = 0
    card = partner_card(partner)
    for row in waiting:
        if row.status == "parked" and row.last_error == "broken_chain":
            row.status, row.last_error, row.next_attempt_at = "queued", None, now
        if row.prev == head_hash:  # still follows the head: back on its place
            row.seq = head_seq + 1
        elif row.envelope == BLANK or row.expires_at <= now:
            row.status, row.last_error = "undeliverable", CANNOT_RECHAIN
            continue
        else:
            try:
                sealed = reseal(row.envelope, keys=identity.keys, own_keys=[r.keys for r in identity.retired],
                                recipient=card, prev=head_hash, boxes=identity.boxes)
            except ProtocolError:
                row.status, row.last_error = "undeliverable", CANNOT_RECHAIN
                continue
            row.seq, row.prev, row.message_hash, row.envelope = head_seq + 1, head_hash, sealed.message_hash, \
                sealed.data
            resealed += 1
        head_seq, head_hash = row.seq, row.message_hash
    session.flush()
    return resealed


def rechain(session: orm.Session, partner: Partner, identity: NodeIdentity, now: datetime) -> int:
    """Put every thread's undelivered messages to ``partner`` back on its chain (no commit).

    Returns:
        How many messages were sealed again on a new link.
    """
    threads = session.scalars(sa.select(OutboundMessage.thread).where(
        OutboundMessage.partner_id == partner.id, OutboundMessage.status != "delivered").distinct()).all()
    return sum(_rechain_thread(session, partner, thread, identity, now) for thread in sorted(threads))
