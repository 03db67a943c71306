"""Helpers for delivery tests with real processes (copied from ``test_delivery_faults.py``, public here so that
other modules may use them): direct access to the nodes' databases, a pair of partner nodes, messages queued
straight into the sender's outbox, waits that fail only when progress stops, and the exactly-once check."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import orm

from node.at_rest.startup import open_data_keys
from node.audit import AuditEntry
from node.clock import SystemClock
from node.config import load_config
from node.db import make_engine, make_reader_engine, make_sessionmaker
from node.exchange.delivery.outbox import enqueue
from node.exchange.models import InboundMessage, OutboundMessage
from node.exchange.trust.keystore import load_identity
from protocol import verify_chain
from tests.exchange.conftest import samples, thread_id
from tests.harness import Network, NodeProcess

AGREEMENT = "dsa-gi-cldd-2026"
FAST = ("--min-backoff", "0.2", "--max-backoff", "0.5", "--poll-seconds", "0.05")
STALL = 180.0
REPORT = re.compile(r"delivered (\d+), retrying (\d+), parked (\d+), given up (\d+)")


class Databases:
    """Direct access to the nodes' databases from the test process."""

    def __init__(self) -> None:
        self._engines: dict[str, sa.Engine] = {}
        self._readers: dict[str, sa.Engine] = {}

    def session(self, node: NodeProcess) -> orm.Session:
        if node.node_id not in self._engines:
            engine = self._engines[node.node_id] = make_engine(load_config(node.data_dir).database_url)
            open_data_keys(node.data_dir, engine, now=SystemClock().now(), create=False)  # encrypted columns
        return make_sessionmaker(self._engines[node.node_id])()

    def reader(self, node: NodeProcess) -> orm.Session:
        """A session for polling: on SQLite it never takes the write lock (the node's engine begins every
        transaction with ``BEGIN IMMEDIATE``), so a count does not compete with the node's own writers."""
        if node.node_id not in self._readers:
            self.session(node).close()
            engine = self._engines[node.node_id]
            self._readers[node.node_id] = make_reader_engine(engine) or engine
        return make_sessionmaker(self._readers[node.node_id])()

    def close(self) -> None:
        for engine in {*self._engines.values(), *self._readers.values()}:
            engine.dispose()


def make_network(tmp_path: Path, make_url: Callable[[], str | None]) -> Iterator[Network]:
    net = Network(tmp_path, make_url)
    yield net
    net.stop_all()


def pair(net: Network) -> tuple[NodeProcess, NodeProcess]:
    gbg = net.add("se.gi-goteborg", "Göteborgs-Initiativet")
    sarajevo = net.add("ba.cldd-sarajevo", "CLDD Sarajevo")
    net.connect(gbg, sarajevo, AGREEMENT)
    return gbg, sarajevo


def body(t: int, m: int) -> dict[str, object]:
    return {**samples()["receipt"], "message_id": thread_id(f"receipt-{t}-{m}")}


def queue(dbs: Databases, sender: NodeProcess, recipient: NodeProcess, threads: int,
          per_thread: int, *, now: datetime | None = None, first: int = 0) -> dict[str, list[str]]:
    """Queue messages round-robin over threads; returns thread → message ids in sending order.

    Args:
        now: when they are queued (default: the system clock), e.g. a fake clock's time.
        first: the number of the first message of each thread (queueing more later: where the last call ended).
    """
    now = now or SystemClock().now()
    identity = load_identity(load_config(sender.data_dir), now)
    order: dict[str, list[str]] = {}
    with dbs.session(sender) as session:
        for m in range(first, first + per_thread):
            for t in range(threads):
                thread = thread_id(f"case-{t}")
                message = enqueue(session, keys=identity.keys, recipient=recipient.node_id,
                                  msg_type="receipt", body=body(t, m), thread=thread, now=now,
                                  boxes=identity.boxes)
                order.setdefault(thread, []).append(message.message_id)
        session.commit()
    return order


def sent_order(dbs: Databases, sender: NodeProcess) -> dict[str, list[str]]:
    """Thread → the message ids the sender queued in it, in chain order (``seq``)."""
    order: dict[str, list[str]] = {}
    with dbs.session(sender) as session:
        for thread, message_id in session.execute(sa.select(OutboundMessage.thread, OutboundMessage.message_id)
                                                  .order_by(OutboundMessage.thread, OutboundMessage.seq)):
            order.setdefault(thread, []).append(message_id)
    return order


def count(dbs: Databases, node: NodeProcess, query: sa.Select[tuple[int]]) -> int:
    with dbs.reader(node) as session:
        return int(session.scalar(query) or 0)


def delivered(dbs: Databases, sender: NodeProcess) -> int:
    return count(dbs, sender, sa.select(sa.func.count()).select_from(OutboundMessage)
                 .where(OutboundMessage.status == "delivered"))


def received(dbs: Databases, receiver: NodeProcess) -> int:
    return count(dbs, receiver, sa.select(sa.func.count()).select_from(InboundMessage))


def wait_for(progress: Callable[[], int], goal: int, what: str, node: NodeProcess) -> None:
    """Poll a count until it reaches ``goal``; fail only when it has not moved for ``STALL`` seconds."""
    last, moved = -1, time.monotonic()
    while (value := progress()) < goal:
        if value != last:
            last, moved = value, time.monotonic()
        elif time.monotonic() - moved > STALL:
            raise AssertionError(f"{what}: stuck at {value} of {goal} for {STALL:.0f} s; "
                                 f"log: {node.log.read_text()[-3000:]}")
        time.sleep(0.05)


def reports(node: NodeProcess) -> list[tuple[int, ...]]:
    """What each stopped ``ccm-node deliver`` printed: (delivered, retrying, parked, given up)."""
    lines = node.log.read_text().splitlines()
    return [tuple(int(n) for n in m.groups()) for m in map(REPORT.fullmatch, lines) if m is not None]


def check_exactly_once_in_order(dbs: Databases, sender: NodeProcess, receiver: NodeProcess,
                                order: dict[str, list[str]]) -> None:
    total = sum(len(ids) for ids in order.values())
    with dbs.session(receiver) as session:
        rows = list(session.scalars(sa.select(InboundMessage).order_by(InboundMessage.id)))
        receives = session.scalar(sa.select(sa.func.count()).select_from(AuditEntry)
                                  .where(AuditEntry.action == "receive"))
    assert len(rows) == total and receives == total  # stored once, applied once
    for thread, ids in order.items():
        assert [r.message_id for r in rows if r.thread == thread] == ids
        assert [r.seq for r in rows if r.thread == thread] == list(range(1, len(ids) + 1))  # the chain, gapless
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
    for node in (sender, receiver):
        assert not unhandled_errors(node), f"{node.node_id}: {unhandled_errors(node)[:3]}"


def unhandled_errors(node: NodeProcess) -> list[str]:
    """The requests a node answered 500 (``node/errors.py`` logs each as ``unhandled <exception>``)."""
    lines = node.log.read_text(encoding="utf-8", errors="replace").splitlines()
    return [line for line in lines if line.startswith("unhandled ")]
