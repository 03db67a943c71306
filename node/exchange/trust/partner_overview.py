"""Per-partner figures for the administrator: when it was last heard of, what waits for it, what failed.

No case data: counts, times, message ids and error codes only. ``last_contact`` is the later of the last
receipt it gave for our messages and the last message received from it. ``failing`` counts the messages still
being retried after an error; ``last_error`` is the error of the newest of those (or of a parked or
undeliverable message), as the delivery worker stored it (a code the page words).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy import orm

from node.exchange.models import InboundMessage, OutboundMessage, Partner

_PENDING = ("queued", "sending")
_STUCK = ("queued", "sending", "parked", "undeliverable")


@dataclass(frozen=True)
class PartnerFigures:
    """One partner as the partner list and page show it."""

    id: int
    node_id: str
    name: str
    base_url: str
    status: str
    fingerprint: str
    agreement_id: str | None
    retention_days: int | None
    created_at: datetime
    last_contact: datetime | None
    last_attempt: datetime | None
    queue_depth: int
    failing: int
    parked: int
    undeliverable: int
    retry_at: datetime | None
    #: restored from a backup: waiting to be back in step with this partner since then (node/exchange/resync)
    resync_since: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    last_error_message: str | None


def _later(*moments: datetime | None) -> datetime | None:
    known = [m for m in moments if m is not None]
    return max(known) if known else None


def partner_figures(session: orm.Session, partners: Sequence[Partner] | None = None) -> list[PartnerFigures]:
    """The figures of ``partners`` (default: every partner, by node id), in their order.

    Four grouped queries whatever the number of partners.
    """
    if partners is None:
        partners = session.scalars(sa.select(Partner).order_by(Partner.node_id)).all()
    ids = [p.id for p in partners]
    if not ids:
        return []
    out = OutboundMessage
    pending = out.status.in_(_PENDING)
    counts = {row.partner_id: row for row in session.execute(
        sa.select(out.partner_id,
                  sa.func.count().filter(pending).label("depth"),
                  sa.func.count().filter(pending, out.last_error.is_not(None)).label("failing"),
                  sa.func.count().filter(out.status == "parked").label("parked"),
                  sa.func.count().filter(out.status == "undeliverable").label("undeliverable"),
                  sa.func.max(out.delivered_at).label("delivered"),
                  sa.func.max(out.last_attempt_at).label("attempted"))
        .where(out.partner_id.in_(ids)).group_by(out.partner_id))}
    received: dict[int, datetime] = {row.partner_id: row.received for row in session.execute(
        sa.select(InboundMessage.partner_id, sa.func.max(InboundMessage.received_at).label("received"))
        .where(InboundMessage.partner_id.in_(ids)).group_by(InboundMessage.partner_id))}
    latest_failed = (sa.select(sa.func.max(out.id)).where(out.partner_id.in_(ids), out.status.in_(_STUCK),
                                                           out.last_error.is_not(None))
                     .group_by(out.partner_id))
    errors = {row.partner_id: row for row in session.execute(
        sa.select(out.partner_id, out.message_id, out.last_error, out.last_attempt_at)
        .where(out.id.in_(latest_failed)))}
    figures = []
    for p in partners:
        row, error = counts.get(p.id), errors.get(p.id)
        figures.append(PartnerFigures(
            id=p.id, node_id=p.node_id, name=p.name, base_url=p.base_url, status=p.status,
            fingerprint=p.fingerprint, agreement_id=p.agreement_id, retention_days=p.retention_days,
            created_at=p.created_at,
            last_contact=_later(row.delivered if row else None, received.get(p.id)),
            last_attempt=_later(row.attempted if row else None, p.retry_last_at),
            queue_depth=int(row.depth) if row else 0, failing=int(row.failing) if row else 0,
            parked=int(row.parked) if row else 0, undeliverable=int(row.undeliverable) if row else 0,
            retry_at=p.retry_at, resync_since=p.resync_since,
            last_error=error.last_error if error else None,
            last_error_at=error.last_attempt_at if error else None,
            last_error_message=error.message_id if error else None,
        ))
    return figures
