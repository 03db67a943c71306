"""The delivery worker: drains the outbox to partners' inboxes, in parallel across threads, in order within.

One loop per worker, a small thread pool for the HTTP requests. Each turn of the loop is one database
transaction that records the outcomes of the attempts that finished, gives up overdue messages, and claims
as many due messages as there are free threads (``queue.claim``). So one slow or dead partner holds at most
its probe's thread while everything else flows, independent case threads are delivered concurrently (a backlog
drains at the receiver's pace, not at one round trip per message), and a thread never has two messages in
flight. Claims are held under a short lease (``lease_seconds``, 6 s) that the loop extends every sixth of a
lease (1 s) for the messages still in flight (its heartbeat, in the transactions it runs anyway or in one of
its own); the loop looks for expired leases every second, so the messages of a worker that was killed are
taken over within about one lease (7 s at most), by another worker or by the same one restarted, while a
live worker keeps its claims unless its loop stalls for five seconds. The worker needs no private key:
messages are sealed when they are queued; it checks each receipt against the partner's card.

An idle worker waits for its next poll, or on PostgreSQL until a message is queued (``wakeup.py``).
``ccm-node deliver`` runs :meth:`DeliveryWorker.run` until SIGTERM/SIGINT; ``--once`` drains what is due and
exits. :func:`start_in_process` runs the same loop in a thread of a single-process setup.
"""

from __future__ import annotations

import logging
import os
import random
import secrets
import socket
import threading
import tomllib
from collections.abc import Callable, Collection
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from flask import Flask
from sqlalchemy import orm
from sqlalchemy.exc import SQLAlchemyError

from node.clock import Clock
from node.config import CONFIG_FILE, NodeConfig
from node.exchange.delivery.queue import Claim, Outcome, claim, extend_leases, give_up_overdue, record_outcomes
from node.exchange.delivery.retry import RETRYABLE_CODES, RetryPolicy, Verdict, classify
from node.exchange.delivery.transport import DeliveryAnswer, HttpTransport, Transport
from node.exchange.delivery.wakeup import Waker
from node.outbound import OutboundPolicy
from protocol import NodeCard, canonical_bytes, strict_loads, verify_receipt
from protocol.cards import card_from_bytes
from protocol.envelope import CLOCK_SKEW, envelope_sender
from protocol.errors import ProtocolError

log = logging.getLogger(__name__)

SWEEP_EVERY = timedelta(seconds=30)
#: The longest a worker goes without looking for messages whose worker died (their lease expired).
LEASE_CHECK_EVERY = timedelta(seconds=1)
#: How long a worker waits for more attempts to finish before recording the first ones (a few ms of latency
#: buys fewer, larger transactions).
LINGER = 0.01


@dataclass(frozen=True)
class WorkerSettings:
    """How a worker runs. ``node.toml`` may set them in a ``[delivery]`` table (see :func:`load_settings`)."""

    parallel: int = 8
    #: How long a claim outlives its worker's last heartbeat (the worker extends it every sixth of a lease).
    lease: timedelta = timedelta(seconds=6)
    poll_interval: float = 0.2
    policy: RetryPolicy = field(default_factory=RetryPolicy)

    @property
    def heartbeat(self) -> timedelta:
        """How often a worker extends the leases of the messages it has in flight."""
        return self.lease / 6

    @property
    def lease_check(self) -> timedelta:
        """How often a worker looks for messages whose lease expired (their worker died)."""
        return min(self.lease / 6, LEASE_CHECK_EVERY)


_TOML_KEYS = {"parallel", "lease_seconds", "poll_seconds", "min_backoff_seconds", "max_backoff_seconds",
              "horizon_days"}


