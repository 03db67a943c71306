"""The data directory's disk fills up under a real node process (gunicorn, SQLite): writes through the API and
the federation inbox answer ``503 storage_full`` in words, never a 500 or a traceback; ``/healthz`` stays 200
and ``/readyz`` names the full disk; the database stays consistent (integrity check, not a byte of any table
changed, the audit chain verifies); and once the filler file is removed the same writes succeed, with the same
server process, without a restart.

The node runs in a mount namespace of its own (``unshare --mount --propagation private``) whose data directory
(``node.db``, ``node.toml``, ``keys/``, ``metrics/``) is a small tmpfs, copied in from a directory initialised
on the host: the machine's filesystems are never filled, and the tmpfs goes away with the node. The test reaches
into the namespace with ``nsenter --mount`` to fill the disk, read the database and run ``ccm-node``. Mounting
needs root; without it the test is skipped with the reason, except in CI (``CI=true``), where it fails.

SQLite only: a PostgreSQL node's database lives in the server's own data directory, on a disk the node does not
own; the node answers the server's ``disk_full`` (SQLSTATE 53100) with the same ``503 storage_full``, which
``tests/node/test_storage_full.py`` checks.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa

from node.exchange.models import OutboundMessage
from tests.conftest import IN_CI
from tests.e2e.delivery_support import Databases, queue
from tests.harness import ROOT, Network, NodeProcess

pytestmark = pytest.mark.slow
AGREEMENT = "dsa-gi-cldd-2026"
DISK_MB = 8
CASE = {"returnee": {"given_names": "Layla", "family_name": "Hassan", "date_of_birth": "1991-07-30",
                     "languages": ["ar"]}, "destination_country": "BA"}
CONSENT = {"recipients": ["ba.cldd-sarajevo"], "categories": ["identity", "contact", "plan"],
           "purpose": "reintegration_support", "method": "written_signature", "valid_until": "2027-11-30"}

#: Run inside the namespace: write zeros to a file until the disk refuses, then print the blocks left.
FILL = """
import errno, os, sys
with open(sys.argv[1], "wb", buffering=0) as out:
    for size in (1 << 20, 1 << 12):
        try:
            while True:
                out.write(bytes(size))
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
print(os.statvfs(os.path.dirname(sys.argv[1])).f_bavail)
"""
#: Run inside the namespace: the database read-only: its integrity check, a digest of every table's rows, the
#: rows per table and each case's version.
SNAPSHOT = """
import hashlib, json, sqlite3, sys
db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
tables = [r[0] for r in db.execute("SELECT name FROM sqlite_schema WHERE type = 'table' "
                                   "AND name NOT LIKE 'sqlite_%' ORDER BY name")]
digest, rows = hashlib.sha256(), {}
for table in tables:
    content = db.execute(f'SELECT * FROM "{table}" ORDER BY rowid').fetchall()
    digest.update(repr((table, content)).encode())
    rows[table] = len(content)
print(json.dumps({"integrity": db.execute("PRAGMA integrity_check").fetchone()[0], "digest": digest.hexdigest(),
                  "rows": rows, "versions": dict(db.execute("SELECT id, version FROM cases"))}))
