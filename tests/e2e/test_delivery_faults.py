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

import re
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import orm

from node.at_rest.startup import open_data_keys
from node.audit import AuditEntry
from node.clock import SystemClock
from node.config import load_config
from node.db import make_engine, make_sessionmaker
from node.exchange.delivery.outbox import enqueue
from node.exchange.models import InboundMessage, OutboundMessage, Partner
from node.exchange.trust.keystore import load_identity
from protocol import verify_chain
from tests.exchange.conftest import samples, thread_id
from tests.harness import Network, NodeProcess

pytestmark = pytest.mark.slow
AGREEMENT = "dsa-gi-cldd-2026"
FAST = ("--min-backoff", "0.2", "--max-backoff", "0.5", "--poll-seconds", "0.05")
STALL = 180.0
REPORT = re.compile(r"delivered (\d+), retrying (\d+), parked (\d+), given up (\d+)")


class Databases:
    """Direct access to the nodes' databases from the test process."""

    def __init__(self) -> None:
        self._engines: dict[str, sa.Engine] = {}

    def session(self, node: NodeProcess) -> orm.Session:
        if node.node_id not in self._engines:
            engine = self._engines[node.node_id] = make_engine(load_config(node.data_dir).database_url)
            open_data_keys(node.data_dir, engine, now=SystemClock().now(), create=False)  # encrypted columns
        return make_sessionmaker(self._engines[node.node_id])()

    def close(self) -> None:
        for engine in self._engines.values():
            engine.dispose()


@pytest.fixture
def dbs() -> Iterator[Databases]:
    databases = Databases()
    yield databases
    databases.close()


def _network(tmp_path: Path, make_url: Callable[[], str | None]) -> Iterator[Network]:
    net = Network(tmp_path, make_url)
    yield net
    net.stop_all()


@pytest.fixture
def sqlite_net(tmp_path: Path) -> Iterator[Network]:
    yield from _network(tmp_path, lambda: None)


@pytest.fixture
def pg_net(tmp_path: Path, make_pg_database: Callable[[], str]) -> Iterator[Network]:
    yield from _network(tmp_path, make_pg_database)


def _pair(net: Network) -> tuple[NodeProcess, NodeProcess]:
    gbg = net.add("se.gi-goteborg", "Göteborgs-Initiativet")
    sarajevo = net.add("ba.cldd-sarajevo", "CLDD Sarajevo")
    net.connect(gbg, sarajevo, AGREEMENT)
    return gbg, sarajevo


def _body(t: int, m: int) -> dict[str, object]:
    return {**samples()["receipt"], "message_id": thread_id(f"receipt-{t}-{m}")}


def _queue(dbs: Databases, sender: NodeProcess, recipient: NodeProcess, threads: int,
           per_thread: int) -> dict[str, list[str]]:
    """Queue messages round-robin over threads; returns thread → message ids in sending order."""
    now = SystemClock().now()
    identity = load_identity(load_config(sender.data_dir), now)
    order: dict[str, list[str]] = {}
    with dbs.session(sender) as session:
        for m in range(per_thread):
            for t in range(threads):
                thread = thread_id(f"case-{t}")
                message = enqueue(session, keys=identity.keys, recipient=recipient.node_id,
                                  msg_type="receipt", body=_body(t, m), thread=thread, now=now,
                                  boxes=identity.boxes)
                order.setdefault(thread, []).append(message.message_id)
        session.commit()
    return order


def _count(dbs: Databases, node: NodeProcess, query: sa.Select[tuple[int]]) -> int:
    with dbs.session(node) as session:
        return int(session.scalar(query) or 0)


def _delivered(dbs: Databases, sender: NodeProcess) -> int:
    return _count(dbs, sender, sa.select(sa.func.count()).select_from(OutboundMessage)
                  .where(OutboundMessage.status == "delivered"))


def _received(dbs: Databases, receiver: NodeProcess) -> int:
    return _count(dbs, receiver, sa.select(sa.func.count()).select_from(InboundMessage))


def _wait(progress: Callable[[], int], goal: int, what: str, node: NodeProcess) -> None:
    """Poll a count until it reaches ``goal``; fail only when it has not moved for ``STALL`` seconds."""
    last, moved = -1, time.monotonic()
    while (value := progress()) < goal:
        if value != last:
            last, moved = value, time.monotonic()
        elif time.monotonic() - moved > STALL:
            raise AssertionError(f"{what}: stuck at {value} of {goal} for {STALL:.0f} s; "
                                 f"log: {node.log.read_text()[-3000:]}")
        time.sleep(0.05)


