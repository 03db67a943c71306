"""Delivery faults with real processes: gunicorn nodes, ``ccm-node deliver`` workers, SIGKILL.

The test process queues messages straight into the sender's database (as the node's own code would, with the
node's keys) and reads both databases to check the outcome: every message delivered exactly once, each case
thread in order, one ``receive`` audit entry per message (nothing applied twice), both audit chains intact.
The bodies are signed delivery receipts travelling as ``receipt`` messages on many threads: a type that needs
no case domain and that no domain applier acts on, so these tests exercise delivery alone.

The waits have no fixed deadline: a drain that takes 15 s alone can take minutes when the whole suite runs
in parallel on a small machine, so a wait fails only when its count stops moving for ``STALL`` seconds.
"""

from __future__ import annotations

import signal
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from node.audit import AuditEntry
from node.exchange.models import InboundMessage, OutboundMessage, Partner
from protocol import verify_chain
from tests.e2e.delivery_support import (
    FAST,
    Databases,
    count,
    delivered,
    make_network,
    pair,
    queue,
    received,
    reports,
    wait_for,
)
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


@pytest.fixture
def pg_net(tmp_path: Path, make_pg_database: Callable[[], str]) -> Iterator[Network]:
    yield from make_network(tmp_path, make_pg_database)


def _read_http(sock: socket.socket) -> bytes:
    """One HTTP/1.1 message (head and a Content-Length body) from a socket."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    fields = (line.split(b":", 1) for line in head.split(b"\r\n")[1:])
    length = next((int(value) for name, value in fields if name.strip().lower() == b"content-length"), 0)
    while len(body) < length and (chunk := sock.recv(65536)):
        body += chunk
    return head + b"\r\n\r\n" + body


class CuttingProxy:
    """A loopback relay in front of a node: the first ``cut`` requests reach the node whole, but only the head
    of each answer (status line and headers) comes back before the connection closes, which is what a sender
    sees when the partner dies between storing a message and finishing its answer."""

    def __init__(self, port: int, cut: int) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._server.getsockname()[1]}"
        self._target, self._cut = port, cut
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        relayed = 0
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return  # closed
            try:
                with client, socket.create_connection(("127.0.0.1", self._target), timeout=60) as upstream:
                    upstream.sendall(_read_http(client))
                    answer = _read_http(upstream)
                    relayed += 1
                    head = answer.partition(b"\r\n\r\n")[0] + b"\r\n\r\n"
                    client.sendall(answer if relayed > self._cut else head)
            except OSError:
                continue  # the sender gave up on this connection

    def close(self) -> None:
        self._server.close()
        self._thread.join(timeout=10)


def _check_exactly_once_in_order(dbs: Databases, sender: NodeProcess, receiver: NodeProcess,
                                 order: dict[str, list[str]]) -> None:
    total = sum(len(ids) for ids in order.values())
    with dbs.session(receiver) as session:
        rows = list(session.scalars(sa.select(InboundMessage).order_by(InboundMessage.id)))
        receives = session.scalar(sa.select(sa.func.count()).select_from(AuditEntry)
                                  .where(AuditEntry.action == "receive"))
    assert len(rows) == total and receives == total  # stored once, applied once
    for thread, ids in order.items():
        assert [r.message_id for r in rows if r.thread == thread] == ids
    verify_chain([r.inner or b"" for r in rows])
    with dbs.session(sender) as session:
        statuses = set(session.scalars(sa.select(OutboundMessage.status)))
        sends = session.scalar(sa.select(sa.func.count()).select_from(AuditEntry)
                               .where(AuditEntry.action == "send"))
        receipts = session.scalar(sa.select(sa.func.count()).select_from(OutboundMessage)
                                  .where(OutboundMessage.receipt.is_not(None)))
    assert statuses == {"delivered"} and sends == total and receipts == total
    assert sender.cli("audit", "verify").returncode == 0
    assert receiver.cli("audit", "verify").returncode == 0


def test_receiver_down_then_back_gets_everything_in_order(sqlite_net: Network, dbs: Databases) -> None:
    gbg, sarajevo = pair(sqlite_net)
    order = queue(dbs, gbg, sarajevo, threads=4, per_thread=5)
    worker = gbg.spawn("deliver", *FAST)
    failed = sa.select(sa.func.count()).select_from(OutboundMessage).where(
        OutboundMessage.last_error == "connection_failed")
    wait_for(lambda: count(dbs, gbg, failed), 1, "a failed attempt", gbg)
    assert "connection_failed" in gbg.cli("queue").stdout
    assert received(dbs, sarajevo) == 0
    sarajevo.start()
    wait_for(lambda: delivered(dbs, gbg), 20, "the queue to drain", gbg)
    assert gbg.stop_process(worker) == 0  # SIGTERM: a clean stop
    _check_exactly_once_in_order(dbs, gbg, sarajevo, order)


def test_receiver_killed_mid_delivery_loses_nothing_and_applies_nothing_twice(sqlite_net: Network,
                                                                              dbs: Databases) -> None:
    gbg, sarajevo = pair(sqlite_net)
    sarajevo.start()
    order = queue(dbs, gbg, sarajevo, threads=40, per_thread=15)
    worker = gbg.spawn("deliver", *FAST)
    wait_for(lambda: received(dbs, sarajevo), 60, "deliveries to start", gbg)
    sarajevo.kill()
    assert delivered(dbs, gbg) < 600
    sarajevo.start()
    wait_for(lambda: delivered(dbs, gbg), 600, "the queue to drain", gbg)
    gbg.stop_process(worker)
    _check_exactly_once_in_order(dbs, gbg, sarajevo, order)


def test_sender_worker_killed_mid_batch_loses_nothing_and_sends_nothing_twice(sqlite_net: Network,
                                                                              dbs: Databases) -> None:
    gbg, sarajevo = pair(sqlite_net)
    sarajevo.start()
    order = queue(dbs, gbg, sarajevo, threads=40, per_thread=15)
    first = gbg.spawn("deliver", "--lease-seconds", "1", *FAST)
    wait_for(lambda: received(dbs, sarajevo), 60, "deliveries to start", gbg)
    gbg.stop_process(first, signal.SIGKILL)
    assert delivered(dbs, gbg) < 600
    second = gbg.spawn("deliver", "--lease-seconds", "1", *FAST)
    wait_for(lambda: delivered(dbs, gbg), 600, "the queue to drain", gbg)
    gbg.stop_process(second)
    _check_exactly_once_in_order(dbs, gbg, sarajevo, order)


@pytest.mark.postgres
def test_two_workers_on_postgresql_deliver_each_message_exactly_once(pg_net: Network, dbs: Databases) -> None:
    gbg, sarajevo = pair(pg_net)
    sarajevo.start()
    order = queue(dbs, gbg, sarajevo, threads=50, per_thread=8)
    workers = [gbg.spawn("deliver", *FAST), gbg.spawn("deliver", *FAST)]
    wait_for(lambda: delivered(dbs, gbg), 400, "the queue to drain", gbg)
    for worker in workers:
        assert gbg.stop_process(worker) == 0
    _check_exactly_once_in_order(dbs, gbg, sarajevo, order)
    printed = reports(gbg)
    # Each receipt was recorded by one worker only: had both claimed a message, both would count it.
    assert len(printed) == 2 and sum(r[0] for r in printed) == 400
    # Every claim is one attempt whose outcome the claiming worker recorded once. An attempt that timed out
    # under load is retried (and answered with the stored receipt), so attempts may exceed one per message,
    # but never by more than the retries the workers reported.
    with dbs.session(gbg) as session:
        attempts = session.scalar(sa.select(sa.func.sum(OutboundMessage.attempts)))
    assert attempts == sum(sent + retried + parked for sent, retried, parked, _ in printed)


def test_an_answer_cut_after_the_message_was_stored_is_sent_again_not_parked(sqlite_net: Network,
                                                                               dbs: Databases) -> None:
    """A 200 whose receipt never arrives whole (the partner died while answering) is retried, and the partner
    answers the retransmission with the receipt it stored: delivered, never parked, nothing applied twice."""
    gbg, sarajevo = pair(sqlite_net)
    sarajevo.start()
    proxy = CuttingProxy(sarajevo.port, cut=3)
    try:
        with dbs.session(gbg) as session:
            session.execute(sa.update(Partner).values(base_url=proxy.url))
            session.commit()
        order = queue(dbs, gbg, sarajevo, threads=2, per_thread=3)
        worker = gbg.spawn("deliver", *FAST)
        wait_for(lambda: delivered(dbs, gbg), 6, "the queue to drain", gbg)
        assert gbg.stop_process(worker) == 0
    finally:
        proxy.close()
    _check_exactly_once_in_order(dbs, gbg, sarajevo, order)
    with dbs.session(gbg) as session:
        assert sum(session.scalars(sa.select(OutboundMessage.attempts))) == 6 + 3  # each cut answer: one more
    [(sent, retried, parked, _)] = reports(gbg)
    assert (sent, retried, parked) == (6, 3, 0)
