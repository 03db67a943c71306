"""The resync after a restore (issue #15): how long until a restored node is in step with its partner again.

    .venv/bin/python bench/resync_bench.py [--threads 100] [--per-thread 10] [--backends sqlite,postgresql]

Per database: GI Göteborg and CLDD Sarajevo, real nodes (``tests.harness``). Sarajevo is backed up
(``ccm-node backup create``); then each node queues ``threads × per_thread`` messages to the other and the
delivery workers deliver them all; Sarajevo stops and is restored from the backup (it forgets all of them, both
ways), and queues one more message per thread on its stale chain heads. Then Sarajevo starts with its delivery
worker, which resyncs with Göteborg (pages of 500): Göteborg sends again what Sarajevo forgot receiving, and
Sarajevo records what Göteborg received from it and re-seals its new messages on the moved links.

It prints the figures (wall clock from Sarajevo's start): the restore, the resync itself (until
``resync_since`` is cleared) and everything delivered both ways, with the counts; then checks that each node
holds every message of the other once, in order per thread, and nothing is parked. Ctrl-C or any failure stops
every process and removes every temporary directory and database.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.bench_support import databases  # noqa: E402
from node.exchange.models import InboundMessage, OutboundMessage, Partner  # noqa: E402
from tests.e2e.delivery_support import FAST, Databases, count, pair, queue, wait_for  # noqa: E402
from tests.harness import Network, NodeProcess  # noqa: E402


def received_order(dbs: Databases, node: NodeProcess) -> dict[str, list[str]]:
    order: dict[str, list[str]] = {}
    with dbs.session(node) as session:
        for thread, message_id in session.execute(sa.select(InboundMessage.thread, InboundMessage.message_id)
                                                  .order_by(InboundMessage.id)):
            order.setdefault(thread, []).append(message_id)
    return order


def undelivered(dbs: Databases, node: NodeProcess) -> int:
    return count(dbs, node, sa.select(sa.func.count()).select_from(OutboundMessage)
                 .where(OutboundMessage.status != "delivered"))


def run_backend(backend: str, threads: int, per_thread: int) -> str:
    with contextlib.ExitStack() as stack, tempfile.TemporaryDirectory(prefix="ccm-resync-") as root:
        net = Network(Path(root), databases(stack, backend))
        stack.callback(net.stop_all)
        dbs = Databases()
        stack.callback(dbs.close)
        gbg, sarajevo = pair(net)
        for node in (gbg, sarajevo):
            node.start()
        backup = Path(root) / "sarajevo.ccmbackup"
        sarajevo.cli("backup", "create", "--out", str(backup))
        to_sarajevo = queue(dbs, gbg, sarajevo, threads, per_thread)
        to_gbg = queue(dbs, sarajevo, gbg, threads, per_thread)
        total = threads * per_thread
        gbg.spawn("deliver", *FAST)
        worker = sarajevo.spawn("deliver", *FAST)
        for node in (gbg, sarajevo):
            wait_for(lambda n=node: total - undelivered(dbs, n), total, "the first exchange", node)
        sarajevo.stop_process(worker)
        sarajevo.stop()
        dbs.close()
        started = time.monotonic()
        sarajevo.cli("backup", "restore", str(backup))
        restore_s = time.monotonic() - started
        after = queue(dbs, sarajevo, gbg, threads, 1, first=per_thread)  # on the chain heads of the backup
        started = time.monotonic()
        sarajevo.start()
        sarajevo.spawn("deliver", *FAST)
        wait_for(lambda: 1 - count(dbs, sarajevo, sa.select(sa.func.count()).select_from(Partner)
                                   .where(Partner.resync_since.is_not(None))), 1, "the resync", sarajevo)
        resync_s = time.monotonic() - started
        wait_for(lambda: 2 * total + threads - undelivered(dbs, sarajevo) - undelivered(dbs, gbg)
                 - (total + threads - count(dbs, gbg, sa.select(sa.func.count()).select_from(InboundMessage)))
                 - (total - count(dbs, sarajevo, sa.select(sa.func.count()).select_from(InboundMessage))),
                 2 * total + threads, "everything delivered both ways", sarajevo)
        settled_s = time.monotonic() - started
        at_gbg, at_sarajevo = received_order(dbs, gbg), received_order(dbs, sarajevo)
        assert at_sarajevo == to_sarajevo, "Sarajevo does not hold Göteborg's messages once and in order"
        assert at_gbg == {t: ids + after[t] for t, ids in to_gbg.items()}, \
            "Göteborg does not hold Sarajevo's messages once and in order"
        assert undelivered(dbs, sarajevo) == 0 and undelivered(dbs, gbg) == 0
        return (f"{backend}: restore {restore_s:.1f} s; resync done {resync_s:.1f} s after the start, everything "
                f"delivered after {settled_s:.1f} s ({total} messages Göteborg sent again, {total} of Sarajevo's "
                f"recorded from Göteborg's answer, {threads} re-sealed on moved links and delivered); each once "
                "and in order")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=100, help="case threads (100)")
    parser.add_argument("--per-thread", type=int, default=10, help="messages each way per thread (10)")
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()
    if min(args.threads, args.per_thread) < 1:
        parser.error("every count must be at least 1")
    for name in ("CCM_DATABASE_URL", "CCM_DATA_DIR"):  # this process reads the nodes' own configuration
        os.environ.pop(name, None)
    try:
        for backend in args.backends.split(","):
            print(run_backend(backend.strip(), args.threads, args.per_thread), flush=True)
    except KeyboardInterrupt:
        print("\ninterrupted: processes stopped, temporary files and databases removed", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
