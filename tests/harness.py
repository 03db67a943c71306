"""A multi-node harness: every node a real process (gunicorn on an ephemeral loopback port) with its own data
directory and database (SQLite file, or a fresh PostgreSQL database).

    net = Network(tmp_path, make_database_url)
    gbg = net.add("se.gi-goteborg", "Göteborgs-Initiativet")
    gbg.start()
    token = gbg.user("anna", "counsellor", team="gbg")
    gbg.api("POST", "/cases", token, json={...})
    gbg.kill()            # SIGKILL, for fault tests
    net.stop_all()
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from node.config import allow_loopback

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class NodeProcess:
    def __init__(self, node_id: str, name: str, data_dir: Path, database_url: str | None) -> None:
        self.node_id = node_id
        self.name = name
        self.data_dir = data_dir
        self.database_url = database_url
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.workers: list[subprocess.Popen[bytes]] = []
        self.http = requests.Session()
        self.log = data_dir.parent / f"{node_id}.log"
        #: Processes started while this is set run on a clock moved this many seconds (``node/clock.py``).
        self.clock_offset: float | None = None

    # -- the CLI -------------------------------------------------------------------------------------
    def command(self, *args: str) -> list[str]:
        """The ``ccm-node`` command line for ``args`` on this node (a subclass may run it elsewhere)."""
        return [sys.executable, "-m", "node.cli", "--data-dir", str(self.data_dir), *args]

    def cli(self, *args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(self.command(*args), input=stdin, capture_output=True, text=True, cwd=ROOT,
                                env=self._env(), timeout=120, check=False)
        if check and result.returncode != 0:
            raise AssertionError(f"ccm-node {' '.join(args)} failed ({result.returncode}): {result.stderr}")
        return result

    def init(self) -> None:
        extra = ["--database-url", self.database_url] if self.database_url else []
        self.cli("init", "--node-id", self.node_id, "--name", self.name, "--url", self.url, *extra)
        allow_loopback(self.data_dir)  # the test network's nodes reach each other on 127.0.0.1

    def user(self, username: str, role: str, team: str | None = None) -> str:
        """Add a user and return a fresh API token for them."""
        self.cli("user", "add", username, "--role", role, *(["--team", team] if team else []))
        return self.cli("token", "create", username).stdout.strip()

    # -- the process ---------------------------------------------------------------------------------
    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CCM_")}
        env["PYTHONUNBUFFERED"] = "1"
        if self.clock_offset is not None:
            env.update(CCM_TESTING="1", CCM_CLOCK_OFFSET_SECONDS=str(self.clock_offset))
        return env

    def serve_command(self, workers: int) -> list[str]:
        """The command that runs the web server (a subclass may wrap it, e.g. in a mount namespace)."""
        return self.command("serve", "--port", str(self.port), "--workers", str(workers))

    def start(self, workers: int = 2, timeout: float = 30.0) -> None:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(self.serve_command(workers), cwd=ROOT, env=self._env(), stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.node_id} exited at start: {self.log.read_text()[-2000:]}")
            try:
                if self.http.get(f"{self.url}/api/v1/openapi.json", timeout=1).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"{self.node_id} did not answer within {timeout} s")

    def spawn(self, *args: str) -> subprocess.Popen[bytes]:
        """Start another long-running ``ccm-node`` command (e.g. a delivery worker); stopped with the node."""
        with self.log.open("ab") as log:
            proc = subprocess.Popen(self.command(*args), cwd=ROOT, env=self._env(), stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        self.workers.append(proc)
        return proc

    def stop(self) -> None:
        for proc in [*self.workers, *([self.proc] if self.proc else [])]:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in [*self.workers, *([self.proc] if self.proc else [])]:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.workers.clear()
        self.proc = None

    def kill(self) -> None:
        """SIGKILL the web server (master and workers) at once: no graceful shutdown."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.proc = None

    # -- the exchange --------------------------------------------------------------------------------
    def fingerprint(self) -> str:
        return self.cli("fingerprint").stdout.strip()

    def trust(self, other: NodeProcess, agreement: str | None, *, by_url: bool = False) -> None:
        """Add ``other`` as a partner after checking its fingerprint (its card from a file, or its URL)."""
        source = [other.url]
        if not by_url:
            card_file = self.data_dir.parent / f"{other.node_id}.card.json"
            card_file.write_text(other.cli("card").stdout, encoding="utf-8")
            source = ["--card-file", str(card_file)]
        self.cli("partner", "add", *source, "--fingerprint", other.fingerprint(),
                 *(["--agreement", agreement] if agreement else []))

    def stop_process(self, proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM,
                     timeout: float = 45) -> int:
        """Signal one spawned process (SIGKILL for fault tests) and wait for it. A delivery worker finishes
        the attempts in flight first (up to 5 s to connect and 30 s to read), hence the 45 s; past them, its
        threads' stacks go to its log and into the failure."""
        if proc.poll() is None:
            os.killpg(proc.pid, sig)
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGUSR1)  # the delivery worker dumps its threads' stacks into the log
            time.sleep(1)
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise AssertionError(f"{self.node_id}: process {proc.pid} did not stop within {timeout} s; "
                                 f"its log ends:\n{self.log.read_text(errors='replace')[-6000:]}") from None

    # -- the API -------------------------------------------------------------------------------------
    def api(self, method: str, path: str, token: str, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}", **kwargs.pop("headers", {})}
        return self.http.request(method, f"{self.url}/api/v1{path}", headers=headers, timeout=30, **kwargs)


class Network:
    def __init__(self, root: Path, make_database_url: Callable[[], str | None]) -> None:
        self.root = root
        self.make_database_url = make_database_url
        self.nodes: dict[str, NodeProcess] = {}

    def add(self, node_id: str, name: str) -> NodeProcess:
        node = NodeProcess(node_id, name, self.root / node_id, self.make_database_url())
        node.init()
        self.nodes[node_id] = node
        return node

    def connect(self, a: NodeProcess, b: NodeProcess, agreement: str) -> None:
        """Make two nodes partners of each other under one data-sharing agreement."""
        a.trust(b, agreement)
        b.trust(a, agreement)

    def stop_all(self) -> None:
        for node in self.nodes.values():
            node.stop()
