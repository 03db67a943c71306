"""The outbox as a work queue: claiming due messages, recording delivery outcomes, giving up, admin views.

Claiming (several workers, several processes): a message is due when it is ``queued`` and its
``next_attempt_at`` has come, or ``sending`` under a lease that expired (its worker died); its partner is
active, has an agreement, is in step with us (not waiting for a resync after a restore: ``exchange/resync``)
and is not backing off; and every earlier message of its (partner, thread) chain is
delivered (it is enough to look at the previous one), so a thread goes strictly in order with at most one
message in flight. Claimed rows are selected ``FOR UPDATE SKIP LOCKED`` on PostgreSQL (SQLite serialises
writers with ``BEGIN IMMEDIATE``) and marked ``sending`` with the worker's id and a lease in the same
transaction, so two workers never hold the same message. A partner that is backing off gets one probe at a
time.

Leases are short (seconds) and the live worker keeps extending them (``extend_leases``, its heartbeat) for the
messages it still has in flight, however long an attempt takes. So an expired lease means the worker that held
it stopped (killed, its machine gone) and another worker, or the same one restarted, takes the message over
within about one lease; a worker that is alive never has its claims taken from it.

Outcomes are recorded in one transaction per batch. A receipt is the proof of delivery and is recorded even
when the lease had passed to another worker; a failure only counts for the worker that still holds the claim.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm

from node.errors import Conflict
from node.exchange.delivery.retry import RetryPolicy, Verdict, record_failure, record_success
from node.exchange.models import OutboundMessage, Partner
from node.exchange.trust.partners import get_partner

PENDING = ("queued", "sending")


class QueueError(Conflict):
    code = "queue_refused"


@dataclass(frozen=True)
class Claim:
    """One message a worker holds: what it needs to send it and to check the receipt."""

    id: int
    message_id: str
    partner_id: int
    recipient: str
    base_url: str
    card: str
    message_hash: str
    envelope: bytes
    claimed_at: datetime


@dataclass(frozen=True)
class Outcome:
    claim: Claim
    verdict: Verdict
    receipt: str | None = None
    error: str | None = None
    retry_after: float | None = None


def _due_query(*, leases: bool) -> sa.Select[int, int, float]:
    """Ids of due messages, oldest first: ``queued`` ones whose time has come (walked in the order of the
    (status, next_attempt_at, id) index), or, with ``leases``, ``sending`` ones whose lease expired. Parameters:
    ``now`` and ``limit``. Built once (building a statement costs more than running it)."""
    out = OutboundMessage
    earlier = orm.aliased(OutboundMessage)
    now: sa.BindParameter[datetime] = sa.bindparam("now")
    # Delivered messages are always a prefix of their thread (a message goes only after the one before it),
    # so "the previous message is delivered" means "every earlier one is".
    blocked = sa.exists().where(earlier.partner_id == out.partner_id, earlier.thread == out.thread,
                                earlier.seq == out.seq - 1, earlier.status != "delivered")
    if leases:
        due = sa.and_(out.status == "sending", out.lease_until < now)
        order: tuple[Any, ...] = (out.lease_until, out.id)
    else:
        due = sa.and_(out.status == "queued", out.next_attempt_at <= now)
        order = (out.next_attempt_at, out.id)
    return (
        sa.select(out.id, out.partner_id, Partner.retry_interval)
        .join(Partner, Partner.id == out.partner_id)
        .where(due, Partner.status == "active", Partner.agreement_id.is_not(None),
               Partner.resync_since.is_(None),  # restored from a backup: in step again first (exchange/resync)
               sa.or_(Partner.retry_at.is_(None), Partner.retry_at <= now), ~blocked)
        .order_by(*order)
        .limit(sa.bindparam("limit", type_=sa.Integer()))
        .with_for_update(of=out, skip_locked=True)
    )


#: The claim's query for queued messages that are due (tests read its plan: it walks the claim index in order).
DUE_QUEUED = _due_query(leases=False)
_DUE_LEASES = _due_query(leases=True)
_OUT = OutboundMessage.__table__
_PARTNERS = Partner.__table__
_IDS = sa.bindparam("ids", expanding=True)
# The statements run on every turn of a worker's loop, built once (with their cache keys).
_CLAIM = (
    sa.update(_OUT).where(_OUT.c.id.in_(_IDS))
    .values(status="sending", claimed_by=sa.bindparam("_worker"), lease_until=sa.bindparam("_lease_until"),
            attempts=_OUT.c.attempts + 1, last_attempt_at=sa.bindparam("_now"))
)
_CLAIMED = (
    sa.select(_OUT.c.id, _OUT.c.message_id, _OUT.c.partner_id, _OUT.c.recipient, _OUT.c.message_hash,
              _OUT.c.envelope, _PARTNERS.c.base_url, _PARTNERS.c.card)
    .join(_PARTNERS, _PARTNERS.c.id == _OUT.c.partner_id).where(_OUT.c.id.in_(_IDS))
)
_HELD = sa.select(_OUT.c.id, _OUT.c.status, _OUT.c.claimed_by).where(_OUT.c.id.in_(_IDS))
_PARTNERS_BY_ID = sa.select(Partner).where(Partner.id.in_(_IDS))


def claim(session: orm.Session, *, worker_id: str, now: datetime, limit: int, lease: timedelta,
          probing: Iterable[int] = (), expired_leases: bool = True) -> list[Claim]:
    """Claim up to ``limit`` due messages for this worker (the caller commits at once).

    Args:
        worker_id: this worker's id (host, pid, random part).
        now: the current time.
        limit: the most messages to claim.
        lease: how long the claim holds if the worker dies without recording an outcome.
        probing: partners this worker already has a probe in flight to (none more for them).
        expired_leases: also take over messages whose worker's lease expired (a worker looks now and then).
    Returns:
        The claimed messages.
    """
    if limit <= 0:
        return []
    busy = set(probing)
    chosen: list[int] = []
    for query in (_DUE_LEASES, DUE_QUEUED) if expired_leases else (DUE_QUEUED,):
        for row in session.execute(query, {"now": now, "limit": limit * 2 + 4}):
            if len(chosen) >= limit:
                break
            if row.retry_interval > 0:  # backing off: one probe, and only if none is in flight
                if row.partner_id in busy:
                    continue
                busy.add(row.partner_id)
            chosen.append(row.id)
    if not chosen:
        return []
    session.execute(_CLAIM, {"ids": chosen, "_worker": worker_id, "_lease_until": now + lease, "_now": now})
    by_id = {row.id: row for row in session.execute(_CLAIMED, {"ids": chosen})}
    return [Claim(r.id, r.message_id, r.partner_id, r.recipient, r.base_url, r.card, r.message_hash,
                  r.envelope, now) for r in (by_id[i] for i in chosen)]


_EXTEND = (
    sa.update(_OUT).where(_OUT.c.id.in_(_IDS), _OUT.c.status == "sending",
                          _OUT.c.claimed_by == sa.bindparam("_worker"))
    .values(lease_until=sa.bindparam("_lease_until"))
)


def extend_leases(session: orm.Session, ids: Sequence[int], *, worker_id: str, now: datetime,
                  lease: timedelta) -> int:
    """Extend this worker's leases on messages it still holds (its heartbeat; the caller commits).

    Args:
        ids: the messages the worker has in flight.
        worker_id: this worker's id; a message claimed by another worker in the meantime is left alone.
        now: the current time.
        lease: the new lease runs until ``now + lease``.
    Returns:
        How many of them the worker still held.
    """
    if not ids:
        return 0
    result = session.execute(_EXTEND, {"ids": list(ids), "_worker": worker_id, "_lease_until": now + lease})
    return int(getattr(result, "rowcount", 0) or 0)


def reset_backoff(session: orm.Session, partner: Partner, now: datetime) -> bool:
    """Forget a partner's backoff and make its waiting messages due now (no commit).

    Returns:
        Whether the partner was backing off.
    """
    if not record_success(partner):
        return False
    session.execute(
        sa.update(OutboundMessage)
        .where(OutboundMessage.partner_id == partner.id, OutboundMessage.status == "queued",
               OutboundMessage.next_attempt_at > now)
        .values(next_attempt_at=now)
        .execution_options(synchronize_session=False)
    )
    return True


_MARK_DELIVERED = (
    sa.update(_OUT).where(_OUT.c.id == sa.bindparam("_id"),
                          sa.or_(_OUT.c.status == "queued", _OUT.c.status == "sending"))
    .values(status="delivered", delivered_at=sa.bindparam("_now"), receipt=sa.bindparam("_receipt"),
            last_error=None, claimed_by=None, lease_until=None)
)
_RELEASE = (
    sa.update(_OUT).where(_OUT.c.id == sa.bindparam("_id"), _OUT.c.status == "sending",
                          _OUT.c.claimed_by == sa.bindparam("_worker"))
    .values(status=sa.bindparam("_status"), last_error=sa.bindparam("_error"), claimed_by=None,
            lease_until=None, next_attempt_at=sa.bindparam("_next"))
)


def record_outcomes(session: orm.Session, outcomes: Sequence[Outcome], *, worker_id: str, now: datetime,
                    policy: RetryPolicy, rng: random.Random) -> None:
    """Record what happened to claimed messages (no commit). The rows are updated with two executemany
    statements whose conditions re-check the state: a receipt marks any pending message delivered, a failure
    only releases a message this worker still holds.

    Args:
        outcomes: one per finished attempt.
        worker_id: the worker that made the attempts.
        now: the current time.
        policy: the backoff policy for retryable failures.
        rng: the jitter source.
    """
    if not outcomes:
        return
    held = {row.id: row for row in session.execute(_HELD, {"ids": [o.claim.id for o in outcomes]})}
    partner_ids = sorted({o.claim.partner_id for o in outcomes})
    partners = {p.id: p for p in session.scalars(_PARTNERS_BY_ID, {"ids": partner_ids})}
    delivered: list[dict[str, Any]] = []
    released: list[dict[str, Any]] = []
    reachable: set[int] = set()
    for outcome in outcomes:
        row, partner = held.get(outcome.claim.id), partners[outcome.claim.partner_id]
        if row is None:
            continue
        if outcome.verdict is Verdict.DELIVERED:
            reachable.add(partner.id)
            delivered.append({"_id": row.id, "_now": now, "_receipt": outcome.receipt})
            continue
        if not (row.status == "sending" and row.claimed_by == worker_id):
            continue  # the lease passed to another worker: its outcome counts, not ours
        if outcome.verdict is Verdict.PARK:
            reachable.add(partner.id)
            status, next_attempt_at = "parked", now
        else:
            record_failure(partner, now=now, attempt_started=outcome.claim.claimed_at, policy=policy, rng=rng,
                           retry_after=outcome.retry_after)
            status, next_attempt_at = "queued", partner.retry_at or now
        released.append({"_id": row.id, "_worker": worker_id, "_status": status, "_next": next_attempt_at,
                         "_error": (outcome.error or "failed")[:64]})
    connection = session.connection()
    if delivered:
        connection.execute(_MARK_DELIVERED, delivered)
    if released:
        connection.execute(_RELEASE, released)
    for partner_id in reachable:
        reset_backoff(session, partners[partner_id], now)
    session.flush()


def give_up_overdue(session: orm.Session, *, now: datetime, policy: RetryPolicy) -> int:
    """Mark ``undeliverable`` every pending message past the retry horizon or its envelope's expiry.

    Returns:
        How many messages were given up.
    """
    pending = sa.or_(OutboundMessage.status == "queued",
                     sa.and_(OutboundMessage.status == "sending", OutboundMessage.lease_until < now))
    total = 0
    for reason, condition in (("envelope_expired", OutboundMessage.expires_at <= now),
                              ("retry_horizon", OutboundMessage.queued_at <= now - policy.horizon)):
        result = session.execute(
            sa.update(OutboundMessage).where(pending, condition)
            .values(status="undeliverable", last_error=reason, claimed_by=None, lease_until=None)
            .execution_options(synchronize_session=False)
        )
        total += getattr(result, "rowcount", 0) or 0
    return total


def list_queue(session: orm.Session,
               statuses: Sequence[str] = (*PENDING, "parked", "undeliverable")) -> Sequence[OutboundMessage]:
    """Messages in the given states, oldest first (the administrator's ``ccm-node queue``)."""
    return session.scalars(sa.select(OutboundMessage).where(OutboundMessage.status.in_(statuses))
                           .order_by(OutboundMessage.id)).all()


def queue_label(message: OutboundMessage) -> str:
    """pending, failed (retrying after an error), parked, undeliverable, delivered."""
    if message.status in PENDING:
        return "failed" if message.last_error else "pending"
    return message.status


def find_queued(session: orm.Session, ref: str) -> OutboundMessage:
    """A message by its number in ``ccm-node queue`` or its message id.

    Raises:
        QueueError: no such message.
    """
    query = sa.select(OutboundMessage).where(OutboundMessage.message_id == ref)
    if ref.isascii() and ref.isdigit() and len(ref) <= 18:  # a row number (fits a 64-bit integer)
        query = sa.select(OutboundMessage).where(OutboundMessage.id == int(ref))
    message = session.scalar(query)
    if message is None:
        raise QueueError(f"no message {ref!r} in the outbox")
    return message


def retry_message(session: orm.Session, ref: str, now: datetime) -> OutboundMessage:
    """Queue a parked, undeliverable or waiting message again, now, and reset its partner's backoff.

    Raises:
        QueueError: unknown, already delivered, its envelope expired, or its partner revoked.
    """
    message = find_queued(session, ref)
    if message.status == "delivered":
        raise QueueError(f"message {message.id} was delivered already")
    if message.expires_at <= now:
        raise QueueError(f"message {message.id}'s envelope expired on {message.expires_at:%Y-%m-%d}: it "
                         "cannot be sent again")
    partner = session.get(Partner, message.partner_id)
    if partner is None or partner.status == "revoked":
        raise QueueError(f"partner {message.recipient} is revoked")
    if message.status != "sending":
        message.status = "queued"
        message.queued_at = now
        message.next_attempt_at = now
        message.last_error = None
    reset_backoff(session, partner, now)
    session.flush()
    return message


def retry_partner(session: orm.Session, ref: str, now: datetime) -> tuple[Partner, int]:
    """Reset a partner's backoff so its queue is caught up at once.

    Returns:
        The partner and how many of its messages are waiting.
    Raises:
        PartnerNotFound: no such partner.
    """
    partner = get_partner(session, ref)
    reset_backoff(session, partner, now)
    waiting = session.scalar(sa.select(sa.func.count()).select_from(OutboundMessage).where(
        OutboundMessage.partner_id == partner.id, OutboundMessage.status.in_(PENDING))) or 0
    session.flush()
    return partner, int(waiting)


def retry_given_up(session: orm.Session, ref: str, now: datetime) -> tuple[Partner, int, int]:
    """Queue again, now, every message to a partner that was given up (``undeliverable``: its retry horizon
    passed, e.g. after a long outage) and can still be sent, and reset the partner's backoff (no commit). They
    go in chain order per thread, as before.

    Returns:
        The partner, how many messages were queued again, and how many could not be (their envelope expired or
        was erased: they stay given up).
    Raises:
        PartnerNotFound: no such partner.
        QueueError: the partner is revoked.
    """
    partner = get_partner(session, ref)
    if partner.status == "revoked":
        raise QueueError(f"partner {partner.node_id} is revoked")
    given_up = sa.and_(OutboundMessage.partner_id == partner.id, OutboundMessage.status == "undeliverable")
    sendable = sa.and_(given_up, OutboundMessage.expires_at > now, sa.func.length(OutboundMessage.envelope) > 0,
                       OutboundMessage.seq > 0)
    result = session.execute(
        sa.update(OutboundMessage).where(sendable)
        .values(status="queued", queued_at=now, next_attempt_at=now, last_error=None, claimed_by=None,
                lease_until=None)
        .execution_options(synchronize_session=False))
    left = session.scalar(sa.select(sa.func.count()).select_from(OutboundMessage).where(given_up)) or 0
    reset_backoff(session, partner, now)
    session.flush()
    return partner, int(getattr(result, "rowcount", 0) or 0), int(left)
