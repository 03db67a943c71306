"""Short leases kept alive by the worker that holds them: with a fake clock, a live worker's claims never expire
however long its attempt takes, a dead worker's expire within one lease, and another worker takes a message
over only once its lease expired."""

from __future__ import annotations

import random
import threading
import time
from datetime import datetime, timedelta

import pytest

from node.exchange.delivery.queue import Claim, Outcome, extend_leases
from node.exchange.delivery.retry import Verdict
from node.exchange.delivery.transport import DeliveryAnswer
from node.exchange.delivery.worker import DeliveryWorker, WorkerSettings, load_settings
from node.exchange.models import OutboundMessage
from tests.exchange.conftest import POLICY, FlaskTransport, Node, note_body, thread_id

pytestmark = pytest.mark.usefixtures("no_domain_appliers")

LEASE = timedelta(seconds=6)


def _worker(node: Node, transport: FlaskTransport, name: str, poll: float = 0.2) -> DeliveryWorker:
    return DeliveryWorker(sessionmaker=node.sessionmaker, clock=node.clock, transport=transport,
                          settings=WorkerSettings(parallel=2, lease=LEASE, poll_interval=poll, policy=POLICY),
                          rng=random.Random(7), worker_id=name)


def _row(node: Node, message_id: int) -> OutboundMessage:
    with node.sessionmaker() as session:
        row = session.get(OutboundMessage, message_id)
        assert row is not None
        return row


def _lease(node: Node, message_id: int) -> tuple[str, str | None, datetime | None]:
    row = _row(node, message_id)
    return row.status, row.claimed_by, row.lease_until


def test_the_defaults_make_a_dead_workers_claims_free_within_ten_seconds(gbg: Node) -> None:
    settings = load_settings(gbg.app.extensions["ccm"].config)
    assert settings.lease == LEASE
    assert settings.heartbeat == timedelta(seconds=1)
    assert settings.lease_check == timedelta(seconds=1)
    assert settings.lease + settings.lease_check < timedelta(seconds=10)


def test_a_live_worker_extends_the_leases_it_holds_and_only_those(paired: tuple[Node, Node],
                                                                  transport: FlaskTransport) -> None:
    gbg, sarajevo = paired
    first = gbg.send(sarajevo, note_body("a"), thread_id("a"))
    worker = _worker(gbg, transport, "alive")
    start = gbg.clock.now()
    [held] = worker.step([], 1, set())
    assert _lease(gbg, first.id) == ("sending", "alive", start + LEASE)
    gbg.clock.advance(seconds=0.5)
    assert worker.step([], 0, set(), [held]) == []  # no heartbeat due yet: no transaction
    assert _lease(gbg, first.id)[2] == start + LEASE
    for _ in range(60):  # a minute of an attempt that does not finish: the lease never runs out
        gbg.clock.advance(seconds=1)
        worker.step([], 0, set(), [held])
        assert _lease(gbg, first.id) == ("sending", "alive", gbg.clock.now() + LEASE)
    # Another worker's claim is never extended by this one.
    with gbg.sessionmaker() as session:
        assert extend_leases(session, [first.id], worker_id="someone-else", now=gbg.clock.now(),
                             lease=timedelta(hours=1)) == 0
        session.commit()
    assert _lease(gbg, first.id)[2] == gbg.clock.now() + LEASE


