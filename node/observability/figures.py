"""What the database says about the exchange, read when ``/metrics`` is scraped.

The delivery worker is its own process (``ccm-node deliver``), so its counts are read from the tables it writes
rather than counted in its memory: one answer, right for any number of web workers and delivery workers. Three
aggregate queries (GROUP BY partner over the outbox, one COUNT over the erasure ledger, the partner list); no
case id, no name, only partners' node ids.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy import orm

from node.exchange.chain.models import ErasureRequest
from node.exchange.models import OutboundMessage, Partner

#: waiting to be delivered (a claimed message is being sent now)
WAITING = ("queued", "sending")
#: given up: parked after a refusal, or undeliverable past its horizon
GIVEN_UP = ("parked", "undeliverable")


@dataclass(frozen=True)
class PartnerDelivery:
    partner: str
    status: str
    waiting: int = 0
    given_up: int = 0
    attempts: int = 0
    failures: int = 0


@dataclass(frozen=True)
class ExchangeFigures:
    partners: list[PartnerDelivery] = field(default_factory=list)
    erasures_pending: int = 0
    erasures_overdue: int = 0


def exchange_figures(session: orm.Session, now: dt.datetime, confirm_within: dt.timedelta) -> ExchangeFigures:
    """The outbox per partner and the erasures partners have not confirmed; reads only.

    Args:
        session: any session (a read-only one will do).
        now: the current time.
        confirm_within: how long a holder has to confirm an erasure (``erasure_confirm_hours``).
    Returns:
        Per partner (every partner, in node id order): messages waiting, given up, delivery attempts and failed
        attempts (every attempt of a message not delivered, and all but the last of one delivered or being
        sent); erasure requests not confirmed, and those of them overdue.
    """
    out = OutboundMessage
    done = out.status.in_(("delivered", "sending"))

    def total(value: sa.ColumnElement[int] | orm.InstrumentedAttribute[int]) -> sa.ColumnElement[int]:
        return sa.func.coalesce(sa.func.sum(value), 0)

    def count(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[int]:
        return total(sa.case((condition, 1), else_=0))

    stats = {row.partner_id: row for row in session.execute(
        sa.select(out.partner_id, count(out.status.in_(WAITING)).label("waiting"),
                  count(out.status.in_(GIVEN_UP)).label("given_up"), total(out.attempts).label("attempts"),
                  total(sa.case((sa.and_(done, out.attempts > 0), out.attempts - 1), else_=out.attempts))
                  .label("failures"))
        .group_by(out.partner_id))}
    partners = []
    for partner in session.execute(sa.select(Partner.id, Partner.node_id, Partner.status).order_by(Partner.node_id)):
        row = stats.get(partner.id)
        partners.append(PartnerDelivery(partner.node_id, partner.status, *(
            (int(row.waiting), int(row.given_up), int(row.attempts), int(row.failures)) if row else ())))
    waiting = ErasureRequest.confirmed_at.is_(None)
    overdue = sa.and_(waiting, ErasureRequest.requested_at.is_not(None),
                      ErasureRequest.requested_at < now - confirm_within)
    pending, late = session.execute(sa.select(count(waiting), count(overdue))).one()
    return ExchangeFigures(partners, int(pending), int(late))
