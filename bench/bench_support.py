"""Tools of the benches: percentiles, client threads, read-only database access, waiting on progress,
PostgreSQL databases made and dropped, the CPU time and memory (PSS) of process trees (from ``/proc``), and a
node filled with demo cases (``bench/api_bench.py``, ``bench/web_bench.py``)."""

from __future__ import annotations

import contextlib
import http.client
import json as _json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import requests
import sqlalchemy as sa
from sqlalchemy import event

from node.db import make_engine, normalise_url
from node.exchange.delivery.transport import HttpTransport
from node.outbound import OutboundPolicy

T = TypeVar("T")
R = TypeVar("R")
ADMIN_DSN = os.environ.get("CCM_TEST_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
STALL = 120.0  # seconds without progress before a phase is declared stuck
TICKS = os.sysconf("SC_CLK_TCK")


class BenchError(Exception):
    """A phase failed (an unexpected answer, or no progress)."""


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))]


def pss_kb(pid: int) -> int:
    """The proportional set size of a live process (0 if it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except FileNotFoundError:
        return 0
    return 0


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def node_pss_kb(pid: int) -> tuple[int, int]:
    """(PSS in kB of a gunicorn master and its workers together, the number of workers)."""
    workers = children(pid)
    return pss_kb(pid) + sum(pss_kb(c) for c in workers), len(workers)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ccm(data_dir: Path, *args: str, stdin: str | None = None) -> str:
    """Run ``ccm-node --data-dir DATA_DIR ARGS``; its standard output.

    Raises:
        BenchError: the command failed.
    """
    root = Path(__file__).resolve().parent.parent
    result = subprocess.run([sys.executable, "-m", "node.cli", "--data-dir", str(data_dir), *args], input=stdin,
                            capture_output=True, text=True, cwd=root, check=False)
    if result.returncode != 0:
        raise BenchError(f"ccm-node {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout.strip()


@contextlib.contextmanager
def demo_node(backend: str, cases: int, port: int, prefix: str = "ccm-bench") -> Iterator[tuple[Path, float]]:
    """A node in a temporary data directory (PostgreSQL: in a fresh database, dropped afterwards) with
    counsellors c1..c4 of team "bench" and ``cases`` demo cases (seed 7) assigned to them in turn.

    Yields:
        (the data directory, the seconds the filling took).
    """
    import tempfile

    data = Path(tempfile.mkdtemp(prefix=f"{prefix}-{backend}-")) / "node"
    init_args = ["init", "--node-id", "se.gi-goteborg", "--name", "GI Göteborg", "--url", f"http://127.0.0.1:{port}"]
    with contextlib.ExitStack() as stack:
        url = databases(stack, backend)()
        if url is not None:
            init_args += ["--database-url", url]
        ccm(data, *init_args)
        for user in ("c1", "c2", "c3", "c4"):
            ccm(data, "user", "add", user, "--role", "counsellor", "--team", "bench")
        t0 = time.perf_counter()
        ccm(data, "demo-data", "--cases", str(cases), "--seed", "7")
        yield data, time.perf_counter() - t0


def start_node(data_dir: Path, port: int, workers: int = 2) -> subprocess.Popen[bytes]:
    """``ccm-node serve`` (gunicorn, the node's worker class, 4 threads a worker) in its own session, its
    output in ``DATA_DIR/../serve.log``; stop it with :func:`stop_process`. It may not be answering yet."""
    root = Path(__file__).resolve().parent.parent
    log = (data_dir.parent / "serve.log").open("wb")
    return subprocess.Popen([sys.executable, "-m", "node.cli", "--data-dir", str(data_dir), "serve", "--port",
                             str(port), "--workers", str(workers)], cwd=root, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)


def p50_p99_ms(seconds: list[float]) -> tuple[float, float]:
    return statistics.median(seconds) * 1000, pct(seconds, 99) * 1000


def parallel(fn: Callable[[T], R], items: Iterable[T], threads: int) -> list[R]:
    """``fn`` over ``items`` on ``threads`` threads; on an error or Ctrl-C, calls not started are dropped."""
    pool = ThreadPoolExecutor(threads, thread_name_prefix="bench")
    try:
        return list(pool.map(fn, items))
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def reader(url: str) -> sa.Engine:
    """An engine for reading a node's database without taking SQLite's write lock."""
    url = normalise_url(url)
    if not url.startswith("sqlite"):
        return make_engine(url)
    engine = sa.create_engine(url, connect_args={"timeout": 30})

    @event.listens_for(engine, "connect")
    def _read_only(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # each statement sees the newest commit
        dbapi_conn.execute("PRAGMA query_only=ON")

    return engine


def count(engine: sa.Engine, query: sa.Select[Any]) -> int:
    with engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def wait_for(what: str, progress: Callable[[], int], goal: int, interval: float) -> None:
    """Poll ``progress`` until it reaches ``goal``.

    Raises:
        BenchError: no progress for ``STALL`` seconds.
    """
    last, moved = -1, time.monotonic()
    while (value := progress()) < goal:
        if value != last:
            last, moved = value, time.monotonic()
        elif time.monotonic() - moved > STALL:
            raise BenchError(f"{what}: stuck at {value} of {goal} for {STALL:.0f} s")
        time.sleep(interval)


def clean_env() -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if not k.startswith("CCM_")}, "PYTHONUNBUFFERED": "1"}


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM a process started in its own session (and its children); SIGKILL after 20 s."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def wait_http(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60.0) -> None:
    """Wait until ``url`` answers 200.

    Raises:
        BenchError: the process exited, or no answer within ``timeout``.
    """
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise BenchError(f"{proc.args!r} exited: {log.read_text(errors='replace')[-2000:]}")
        with contextlib.suppress(requests.ConnectionError):
            if requests.get(url, timeout=1).status_code == 200:
                return
        if time.monotonic() > deadline:
            raise BenchError(f"{url} did not answer within {timeout:.0f} s")
        time.sleep(0.1)


class ApiClient:
    """The node's API over ``http.client``, one connection per call, with
    the bearer token: as light a client as the delivery worker's, so that the client threads take as little
    of the CPUs the nodes share as they do in the bare inbox's phase."""

    def __init__(self, base_url: str, token: str) -> None:
        parts = urllib.parse.urlsplit(base_url)
        if parts.scheme != "http" or not parts.hostname:
            raise BenchError(f"not a loopback http URL: {base_url}")
        self.host, self.port = parts.hostname, parts.port
        self.base = parts.path.rstrip("/") + "/api/v1"
        self.headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}

    def call(self, method: str, path: str, status: int, *, json: Any = None,
             params: dict[str, str] | None = None) -> Any:
        target = self.base + path + (f"?{urllib.parse.urlencode(params)}" if params else "")
        headers, body = dict(self.headers), None
        if json is not None:
            body = _json.dumps(json).encode("utf-8")
            headers["Content-Type"] = "application/json"
        connection = http.client.HTTPConnection(self.host, self.port, timeout=120)
        try:
            connection.request(method, target, body=body, headers=headers)
            response = connection.getresponse()
            data = response.read()
        finally:
            connection.close()
        if response.status != status:
            raise BenchError(f"{method} {path}: HTTP {response.status}: {data[:300]!r}")
        return _json.loads(data)


