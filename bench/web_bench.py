"""Web benchmark: the case list and a case page at 100,000 cases, a node's idle memory after that load, and
the size of each page as a browser receives it.

    .venv/bin/python bench/web_bench.py [--cases 100000] [--backends sqlite,postgresql] [--samples 300]
    .venv/bin/python bench/web_bench.py --quick          # 5,000 cases, 60 samples: for trying things out

For each database it makes a node as ``bench/api_bench.py`` does (temporary data dir; PostgreSQL: a fresh
database, dropped at the end; ``ccm-node demo-data``), adds a counsellor of the cases' team with a password,
starts the node under gunicorn (2 workers of the node's own class, 4 threads each) on loopback, signs in
through the login form (its CSRF token, the session cookie kept by a ``requests.Session``) and times over HTTP
with keep-alive, on the client (loopback, so it is the node's time plus well under a millisecond):
GET /cases plain, with a two-letter name prefix, a full name, status + destination, a stage, page 50, and
GET /cases/<id> for many cases. Then, after a pause, the PSS of the idle node (master + workers,
/proc/PID/smaps_rollup), and the size of each page: its HTML plus every stylesheet and script it links, raw
and gzip-compressed (the node does not compress; a proxy in front of it would).
Targets (issue #13): p95 < 50 ms for every page kind on both databases; idle node <= 130 MB PSS; a page
< 60 KB compressed, CSS included.
"""

from __future__ import annotations

import argparse
import gzip
import random
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.bench_support import (  # noqa: E402
    BenchError,
    ccm,
    demo_node,
    free_port,
    node_pss_kb,
    pct,
    reader,
    start_node,
    stop_process,
)
from node.serve_worker import IDLE_RECYCLE_SECONDS  # noqa: E402

P95_TARGET_MS = 50.0
PSS_TARGET_MB = 130.0
PAGE_TARGET_KB = 60.0
USER, PASSWORD = "webbench", "bench-password-0123456789"
COUNTRIES = ["BA", "IQ", "GH", "AF", "XK", "SO", "TN", "KE"]
STATUSES = ["open", "handed_over", "in_reintegration", "closed"]
_CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="csrf_token"')
_ASSETS = re.compile(r'<link[^>]+rel="stylesheet"[^>]+href="([^"]+)"|<link[^>]+href="([^"]+)"[^>]+rel="stylesheet"'
                     r'|<script[^>]+src="([^"]+)"')


def sign_in(base: str) -> requests.Session:
    """A browser-like session signed in through the login form.

    Raises:
        BenchError: no CSRF token on the login page, or the login was refused.
    """
    http = requests.Session()
    page = http.get(f"{base}/login", timeout=10)
    found = _CSRF.search(page.text)
    if page.status_code != 200 or found is None:
        raise BenchError(f"GET /login: HTTP {page.status_code}, no CSRF token")
    answer = http.post(f"{base}/login", data={"csrf_token": found.group(1) or found.group(2), "username": USER,
                                              "password": PASSWORD}, allow_redirects=False, timeout=10)
    if answer.status_code not in (302, 303):
        raise BenchError(f"POST /login: HTTP {answer.status_code}: {answer.text[:300]}")
    return http


def wait_ready(base: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 120
    while True:
        if proc.poll() is not None:
            raise BenchError(f"the node exited: {log.read_text(errors='replace')[-2000:]}")
        try:
            if requests.get(f"{base}/login", timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        if time.monotonic() > deadline:
            raise BenchError("the node did not answer /login within 120 s")
        time.sleep(0.2)


def measure(samples: int, call: Callable[[], requests.Response]) -> list[float]:
    """Milliseconds of ``samples`` calls after a warm-up.

    Raises:
        BenchError: an answer other than 200.
    """
    times = []
    for i in range(samples + min(20, samples)):
        t0 = time.perf_counter()
        response = call()
        elapsed = (time.perf_counter() - t0) * 1000
        if response.status_code != 200:
            raise BenchError(f"GET {response.url}: HTTP {response.status_code}: {response.text[:200]}")
        if i >= min(20, samples):
            times.append(elapsed)
    return times


def page_size(http: requests.Session, base: str, path: str) -> tuple[int, int, int]:
    """(raw bytes, gzip bytes, number of linked assets) of a page with its stylesheets and scripts."""
    html = http.get(f"{base}{path}", timeout=10)
    if html.status_code != 200:
        raise BenchError(f"GET {path}: HTTP {html.status_code}")
    bodies = [html.content]
    assets = sorted({next(g for g in m.groups() if g) for m in _ASSETS.finditer(html.text)})
    for asset in assets:
        answer = http.get(asset if asset.startswith("http") else f"{base}{asset}", timeout=10)
        if answer.status_code != 200:
            raise BenchError(f"GET {asset} (linked from {path}): HTTP {answer.status_code}")
        bodies.append(answer.content)
    return sum(map(len, bodies)), sum(len(gzip.compress(b, 6)) for b in bodies), len(assets)


def samples_from(data: Path) -> dict[str, Any]:
    """What to ask for: ids, names and two-letter prefixes of the newest cases, read from the database."""
    from node.config import load_config

    engine = reader(load_config(data).database_url)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT id, given_names, family_name FROM cases "
                                    "ORDER BY created_at DESC LIMIT 300")).all()
        stages = [k for (k,) in conn.execute(sa.text("SELECT DISTINCT current_stage FROM cases "
                                                      "WHERE current_stage IS NOT NULL"))]
    engine.dispose()
    return {"ids": [r.id for r in rows], "stages": sorted(stages),
            "short": sorted({r.family_name[:2] for r in rows if len(r.family_name) >= 2}),
            "full": sorted({f"{r.given_names.split()[0]} {r.family_name}" for r in rows})}


