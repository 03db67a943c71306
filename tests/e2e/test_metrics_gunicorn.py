"""``/metrics`` from a real node under gunicorn with two workers: prometheus-client's multiprocess mode sums
what every worker counted, whichever worker answers the scrape; a worker that exits keeps its counts (folded into
the archive); the directory is emptied when the master starts; and an address outside ``[metrics] allow`` gets a
404."""

from __future__ import annotations

import os
import re
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from tests.harness import Network, NodeProcess
from tests.node.test_metrics import parse, value

pytestmark = pytest.mark.slow

HEALTHZ = {"route": "/healthz", "method": "GET", "status": "200"}


def worker_pids(node: NodeProcess) -> set[int]:
    """The processes that wrote counters (one file per worker process and kind of metric; exited ones are folded
    into counter_archive.db)."""
    return {int(m.group(1)) for f in (node.data_dir / "metrics").glob("counter_*.db")
            if (m := re.fullmatch(r"counter_(\d+)\.db", f.name))}


def hit(url: str, n: int) -> None:
    def one(_: int) -> int:
        return requests.get(url, timeout=10).status_code  # a new connection each: gunicorn spreads them

    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(one, range(n))) == {200}


def test_metrics_sum_every_worker_and_only_loopback_may_read_them(tmp_path: Path) -> None:
    net = Network(tmp_path, lambda: None)
    node = net.add("se.gi-goteborg", "Göteborgs-Initiativet")
    try:
        node.start(workers=2)
        sent = 0
        while len(worker_pids(node)) < 2 and sent < 400:  # until both workers have answered some
            hit(f"{node.url}/healthz", 40)
            sent += 40
        assert len(worker_pids(node)) == 2, "the requests all went to one worker"
        first_pids = worker_pids(node)
        for _ in range(6):  # whichever worker answers, the scrape is the sum of both
            started = time.perf_counter()
            answer = requests.get(f"{node.url}/metrics", timeout=10)
            elapsed = time.perf_counter() - started
            assert answer.status_code == 200 and elapsed < 2.0
            samples = parse(answer.text)
            assert value(samples, "ccm_http_requests_total", **HEALTHZ) == sent
            assert value(samples, "ccm_database_up") == 1
            login = {"route": "/login", "method": "GET", "status": "200"}
            assert value(samples, "ccm_http_requests_total", **login) == 0  # the master's warm-up is not counted
        assert requests.get(f"{node.url}/readyz", timeout=10).json()["status"] == "ok"

        gone = min(first_pids)  # a worker exits (as when gunicorn recycles it): its counts stay in the sums
        os.kill(gone, signal.SIGTERM)
        deadline = time.monotonic() + 15
        while gone in worker_pids(node) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert gone not in worker_pids(node), "the exited worker's files were not folded into the archive"
        assert (node.data_dir / "metrics" / "counter_archive.db").is_file()
        samples = parse(requests.get(f"{node.url}/metrics", timeout=10).text)
        assert value(samples, "ccm_http_requests_total", **HEALTHZ) == sent

        node.stop()
        config = node.data_dir / "node.toml"
        config.write_text(config.read_text(encoding="utf-8") + '\n[metrics]\nallow = ["10.0.0.0/8"]\n',
                          encoding="utf-8")
        node.start(workers=2)
        assert not first_pids & worker_pids(node), "the master did not empty the metrics directory"
        refused = requests.get(f"{node.url}/metrics", timeout=10)
        assert refused.status_code == 404 and "ccm_" not in refused.text
        assert requests.get(f"{node.url}/healthz", timeout=10).status_code == 200
    finally:
        net.stop_all()
