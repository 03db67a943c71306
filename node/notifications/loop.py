"""The notification sweep and the e-mails, run in the background next to retention (``ccm-node deliver``)."""

from __future__ import annotations

import datetime as dt
import logging
import threading

from sqlalchemy import orm

from node.clock import Clock
from node.config import NodeConfig

from .mail import MailRun, send_pending
from .sweep import SweepResult, sweep

log = logging.getLogger(__name__)

#: How often the delivery worker sweeps for notifications and sends their e-mails.
NOTIFY_EVERY = dt.timedelta(minutes=1)


def run_notifications(sessionmaker: orm.sessionmaker[orm.Session], config: NodeConfig,
                      now: dt.datetime) -> tuple[SweepResult, MailRun]:
    """One sweep (committed), then the pending e-mails."""
    with sessionmaker() as session:
        result = sweep(session, now, confirm_within=dt.timedelta(hours=config.erasure_confirm_hours))
        session.commit()
    return result, send_pending(sessionmaker, config.smtp, base_url=config.base_url, now=now)


def notification_loop(stop: threading.Event, *, sessionmaker: orm.sessionmaker[orm.Session], config: NodeConfig,
                      clock: Clock, every: dt.timedelta = NOTIFY_EVERY) -> None:
    """Run :func:`run_notifications` now, then every ``every`` until ``stop`` is set (with ``stop`` already set
    it runs once). A failed run is logged (its error type only) and tried again at the next turn."""
    while True:
        try:
            result, mail = run_notifications(sessionmaker, config, clock.now())
            if result.total or mail.sent:
                log.info("notifications: %d new, %d e-mailed", result.total, len(mail.sent))
        except Exception as exc:  # a database problem must not stop the delivery worker
            log.warning("notification sweep failed: %s", type(exc).__name__)
        if stop.wait(every.total_seconds()):
            return
