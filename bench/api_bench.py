"""API benchmark: case search, case page read and case create at 100,000 cases, and a node's idle memory.

    .venv/bin/python bench/api_bench.py [--cases 100000] [--backends sqlite,postgresql] [--samples 400]

For each database it creates a node (data dir in a temp folder; PostgreSQL: a fresh database, dropped at the
end), fills it with demo cases, starts it under gunicorn (2 workers of the node's own class, 4 threads each)
on loopback, and measures over HTTP with keep-alive: search by name, search by filter, a case page
(case + timeline), and a case create.
It prints p50/p99 in milliseconds and the PSS of the idle node (master + workers, /proc/PID/smaps_rollup).
Targets (issue #3): search and read p99 <= 50 ms on both databases; idle node <= 130 MB PSS.
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.bench_support import ccm, demo_node, free_port, node_pss_kb, pct, start_node, stop_process  # noqa: E402


def measure(name: str, samples: int, call: Callable[[int], requests.Response]) -> tuple[str, float, float]:
    for i in range(min(20, samples)):  # warm-up
        call(i)
    times = []
    for i in range(samples):
        t0 = time.perf_counter()
        response = call(i)
        times.append((time.perf_counter() - t0) * 1000)
        if response.status_code >= 400:
            raise SystemExit(f"{name}: HTTP {response.status_code}: {response.text[:200]}")
    return name, statistics.median(times), pct(times, 99)


def run_backend(backend: str, cases: int, samples: int) -> None:
    port = free_port()
    with demo_node(backend, cases, port) as (data, fill_s):
        token = ccm(data, "token", "create", "c1")
        proc = start_node(data, port)
        try:
            _run(proc, port, token, backend, cases, samples, fill_s)
        finally:
            stop_process(proc)


def _run(proc: subprocess.Popen[bytes], port: int, token: str, backend: str, cases: int, samples: int,
         fill_s: float) -> None:
    base = f"http://127.0.0.1:{port}/api/v1"
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {token}"
    for _ in range(100):
        try:
            if http.get(f"{base}/openapi.json", timeout=2).status_code == 200:
                break
        except requests.ConnectionError:
            time.sleep(0.2)
    time.sleep(2.0)
    idle, nworkers = node_pss_kb(proc.pid)

    page = http.get(f"{base}/cases", params={"per_page": 100}, timeout=10).json()["items"]
    ids = [c["id"] for c in page]
    # What a case worker types: a family name, or its first letters (Latin or native script).
    words = [w for c in page for name in (c.get("family_name"), c.get("family_name_native")) if name
             for w in name.replace("-", " ").split() if len(w) >= 3]
    names = sorted({w for w in words} | {w[:4] for w in words if len(w) >= 5})
    short = sorted({c["family_name"][:2] for c in page if c.get("family_name")})
    rng = random.Random(1)
    countries = ["BA", "IQ", "GH", "AF", "XK", "SO", "TN", "KE"]
    statuses = ["open", "handed_over", "in_reintegration", "closed"]
    stages = ["documents", "housing", "education", "employment", "journey", "arrival"]
    results = [
        measure("search by name (word or prefix)", samples,
                lambda i: http.get(f"{base}/cases", params={"q": rng.choice(names)}, timeout=10)),
        measure("search by 2-letter prefix (worst case)", max(20, samples // 5),
                lambda i: http.get(f"{base}/cases", params={"q": rng.choice(short)}, timeout=30)),
        measure("search by filter (status+destination)", samples,
                lambda i: http.get(f"{base}/cases", params={"status": rng.choice(statuses),
                                                            "destination": rng.choice(countries)}, timeout=10)),
        measure("search by current stage + destination", samples,
                lambda i: http.get(f"{base}/cases", params={"stage": rng.choice(stages),
                                                            "destination": rng.choice(countries)}, timeout=10)),
        measure("case page (case + timeline)", samples,
                lambda i: _case_page(http, base, rng.choice(ids))),
        measure("case create", samples,
                lambda i: http.post(f"{base}/cases", json={
                    "returnee": {"given_names": "Bench", "family_name": f"Person{i}",
                                 "date_of_birth": "1988-03-14"},
                    "destination_country": "BA"}, timeout=10)),
    ]
    print(f"\n== {backend}: {cases:,} cases (filled in {fill_s:.0f} s), gunicorn 2 workers × 4 threads")
    for name, p50, p99 in results:
        print(f"  {name:40s} p50 {p50:7.2f} ms   p99 {p99:7.2f} ms")
    time.sleep(1.0)
    warm, _ = node_pss_kb(proc.pid)
    print(f"  idle node PSS (master + {nworkers} workers)    {idle / 1024:7.1f} MB at start, "
          f"{warm / 1024:.1f} MB idle after the run")


class _Both:
    def __init__(self, first: requests.Response, second: requests.Response) -> None:
        self.status_code = max(first.status_code, second.status_code)
        self.text = first.text if first.status_code >= 400 else second.text


def _case_page(http: requests.Session, base: str, case_id: str) -> requests.Response:
    first = http.get(f"{base}/cases/{case_id}", timeout=10)
    second = http.get(f"{base}/cases/{case_id}/timeline", timeout=10)
    return _Both(first, second)  # type: ignore[return-value]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--samples", type=int, default=400)
    args = parser.parse_args()
    for backend in args.backends.split(","):
        run_backend(backend.strip(), args.cases, args.samples)


if __name__ == "__main__":
    main()