def load_settings(config: NodeConfig, **overrides: Any) -> WorkerSettings:
    """Worker settings from ``[delivery]`` in node.toml, then ``overrides`` (None values ignored).

    Keys: ``parallel``, ``lease_seconds``, ``poll_seconds``, ``min_backoff_seconds``, ``max_backoff_seconds``,
    ``horizon_days``.

    Raises:
        ValueError: an unknown key or an out-of-range value.
    """
    path = config.data_dir / CONFIG_FILE
    table: dict[str, Any] = {}
    if path.is_file():
        table = dict(tomllib.loads(path.read_text(encoding="utf-8")).get("delivery", {}))
    table.update({k: v for k, v in overrides.items() if v is not None})
    unknown = set(table) - _TOML_KEYS
    if unknown:
        raise ValueError(f"unknown delivery settings: {', '.join(sorted(unknown))}")
    base = WorkerSettings()
    policy = base.policy
    policy = replace(
        policy,
        min_interval=float(table.get("min_backoff_seconds", policy.min_interval)),
        max_interval=float(table.get("max_backoff_seconds", policy.max_interval)),
        horizon=timedelta(days=float(table.get("horizon_days", policy.horizon.days))),
    )
    settings = WorkerSettings(
        parallel=int(table.get("parallel", base.parallel)),
        lease=timedelta(seconds=float(table.get("lease_seconds", base.lease.total_seconds()))),
        poll_interval=float(table.get("poll_seconds", base.poll_interval)),
        policy=policy,
    )
    if not 1 <= settings.parallel <= 64 or settings.lease <= timedelta(0) or settings.poll_interval <= 0:
        raise ValueError("need 1 <= parallel <= 64, a positive lease and a positive poll interval")
    return settings


def problem_code(body: bytes) -> str | None:
    """The ``code`` of a problem-details answer, if it holds a short ASCII one."""
    try:
        doc = strict_loads(body)
    except (ProtocolError, ValueError):
        return None
    code = doc.get("code") if isinstance(doc, dict) else None
    return code if isinstance(code, str) and code.isascii() and 0 < len(code) <= 64 else None


@dataclass
class WorkerStats:
    delivered: int = 0
    retried: int = 0
    parked: int = 0
    given_up: int = 0


