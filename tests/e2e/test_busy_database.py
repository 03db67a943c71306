"""A busy or unreachable database against real node processes: the API and the inbox answer ``503`` with
``Retry-After`` well inside the worker timeout, change nothing, and work again once the database is back; the
sending node's delivery worker retries, and the message arrives once.

SQLite: another process holds the write lock. PostgreSQL: a cluster of the test's own (initdb on a free port)
is stopped and started again, so the machine's shared server is never touched.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa

from node.clock import SystemClock
from node.config import load_config
from node.db import make_engine, make_sessionmaker
from node.exchange.delivery.outbox import enqueue
from node.exchange.models import InboundMessage, OutboundMessage
from node.exchange.trust.keystore import load_identity
from tests.exchange.conftest import samples, thread_id
from tests.harness import Network, NodeProcess, free_port

pytestmark = pytest.mark.slow
AGREEMENT = "dsa-gi-cldd-2026"
#: What a busy request may take at most: the node's 5 s busy timeout and some slack, far below gunicorn's 60 s.
ANSWER_WITHIN = 12.0
PG_BIN = Path("/usr/lib/postgresql/15/bin")
CASE = {"returnee": {"given_names": "Layla", "family_name": "Hassan", "date_of_birth": "1991-07-30"},
        "destination_country": "IQ"}


def _hold_sqlite_lock(path: Path, seconds: float) -> subprocess.Popen[str]:
    """Another process that takes the database's write lock and keeps it for ``seconds``."""
    code = (f"import sqlite3, sys, time\nc = sqlite3.connect({str(path)!r}, isolation_level=None)\n"
            "c.execute('BEGIN EXCLUSIVE')\nprint('locked', flush=True)\n"
            f"time.sleep({seconds})\nc.execute('ROLLBACK')\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    return proc


def _release(proc: subprocess.Popen[str]) -> None:
    proc.kill()
    proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


def _queue_one(sender: NodeProcess, recipient: NodeProcess) -> tuple[str, bytes]:
    """One message queued at ``sender`` as the node's own code queues it; its id and envelope bytes."""
    config = load_config(sender.data_dir)
    identity = load_identity(config, SystemClock().now())
    engine = make_engine(config.database_url)
    try:
        with make_sessionmaker(engine)() as session:
            message = enqueue(session, keys=identity.keys, recipient=recipient.node_id, msg_type="receipt",
                              body={**samples()["receipt"], "message_id": thread_id("busy-1")},
                              thread=thread_id("busy-thread"), now=SystemClock().now(), boxes=identity.boxes)
            session.commit()
            return message.message_id, bytes(message.envelope)
    finally:
        engine.dispose()


def _count(node: NodeProcess, query: sa.Select[tuple[int]]) -> int:
    engine = make_engine(load_config(node.data_dir).database_url)
    try:
        with engine.connect() as conn:
            return int(conn.scalar(query) or 0)
    finally:
        engine.dispose()


def _delivered(sender: NodeProcess, message_id: str) -> bool:
    return _count(sender, sa.select(sa.func.count()).select_from(OutboundMessage).where(
        OutboundMessage.message_id == message_id, OutboundMessage.status == "delivered")) == 1


def _timed(call: object) -> tuple[requests.Response, float]:
    started = time.monotonic()
    response = call()  # type: ignore[operator]
    return response, time.monotonic() - started


def _assert_unavailable(response: requests.Response, took: float) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"] == "5"
    assert response.json()["code"] == "database_unavailable"
    assert took < ANSWER_WITHIN, took


def _pair(net: Network) -> tuple[NodeProcess, NodeProcess]:
    gbg = net.add("se.gi-goteborg", "Göteborgs-Initiativet")
    sarajevo = net.add("ba.cldd-sarajevo", "CLDD Sarajevo")
    net.connect(gbg, sarajevo, AGREEMENT)
    return gbg, sarajevo


def _exercise(gbg: NodeProcess, sarajevo: NodeProcess, token: str, case_id: str, outage: object,
              restore: object) -> None:
    """With the receiver's database out (``outage()``): the notes API and the inbox answer 503 and change
    nothing, and the sender's worker keeps the message; after ``restore()`` all of it works, delivered once."""
    message_id, envelope = _queue_one(gbg, sarajevo)
    outage()  # type: ignore[operator]
    try:
        note, took = _timed(lambda: sarajevo.api("POST", f"/cases/{case_id}/notes", token,
                                                 json={"text": "Met at the airport."}))
        _assert_unavailable(note, took)
        inbox, took = _timed(lambda: requests.post(f"{sarajevo.url}/federation/v1/inbox", data=envelope,
                                                   timeout=60, headers={"Content-Type": "application/json"}))
        _assert_unavailable(inbox, took)
        worker = gbg.spawn("deliver", "--min-backoff", "0.5", "--max-backoff", "1", "--poll-seconds", "0.1")
        time.sleep(3)
        assert worker.poll() is None and not _delivered(gbg, message_id)
    finally:
        restore()  # type: ignore[operator]
    deadline = time.monotonic() + 60
    while not _delivered(gbg, message_id):
        assert time.monotonic() < deadline, f"not delivered after the database came back: {gbg.log.read_text()[-2000:]}"
        time.sleep(0.2)
    assert _count(sarajevo, sa.select(sa.func.count()).select_from(InboundMessage)) == 1
    notes = sarajevo.api("GET", f"/cases/{case_id}/notes", token)
    assert notes.status_code == 200 and notes.json()["items"] == []  # the refused note was not saved
    again = sarajevo.api("POST", f"/cases/{case_id}/notes", token, json={"text": "Met at the airport."})
    assert again.status_code == 201, again.text
    assert sarajevo.cli("audit", "verify").returncode == 0


def test_a_locked_sqlite_database_answers_503_and_nothing_changes(tmp_path: Path) -> None:
    net = Network(tmp_path, lambda: None)
    try:
        gbg, sarajevo = _pair(net)
        token = sarajevo.user("emina", "adviser", team="sarajevo")
        sarajevo.start()
        gbg.start()
        case = sarajevo.api("POST", "/cases", token, json=CASE)
        assert case.status_code == 201, case.text
        database = load_config(sarajevo.data_dir).data_dir / "node.db"
        held: list[subprocess.Popen[str]] = []
        _exercise(gbg, sarajevo, token, case.json()["id"],
                  outage=lambda: held.append(_hold_sqlite_lock(database, 40)),
                  restore=lambda: [_release(p) for p in held])
    finally:
        net.stop_all()


class PrivateCluster:
    """A PostgreSQL cluster of this test's own, on a free loopback port, run as the ``postgres`` user."""

    def __init__(self) -> None:
        # Outside pytest's temporary directories: those are private to root, and the server runs as postgres.
        self.root = Path(tempfile.mkdtemp(prefix="ccm-test-pg-"))
        self.dir = self.root / "pgdata"
        self.port = free_port()
        self.log = self.root / "pg.log"

    def _as_postgres(self, *args: str) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", *args], check=True, capture_output=True, timeout=120)

    def init(self) -> None:
        self.dir.mkdir()
        shutil.chown(self.dir, "postgres", "postgres")
        shutil.chown(self.root, "postgres")
        self._as_postgres(str(PG_BIN / "initdb"), "-D", str(self.dir), "-U", "postgres", "--auth=trust")
        self.start()

    def start(self) -> None:
        self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.dir), "-l", str(self.log), "-w", "-o",
                          f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1", "start")

    def stop(self) -> None:
        self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.dir), "-m", "fast", "-w", "stop")

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"


@pytest.fixture
def private_cluster() -> Iterator[PrivateCluster]:
    if not (PG_BIN / "initdb").exists() or shutil.which("runuser") is None:
        pytest.skip("PostgreSQL 15's initdb is not installed")
    cluster = PrivateCluster()
    try:
        cluster.init()
        yield cluster
        with contextlib.suppress(subprocess.CalledProcessError):  # stopped already
            cluster.stop()
    finally:
        shutil.rmtree(cluster.root, ignore_errors=True)


@pytest.mark.postgres
def test_a_postgresql_server_stopped_and_started_answers_503_then_works(
        tmp_path: Path, private_cluster: PrivateCluster) -> None:
    urls = iter([None, private_cluster.url])
    net = Network(tmp_path / "nodes", lambda: next(urls))
    try:
        gbg, sarajevo = _pair(net)
        token = sarajevo.user("emina", "adviser", team="sarajevo")
        sarajevo.start()
        gbg.start()
        case = sarajevo.api("POST", "/cases", token, json=CASE)
        assert case.status_code == 201, case.text
        _exercise(gbg, sarajevo, token, case.json()["id"], outage=private_cluster.stop,
                  restore=private_cluster.start)
    finally:
        net.stop_all()
