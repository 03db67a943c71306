"""The four-node demo network in one command: ``ccm-node demo [--base-dir var/demo] [--check]``.

GI Göteborg (``se.gi-goteborg``), CLDD Sarajevo (``ba.cldd-sarajevo``), CLDD Baghdad (``iq.cldd-baghdad``) and
a partner in Accra (``gh.accra-partner``), each with its own data directory, SQLite database, gunicorn process
on loopback and delivery worker (``ccm-node deliver``). The nodes trust each other the way two organisations
do: each administrator fetches the other's card from its URL and adds it with the fingerprint read out over the
phone and the id of the agreement they signed (``ccm-node partner add``, the real code path).

The first start seeds the story through the nodes' own HTTP APIs (:mod:`node.demo_story`): cases at intake, a
consent, handovers delivered with signed receipts, accepted with progress back, one declined, a child's case.
Later starts reuse the directory (delete it to start over). Ctrl-C stops every process cleanly.

``--check`` runs the same network headless in a fresh directory, verifies every step of the story and that
every node's audit chain is intact, stops everything and exits 0 only if all of it verified.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

from .clock import SystemClock
from .config import allow_loopback
from .demo_nodes import NETWORK, Command, DemoError, DemoNode, run_command
from .private_files import write_private

DEMO_PASSWORD = "demo-password-2026"  # noqa: S105 - printed for the demo logins, never a real node
ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 60.0


def _bind(port: int) -> int | None:
    """The port bound (as a server would: address reuse on, so that connections of an earlier run waiting
    in TIME_WAIT do not count), or None when something listens there."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return None
        return int(sock.getsockname()[1])


def free_port(preferred: int) -> int:
    """``preferred`` if nothing listens there, else any free loopback port."""
    port = _bind(preferred) or _bind(0)
    if port is None:
        raise DemoError("no free port on 127.0.0.1")
    return port


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CCM_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, (str(ROOT), env.get("PYTHONPATH"))))
    env["PYTHONUNBUFFERED"] = "1"
    return env


class Network:
    """The four nodes: set up, started, trusted to each other, stopped."""

    def __init__(self, base_dir: Path, command: Command, workers: int = 2) -> None:
        self.base_dir = base_dir
        self.workers = workers
        self.command = command
        self.nodes = [DemoNode(spec, base_dir / spec.node_id, command) for spec in NETWORK]
        self.fresh = not (base_dir / ".seeded").exists()

    def node(self, key: str) -> DemoNode:
        return next(n for n in self.nodes if n.spec.key == key)

    # -- setting up ----------------------------------------------------------------------------------------
    def prepare(self) -> None:
        """Initialise the nodes that do not exist yet and reuse the ports of those that do."""
        from .config import load_config

        self.base_dir.mkdir(parents=True, exist_ok=True)
        for node in self.nodes:
            if (node.data_dir / "node.toml").exists():
                node.url = load_config(node.data_dir).base_url
                port = int(node.url.rsplit(":", 1)[1])
                if _bind(port) is None:
                    raise DemoError(f"port {port} of {node.spec.node_id} is in use: is another demo running? "
                                    f"(or delete {self.base_dir} to start over)")
                continue
            node.url = f"http://127.0.0.1:{free_port(node.spec.port)}"
            run_command(self.command, "init", "--data-dir", str(node.data_dir), "--node-id", node.spec.node_id,
                        "--name", node.spec.name, "--url", node.url)
            allow_loopback(node.data_dir)  # the four nodes reach each other on 127.0.0.1
            self._add_staff(node)
        for node in self.nodes:
            self._tokens(node)

    def _add_staff(self, node: DemoNode) -> None:
        from .accounts import create_user
        from .audit import record
        from .config import load_config
        from .db import make_engine, make_sessionmaker

        engine = make_engine(load_config(node.data_dir).database_url)
        try:
            with make_sessionmaker(engine)() as session:
                now = SystemClock().now()
                for username, name, role, team in node.spec.staff:
                    user = create_user(session, username=username, role=role, now=now, display_name=name,
                                       team=team, password=DEMO_PASSWORD)
                    record(session, actor=None, action="create", object_type="user", object_id=str(user.id),
                           case_id=None, now=now, detail={"via": "demo"})
                session.commit()
        finally:
            engine.dispose()

    def _tokens(self, node: DemoNode) -> None:
        for username, _name, role, _team in node.spec.staff:
            if role != "admin":
                node.tokens[username] = node.cli("token", "create", username, "--days", "7",
                                                 "--name", "demo").strip()

    # -- running -------------------------------------------------------------------------------------------
    def _spawn(self, node: DemoNode, *argv: str) -> None:
        log = (self.base_dir / f"{node.spec.node_id}.log").open("ab")
        try:
            node.processes.append(subprocess.Popen(  # noqa: S603 - our own interpreter and fixed arguments
                [sys.executable, "-m", "node.cli", "--data-dir", str(node.data_dir), *argv], env=_env(),
                cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True))
        finally:
            log.close()

    def start(self) -> None:
        """Start every node's web server and delivery worker; wait until each serves its card."""
        for node in self.nodes:
            self._spawn(node, "serve", "--port", node.url.rsplit(":", 1)[1], "--workers", str(self.workers))
            self._spawn(node, "deliver", "--min-backoff", "1", "--max-backoff", "30")
        deadline = time.monotonic() + START_TIMEOUT
        for node in self.nodes:
            while True:
                if any(p.poll() is not None for p in node.processes):
                    raise DemoError(f"{node.spec.node_id} stopped at start; see "
                                    f"{self.base_dir / (node.spec.node_id + '.log')}")
                with contextlib.suppress(requests.RequestException):
                    if node.http.get(f"{node.url}/federation/v1/card", timeout=2).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise DemoError(f"{node.spec.node_id} did not answer within {START_TIMEOUT:g} s")
                time.sleep(0.1)

    def connect(self) -> list[str]:
        """Every pair of nodes trusts each other: card fetched from the URL, fingerprint, agreement id."""
        done = []
        for i, a in enumerate(self.nodes):
            for b in self.nodes[i + 1:]:
                agreement = f"dsa-{a.spec.key}-{b.spec.key}-2026"
                for mine, theirs in ((a, b), (b, a)):
                    fingerprint = theirs.cli("fingerprint").strip()  # read out over the phone
                    mine.cli("partner", "add", theirs.url, "--fingerprint", fingerprint, "--agreement", agreement)
                done.append(f"{a.spec.node_id} ⇄ {b.spec.node_id} ({agreement})")
        return done

    def dead(self) -> DemoNode | None:
        return next((n for n in self.nodes if any(p.poll() is not None for p in n.processes)), None)

    def stop(self) -> None:
        """Terminate every process (SIGTERM to each process group, SIGKILL after 20 s)."""
        processes = [p for n in self.nodes for p in n.processes]
        for proc in processes:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for proc in processes:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        for node in self.nodes:
            node.processes.clear()
            node.http.close()

    def verify_audit(self) -> list[str]:
        return [f"{n.spec.node_id}: {n.cli('audit', 'verify').strip().splitlines()[-1]}" for n in self.nodes]

    def verify_web(self) -> list[str]:
        """Every node's address answers a browser with the sign-in page.

        Raises:
            RuntimeError: a node does not.
        """
        lines = []
        for node in self.nodes:
            response = requests.get(f"{node.url}/", timeout=30)
            if response.status_code != 200 or 'name="password"' not in response.text:
                raise RuntimeError(f"{node.url}/ did not answer with the sign-in page ({response.status_code})")
            lines.append(f"{node.spec.node_id}: {node.url}/ answers with the sign-in page")
        return lines


