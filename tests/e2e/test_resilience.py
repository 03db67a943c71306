"""Issue #15's proofs with real processes.

1. A partner offline for a simulated week, then back: everything delivered once, in order, and the figure of
   the drain after the week (``offline_week.py`` runs the scenario; ``bench/week_offline_bench.py`` prints the
   figure at a larger size).
2. ``kill -9`` of the sender's web server (master and workers) and of its delivery worker during a load of
   handovers made through the API from several threads, and of the receiver's web server during the
   delivery: every handover the API acknowledged exists once and is delivered once, in order on its thread,
   nothing is half-saved, the receiver holds no duplicate.

(N workers on one PostgreSQL database with one killed: ``test_worker_death.py``.)
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa

from node.audit import AuditEntry
from node.cases.models import Case, CaseEvent
from node.config import load_config
from node.exchange.delivery.retry import RetryPolicy
from node.exchange.delivery.worker import load_settings
from node.exchange.handovers.models import Handover
from node.exchange.models import InboundMessage, OutboundMessage
from tests.e2e.delivery_support import (
    FAST,
    Databases,
    check_exactly_once_in_order,
    delivered,
    make_network,
    pair,
    received,
    reports,
    sent_order,
    wait_for,
)
from tests.e2e.offline_week import WeekPlan, case_body, consent_body, run_week
from tests.harness import Network, NodeProcess

pytestmark = pytest.mark.slow


@pytest.fixture
def dbs() -> Iterator[Databases]:
    databases = Databases()
    yield databases
    databases.close()


@pytest.fixture
def sqlite_net(tmp_path: Path) -> Iterator[Network]:
    yield from make_network(tmp_path, lambda: None)


# -- 1. a week offline -------------------------------------------------------------------------------------

def _probe_bounds(policy: RetryPolicy, week: timedelta) -> tuple[int, int]:
    """How many refused attempts a week of backoff allows: the intervals double up to the cap, then one probe
    per capped interval times a jitter factor in [low, high]."""
    ramp, interval = 0, policy.min_interval
    while interval < policy.max_interval:
        ramp, interval = ramp + 1, policy.next_interval(interval)
    seconds = week.total_seconds()
    return (int(seconds // (policy.max_interval * policy.jitter_high)),
            ramp + 2 + int(seconds // (policy.max_interval * policy.jitter_low)))


def test_a_partner_offline_for_a_week_gets_everything_once_in_order(sqlite_net: Network, dbs: Databases) -> None:
    gbg, sarajevo = pair(sqlite_net)
    plan = WeekPlan()
    policy = load_settings(load_config(gbg.data_dir)).policy
    week = run_week(dbs, gbg, sarajevo, plan)
    print(week.figure())

    # The week: nothing given up (the horizon is 14 days), the backoff capped, one probe per wait, the admin
    # told once that the partner is unreachable.
    assert week.given_up == 0 and week.interval_at_return == policy.max_interval
    low, high = _probe_bounds(policy, timedelta(days=plan.days))
    assert low <= week.probes <= high, (low, week.probes, high)
    assert timedelta(0) <= week.wait_after_return <= timedelta(seconds=policy.max_interval * policy.jitter_high)
    assert week.unreachable_notices == 1
    with dbs.session(gbg) as session:
        oldest = session.scalar(sa.select(sa.func.min(OutboundMessage.queued_at)))
        attempts = session.scalar(sa.select(sa.func.sum(OutboundMessage.attempts)))
    assert oldest is not None and week.probe_at is not None
    assert oldest + policy.horizon > week.probe_at  # still within the horizon when it came back
    [(drained, retried, parked, given_up)] = reports(gbg)  # what the real worker did after the first probe
    assert (drained, parked, given_up) == (week.total - 1, 0, 0)
    assert attempts == week.probes + 1 + drained + retried  # each refused probe, then each message once

    # Everything delivered once, in order on every thread, applied once; the handovers' domain ran.
    assert week.handovers == plan.days * plan.rounds_per_day
    assert len(week.order) == week.handovers + plan.bulk_threads
    check_exactly_once_in_order(dbs, gbg, sarajevo, week.order)
    with dbs.session(sarajevo) as session:
        incoming = list(session.scalars(sa.select(Handover).where(Handover.direction == "incoming")))
        types = {kind: n for kind, n in session.execute(sa.select(InboundMessage.type, sa.func.count())
                                                        .group_by(InboundMessage.type))}
    assert len(incoming) == week.handovers and sum(h.closed_at is not None for h in incoming) == week.closed
    assert types == {"handover": week.handovers, "case_closed": week.closed,
                     "receipt": week.total - week.handovers - week.closed}


# -- 2. kill -9 under a load of handovers ------------------------------------------------------------------

CASES, CLIENTS = 60, 4


@dataclass
class Load:
    """What the clients saw: the acknowledged answers, and the requests the kill cut."""

    sender: NodeProcess
    token: str
    acked: dict[str, str] = field(default_factory=dict)  # case → the handover id its 202 named
    closed: set[str] = field(default_factory=set)  # cases whose closing was acknowledged (200)
    cut: int = 0  # requests that got no answer
    committed_unacked: int = 0  # cut requests whose work had been committed (the retry answered 409)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def send(self, http: requests.Session, path: str, body: dict[str, Any], ok: int) -> dict[str, Any] | None:
        """POST until answered: the acknowledged body, or None when a cut attempt had committed it (409)."""
        cut = False
        while True:
            try:
                response = http.post(f"{self.sender.url}/api/v1{path}", json=body, timeout=30,
                                     headers={"Authorization": f"Bearer {self.token}"})
            except requests.RequestException:  # killed, or not back yet: the node never answered
                with self.lock:
                    self.cut += 0 if cut else 1
                cut = True
                time.sleep(0.05)
                continue
            if response.status_code == ok:
                return dict(response.json())
            if response.status_code == 409 and cut:  # our cut attempt had committed it
                with self.lock:
                    self.committed_unacked += 1
                return None
            assert response.status_code == 503, (path, response.status_code, response.text)  # changed nothing

    def client(self, cases: list[tuple[str, str]], recipient: str) -> None:
        with requests.Session() as http:
            for case_id, consent_id in cases:
                sent = self.send(http, f"/cases/{case_id}/handovers", {"recipient": recipient,
                                                                         "consent_id": consent_id}, 202)
                if sent is not None:
                    with self.lock:
                        self.acked[case_id] = sent["id"]
                if self.send(http, f"/cases/{case_id}/close", {"outcome": {"code": "plan_completed"}},
                             200) is not None:
                    with self.lock:
                        self.closed.add(case_id)


def _make_cases(node: NodeProcess, token: str, count_: int) -> list[tuple[str, str]]:
    def one(i: int) -> tuple[str, str]:
        case = node.api("POST", "/cases", token, json=case_body(i))
        assert case.status_code == 201, case.text
        consent = node.api("POST", f"/cases/{case.json()['id']}/consents", token,
                           json=consent_body("ba.cldd-sarajevo", date.today()))
        assert consent.status_code == 201, consent.text
        return case.json()["id"], consent.json()["id"]

    with ThreadPoolExecutor(CLIENTS) as pool:
        return list(pool.map(one, range(count_)))


def _start(*nodes: NodeProcess) -> None:
    with ThreadPoolExecutor(len(nodes)) as pool:
        list(pool.map(lambda node: node.start(), nodes))


def _count(dbs: Databases, node: NodeProcess, model: Any, *where: Any) -> int:
    with dbs.reader(node) as session:
        return int(session.scalar(sa.select(sa.func.count()).select_from(model).where(*where)) or 0)


def test_kill_9_of_web_and_workers_under_a_load_of_handovers(sqlite_net: Network, dbs: Databases) -> None:
    gbg, sarajevo = pair(sqlite_net)
    load = Load(gbg, gbg.user("anna.lindqvist", "counsellor", team="gbg"))
    _start(gbg, sarajevo)
    worker = gbg.spawn("deliver", *FAST)
    cases = _make_cases(gbg, load.token, CASES)
    assert received(dbs, sarajevo) == 0  # (opens the receiver's database now, not at the moment of the kill)
    clients = [threading.Thread(target=load.client, args=(cases[i::CLIENTS], sarajevo.node_id))
               for i in range(CLIENTS)]
    for client in clients:
        client.start()

    # The sender's delivery worker and web server (master and workers), SIGKILL, in the middle of the load.
    wait_for(lambda: len(load.acked), CASES // 3, "a third of the handovers acknowledged", gbg)
    gbg.stop_process(worker, signal.SIGKILL)
    gbg.kill()
    acked_at_kill = len(load.acked)
    _start(gbg)
    worker = gbg.spawn("deliver", *FAST)

    # The receiver's web server, SIGKILL, in the middle of the delivery.
    wait_for(lambda: received(dbs, sarajevo), CASES // 2, "a quarter of the messages received", sarajevo)
    sarajevo.kill()
    received_at_kill = received(dbs, sarajevo)
    assert received_at_kill < 2 * CASES
    _start(sarajevo)
    for client in clients:
        client.join(timeout=300)
    wait_for(lambda: delivered(dbs, gbg), 2 * CASES, "the queue to drain", gbg)
    assert gbg.stop_process(worker) == 0
    print(f"kill -9 under load: {CASES} handovers and {CASES} closings through the API from {CLIENTS} clients; "
          f"sender web and worker killed at {acked_at_kill} acknowledged handovers, {load.cut} requests cut "
          f"({load.committed_unacked} of them had committed), receiver killed at {received_at_kill} received; "
          f"all {2 * CASES} delivered")
    assert load.cut >= 1  # the kill did cut requests in flight

    # Every case handed over and closed exactly once; what was acknowledged is there under the same id.
    with dbs.session(gbg) as session:
        handovers = {h.case_id: h for h in session.scalars(sa.select(Handover))}
        closed = set(session.scalars(sa.select(Case.id).where(Case.status == "closed")))
    assert len(handovers) == _count(dbs, gbg, Handover) == CASES
    assert all(handovers[case].id == handover_id for case, handover_id in load.acked.items())
    assert len(load.acked) + len(load.closed) + load.committed_unacked == 2 * CASES
    assert closed == set(handovers) == {case for case, _ in cases}
    # Nothing half-saved: each handover and each closing has its message, timeline event and audit entry, once.
    for kind, message, event, audit in (
            ("handover", OutboundMessage.type == "handover", CaseEvent.kind == "handover.sent",
             sa.and_(AuditEntry.action == "create", AuditEntry.object_type == "handover")),
            ("closing", OutboundMessage.type == "case_closed", CaseEvent.kind == "case.closed",
             sa.and_(AuditEntry.action == "update", AuditEntry.object_type == "case"))):
        counts = (_count(dbs, gbg, OutboundMessage, message), _count(dbs, gbg, CaseEvent, event),
                  _count(dbs, gbg, AuditEntry, audit))
        assert counts == (CASES, CASES, CASES), kind
    with dbs.session(gbg) as session:
        chains = {(m.thread, m.seq, m.type) for m in session.scalars(sa.select(OutboundMessage))}
    assert chains == {(h.thread, 1, "handover") for h in handovers.values()} | {
        (h.thread, 2, "case_closed") for h in handovers.values()}
    # Delivered once, in order on each thread, applied once; the receiver holds each handover once.
    check_exactly_once_in_order(dbs, gbg, sarajevo, sent_order(dbs, gbg))
    with dbs.session(sarajevo) as session:
        incoming = list(session.scalars(sa.select(Handover).where(Handover.direction == "incoming")))
    assert len({h.message_id for h in incoming}) == len(incoming) == CASES
    assert all(h.closed_at is not None for h in incoming)