class DeliveryWorker:
    """Delivers queued messages. Inject the session factory, clock, transport and random source."""

    def __init__(self, *, sessionmaker: orm.sessionmaker[orm.Session], clock: Clock,
                 settings: WorkerSettings | None = None, transport: Transport | None = None,
                 rng: random.Random | None = None, worker_id: str | None = None) -> None:
        self.sessionmaker = sessionmaker
        self.clock = clock
        self.settings = settings or WorkerSettings()
        self.transport = transport or HttpTransport()
        self.rng = rng or random.Random()  # noqa: S311 - jitter, not a secret
        self.worker_id = worker_id or f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(3)}"
        self.stats = WorkerStats()
        self._cards: dict[int, tuple[str, NodeCard]] = {}
        self._cards_lock = threading.Lock()
        self._last_sweep: datetime | None = None
        self._last_lease_check: datetime | None = None
        self._last_heartbeat: datetime | None = None

    # -- one attempt (in a pool thread) -------------------------------------------------------------------
    def _card(self, item: Claim) -> NodeCard:
        with self._cards_lock:
            cached = self._cards.get(item.partner_id)
            if cached is None or cached[0] != item.card:
                cached = (item.card, card_from_bytes(item.card.encode("utf-8")))
                self._cards[item.partner_id] = cached
            return cached[1]

    def judge(self, item: Claim, answer: DeliveryAnswer) -> Outcome:
        """Turn a partner's answer into an outcome; a 200 counts only with a valid receipt for the message."""
        if answer.status is None or answer.error is not None:
            return Outcome(item, Verdict.RETRY, error=answer.error or "no_answer")
        code = None if answer.status == 200 else problem_code(answer.body)
        verdict = classify(answer.status, code)
        if verdict is not Verdict.DELIVERED:
            return Outcome(item, verdict, error=code or f"http_{answer.status}",
                           retry_after=answer.retry_after)
        try:
            receipt = strict_loads(answer.body)
        except (ProtocolError, ValueError):
            # Not JSON at all: the answer was cut short (the partner died between storing the message and
            # finishing its answer; http.client hands back a short body without error when the server closes
            # the connection). Try again: the partner answers the retransmission with the receipt it stored.
            return Outcome(item, Verdict.RETRY, error="incomplete_answer")
        try:
            verify_receipt(receipt, self._card(item), sender=envelope_sender(item.envelope),
                           message_id=item.message_id, content_hash=item.message_hash)
        except ProtocolError as exc:
            log.warning("delivery %s to %s: the receipt does not verify (%s)", item.message_id,
                        item.recipient, exc.code)
            return Outcome(item, Verdict.PARK, error="bad_receipt")
        return Outcome(item, Verdict.DELIVERED, receipt=canonical_bytes(receipt).decode("utf-8"))

    def attempt(self, item: Claim) -> Outcome:
        try:
            return self.judge(item, self.transport.deliver(item.base_url, item.envelope))
        except Exception:
            log.exception("delivery %s to %s failed unexpectedly", item.message_id, item.recipient)
            return Outcome(item, Verdict.RETRY, error="internal_error")

    # -- the loop ------------------------------------------------------------------------------------------
    def step(self, outcomes: list[Outcome], free: int, probing: set[int],
             holding: Collection[Claim] = ()) -> list[Claim]:
        """One transaction: record finished attempts, extend the leases of the messages still in flight
        (``holding``) when a heartbeat is due, give up overdue messages, claim up to ``free``."""
        now = self.clock.now()
        sweep = self._last_sweep is None or now - self._last_sweep >= SWEEP_EVERY
        heartbeat = bool(holding) and now - self._oldest_lease(holding) >= self.settings.heartbeat
        if not outcomes and free <= 0 and not sweep and not heartbeat:
            return []  # nothing to record, extend or claim: no transaction
        with self.sessionmaker() as session, session.begin():
            record_outcomes(session, outcomes, worker_id=self.worker_id, now=now, policy=self.settings.policy,
                            rng=self.rng)
            if heartbeat:
                held = extend_leases(session, sorted(c.id for c in holding), worker_id=self.worker_id, now=now,
                                     lease=self.settings.lease)
                if held < len(holding):
                    log.warning("delivery worker: %d lease(s) had passed to another worker (this worker was "
                                "stalled for longer than its lease)", len(holding) - held)
                self._last_heartbeat = now
            if sweep:
                given_up = give_up_overdue(session, now=now, policy=self.settings.policy)
                if given_up:
                    log.info("gave up %d message(s): retry horizon reached or envelope expired", given_up)
                self.stats.given_up += given_up
                self._last_sweep = now
            leases = self._last_lease_check is None or now - self._last_lease_check >= self.settings.lease_check
            claims = claim(session, worker_id=self.worker_id, now=now, limit=free, lease=self.settings.lease,
                           probing=probing, expired_leases=leases)
            if leases and free > 0:  # looked (with no free thread, nothing was looked at)
                self._last_lease_check = now
        for outcome in outcomes:
            if outcome.verdict is Verdict.DELIVERED:
                self.stats.delivered += 1
            elif outcome.verdict is Verdict.PARK:
                self.stats.parked += 1
                log.info("message %s parked: %s refused it (%s)", outcome.claim.message_id,
                         outcome.claim.recipient, outcome.error)
            else:
                self.stats.retried += 1
                if outcome.error in RETRYABLE_CODES:  # not_yet_valid: the partner's clock is behind ours
                    log.warning("message %s to %s refused for clock skew (%s): it was sealed more than %d s ahead "
                                "of %s's clock; check both nodes' clocks (NTP). Retrying.",
                                outcome.claim.message_id, outcome.claim.recipient, outcome.error,
                                CLOCK_SKEW.total_seconds(), outcome.claim.recipient)
        return claims

    def _oldest_lease(self, holding: Collection[Claim]) -> datetime:
        """When the oldest lease among ``holding`` was taken or last extended."""
        last = self._last_heartbeat
        return min(c.claimed_at if last is None or c.claimed_at > last else last for c in holding)

    def run(self, stop: threading.Event | None = None, *, once: bool = False,
            sleep: Callable[[float], object] | None = None) -> WorkerStats:
        """Deliver until ``stop`` is set (or, with ``once``, until nothing is due and nothing in flight).

        Args:
            stop: set it to stop; attempts in flight are finished and recorded first.
            once: drain what is due now and return.
            sleep: how to wait when idle (default: until the poll interval passes, ``stop`` is set or, on
                PostgreSQL, a message is queued: ``wakeup.Waker``).
        Returns:
            Counts of what this run did (also in ``self.stats`` while it runs).
        """
        stop = stop or threading.Event()
        waker = Waker(self.sessionmaker.kw.get("bind"), stop)
        idle = sleep or waker.wait
        self.stats = WorkerStats()
        try:
            if sleep is None and not once:
                waker.listen()
            with ThreadPoolExecutor(self.settings.parallel, thread_name_prefix="ccm-deliver") as pool:
                return self._loop(pool, stop, once, idle)
        finally:
            waker.close()
            self.transport.close()

    def _loop(self, pool: ThreadPoolExecutor, stop: threading.Event, once: bool,
              idle: Callable[[float], object]) -> WorkerStats:
        in_flight: dict[Future[Outcome], Claim] = {}
        finished: list[Outcome] = []
        while True:
            for future in [f for f in in_flight if f.done()]:
                in_flight.pop(future)
                finished.append(future.result())
            stopping = stop.is_set()
            free = 0 if stopping else self.settings.parallel - len(in_flight)
            try:
                claims = self.step(finished, free, {c.partner_id for c in in_flight.values()},
                                   list(in_flight.values()))
            except SQLAlchemyError as exc:
                log.warning("delivery worker: database error (%s); retrying", type(exc).__name__)
                if once and not in_flight:
                    raise
                idle(self.settings.poll_interval)
                continue
            finished = []
            for item in claims:
                in_flight[pool.submit(self.attempt, item)] = item
            if not in_flight:
                if stopping or (once and not claims):
                    return self.stats
                if not claims:
                    idle(self.settings.poll_interval)
                continue
            self._await(list(in_flight))

    def _await(self, pending: list[Future[Outcome]]) -> None:
        """Wait until some attempts finish; then linger briefly so that one transaction records several."""
        timeout = min(self.settings.poll_interval, self.settings.heartbeat.total_seconds())
        done, rest = wait(pending, timeout=timeout, return_when=FIRST_COMPLETED)
        if done and rest and len(done) < len(pending) // 2:
            wait(rest, timeout=LINGER)


class DeliveryThread:
    """A delivery worker running in a daemon thread of the web process (single-process setups)."""

    def __init__(self, worker: DeliveryWorker) -> None:
        self.worker = worker
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ccm-delivery", daemon=True)

    def _run(self) -> None:
        try:
            self.worker.run(self._stop)
        except Exception:
            log.exception("the in-process delivery worker stopped")

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._thread.join(timeout)


def start_in_process(app: Flask, settings: WorkerSettings | None = None,
                     transport: Transport | None = None) -> DeliveryThread:
    """Start a delivery worker thread on the app's database and clock, and return it (call ``stop()``).

    Args:
        app: the node app.
        settings: worker settings; default from the node's configuration.
        transport: how to reach partners; HTTP by default.
    """
    ctx = app.extensions["ccm"]
    worker = DeliveryWorker(sessionmaker=ctx.sessionmaker, clock=ctx.clock,
                            settings=settings or load_settings(ctx.config),
                            transport=transport or HttpTransport(policy=OutboundPolicy.from_config(ctx.config)))
    thread = DeliveryThread(worker)
    thread.start()
    return thread