"""


def _namespaces_refused() -> str | None:
    """None when this process may mount a tmpfs in a private mount namespace, else why not."""
    if os.geteuid() != 0:
        return "mounting a tmpfs in a mount namespace of its own needs root"
    missing = [tool for tool in ("unshare", "nsenter", "mount") if shutil.which(tool) is None]
    if missing:
        return f"not installed: {', '.join(missing)}"
    with tempfile.TemporaryDirectory() as probe:
        tried = subprocess.run(["unshare", "--mount", "--propagation", "private", "--", "mount", "-t", "tmpfs",
                                "-o", "size=1m", "tmpfs", probe], capture_output=True, text=True, timeout=30)
    if tried.returncode != 0:
        return f"cannot mount a tmpfs in a private mount namespace: {tried.stderr.strip()}"
    return None


@pytest.fixture(scope="module")
def small_disks() -> None:
    reason = _namespaces_refused()
    if reason is not None:
        if IN_CI:
            pytest.fail(f"the disk-full test is required in CI, but {reason}")
        pytest.skip(f"disk-full test skipped: {reason}")


class SmallDiskNode(NodeProcess):
    """A node initialised on the host in ``data_dir`` that, when started, runs in a mount namespace of its own
    with a copy of that directory on a tmpfs of ``size_mb`` (the mount point ``disk`` stays empty on the host).
    While it runs, ``ccm-node`` commands run inside the namespace on the tmpfs."""

    def __init__(self, node_id: str, name: str, root: Path, size_mb: int) -> None:
        super().__init__(node_id, name, root / node_id, None)
        self.disk = root / f"{node_id}.disk"
        self.size_mb = size_mb

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def inside(self, *command: str) -> list[str]:
        """``command`` run in the node's mount namespace (the server's process is in it from its start)."""
        assert self.proc is not None
        return ["nsenter", f"--target={self.proc.pid}", "--mount", f"--wd={ROOT}", "--", *command]

    def command(self, *args: str) -> list[str]:
        if not self.running:
            return super().command(*args)  # initialising, on the host
        return self.inside(sys.executable, "-m", "node.cli", "--data-dir", str(self.disk), *args)

    def serve_command(self, workers: int) -> list[str]:
        self.disk.mkdir(exist_ok=True)
        script = 'mount -t tmpfs -o "size=$1m,mode=0700" tmpfs "$2" && cp -a "$3/." "$2/" && shift 3 && exec "$@"'
        serve = [sys.executable, "-m", "node.cli", "--data-dir", str(self.disk), "serve", "--port", str(self.port),
                 "--workers", str(workers)]
        return ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", script, "sh", str(self.size_mb),
                str(self.disk), str(self.data_dir), *serve]

    def run_inside(self, *command: str) -> str:
        done = subprocess.run(self.inside(*command), capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def fill(self) -> None:
        """Fill the tmpfs with a filler file until not a block is left."""
        left = self.run_inside(sys.executable, "-c", FILL, str(self.disk / "filler"))
        assert int(left) == 0, f"{left.strip()} blocks still free"

    def free(self) -> None:
        self.run_inside("rm", str(self.disk / "filler"))

    def snapshot(self) -> dict[str, Any]:
        taken: dict[str, Any] = json.loads(self.run_inside(sys.executable, "-c", SNAPSHOT, str(self.disk / "node.db")))
        return taken


def _storage_full(response: requests.Response) -> None:
    """The answer a write gets on a full disk: 503 in words, asking to come back later."""
    assert response.status_code == 503, response.text
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.headers["Retry-After"] == "60"
    body = response.json()
    assert body["code"] == "storage_full" and body["status"] == 503
    assert "disk is full" in body["detail"] and "nothing was changed" in body["detail"]


def test_a_full_disk_answers_503_changes_nothing_and_recovers_without_a_restart(tmp_path: Path,
                                                                               small_disks: None) -> None:
    net = Network(tmp_path, lambda: None)
    gbg = SmallDiskNode("se.gi-goteborg", "Göteborgs-Initiativet", tmp_path, DISK_MB)
    gbg.init()
    net.nodes[gbg.node_id] = gbg
    sarajevo = net.add("ba.cldd-sarajevo", "CLDD Sarajevo")
    net.connect(gbg, sarajevo, AGREEMENT)
    anna = gbg.user("anna.lindqvist", "counsellor", team="gbg")
    dbs = Databases()
    try:
        # Sarajevo (not running: only its outbox is used) has a message for Göteborg's inbox.
        queue(dbs, sarajevo, gbg, 1, 1)
        with dbs.session(sarajevo) as session:
            envelope = bytes(session.scalars(sa.select(OutboundMessage.envelope)).one())
        gbg.start()
        server = gbg.proc
        assert server is not None
        case = gbg.api("POST", "/cases", anna, json=CASE)
        assert case.status_code == 201, case.text
        case_id = case.json()["id"]
        consent = gbg.api("POST", f"/cases/{case_id}/consents", anna, json=CONSENT)
        assert consent.status_code == 201, consent.text
        handover = {"recipient": "ba.cldd-sarajevo", "consent_id": consent.json()["id"]}

        def writes() -> dict[str, requests.Response]:
            version = gbg.snapshot()["versions"][case_id]
            return {
                "create a case": gbg.api("POST", "/cases", anna, json=CASE),
                "edit the case": gbg.api("PATCH", f"/cases/{case_id}", anna, json={"destination_locality": "Mostar"},
                                         headers={"If-Match": f'"{version}"'}),
                "hand the case over": gbg.api("POST", f"/cases/{case_id}/handovers", anna, json=handover),
                "read the case (audited)": gbg.api("GET", f"/cases/{case_id}", anna),
                "a partner's message": requests.post(f"{gbg.url}/federation/v1/inbox", data=envelope, timeout=30,
                                                     headers={"Content-Type": "application/json"}),
            }

        before = gbg.snapshot()
        gbg.fill()
        refused = writes()
        for what, response in refused.items():
            assert response.status_code == 503, f"{what}: {response.status_code} {response.text}"
            _storage_full(response)
        assert requests.get(f"{gbg.url}/healthz", timeout=10).status_code == 200
        ready = requests.get(f"{gbg.url}/readyz", timeout=10)
        assert ready.status_code == 503 and ready.json()["checks"]["disk"].startswith("full: ")
        assert {k: v for k, v in ready.json()["checks"].items() if k != "disk"} == {
            "database": "ok", "keys": "ok", "data_key": "ok", "migrations": "ok"}
        # Reads that write nothing still work.
        assert gbg.http.get(f"{gbg.url}/api/v1/openapi.json", timeout=10).status_code == 200
        assert gbg.http.get(f"{gbg.url}/metrics", timeout=10).status_code == 200
        during = gbg.snapshot()
        assert during["integrity"] == "ok"
        assert during == before  # not a row of any table changed
        assert gbg.cli("audit", "verify").returncode == 0

        gbg.free()
        assert requests.get(f"{gbg.url}/readyz", timeout=10).status_code == 200
        accepted = writes()
        expected = {"create a case": 201, "edit the case": 200, "hand the case over": 202,
                    "read the case (audited)": 200, "a partner's message": 200}
        assert {what: r.status_code for what, r in accepted.items()} == expected, {
            what: r.text[:300] for what, r in accepted.items()}
        after = gbg.snapshot()
        assert after["integrity"] == "ok"
        assert after["versions"][case_id] == before["versions"][case_id] + 1
        grown = {table: after["rows"][table] - before["rows"][table] for table in ("cases", "handovers",
                                                                                   "inbound_messages")}
        assert grown == {"cases": 1, "handovers": 1, "inbound_messages": 1}
        assert gbg.cli("audit", "verify").returncode == 0
        assert gbg.proc is server and server.poll() is None  # the same server process throughout
        log = gbg.log.read_text()
        assert "disk full: OperationalError (SQLITE_FULL)" in log
        for never in ("Traceback", "SIGBUS", "internal_error", CASE["returnee"]["family_name"]):
            assert never not in log, f"{never!r} in the node's log"
    finally:
        dbs.close()
        net.stop_all()
