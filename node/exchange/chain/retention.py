"""Retention: received case data is kept for the period agreed with its sender, then erased (SPEC.md 8.4).

Every received handover carries its retention (``retain_until`` on the handover row). :func:`run_retention`
(``ccm-node retention run``; the delivery worker runs it too, every sweep) erases each received case whose
period has ended — the day after ``retain_until`` — exactly as a withdrawal would (``node.exchange.chain.erasure``),
keeps the tombstone, and tells the sender with ``erasure_confirmed``, in one transaction per case.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy import orm

from node.clock import Clock
from node.config import NodeConfig
from node.exchange.chain.erasure import checkpoint, erase_handover
from node.exchange.chain.withdrawal import confirm_erasure
from node.exchange.handovers.models import Handover
from node.exchange.trust.partners import PartnerStateError
from protocol import BoxCache, NodeKeys

log = logging.getLogger(__name__)


@dataclass
class RetentionRun:
    """What a run did: the handovers erased, and those whose sender could not be told (suspended/revoked)."""

    erased: list[str] = field(default_factory=list)
    not_told: list[str] = field(default_factory=list)


def expired_handovers(session: orm.Session, today: dt.date) -> list[str]:
    """Ids of received handovers still holding data whose retention ended before ``today``."""
    return list(session.scalars(sa.select(Handover.id).where(
        Handover.direction == "incoming", Handover.status.in_(("pending", "accepted")),
        Handover.retain_until < today).order_by(Handover.retain_until, Handover.id)))


def run_retention(sessionmaker: orm.sessionmaker[orm.Session], *, keys: NodeKeys, now: dt.datetime,
                  boxes: BoxCache | None = None, limit: int = 500) -> RetentionRun:
    """Erase every received case whose retention has ended, one transaction each (commits).

    Args:
        sessionmaker: sessions on the node's database.
        keys: this node's keys (the confirmation is signed with them).
        now: the current time.
        limit: at most this many cases per run.
    Returns:
        What was erased.
    """
    run = RetentionRun()
    with sessionmaker() as session:
        due = expired_handovers(session, now.date())[:limit]
    for handover_id in due:
        with sessionmaker() as session, session.begin():
            handover = session.get(Handover, handover_id, with_for_update=True)
            if handover is None or handover.status not in ("pending", "accepted") \
                    or handover.retain_until is None or handover.retain_until >= now.date():
                continue  # decided, erased or extended meanwhile
            tombstone = erase_handover(session, handover, cause="retention", now=now)
            try:
                with session.begin_nested():
                    confirm_erasure(session, handover, tombstone, {"consent_id": handover.consent_id},
                                    keys=keys, now=now)
            except PartnerStateError:
                run.not_told.append(handover.id)
            run.erased.append(handover.id)
    if run.erased:
        with sessionmaker() as session:
            engine = session.get_bind()
        if isinstance(engine, sa.Engine):
            checkpoint(engine)
    return run


#: How often the delivery worker runs retention (``ccm-node deliver``).
RETENTION_EVERY = dt.timedelta(hours=1)


def retention_loop(stop: threading.Event, *, sessionmaker: orm.sessionmaker[orm.Session], config: NodeConfig,
                   clock: Clock, every: dt.timedelta = RETENTION_EVERY) -> None:
    """Run :func:`run_retention` now, then every ``every`` until ``stop`` is set (the delivery worker's
    companion thread; with ``stop`` already set it runs once). The keys are loaded each time, so a rotation is
    picked up; a failed run is logged (ids and counts only) and tried again at the next turn."""
    from node.exchange.trust.keystore import load_identity

    while True:
        try:
            now = clock.now()
            run = run_retention(sessionmaker, keys=load_identity(config, now).keys, now=now)
            if run.erased:
                log.info("retention: erased %d received case(s), %d sender(s) not told", len(run.erased),
                         len(run.not_told))
        except Exception as exc:  # a database or key file problem must not stop the delivery worker
            log.warning("retention run failed: %s", type(exc).__name__)
        if stop.wait(every.total_seconds()):
            return
