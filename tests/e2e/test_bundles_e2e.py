"""Store-and-forward by file with real processes: ``ccm-node`` commands and a gunicorn node.

Sarajevo's link is down: Göteborg's delivery worker cannot reach it, so Göteborg exports its queue to a file,
Sarajevo imports it with its own ``ccm-node`` and writes the receipts, which Göteborg imports. A second bundle
is imported but its receipts are not carried back before the link returns: Göteborg's worker then
retransmits, Sarajevo's running node answers with the receipts it stored, and the late receipts change
nothing. Every message is received exactly once (one ``receive`` audit entry each), in order, and both audit
chains verify. The messages are of type ``receipt`` (a signed receipt travelling as a sealed body): no domain
applier acts on it, so this exercises the transport alone.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import sqlalchemy as sa

from node.audit import AuditEntry
from node.clock import SystemClock
from node.config import load_config
from node.db import make_engine, make_sessionmaker
from node.exchange.delivery.outbox import enqueue
from node.exchange.models import InboundMessage, OutboundMessage
from node.exchange.trust.keystore import load_identity
from tests.exchange.conftest import samples, thread_id
from tests.harness import Network, NodeProcess

pytestmark = pytest.mark.slow
AGREEMENT = "dsa-gi-cldd-2026"


def _query(node: NodeProcess, statement: sa.Select[tuple[str, str]]) -> list[tuple[str, str]]:
    engine = make_engine(load_config(node.data_dir).database_url)
    try:
        with make_sessionmaker(engine)() as session:
            return [(str(a), str(b)) for a, b in session.execute(statement)]
    finally:
        engine.dispose()


def _queue(sender: NodeProcess, recipient: NodeProcess, labels: list[str]) -> list[str]:
    """Queue one message per label, alternating between two case threads; returns the ids in queue order."""
    now = SystemClock().now()
    identity = load_identity(load_config(sender.data_dir), now)
    engine = make_engine(load_config(sender.data_dir).database_url)
    ids = []
    try:
        with make_sessionmaker(engine)() as session:
            for n, label in enumerate(labels):
                body = {**samples()["receipt"], "message_id": thread_id(label)}
                ids.append(enqueue(session, keys=identity.keys, recipient=recipient.node_id, msg_type="receipt",
                                   body=body, thread=thread_id(f"case-{n % 2}"), now=now).message_id)
            session.commit()
    finally:
        engine.dispose()
    return ids


def _outbox(node: NodeProcess) -> dict[str, str]:
    return dict(_query(node, sa.select(OutboundMessage.message_id, OutboundMessage.status)))


def _inbox(node: NodeProcess) -> list[str]:
    return [m for m, _ in _query(node, sa.select(InboundMessage.message_id, InboundMessage.thread)
                                 .order_by(InboundMessage.id))]


def _receive_audits(node: NodeProcess) -> list[str]:
    return [o for o, _ in _query(node, sa.select(AuditEntry.object_id, AuditEntry.action).where(
        AuditEntry.action == "receive", AuditEntry.object_type == "message"))]


def test_queue_carried_by_file_while_the_link_is_down(network: Network, tmp_path: Path) -> None:
    gbg = network.add("se.gi-goteborg", "Göteborgs-Initiativet")
    sarajevo = network.add("ba.cldd-sarajevo", "CLDD Sarajevo")
    network.connect(gbg, sarajevo, AGREEMENT)
    gbg.start()
    stick = tmp_path / "stick"
    stick.mkdir()

    first = _queue(gbg, sarajevo, ["a", "b", "c", "d"])
    assert re.fullmatch(r"delivered 0, retrying [12], parked 0, given up 0\n", gbg.cli("deliver", "--once").stdout)
    out = gbg.cli("bundle", "export", "--to", sarajevo.node_id, "--out", str(stick / "one.ccm")).stdout
    assert out.startswith(f"exported 4 message(s) for {sarajevo.node_id}")
    out = sarajevo.cli("bundle", "import", str(stick / "one.ccm")).stdout
    assert out.splitlines()[0] == f"bundle from {gbg.node_id} (4 item(s)): accepted 4, duplicates 0, refused 0"
    out = gbg.cli("bundle", "import", str(stick / "one.receipts.json")).stdout
    assert out.startswith(f"receipts from {sarajevo.node_id} (4 item(s)): delivered 4,")
    assert set(_outbox(gbg).values()) == {"delivered"}

    second = _queue(gbg, sarajevo, ["e", "f"])
    data = gbg.cli("bundle", "export", "--to", sarajevo.node_id, "--out", str(stick / "two.ccm")).stdout
    assert data.startswith("exported 2 message(s)")
    tampered = stick / "tampered.ccm"
    raw = (stick / "two.ccm").read_bytes()
    tampered.write_bytes(raw[:-40] + bytes([raw[-40] ^ 0x01]) + raw[-39:])
    refused = sarajevo.cli("bundle", "import", str(tampered), check=False)
    assert refused.returncode == 1 and refused.stderr.startswith("ccm-node: bundle refused, nothing imported:")
    assert _inbox(sarajevo) == first
    assert "accepted 2" in sarajevo.cli("bundle", "import", str(stick / "two.ccm")).stdout

    sarajevo.start()  # the link is back before the second receipts are carried back
    assert gbg.cli("deliver", "--once").stdout.strip() == "delivered 2, retrying 0, parked 0, given up 0"
    assert set(_outbox(gbg).values()) == {"delivered"}
    out = gbg.cli("bundle", "import", str(stick / "two.receipts.json")).stdout
    assert out.startswith(f"receipts from {sarajevo.node_id} (2 item(s)): delivered 0, already delivered 2,")
    assert gbg.cli("deliver", "--once").stdout.strip() == "delivered 0, retrying 0, parked 0, given up 0"

    assert _inbox(sarajevo) == first + second  # each once, in order
    assert sorted(_receive_audits(sarajevo)) == sorted(first + second)
    assert gbg.cli("audit", "verify").returncode == 0 and sarajevo.cli("audit", "verify").returncode == 0
