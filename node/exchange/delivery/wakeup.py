"""Waking the delivery worker when a message is queued, instead of waiting for its next poll.

On PostgreSQL the transaction that queues a message also sends ``NOTIFY ccm_outbox`` (:func:`notify_queued`;
PostgreSQL delivers it only if that transaction commits, and once however many messages it queued), and an
idle worker waits with ``LISTEN ccm_outbox`` on a connection of its own (:class:`Waker`): a handover leaves
as soon as it is committed. The poll interval still bounds every wait, so nothing depends on a notification
arriving (messages that become due later, a lost connection). On SQLite there is no such channel between
processes: the worker polls.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm

log = logging.getLogger(__name__)

CHANNEL = "ccm_outbox"
#: While listening, how often (seconds) a waiting worker looks whether it was asked to stop.
STOP_CHECK = 0.25
_NOTIFY = sa.text(f"NOTIFY {CHANNEL}")


def notify_queued(session: orm.Session) -> None:
    """Tell idle delivery workers that a message is queued, when the session's transaction commits."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(_NOTIFY)


class Waker:
    """How an idle delivery worker waits: until ``timeout`` passes, ``stop`` is set (SQLite, or no listening
    connection) or a message is queued (PostgreSQL)."""

    def __init__(self, engine: sa.Engine | None, stop: threading.Event) -> None:
        self._engine = engine if engine is not None and engine.dialect.name == "postgresql" else None
        self._stop = stop
        self._held: Any = None  # the pool's connection, kept checked out while listening

    def listen(self) -> None:
        """Start listening now (before the worker's first claim, so that no commit falls between the two)."""
        self._listening()

    def _listening(self) -> Any:
        """The psycopg connection listening on ``CHANNEL`` (made on first use); None if it cannot be had."""
        if self._held is None and self._engine is not None:
            try:
                held = self._engine.raw_connection()
                driver = held.driver_connection
                driver.autocommit = True
                driver.execute(f"LISTEN {CHANNEL}")
            except Exception as exc:  # SQLAlchemy's or psycopg's (not imported on a SQLite node)
                log.warning("delivery worker: cannot listen for queued messages (%s); polling", type(exc).__name__)
                return None
            self._held = held
        return None if self._held is None else self._held.driver_connection

    def wait(self, timeout: float) -> None:
        """Wait for the next poll (``timeout`` seconds), ``stop`` or a queued message, whichever comes first
        (``stop`` is looked at every :data:`STOP_CHECK` seconds while listening)."""
        connection = None if self._stop.is_set() else self._listening()
        if connection is None:
            self._stop.wait(timeout)
            return
        deadline = time.monotonic() + timeout
        try:
            while not self._stop.is_set() and (left := deadline - time.monotonic()) > 0:
                if list(connection.notifies(timeout=min(left, STOP_CHECK), stop_after=1)):
                    list(connection.notifies(timeout=0))  # any others that came with it: one wake-up will do
                    return
        except Exception as exc:  # the connection broke: poll this time, listen again next time
            log.warning("delivery worker: lost the notification connection (%s)", type(exc).__name__)
            self.close()
            self._stop.wait(max(0.0, deadline - time.monotonic()))

    def close(self) -> None:
        """Give the listening connection up (it is discarded, not returned to the pool)."""
        held, self._held = self._held, None
        if held is not None:
            held.invalidate()