def post_all(url: str, envelopes: list[bytes], threads: int) -> tuple[float, list[float], list[bytes]]:
    """Post envelopes to an inbox with the delivery worker's HTTP client.

    Returns:
        (elapsed seconds, per-request seconds, the answers in order).
    Raises:
        BenchError: an answer other than 200.
    """
    transport = HttpTransport(policy=OutboundPolicy(allow_loopback=True))  # the bench's nodes are on 127.0.0.1
    times: list[float] = []

    def one(envelope: bytes) -> bytes:
        t0 = time.perf_counter()
        answer = transport.deliver(url, envelope)
        times.append(time.perf_counter() - t0)
        if answer.status != 200:
            raise BenchError(f"inbox {url}: {answer.status or answer.error}: {answer.body[:200]!r}")
        return answer.body

    try:
        start = time.perf_counter()
        answers = parallel(one, envelopes, threads)
        return time.perf_counter() - start, times, answers
    finally:
        transport.close()


def databases(stack: contextlib.ExitStack, backend: str) -> Callable[[], str | None]:
    """A factory of database URLs: None (SQLite: a file in a node's data directory) or a fresh PostgreSQL
    database, every one dropped when ``stack`` unwinds to this point."""
    if backend == "sqlite":
        return lambda: None
    if backend != "postgresql":
        raise BenchError(f"unknown backend {backend!r} (sqlite or postgresql)")
    import psycopg

    made: list[str] = []

    def drop_all() -> None:
        with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
            for name in made:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def make() -> str:
        name = f"ccm_hbench_{uuid.uuid4().hex[:10]}"
        made.append(name)
        with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return ADMIN_DSN.rsplit("/", 1)[0] + "/" + name

    stack.callback(drop_all)
    return make


# --- CPU time -----------------------------------------------------------------------------------------------

def _tree(pid: int) -> Iterator[int]:
    yield pid
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                yield from _tree(int(child))


def _ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])  # utime, stime of the live process itself


def tree_cpu(pid: int) -> float:
    """CPU seconds used so far by a live process and its live descendants."""
    return sum(_ticks(p) for p in set(_tree(pid))) / TICKS


def postgres_cpu(names: Iterable[str]) -> float:
    """CPU seconds used so far by the live PostgreSQL backends serving the named databases (the server's
    shared background processes and the backends that already ended are not counted)."""
    marks = [f" {name} ".encode() for name in names]
    total = 0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                title = (entry / "cmdline").read_bytes()  # "postgres: 15/main: USER DATABASE HOST(PORT) ..."
                if title.startswith(b"postgres: ") and any(mark in title for mark in marks):
                    total += _ticks(int(entry.name))
    return total / TICKS


class CpuMeter:
    """CPU seconds per named process tree and per named PostgreSQL database (its backends) between ``start``
    and ``stop``."""

    def __init__(self, trees: dict[str, Callable[[], int | None]], databases: dict[str, str] | None = None,
                 ) -> None:
        self._trees = trees
        self._databases = databases or {}
        self._start: dict[str, float] = {}
        self._wall = 0.0

    def _sample(self) -> dict[str, float]:
        sample = {}
        for name, pid in self._trees.items():
            current = pid()
            sample[name] = tree_cpu(current) if current is not None else 0.0
        sample["bench client"] = time.process_time()
        for name, database in self._databases.items():
            sample[name] = postgres_cpu([database])
        return sample

    def start(self) -> None:
        self._start, self._wall = self._sample(), time.perf_counter()

    def stop(self) -> str:
        """A line: each tree's CPU seconds, and the machine's capacity over the same wall time."""
        end, wall = self._sample(), time.perf_counter() - self._wall
        used = {name: max(0.0, end[name] - self._start.get(name, 0.0)) for name in end}
        parts = ", ".join(f"{name} {seconds:.1f}" for name, seconds in used.items())
        return (f"CPU s: {parts}; total {sum(used.values()):.1f} of {wall * (os.cpu_count() or 1):.1f} "
                f"({wall:.1f} s wall × {os.cpu_count()} CPUs)")
