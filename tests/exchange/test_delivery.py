"""The delivery worker with a fake clock and an in-process transport: backoff per partner, catch-up, the retry
horizon, parking, order within a thread, parallel threads, leases."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import timedelta

import pytest
import sqlalchemy as sa

from node.exchange.delivery.queue import QueueError, claim, retry_given_up, retry_message, retry_partner
from node.exchange.delivery.transport import DeliveryAnswer
from node.exchange.delivery.worker import DeliveryWorker, WorkerSettings, start_in_process
from node.exchange.models import OutboundMessage
from node.exchange.trust.partners import set_status
from protocol import canonical_bytes, sign_json
from tests.exchange.conftest import FlaskTransport, Node, note_body, thread_id

pytestmark = pytest.mark.usefixtures("no_domain_appliers")

Worker = Callable[..., DeliveryWorker]


def _send_many(sender: Node, recipient: Node, threads: int, per_thread: int) -> list[OutboundMessage]:
    return [sender.send(recipient, note_body(f"{recipient.key} t{t} m{m}"), thread_id(f"{recipient.key}-{t}"))
            for m in range(per_thread) for t in range(threads)]


def _statuses(node: Node) -> list[str]:
    return [m.status for m in node.outbound()]


def test_partner_down_for_days_is_retried_without_hammering(paired: tuple[Node, Node], make_worker: Worker,
                                                            transport: FlaskTransport) -> None:
    gbg, sarajevo = paired
    _send_many(gbg, sarajevo, threads=3, per_thread=1)
    transport.down.add(sarajevo.base_url)
    worker = make_worker(gbg, parallel=1)
    worker.run(once=True)
    assert len(transport.calls) == 1  # one failure, then the partner is backing off
    partner = gbg.partner("ba.cldd-sarajevo")
    assert partner.retry_interval == 10
    assert partner.retry_at is not None
    assert timedelta(seconds=8) <= partner.retry_at - gbg.clock.now() <= timedelta(seconds=14)
    worker.run(once=True)
    assert len(transport.calls) == 1  # nothing while backing off

    intervals = []
    start = gbg.clock.now()
    while gbg.clock.now() - start < timedelta(days=2):
        retry_at = gbg.partner("ba.cldd-sarajevo").retry_at
        assert retry_at is not None
        gbg.clock.set(retry_at)
        worker.run(once=True)
        interval = gbg.partner("ba.cldd-sarajevo").retry_interval
        intervals.append(interval)
    assert intervals[:6] == [20, 40, 80, 160, 320, 600] and set(intervals[6:]) == {600}
    assert len(transport.calls) == len(intervals) + 1 <= 2 * 86400 / (0.8 * 600) + 10  # one probe per wait
    assert _statuses(gbg) == ["queued"] * 3
    assert sarajevo.inbound() == []


def test_partner_back_is_caught_up_when_it_sends_us_anything(paired: tuple[Node, Node], make_worker: Worker,
                                                             transport: FlaskTransport) -> None:
    gbg, sarajevo = paired
    _send_many(gbg, sarajevo, threads=4, per_thread=2)
    transport.down.add(sarajevo.base_url)
    gbg_worker = make_worker(gbg, parallel=4)
    for _ in range(5):  # a long outage: the backoff has grown
        gbg_worker.run(once=True)
        retry_at = gbg.partner("ba.cldd-sarajevo").retry_at
        assert retry_at is not None
        gbg.clock.set(retry_at)
    gbg_worker.run(once=True)
    assert gbg.partner("ba.cldd-sarajevo").retry_interval >= 160
    transport.down.clear()
    sarajevo.send(gbg, note_body("hello from Sarajevo"), thread_id("reply"))
    assert make_worker(sarajevo).run(once=True).delivered == 1
    partner = gbg.partner("ba.cldd-sarajevo")
    assert (partner.retry_interval, partner.retry_at) == (0.0, None)  # reset by receiving
    assert gbg_worker.run(once=True).delivered == 8  # at once, without waiting for the backoff
    assert _statuses(gbg) == ["delivered"] * 8


def test_queue_retry_of_a_partner_resets_its_backoff(paired: tuple[Node, Node], make_worker: Worker,
                                                     transport: FlaskTransport) -> None:
    gbg, sarajevo = paired
    _send_many(gbg, sarajevo, threads=2, per_thread=1)
    transport.down.add(sarajevo.base_url)
    worker = make_worker(gbg)
    worker.run(once=True)
    transport.down.clear()
    assert worker.run(once=True).delivered == 0
    with gbg.sessionmaker() as session:
        _partner, waiting = retry_partner(session, "ba.cldd-sarajevo", gbg.clock.now())
        session.commit()
    assert waiting == 2
    assert worker.run(once=True).delivered == 2


def test_retry_horizon_makes_messages_undeliverable(paired: tuple[Node, Node], make_worker: Worker,
                                                    transport: FlaskTransport) -> None:
    gbg, sarajevo = paired
    _send_many(gbg, sarajevo, threads=2, per_thread=2)
    transport.down.add(sarajevo.base_url)
    worker = make_worker(gbg)
    worker.run(once=True)
    gbg.clock.advance(days=13, hours=23)
    worker.run(once=True)
    assert _statuses(gbg) == ["queued"] * 4
    gbg.clock.advance(hours=2)
    worker.run(once=True)
    assert _statuses(gbg) == ["undeliverable"] * 4
    assert {m.last_error for m in gbg.outbound()} == {"retry_horizon"}
    assert worker.stats.given_up == 4
    transport.down.clear()
    with gbg.sessionmaker() as session:  # the administrator sends one again: it goes, in thread order
        first = gbg.outbound()[0]
        assert retry_message(session, str(first.id), gbg.clock.now()).status == "queued"
        session.commit()
    assert worker.run(once=True).delivered == 1
    assert _statuses(gbg) == ["delivered", "undeliverable", "undeliverable", "undeliverable"]
    with gbg.sessionmaker() as session:  # then all the rest at once (ccm-node queue retry --partner --given-up)
        partner, requeued, left = retry_given_up(session, sarajevo.node_id, gbg.clock.now())
        session.commit()
    assert (partner.node_id, requeued, left) == (sarajevo.node_id, 3, 0)
    assert worker.run(once=True).delivered == 3
    assert _statuses(gbg) == ["delivered"] * 4
    for thread in {m.thread for m in gbg.outbound()}:  # each thread in its chain order
        assert [m.message_id for m in sarajevo.inbound() if m.thread == thread] == [
            m.message_id for m in sorted(gbg.outbound(), key=lambda m: m.seq) if m.thread == thread]


def test_given_up_messages_whose_envelope_expired_stay_given_up(paired: tuple[Node, Node], make_worker: Worker,
                                                                transport: FlaskTransport) -> None:
    gbg, sarajevo = paired
    _send_many(gbg, sarajevo, threads=1, per_thread=2)
    transport.down.add(sarajevo.base_url)
    worker = make_worker(gbg)
    gbg.clock.advance(days=31)  # past the envelopes' 30 days
    worker.run(once=True)
    assert {m.last_error for m in gbg.outbound()} == {"envelope_expired"}
    with gbg.sessionmaker() as session:
        assert retry_given_up(session, sarajevo.node_id, gbg.clock.now())[1:] == (0, 2)
        set_status(session, sarajevo.node_id, "revoked", gbg.clock.now())
        session.commit()
    with gbg.sessionmaker() as session, pytest.raises(QueueError, match="revoked"):
        retry_given_up(session, sarajevo.node_id, gbg.clock.now())


def test_refusal_for_good_parks_the_message_and_only_its_thread_waits(
        paired: tuple[Node, Node], make_worker: Worker, transport: FlaskTransport) -> None:
    gbg, sarajevo = paired
    refused = gbg.send(sarajevo, note_body("A1"), thread_id("A"))
    gbg.send(sarajevo, note_body("A2"), thread_id("A"))
    gbg.send(sarajevo, note_body("B1"), thread_id("B"))
    gbg.send(sarajevo, note_body("B2"), thread_id("B"))
    problem = json.dumps({"code": "outside_consent", "status": 403}).encode()
    transport.override = lambda url, data: DeliveryAnswer(403, problem) if data == refused.envelope else None
    worker = make_worker(gbg, parallel=2)
    stats = worker.run(once=True)
    assert (stats.parked, stats.delivered) == (1, 2)
    assert _statuses(gbg) == ["parked", "queued", "delivered", "delivered"]
    assert gbg.outbound()[0].last_error == "outside_consent"
    assert gbg.partner("ba.cldd-sarajevo").retry_at is None  # the partner is up: no backoff
    transport.override = None
    with gbg.sessionmaker() as session:
        retry_message(session, refused.message_id, gbg.clock.now())
        session.commit()
    assert worker.run(once=True).delivered == 2
    assert [m.message_id for m in sarajevo.inbound()][-2:] == [m.message_id for m in gbg.outbound()[:2]]


@pytest.mark.parametrize(("status", "retry_after"), [(401, None), (408, None), (429, "300"), (503, None)])
def test_retryable_answers_back_off_and_never_park(status: int, retry_after: str | None,
                                                   paired: tuple[Node, Node], make_worker: Worker,
                                                   transport: FlaskTransport) -> None:
    gbg, sarajevo = paired
    gbg.send(sarajevo, note_body("x"), thread_id("x"))
    transport.override = lambda url, data: DeliveryAnswer(
        status, b'{"code":"unknown_sender"}', None, float(retry_after) if retry_after else None)
    worker = make_worker(gbg)
    worker.run(once=True)
    message = gbg.outbound()[0]
    assert (message.status, message.attempts) == ("queued", 1)
    partner = gbg.partner("ba.cldd-sarajevo")
    assert partner.retry_at is not None and message.next_attempt_at == partner.retry_at
    if retry_after:
        assert partner.retry_at - gbg.clock.now() == timedelta(seconds=300)
    transport.override = None
    gbg.clock.set(partner.retry_at)
    assert worker.run(once=True).delivered == 1


def test_a_bad_receipt_is_not_proof_of_delivery(paired: tuple[Node, Node], make_worker: Worker,
                                                transport: FlaskTransport) -> None:
    gbg, sarajevo = paired
    gbg.send(sarajevo, note_body("x"), thread_id("x"))
    other = gbg.send(sarajevo, note_body("y"), thread_id("y"))
    real = sarajevo.post_inbox(other.envelope).data  # a genuine receipt, for another message
    transport.override = lambda url, data: DeliveryAnswer(200, real) if data != other.envelope else None
    make_worker(gbg).run(once=True)
    assert {m.message_id: (m.status, m.last_error) for m in gbg.outbound()} == {
        gbg.outbound()[0].message_id: ("parked", "bad_receipt"), other.message_id: ("delivered", None)}


def test_a_receipt_naming_another_sender_is_not_proof_of_delivery(paired: tuple[Node, Node], make_worker: Worker,
                                                                  transport: FlaskTransport) -> None:
    """Signed by the right partner, for the right message and content, but its ``from`` names another node."""
    gbg, sarajevo = paired
    message = gbg.send(sarajevo, note_body("x"), thread_id("x"))
    genuine = json.loads(sarajevo.post_inbox(message.envelope).data)
    keys = sarajevo.identity.keys
    forged = sign_json({**{k: v for k, v in genuine.items() if k != "signatures"}, "from": "iq.cldd-baghdad"},
                       keys.node_id, keys.signing_key)
    transport.override = lambda url, data: DeliveryAnswer(200, canonical_bytes(forged))
    make_worker(gbg).run(once=True)
    assert [(m.status, m.last_error) for m in gbg.outbound()] == [("parked", "bad_receipt")]


def test_one_dead_partner_does_not_slow_the_others(nodes: dict[str, Node], make_worker: Worker,
                                                   transport: FlaskTransport) -> None:
    gbg, sarajevo, baghdad = nodes["gbg"], nodes["sarajevo"], nodes["baghdad"]
    for other in (sarajevo, baghdad):
        gbg.trust(other)
        other.trust(gbg)
    _send_many(gbg, baghdad, threads=5, per_thread=1)
    _send_many(gbg, sarajevo, threads=5, per_thread=2)
    transport.down.add(baghdad.base_url)
    stats = make_worker(gbg, parallel=4).run(once=True)
    assert stats.delivered == 10 and len(sarajevo.inbound()) == 10
    assert transport.calls.count(baghdad.base_url) <= 4  # the first round in flight, then nothing
    assert baghdad.inbound() == []


def test_backing_off_partner_gets_one_probe_at_a_time(paired: tuple[Node, Node], make_worker: Worker,
                                                      transport: FlaskTransport) -> None:
    gbg, sarajevo = paired
    _send_many(gbg, sarajevo, threads=6, per_thread=1)
    transport.down.add(sarajevo.base_url)
    worker = make_worker(gbg, parallel=4)
    worker.run(once=True)
    retry_at = gbg.partner("ba.cldd-sarajevo").retry_at
    assert retry_at is not None
    gbg.clock.set(retry_at)
    before = len(transport.calls)
    worker.run(once=True)
    assert len(transport.calls) == before + 1


def test_threads_go_in_order_and_in_parallel(paired: tuple[Node, Node], make_worker: Worker) -> None:
    gbg, sarajevo = paired
    sent = _send_many(gbg, sarajevo, threads=6, per_thread=5)
    stats = make_worker(gbg, parallel=4).run(once=True)
    assert stats.delivered == 30
    received = sarajevo.inbound()
    for thread in {m.thread for m in sent}:
        assert [m.message_id for m in received if m.thread == thread] == \
            [m.message_id for m in sent if m.thread == thread]
    with gbg.sessionmaker() as session:
        assert set(session.scalars(sa.select(OutboundMessage.attempts))) == {1}


def test_a_dead_workers_claim_expires_with_its_lease(paired: tuple[Node, Node], make_worker: Worker) -> None:
    gbg, sarajevo = paired
    gbg.send(sarajevo, note_body("x"), thread_id("x"))
    with gbg.sessionmaker() as session:
        held = claim(session, worker_id="dead-worker", now=gbg.clock.now(), limit=10,
                     lease=timedelta(minutes=5))
        session.commit()
    assert len(held) == 1
    worker = make_worker(gbg)
    assert worker.run(once=True).delivered == 0  # still leased
    gbg.clock.advance(minutes=5, seconds=1)
    assert worker.run(once=True).delivered == 1
    message = gbg.outbound()[0]
    assert (message.status, message.attempts, message.claimed_by) == ("delivered", 2, None)


def test_delivered_elsewhere_after_the_lease_passed_is_recorded_once(paired: tuple[Node, Node],
                                                                     make_worker: Worker) -> None:
    gbg, sarajevo = paired
    message = gbg.send(sarajevo, note_body("x"), thread_id("x"))
    assert sarajevo.post_inbox(message.envelope).status_code == 200  # a dead worker's send arrived
    with gbg.sessionmaker() as session:
        claim(session, worker_id="dead-worker", now=gbg.clock.now(), limit=1, lease=timedelta(minutes=5))
        session.commit()
    gbg.clock.advance(minutes=6)
    assert make_worker(gbg).run(once=True).delivered == 1  # resent: the original receipt comes back
    assert len(sarajevo.inbound()) == 1


def test_revoking_a_partner_gives_up_its_queue_and_suspending_holds_it(
        paired: tuple[Node, Node], make_worker: Worker, transport: FlaskTransport) -> None:
    gbg, sarajevo = paired
    _send_many(gbg, sarajevo, threads=2, per_thread=1)
    with gbg.sessionmaker() as session:
        set_status(session, "ba.cldd-sarajevo", "suspended", gbg.clock.now())
        session.commit()
    make_worker(gbg).run(once=True)
    assert transport.calls == [] and _statuses(gbg) == ["queued", "queued"]
    with gbg.sessionmaker() as session:
        set_status(session, "ba.cldd-sarajevo", "revoked", gbg.clock.now())
        session.commit()
    assert _statuses(gbg) == ["undeliverable", "undeliverable"]
    assert {m.last_error for m in gbg.outbound()} == {"partner_revoked"}


def test_in_process_delivery_thread(paired: tuple[Node, Node], transport: FlaskTransport) -> None:
    gbg, sarajevo = paired
    thread = start_in_process(gbg.app, WorkerSettings(parallel=2, poll_interval=0.02), transport=transport)
    try:
        _send_many(gbg, sarajevo, threads=2, per_thread=2)
        deadline = time.monotonic() + 20
        while _statuses(gbg) != ["delivered"] * 4 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        thread.stop()
    assert _statuses(gbg) == ["delivered"] * 4 and len(sarajevo.inbound()) == 4
