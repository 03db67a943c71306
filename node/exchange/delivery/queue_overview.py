"""The outbox as the administrator's delivery page shows it, and the delivery worker's health.

Sections: ``pending`` (waiting, never failed), ``failing`` (being retried after an error), ``parked`` (paused
after a refusal that retrying would not change) and ``undeliverable`` (given up). Rows carry message ids,
partner, type, attempts, times and the stored error code; never a case's contents.

The worker runs in its own process (``ccm-node deliver``); its health is read from what it leaves in the
database: when it last tried and last delivered, and messages still marked ``sending`` whose lease expired
(their worker stopped without recording an outcome; another worker takes them over).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy import orm

from node.exchange.delivery.queue import PENDING
from node.exchange.models import OutboundMessage, Partner

SECTIONS = ("failing", "pending", "parked", "undeliverable")
#: the most rows a section lists (the count is always complete)
SECTION_LIMIT = 200


@dataclass(frozen=True)
class QueueRow:
    id: int
    message_id: str
    recipient: str
    partner_name: str
    type: str
    status: str
    attempts: int
    queued_at: datetime
    next_attempt_at: datetime
    last_attempt_at: datetime | None
    last_error: str | None
    lease_expired: bool


@dataclass(frozen=True)
class QueueOverview:
    rows: dict[str, list[QueueRow]]
    counts: dict[str, int]


@dataclass(frozen=True)
class WorkerHealth:
    last_attempt_at: datetime | None
    last_delivered_at: datetime | None
    sending: int
    expired_leases: int
    due: int  # queued messages whose time has come (a backlog here means no worker is running)


def _section(status: str, last_error: str | None) -> str:
    if status in PENDING:
        return "failing" if last_error else "pending"
    return status


def queue_overview(session: orm.Session, now: datetime, limit: int = SECTION_LIMIT,
                   partner_id: int | None = None) -> QueueOverview:
    """The messages not yet delivered, by section, oldest first (at most ``limit`` a section listed)."""
    out = OutboundMessage
    where = [out.status.in_((*PENDING, "parked", "undeliverable"))]
    if partner_id is not None:
        where.append(out.partner_id == partner_id)
    section = sa.case((sa.and_(out.status.in_(PENDING), out.last_error.is_not(None)), "failing"),
                      (out.status.in_(PENDING), "pending"), else_=out.status)
    counts = {name: 0 for name in SECTIONS}
    for name, count in session.execute(sa.select(section, sa.func.count()).where(*where).group_by(section)):
        counts[str(name)] = int(count)
    rows: dict[str, list[QueueRow]] = {name: [] for name in SECTIONS}
    for name in SECTIONS:
        if not counts[name]:
            continue
        query = (sa.select(out.id, out.message_id, out.recipient, Partner.name, out.type, out.status, out.attempts,
                           out.queued_at, out.next_attempt_at, out.last_attempt_at, out.last_error,
                           out.lease_until)
                 .join(Partner, Partner.id == out.partner_id).where(*where, section == name)
                 .order_by(out.id).limit(limit))
        for r in session.execute(query):
            rows[name].append(QueueRow(r.id, r.message_id, r.recipient, r.name, r.type, r.status, r.attempts,
                                       r.queued_at, r.next_attempt_at, r.last_attempt_at, r.last_error,
                                       r.status == "sending" and r.lease_until is not None and r.lease_until < now))
    return QueueOverview(rows, counts)


def worker_health(session: orm.Session, now: datetime) -> WorkerHealth:
    """What the delivery worker left behind: its last attempt and delivery, and leases that expired."""
    out = OutboundMessage
    row = session.execute(sa.select(
        sa.func.max(out.last_attempt_at), sa.func.max(out.delivered_at),
        sa.func.count().filter(out.status == "sending"),
        sa.func.count().filter(out.status == "sending", out.lease_until < now),
        sa.func.count().filter(out.status == "queued", out.next_attempt_at <= now),
    )).one()
    return WorkerHealth(row[0], row[1], int(row[2]), int(row[3]), int(row[4]))