def _reports(node: NodeProcess) -> list[tuple[int, ...]]:
    """What each stopped ``ccm-node deliver`` printed: (delivered, retrying, parked, given up)."""
    lines = node.log.read_text().splitlines()
    return [tuple(int(n) for n in m.groups()) for m in map(REPORT.fullmatch, lines) if m is not None]


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
    gbg, sarajevo = _pair(sqlite_net)
    order = _queue(dbs, gbg, sarajevo, threads=4, per_thread=5)
    worker = gbg.spawn("deliver", *FAST)
    failed = sa.select(sa.func.count()).select_from(OutboundMessage).where(
        OutboundMessage.last_error == "connection_failed")
    _wait(lambda: _count(dbs, gbg, failed), 1, "a failed attempt", gbg)
    assert "connection_failed" in gbg.cli("queue").stdout
    assert _received(dbs, sarajevo) == 0
    sarajevo.start()
    _wait(lambda: _delivered(dbs, gbg), 20, "the queue to drain", gbg)
    assert gbg.stop_process(worker) == 0  # SIGTERM: a clean stop
    _check_exactly_once_in_order(dbs, gbg, sarajevo, order)


def test_receiver_killed_mid_delivery_loses_nothing_and_applies_nothing_twice(sqlite_net: Network,
                                                                              dbs: Databases) -> None:
    gbg, sarajevo = _pair(sqlite_net)
    sarajevo.start()
    order = _queue(dbs, gbg, sarajevo, threads=40, per_thread=15)
    worker = gbg.spawn("deliver", *FAST)
    _wait(lambda: _received(dbs, sarajevo), 60, "deliveries to start", gbg)
    sarajevo.kill()
    assert _delivered(dbs, gbg) < 600
    sarajevo.start()
    _wait(lambda: _delivered(dbs, gbg), 600, "the queue to drain", gbg)
    gbg.stop_process(worker)
    _check_exactly_once_in_order(dbs, gbg, sarajevo, order)


def test_sender_worker_killed_mid_batch_loses_nothing_and_sends_nothing_twice(sqlite_net: Network,
                                                                              dbs: Databases) -> None:
    gbg, sarajevo = _pair(sqlite_net)
    sarajevo.start()
    order = _queue(dbs, gbg, sarajevo, threads=40, per_thread=15)
    first = gbg.spawn("deliver", "--lease-seconds", "1", *FAST)
    _wait(lambda: _received(dbs, sarajevo), 60, "deliveries to start", gbg)
    gbg.stop_process(first, signal.SIGKILL)
    assert _delivered(dbs, gbg) < 600
    second = gbg.spawn("deliver", "--lease-seconds", "1", *FAST)
    _wait(lambda: _delivered(dbs, gbg), 600, "the queue to drain", gbg)
    gbg.stop_process(second)
    _check_exactly_once_in_order(dbs, gbg, sarajevo, order)


@pytest.mark.postgres
def test_two_workers_on_postgresql_deliver_each_message_exactly_once(pg_net: Network, dbs: Databases) -> None:
    gbg, sarajevo = _pair(pg_net)
    sarajevo.start()
    order = _queue(dbs, gbg, sarajevo, threads=50, per_thread=8)
    workers = [gbg.spawn("deliver", *FAST), gbg.spawn("deliver", *FAST)]
    _wait(lambda: _delivered(dbs, gbg), 400, "the queue to drain", gbg)
    for worker in workers:
        assert gbg.stop_process(worker) == 0
    _check_exactly_once_in_order(dbs, gbg, sarajevo, order)
    reports = _reports(gbg)
    # Each receipt was recorded by one worker only: had both claimed a message, both would count it.
    assert len(reports) == 2 and sum(r[0] for r in reports) == 400
    # Every claim is one attempt whose outcome the claiming worker recorded once. An attempt that timed out
    # under load is retried (and answered with the stored receipt), so attempts may exceed one per message,
    # but never by more than the retries the workers reported.
    with dbs.session(gbg) as session:
        attempts = session.scalar(sa.select(sa.func.sum(OutboundMessage.attempts)))
    assert attempts == sum(delivered + retried + parked for delivered, retried, parked, _ in reports)


def test_an_answer_cut_after_the_message_was_stored_is_sent_again_not_parked(sqlite_net: Network,
                                                                               dbs: Databases) -> None:
    """A 200 whose receipt never arrives whole (the partner died while answering) is retried, and the partner
    answers the retransmission with the receipt it stored: delivered, never parked, nothing applied twice."""
    gbg, sarajevo = _pair(sqlite_net)
    sarajevo.start()
    proxy = CuttingProxy(sarajevo.port, cut=3)
    try:
        with dbs.session(gbg) as session:
            session.execute(sa.update(Partner).values(base_url=proxy.url))
            session.commit()
        order = _queue(dbs, gbg, sarajevo, threads=2, per_thread=3)
        worker = gbg.spawn("deliver", *FAST)
        _wait(lambda: _delivered(dbs, gbg), 6, "the queue to drain", gbg)
        assert gbg.stop_process(worker) == 0
    finally:
        proxy.close()
    _check_exactly_once_in_order(dbs, gbg, sarajevo, order)
    with dbs.session(gbg) as session:
        assert sum(session.scalars(sa.select(OutboundMessage.attempts))) == 6 + 3  # each cut answer: one more
    [(delivered, retried, parked, _)] = _reports(gbg)
    assert (delivered, retried, parked) == (6, 3, 0)