def _print_network(network: Network) -> None:
    print("\n  CCM Exchange demo network (Ctrl-C stops it; data in " f"{network.base_dir})\n")
    for node in network.nodes:
        print(f"  {node.spec.name} ({node.spec.node_id})")
        print(f"    Web:    {node.url}/   (open it in a browser and sign in)")
        print(f"    API:    {node.url}/api/v1/openapi.json")
        for username, _name, role, _team in node.spec.staff:
            token = f"  token {node.tokens[username]}" if username in node.tokens else ""
            print(f"    login:  {username:<17} {role:<12}{token}".rstrip())
    print(f"\n  Password for every login: {DEMO_PASSWORD}")
    print("  An admin sets up two-step sign-in (an authenticator app) at the first web login.")
    gbg = network.node("goteborg")
    token = gbg.tokens[gbg.user("counsellor")]
    print(f'  Try:      curl -H "Authorization: Bearer {token}" "{gbg.url}/api/v1/handovers?direction=outgoing"\n',
          flush=True)


def run(base_dir: Path | None, *, command: Command, check: bool = False, workers: int = 2) -> int:
    """Set up, start and (first time) seed the network; serve until Ctrl-C, or with ``check`` verify and stop.

    Args:
        base_dir: where the nodes live (default ``var/demo``; for ``check`` a temporary directory, removed
            afterwards).
        command: ``ccm-node``'s ``main`` (the nodes are set up through it).
        check: run headless through the story, verify every step, stop.
        workers: gunicorn workers per node.
    Returns:
        The exit status: 0; 1 when a step failed or a process stopped; 2 for a misuse.
    """
    from .demo_story import seed_demo, synthetic_cases

    temporary = None
    if base_dir is None:
        temporary = Path(tempfile.mkdtemp(prefix="ccm-demo-check-")) if check else None
        base_dir = temporary or Path("var/demo")
    elif check and base_dir.exists() and any(base_dir.iterdir()):
        print(f"ccm-node demo --check: {base_dir} is not empty; --check needs a fresh directory",
              file=sys.stderr)
        return 2
    network = Network(base_dir, command, workers)
    stop = threading.Event()
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        network.prepare()
        network.start()
        if network.fresh:
            for line in network.connect():
                print(f"  trusted: {line}", flush=True)
            for step in seed_demo(network):
                print(f"  ✔ {step}", flush=True)
            if not check:
                synthetic_cases(network)
            (base_dir / ".seeded").write_text("seeded\n", encoding="utf-8")
        if check:
            for line in network.verify_audit():
                print(f"  ✔ audit chain {line}", flush=True)
            for line in network.verify_web():
                print(f"  ✔ web {line}", flush=True)
            print("demo check: every step verified", flush=True)
            return 0
        _print_network(network)
        print(f"  API tokens of every login: {tokens_file(network)}\n", flush=True)
        while not stop.wait(0.5):
            dead = network.dead()
            if dead is not None:
                print(f"ccm-node demo: a process of {dead.spec.node_id} stopped; stopping the network",
                      file=sys.stderr)
                return 1
        return 0
    except DemoError as exc:
        print(f"ccm-node demo: {exc}", file=sys.stderr)
        return 1
    finally:
        network.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if temporary is not None:
            shutil.rmtree(temporary, ignore_errors=True)


def tokens_file(network: Network) -> Path:
    """Write the demo tokens next to the nodes (mode 0600) for scripts that drive the demo."""
    path = network.base_dir / "demo-tokens.json"
    data = {n.spec.node_id: {"url": n.url, "tokens": n.tokens} for n in network.nodes}
    write_private(path, json.dumps(data, indent=2, ensure_ascii=False).encode("utf-8"), durable=False)
    return path