def test_a_dead_workers_message_is_taken_over_after_its_lease_and_its_thread_goes_on(
        paired: tuple[Node, Node], transport: FlaskTransport) -> None:
    gbg, sarajevo = paired
    thread = thread_id("t")
    first = gbg.send(sarajevo, note_body("1"), thread)
    second = gbg.send(sarajevo, note_body("2"), thread)
    dead = _worker(gbg, transport, "dead")
    [held] = dead.step([], 2, set())  # one message of a thread at a time
    gbg.clock.advance(seconds=1)
    dead.step([], 0, set(), [held])  # its last heartbeat; then it is killed
    died = gbg.clock.now()
    survivor = _worker(gbg, transport, "survivor")
    while gbg.clock.now() < died + LEASE:  # the lease holds while it runs: nothing to take over
        assert survivor.step([], 2, set()) == []
        gbg.clock.advance(seconds=0.5)
    assert _lease(gbg, first.id)[1] == "dead"
    gbg.clock.advance(seconds=0.5)
    [taken] = survivor.step([], 2, set())
    assert (taken.id, _lease(gbg, first.id)[:2]) == (first.id, ("sending", "survivor"))
    assert taken.claimed_at - died <= LEASE + survivor.settings.lease_check
    # The dead worker's heartbeat, had it only been stalled, no longer holds the message ...
    with gbg.sessionmaker() as session:
        assert extend_leases(session, [first.id], worker_id="dead", now=gbg.clock.now(), lease=LEASE) == 0
        session.commit()
    # ... and its late failure does not release the survivor's claim.
    dead.step([Outcome(held, Verdict.RETRY, error="connection_failed")], 0, set())
    assert _lease(gbg, first.id)[:2] == ("sending", "survivor")
    outcome = survivor.attempt(taken)
    assert outcome.verdict is Verdict.DELIVERED
    [after] = survivor.step([outcome], 2, set())  # the thread goes on with its next message
    assert after.id == second.id
    survivor.step([survivor.attempt(after)], 2, set())
    assert [(m.status, m.attempts) for m in gbg.outbound()] == [("delivered", 2), ("delivered", 1)]
    assert [m.message_id for m in sarajevo.inbound()] == [first.message_id, second.message_id]


def test_a_second_worker_never_takes_a_message_a_live_worker_holds(paired: tuple[Node, Node],
                                                                   transport: FlaskTransport) -> None:
    gbg, sarajevo = paired
    message = gbg.send(sarajevo, note_body("slow"), thread_id("slow"))
    alive, other = _worker(gbg, transport, "alive"), _worker(gbg, transport, "other")
    [held] = alive.step([], 1, set())
    for _ in range(240):  # two minutes of an attempt that takes its time, the other worker looking often
        gbg.clock.advance(seconds=0.5)
        alive.step([], 0, set(), [held])
        assert other.step([], 2, set()) == []
    outcome = alive.attempt(held)
    alive.step([outcome], 1, set())
    row = _row(gbg, message.id)
    assert (row.status, row.attempts, row.claimed_by, row.lease_until) == ("delivered", 1, None, None)


def test_the_worker_loop_keeps_its_lease_alive_during_a_long_attempt(paired: tuple[Node, Node],
                                                                      transport: FlaskTransport) -> None:
    """The heartbeat is part of the running loop (not only of ``step``): while an attempt hangs, the fake
    clock moves on and the loop extends the lease; the attempt then finishes and is recorded."""
    gbg, sarajevo = paired
    message = gbg.send(sarajevo, note_body("hang"), thread_id("hang"))
    release, entered = threading.Event(), threading.Event()

    def hang(base_url: str, envelope: bytes) -> DeliveryAnswer | None:
        entered.set()
        release.wait(30)
        return None  # then deliver for real

    transport.override = hang
    worker = _worker(gbg, transport, "looping", poll=0.01)
    done: list[int] = []
    runner = threading.Thread(target=lambda: done.append(worker.run(once=True).delivered))
    runner.start()
    try:
        assert entered.wait(30)
        assert _lease(gbg, message.id) == ("sending", "looping", gbg.clock.now() + LEASE)
        for _ in range(3):  # 12 s in an attempt: past its first lease, still held
            gbg.clock.advance(seconds=4)
            deadline = time.monotonic() + 20
            while _lease(gbg, message.id)[2] != gbg.clock.now() + LEASE:
                assert time.monotonic() < deadline, "the loop did not extend its lease"
                time.sleep(0.01)
    finally:
        release.set()
        runner.join(30)
    assert done == [1]
    assert _row(gbg, message.id).status == "delivered"


def test_claims_carry_the_time_their_lease_started(paired: tuple[Node, Node], transport: FlaskTransport) -> None:
    gbg, sarajevo = paired
    gbg.send(sarajevo, note_body("x"), thread_id("x"))
    [held] = _worker(gbg, transport, "w").step([], 1, set())
    assert isinstance(held, Claim) and held.claimed_at == gbg.clock.now()
