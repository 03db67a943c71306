"""The drain after a partner was offline for a week (issue #15).

    .venv/bin/python bench/week_offline_bench.py [--bulk-threads 100] [--days 7] [--rounds-per-day 2]
        [--backends sqlite,postgresql] [--seed 15]

Per database: GI Göteborg and CLDD Sarajevo, real nodes made by ``ccm-node init`` and trusted through their
cards (``tests.harness``); Sarajevo is down. A simulated week runs on a fake clock over Göteborg's database
(``tests/e2e/offline_week.py``): twice a day a counsellor hands over a case through Göteborg's API and closes
the one handed over a day earlier, and every bulk thread gets one more message; Göteborg's delivery worker,
with the node's own settings (backoff 10 s growing to an hour, jitter 0.8-1.4, 14 days' horizon), tries
Sarajevo's real port all week. Then Sarajevo starts, its clock moved a week on; the backoff's next probe is
delivered, and the real ``ccm-node deliver`` (default settings) drains the rest. It prints the figure: how long
after the partner's return the first probe came (simulated minutes: the backoff), and how long the drain took
(wall clock), with the number of messages; then checks that each was delivered once and in order per thread.
Ctrl-C or any failure stops every process and removes every temporary directory and database.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.bench_support import databases  # noqa: E402
from tests.e2e.delivery_support import Databases, check_exactly_once_in_order, pair  # noqa: E402
from tests.e2e.offline_week import WeekPlan, run_week  # noqa: E402
from tests.harness import Network  # noqa: E402


def run_backend(backend: str, plan: WeekPlan) -> str:
    with contextlib.ExitStack() as stack, tempfile.TemporaryDirectory(prefix="ccm-week-") as root:
        net = Network(Path(root), databases(stack, backend))
        stack.callback(net.stop_all)
        dbs = Databases()
        stack.callback(dbs.close)
        gbg, sarajevo = pair(net)
        week = run_week(dbs, gbg, sarajevo, plan)
        check_exactly_once_in_order(dbs, gbg, sarajevo, week.order)
        return f"{backend}: {week.figure()}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bulk-threads", type=int, default=100, help="case threads with a message a round (100)")
    parser.add_argument("--days", type=int, default=7, help="days offline (7)")
    parser.add_argument("--rounds-per-day", type=int, default=2, help="rounds of new messages a day (2)")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--seed", type=int, default=WeekPlan.seed, help="the backoff jitter's seed")
    args = parser.parse_args()
    if min(args.bulk_threads, args.days, args.rounds_per_day) < 1:
        parser.error("every count must be at least 1")
    for name in ("CCM_DATABASE_URL", "CCM_DATA_DIR"):  # this process reads the nodes' own configuration
        os.environ.pop(name, None)
    plan = WeekPlan(days=args.days, rounds_per_day=args.rounds_per_day, bulk_threads=args.bulk_threads,
                    seed=args.seed)
    try:
        for backend in args.backends.split(","):
            print(run_backend(backend.strip(), plan), flush=True)
    except KeyboardInterrupt:
        print("\ninterrupted: processes stopped, temporary files and databases removed", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