def run_backend(backend: str, cases: int, samples: int) -> list[tuple[str, bool]]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with demo_node(backend, cases, port, prefix="ccm-webbench") as (data, fill_s):
        ccm(data, "user", "add", USER, "--role", "counsellor", "--team", "bench", "--password-stdin",
            stdin=PASSWORD + "\n")
        pick = samples_from(data)
        proc = start_node(data, port)
        try:
            wait_ready(base, proc, data.parent / "serve.log")
            time.sleep(2.0)
            start_pss, nworkers = node_pss_kb(proc.pid)
            verdicts = _measure_node(sign_in(base), base, pick, backend, cases, samples, fill_s)
            time.sleep(IDLE_RECYCLE_SECONDS + 5.0)  # back at idle: a worker that served a burst is forked afresh
            idle, _ = node_pss_kb(proc.pid)
            ok = idle / 1024 <= PSS_TARGET_MB
            print(f"  idle node PSS (master + {nworkers} workers): {start_pss / 1024:.1f} MB at start, "
                  f"{idle / 1024:.1f} MB idle after the run   (target <= {PSS_TARGET_MB:.0f} MB) "
                  f"{'PASS' if ok else 'FAIL'}")
            return [*verdicts, (f"{backend}: idle PSS", ok)]
        finally:
            stop_process(proc)


def _measure_node(http: requests.Session, base: str, pick: dict[str, Any], backend: str, cases: int,
                  samples: int, fill_s: float) -> list[tuple[str, bool]]:
    rng = random.Random(1)

    def cases_page(params: Callable[[], dict[str, Any]]) -> Callable[[], requests.Response]:
        return lambda: http.get(f"{base}/cases", params=params(), timeout=30)

    kinds: list[tuple[str, Callable[[], requests.Response]]] = [
        ("/cases", cases_page(dict)),
        ("/cases?q=<two-letter prefix>", cases_page(lambda: {"q": rng.choice(pick["short"])})),
        ("/cases?q=<full name>", cases_page(lambda: {"q": rng.choice(pick["full"])})),
        ("/cases?status=&destination=", cases_page(lambda: {"status": rng.choice(STATUSES),
                                                             "destination": rng.choice(COUNTRIES)})),
        ("/cases?stage=", cases_page(lambda: {"stage": rng.choice(pick["stages"])})),
        ("/cases?page=50", cases_page(lambda: {"page": 50})),
        ("/cases/<id>", lambda: http.get(f"{base}/cases/{rng.choice(pick['ids'])}", timeout=30)),
    ]
    print(f"\n== web, {backend}: {cases:,} cases (filled in {fill_s:.0f} s), gunicorn 2 workers × 4 threads; "
          f"client-side time on loopback, {samples} samples each")
    verdicts = []
    for name, call in kinds:
        times = measure(samples, call)
        p95 = pct(times, 95)
        ok = p95 < P95_TARGET_MS
        verdicts.append((f"{backend}: {name} p95", ok))
        print(f"  {name:32s} p50 {pct(times, 50):7.2f}  p95 {p95:7.2f}  p99 {pct(times, 99):7.2f} ms"
              f"   (p95 < {P95_TARGET_MS:.0f}) {'PASS' if ok else 'FAIL'}")
    print("  page sizes (HTML + linked CSS/JS): raw / gzip")
    for name, path in (("case list", "/cases"), ("case list, name search", f"/cases?q={pick['short'][0]}"),
                       ("case page", f"/cases/{pick['ids'][0]}")):
        raw, packed, assets = page_size(http, base, path)
        ok = packed / 1024 < PAGE_TARGET_KB
        verdicts.append((f"{backend}: {name} size", ok))
        print(f"  {name:32s} {raw / 1024:7.1f} KB / {packed / 1024:6.1f} KB ({assets} assets)"
              f"   (< {PAGE_TARGET_KB:.0f} KB compressed) {'PASS' if ok else 'FAIL'}")
    return verdicts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=None, help="demo cases (default 100,000; --quick 5,000)")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--samples", type=int, default=None, help="requests per page kind (default 300)")
    parser.add_argument("--quick", action="store_true", help="a small run: 5,000 cases, 60 samples")
    args = parser.parse_args()
    cases = args.cases or (5_000 if args.quick else 100_000)
    samples = args.samples or (60 if args.quick else 300)
    verdicts: list[tuple[str, bool]] = []
    for backend in args.backends.split(","):
        verdicts += run_backend(backend.strip(), cases, samples)
    failed = [name for name, ok in verdicts if not ok]
    print(f"\n{len(verdicts) - len(failed)} of {len(verdicts)} targets met"
          + (f"; FAIL: {', '.join(failed)}" if failed else ""))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
