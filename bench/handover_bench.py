"""Handover benchmark (issue #5): handovers over the real HTTP path against a bare inbox, and a backlog drain.

    .venv/bin/python bench/handover_bench.py [--handovers 300] [--backlog 10000]
        [--backends sqlite,postgresql] [--clients 4] [--live 2000] [--baseline-rounds 3]

For each database two nodes, GI Göteborg (se.gi-goteborg) and CLDD Sarajevo (ba.cldd-sarajevo), each its own
gunicorn process (``ccm-node serve``, 2 workers × 4 threads) and database (a SQLite file, or a fresh PostgreSQL
database made and dropped here), become partners through the real path (card file, fingerprint, agreement:
``tests.harness``) and each runs a delivery worker (``ccm-node deliver``, polling every 50 ms, backing off at
most 1 s). Everything shares this machine's CPUs: both nodes, their workers, the clients, the database server.

1. (a) N cases with an active consent naming Sarajevo are made through the API, then N handovers are sent
   (``POST /api/v1/cases/{id}/handovers`` from C threads). A handover's latency runs from the API call to the
   ``delivered_at`` of its message in Göteborg's database: the time the delivery worker recorded the verified
   receipt, in the transaction that stores it (read from the database, not by polling the API, which would
   add audited requests to the load). The rate is N over the first call to the last receipt.
   (a') The real inbox alone: the same handover bodies, sealed again on new threads, posted straight to
   Sarajevo's inbox from C threads (what the receiving side costs, without the sending API and worker).
2. (b) Baseline: ``bench/bare_inbox.py`` (verify + decrypt, one INSERT, a signed receipt) under the same
   gunicorn settings, with Sarajevo's keys and a database of the same kind, gets the very envelopes of (a)
   (read from Göteborg's outbox) from C threads through the delivery worker's HTTP client, R times over.
3. Live inbox rate: L messages sealed here with Göteborg's keys and posted straight to Sarajevo's inbox from C
   threads: L/2 ``handover`` messages, each opening its own thread (the body of a real handover: a case and
   its consent made through the API, its body taken from ``GET .../handovers/preview``), then a
   ``case_closed`` in each of those threads: the mix the backlog of (c) holds. (Every message type has a domain
   applier, which checks that its thread was opened by a handover.)
4. (c) Sarajevo's server is stopped, M messages are queued at Göteborg (M/2 case threads of 2 messages, a
   ``handover`` with the body of 3. and its ``case_closed``, so that order within a thread matters), Sarajevo
   is started again, and the time from its first answer to the last ``delivered_at`` is the drain time.

5. (f) The API floor: authenticated requests to Göteborg that do no work (``GET /api/v1/handovers/{id}`` of
   an unknown id: the token checked, one lookup, a 404). A handover costs at least one such request and one
   bare inbox request, so (a)/(b) cannot exceed (f) / ((f) + (b)) on this machine, even with no domain work
   and a free delivery worker: the report prints that ceiling.

6. Issue #16's budget lines, measured in this process where the work is done (``bench/handover_profile.py``:
   the sending API's CPU per handover, and the inbox's next to a bare inbox's of the same run), after where
   the API's and the inbox's time goes (the request floor, the driver, SQLAlchemy Core, the rest).

Each phase also prints the CPU seconds each process tree used (``/proc``; PostgreSQL: all its live server
processes). Targets: (a) at least 0.5 of (b); (c) at least 0.5 of the live inbox rate. Ctrl-C, SIGTERM or any
failure stops every process and removes every temporary directory and database.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import handover_profile  # noqa: E402
from bench.bare_inbox import NoHistory, OneSender  # noqa: E402
from bench.bench_support import (  # noqa: E402
    ApiClient,
    BenchError,
    CpuMeter,
    clean_env,
    count,
    databases,
    p50_p99_ms,
    parallel,
    post_all,
    reader,
    stop_process,
    wait_for,
    wait_http,
)
from node.config import load_config  # noqa: E402
from node.db import make_engine, make_sessionmaker  # noqa: E402
from node.exchange.delivery.outbox import enqueue  # noqa: E402
from node.exchange.models import InboundMessage, OutboundMessage  # noqa: E402
from node.exchange.trust.keystore import NodeIdentity, key_path, load_identity  # noqa: E402
from protocol import (  # noqa: E402
    NodeCard,
    NodeKeys,
    b64encode,
    open_envelope,
    seal,
    strict_loads,
    verify_receipt,
)
from protocol.cards import card_from_bytes  # noqa: E402
from protocol.seal import PartnerView  # noqa: E402
from protocol.times import format_time  # noqa: E402
from tests.harness import Network, NodeProcess, free_port  # noqa: E402

AGREEMENT = "dsa-gi-cldd-sarajevo-2026"
SENDER_ID, RECEIVER_ID = "se.gi-goteborg", "ba.cldd-sarajevo"
DELIVER = ("--poll-seconds", "0.05", "--min-backoff", "0.2", "--max-backoff", "1")
ENQUEUE_BATCH = 500
BACKLOG = "bench-backlog"  # the case id the backlog's messages are queued under (no such case: a label)
TARGET = 0.5
CASE: dict[str, Any] = {
    "returnee": {"given_names": "Amina", "date_of_birth": "1988-03-14", "languages": ["bs", "sv"],
                 "contact": {"phone": "+46 70 123 45 67"}},
    "destination_country": "BA", "destination_locality": "Sarajevo",
    "intake": {"health": {"text": "Asthma."}, "wishes": {"text": "Želim otvoriti pekaru u Sarajevu."},
               "work": {"text": "Cook for six years.", "occupations": ["cook"]}},
    "plan": {"end_date": "2027-06-30", "milestones": [{"title": "ID card", "due_date": "2027-01-31"}]},
}


@dataclass
class Figures:
    live_rate: float = 0.0
    handover_rate: float = 0.0
    latency: tuple[float, float] = (0.0, 0.0)
    api_rate: float = 0.0
    api_latency: tuple[float, float] = (0.0, 0.0)
    inbox_rate: float = 0.0
    baseline_rate: float = 0.0
    baseline_latency: tuple[float, float] = (0.0, 0.0)
    enqueue_rate: float = 0.0
    floor_rate: float = 0.0
    drain_seconds: float = 0.0
    cpu: dict[str, str] = field(default_factory=dict)


@dataclass
class Pair:
    """The two running nodes and what the phases need of them."""

    sender: NodeProcess
    receiver: NodeProcess
    api: ApiClient
    identity: NodeIdentity  # the sender's keys, to seal messages here
    card: NodeCard  # the receiver's card
    sender_db: sa.Engine  # read-only
    receiver_db: sa.Engine  # read-only

    def meter(self) -> CpuMeter:
        def pid(proc: Any) -> int | None:
            return proc.pid if proc is not None and proc.poll() is None else None

        return CpuMeter({
            "sender web": lambda: pid(self.sender.proc),
            "sender deliver": lambda: pid(self.sender.workers[0]),
            "receiver web": lambda: pid(self.receiver.proc),
            "receiver deliver": lambda: pid(self.receiver.workers[0]),
        }, pg_databases(sender=load_config(self.sender.data_dir).database_url,
                        receiver=load_config(self.receiver.data_dir).database_url))


def pg_databases(**urls: str) -> dict[str, str]:
    """label → PostgreSQL database name, for the URLs that are PostgreSQL ones (none on SQLite)."""
    return {f"postgres {label}": url.rsplit("/", 1)[1] for label, url in urls.items()
            if url.startswith("postgres")}


def thread_id(label: str) -> str:
    return b64encode(hashlib.sha256(label.encode()).digest()[:16])


def closing_body(handover_id: str, now: datetime) -> dict[str, Any]:
    """A ``case_closed`` in the thread of the handover ``handover_id``."""
    return {"handover_id": handover_id, "closed_at": format_time(now), "outcome": {"code": "plan_completed"}}


def handover_body(api: ApiClient) -> dict[str, Any]:
    """The body of a real handover: a case and its consent made through the API, and the preview's body."""
    [(case_id, consent_id)] = make_cases(api, 1, 1)
    body: dict[str, Any] = api.call("GET", f"/cases/{case_id}/handovers/preview", 200,
                                    params={"recipient": RECEIVER_ID, "consent_id": consent_id})["body"]
    return body


def say(text: str) -> None:
    print(f"  .. {text}", flush=True)


# --- the phases ---------------------------------------------------------------------------------------------

def live_inbox(pair: Pair, body: dict[str, Any], count_: int, threads: int) -> float:
    """Sarajevo's real inbox rate: handovers opening fresh threads, then a ``case_closed`` in each."""
    now = datetime.now(UTC)
    label = uuid.uuid4().hex[:8]
    opening, closing = [], []
    for i in range((count_ + 1) // 2):
        thread = thread_id(f"live-{label}-{i}")
        first = seal(keys=pair.identity.keys, recipient=pair.card, msg_type="handover", body=body, thread=thread,
                     now=now, agreement=AGREEMENT, boxes=pair.identity.boxes)
        opening.append(first.data)
        closing.append(seal(keys=pair.identity.keys, recipient=pair.card, msg_type="case_closed",
                            body=closing_body(first.header.id, now), thread=thread, now=now,
                            prev=first.message_hash, agreement=AGREEMENT, boxes=pair.identity.boxes).data)
    closing = closing[:count_ - len(opening)]
    elapsed, _, _ = post_all(pair.receiver.url, opening, threads)
    elapsed_closing, _, _ = post_all(pair.receiver.url, closing, threads)
    return count_ / (elapsed + elapsed_closing)


def make_cases(api: ApiClient, count_: int, threads: int) -> list[tuple[str, str]]:
    valid_until = (date.today() + timedelta(days=365)).isoformat()

    def one(i: int) -> tuple[str, str]:
        case = api.call("POST", "/cases", 201, json={
            **CASE, "returnee": {**CASE["returnee"], "family_name": f"Hadžić-{i:05d}"}})
        consent = api.call("POST", f"/cases/{case['id']}/consents", 201, json={
            "recipients": [RECEIVER_ID], "categories": ["identity", "contact", "work", "wishes", "plan"],
            "purpose": "reintegration_support", "method": "written_signature", "valid_until": valid_until})
        return case["id"], consent["id"]

    return parallel(one, range(count_), threads)


def handovers(pair: Pair, cases: list[tuple[str, str]], threads: int, figures: Figures) -> None:
    """(a): send the handovers; then read when each receipt was recorded."""
    started: dict[str, float] = {}
    api_times: list[float] = []
    lock = threading.Lock()

    def send(item: tuple[str, str]) -> None:
        case_id, consent_id = item
        wall, t0 = time.time(), time.perf_counter()
        pair.api.call("POST", f"/cases/{case_id}/handovers", 202,
                      json={"recipient": RECEIVER_ID, "consent_id": consent_id})
        with lock:
            started[case_id] = wall
            api_times.append(time.perf_counter() - t0)

    handover = OutboundMessage.type == "handover"
    inbound = sa.select(sa.func.count()).select_from(InboundMessage).where(InboundMessage.type == "handover")
    before = count(pair.receiver_db, inbound)  # the live phase's
    t0 = time.perf_counter()
    parallel(send, cases, threads)
    figures.api_rate = len(cases) / (time.perf_counter() - t0)
    delivered = sa.select(sa.func.count()).select_from(OutboundMessage).where(
        handover, OutboundMessage.status == "delivered")
    wait_for("handover receipts", lambda: count(pair.sender_db, delivered), len(cases), 0.05)
    with pair.sender_db.connect() as conn:
        done = {row.case_id: row.delivered_at.timestamp() for row in conn.execute(
            sa.select(OutboundMessage.case_id, OutboundMessage.delivered_at).where(handover))}
    received = count(pair.receiver_db, inbound) - before
    if received != len(cases):
        raise BenchError(f"Sarajevo holds {received} handovers, not {len(cases)}")
    figures.handover_rate = len(cases) / (max(done.values()) - min(started.values()))
    figures.latency = p50_p99_ms([done[c] - started[c] for c, _ in cases])
    figures.api_latency = p50_p99_ms(api_times)


def api_floor(pair: Pair, count_: int, threads: int) -> float:
    """(f): authenticated API requests that do no work (``GET /handovers/{unknown id}``: the token checked,
    one lookup, a 404), the cheapest request a handover's sending API call could be."""
    ids = [str(uuid.uuid4()) for _ in range(count_)]
    t0 = time.perf_counter()
    parallel(lambda handover_id: pair.api.call("GET", f"/handovers/{handover_id}", 404), ids, threads)
    return count_ / (time.perf_counter() - t0)


def sent_handovers(pair: Pair) -> list[Any]:
    with pair.sender_db.connect() as conn:
        return list(conn.execute(
            sa.select(OutboundMessage.envelope, OutboundMessage.message_id, OutboundMessage.message_hash)
            .where(OutboundMessage.type == "handover").order_by(OutboundMessage.id)))


def real_inbox(pair: Pair, rows: list[Any], threads: int) -> float:
    """(a'): the handover bodies of (a), opened with Sarajevo's keys, sealed again on new threads and posted
    straight to Sarajevo's inbox."""
    keys = NodeKeys.load(key_path(pair.receiver.data_dir))
    directory = OneSender(PartnerView.from_cards([pair.identity.card]))
    now = datetime.now(UTC)
    envelopes = []
    for row in rows:
        opened = open_envelope(bytes(row.envelope), keys=keys, directory=directory, history=NoHistory(),
                               now=now)
        envelopes.append(seal(keys=pair.identity.keys, recipient=pair.card, msg_type="handover",
                              body=opened.body, thread=thread_id(f"again-{row.message_id}"), now=now,
                              agreement=AGREEMENT, boxes=pair.identity.boxes).data)
    elapsed, _, _ = post_all(pair.receiver.url, envelopes, threads)
    return len(envelopes) / elapsed


def baseline(stack: contextlib.ExitStack, root: Path, pair: Pair, rows: list[Any], database_url: str,
             threads: int, rounds: int, figures: Figures) -> None:
    """(b): the same envelopes through the bare inbox, under the same gunicorn settings."""
    card_file = root / "bare-sender.card.json"
    card_file.write_text(pair.sender.cli("card").stdout, encoding="utf-8")
    port, log_file = free_port(), root / "bare-inbox.log"
    with log_file.open("ab") as log:
        proc = subprocess_popen(
            ["-m", "bench.bare_inbox", "--keys-dir", str(pair.receiver.data_dir), "--sender-card",
             str(card_file), "--database-url", database_url, "--port", str(port), "--workers", "2"], log)
    stack.callback(stop_process, proc)
    url = f"http://127.0.0.1:{port}"
    wait_http(f"{url}/health", proc, log_file)
    envelopes = [bytes(r.envelope) for r in rows]
    post_all(url, envelopes[:20], threads)  # warm-up: both workers, their connections
    meter = CpuMeter({"bare inbox": lambda: proc.pid}, pg_databases(bare=database_url))
    meter.start()
    elapsed, times, answers = post_all(url, envelopes * rounds, threads)
    figures.cpu["(b) bare inbox"] = meter.stop()
    for row, answer in zip(rows, answers[-len(rows):], strict=True):
        verify_receipt(strict_loads(answer), pair.card, message_id=row.message_id,
                       content_hash=row.message_hash)
    figures.baseline_rate = len(envelopes) * rounds / elapsed
    figures.baseline_latency = p50_p99_ms(times)
    stop_process(proc)


def subprocess_popen(args: list[str], log: Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, *args], cwd=ROOT, env=clean_env(), stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)


def drain(pair: Pair, body: dict[str, Any], count_: int, figures: Figures) -> None:
    """(c): the receiver goes away, a backlog builds up, the receiver comes back."""
    receiver = pair.receiver
    assert receiver.proc is not None
    receiver.stop_process(receiver.proc)
    receiver.proc = None
    engine = make_engine(load_config(pair.sender.data_dir).database_url)
    threads, label = (count_ + 1) // 2, uuid.uuid4().hex[:8]
    opened: dict[int, str] = {}  # thread number → the message id of its handover
    try:
        sessions = make_sessionmaker(engine)
        start = time.perf_counter()
        for batch in range(0, count_, ENQUEUE_BATCH):
            now = datetime.now(UTC)
            with sessions() as session:
                for i in range(batch, min(count_, batch + ENQUEUE_BATCH)):
                    n = i % threads
                    first = n not in opened
                    message = enqueue(session, keys=pair.identity.keys, recipient=RECEIVER_ID,
                                      msg_type="handover" if first else "case_closed",
                                      body=body if first else closing_body(opened[n], now),
                                      thread=thread_id(f"backlog-{label}-{n}"), now=now, case_id=BACKLOG,
                                      boxes=pair.identity.boxes)
                    opened.setdefault(n, message.message_id)
                session.commit()
        figures.enqueue_rate = count_ / (time.perf_counter() - start)
    finally:
        engine.dispose()
    backlog = OutboundMessage.case_id == BACKLOG
    receiver.start(workers=2)
    online = time.time()
    meter = pair.meter()
    meter.start()
    delivered = sa.select(sa.func.count()).select_from(OutboundMessage).where(
        backlog, OutboundMessage.status == "delivered")
    wait_for("the backlog", lambda: count(pair.sender_db, delivered), count_, 0.25)
    figures.cpu["(c) drain"] = meter.stop()
    with pair.sender_db.connect() as conn:
        last = conn.execute(sa.select(sa.func.max(OutboundMessage.delivered_at)).where(backlog)).scalar_one()
    figures.drain_seconds = last.timestamp() - online


# --- one database -------------------------------------------------------------------------------------------

def run_backend(backend: str, args: argparse.Namespace) -> Figures:
    figures = Figures()
    print(f"\n== {backend}", flush=True)
    with contextlib.ExitStack() as stack:
        root = Path(tempfile.mkdtemp(prefix=f"ccm-hbench-{backend}-"))
        stack.callback(shutil.rmtree, root, ignore_errors=True)
        make_url = databases(stack, backend)  # dropped after every process below has stopped
        net = Network(root, make_url)
        stack.callback(net.stop_all)
        say("two nodes: init, partners by card + fingerprint + agreement, gunicorn and delivery workers")
        gbg = net.add(SENDER_ID, "Göteborgs-Initiativet")
        sarajevo = net.add(RECEIVER_ID, "CLDD Sarajevo")
        net.connect(gbg, sarajevo, AGREEMENT)
        token = gbg.user("bench", "counsellor", team="gbg")
        for node in (gbg, sarajevo):
            node.start(workers=2)
            node.spawn("deliver", *DELIVER)
        pair = Pair(gbg, sarajevo, ApiClient(gbg.url, token),
                    load_identity(load_config(gbg.data_dir), datetime.now(UTC)),
                    card_from_bytes(sarajevo.cli("card").stdout.encode("utf-8")),
                    reader(load_config(gbg.data_dir).database_url),
                    reader(load_config(sarajevo.data_dir).database_url))
        stack.callback(pair.sender_db.dispose)
        stack.callback(pair.receiver_db.dispose)

        say(f"(a) {args.handovers} cases with consents through the API")
        cases = make_cases(pair.api, args.handovers, args.clients)
        say(f"(a) {args.handovers} handovers")
        meter = pair.meter()
        meter.start()
        handovers(pair, cases, args.clients, figures)
        figures.cpu["(a) handovers"] = meter.stop()
        rows = sent_handovers(pair)
        say("(a') the real inbox alone on the same handovers, sealed again on new threads")
        meter.start()
        figures.inbox_rate = real_inbox(pair, rows, args.clients)
        figures.cpu["(a') real inbox"] = meter.stop()
        say("(b) the bare inbox on the envelopes of (a)")
        bare_url = make_url() or f"sqlite:///{root / 'bare.db'}"
        baseline(stack, root, pair, rows, bare_url, args.clients, args.baseline_rounds, figures)
        say(f"(f) {args.handovers * args.baseline_rounds} authenticated API requests that find nothing")
        meter.start()
        figures.floor_rate = api_floor(pair, args.handovers * args.baseline_rounds, args.clients)
        figures.cpu["(f) API floor"] = meter.stop()
        body = handover_body(pair.api)
        say(f"live inbox: {args.live} messages straight to Sarajevo's inbox (handovers, then case_closed)")
        meter.start()
        figures.live_rate = live_inbox(pair, body, args.live, args.clients)
        figures.cpu["live inbox"] = meter.stop()
        say(f"(c) Sarajevo stopped; {args.backlog} messages queued; Sarajevo back")
        drain(pair, body, args.backlog, figures)
        say("stopping")
    report(backend, figures, args)
    return figures


def verdict(value: float) -> str:
    return f"{value:.2f}  (target ≥ {TARGET})  {'ok' if value >= TARGET else 'BELOW TARGET'}"


def report(backend: str, f: Figures, args: argparse.Namespace) -> None:
    n = args.handovers
    rows = [
        (f"(a) handovers over HTTP ({n})", f"{f.handover_rate:7.1f} /s   API call → stored receipt: "
                                           f"p50 {f.latency[0]:.0f} ms, p99 {f.latency[1]:.0f} ms"),
        ("    of which the API alone", f"{f.api_rate:7.1f} /s   POST /cases/{{id}}/handovers: "
                                       f"p50 {f.api_latency[0]:.0f} ms, p99 {f.api_latency[1]:.0f} ms"),
        ("(a') real inbox on those handovers",
         f"{f.inbox_rate:7.1f} /s   ({f.inbox_rate / f.baseline_rate:.2f} of the bare inbox)"),
        (f"(b) bare inbox ({args.baseline_rounds} × {n})",
         f"{f.baseline_rate:7.1f} /s   per request: p50 {f.baseline_latency[0]:.1f} ms, "
         f"p99 {f.baseline_latency[1]:.1f} ms"),
        ("    ratio (a) / (b)", verdict(f.handover_rate / f.baseline_rate)),
        ("(f) API request doing nothing", f"{f.floor_rate:7.1f} /s   GET /handovers/{{unknown id}} → 404"),
        ("    ceiling of (a) / (b)", f"{f.floor_rate / (f.floor_rate + f.baseline_rate):.2f}  (one API request "
                                      "and one bare inbox request per handover, no work, no worker)"),
        (f"    live inbox ({args.live} messages)", f"{f.live_rate:7.1f} /s"),
        (f"(c) backlog drain ({args.backlog})",
         f"{args.backlog / f.drain_seconds:7.1f} /s   in {f.drain_seconds:.1f} s "
         f"(queued beforehand at {f.enqueue_rate:.0f} /s)"),
        ("    ratio (c) / live inbox", verdict(args.backlog / f.drain_seconds / f.live_rate)),
    ]
    print(f"-- {backend}: gunicorn 2 workers × 4 threads per node, {args.clients} client threads, "
          f"{os.cpu_count()} CPUs shared by everything", flush=True)
    for name, value in rows:
        print(f"  {name:40s} {value}", flush=True)
    for phase, line in f.cpu.items():
        print(f"  {phase:18s} {line}", flush=True)


def _interrupt(_signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--handovers", type=int, default=300, help="N handovers (300)")
    parser.add_argument("--backlog", type=int, default=10_000, help="M queued messages to drain (10000)")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--clients", type=int, default=4, help="client threads (4)")
    parser.add_argument("--live", type=int, default=2000, help="messages for the live inbox rate (2000)")
    parser.add_argument("--baseline-rounds", type=int, default=3, help="times the bare inbox gets them (3)")
    args = parser.parse_args()
    if min(args.handovers, args.backlog, args.clients, args.live, args.baseline_rounds) < 1:
        parser.error("every count must be at least 1")
    for name in ("CCM_DATABASE_URL", "CCM_DATA_DIR"):  # this process reads the nodes' own configuration
        os.environ.pop(name, None)
    for signum in (signal.SIGINT, signal.SIGTERM):  # SIGINT too: a shell may start us with it ignored
        signal.signal(signum, _interrupt)
    try:
        budget: list[str] = []
        for backend in args.backends.split(","):
            run_backend(backend.strip(), args)
            print(f"\n== {backend.strip()}: the budget per handover, in one process", flush=True)
            budget += handover_profile.run(backend.strip(), min(args.handovers, 200))
        print("\n" + "\n".join(budget), flush=True)
    except KeyboardInterrupt:
        print("\ninterrupted: processes stopped, temporary files and databases removed", file=sys.stderr)
        return 130
    except BenchError as exc:
        print(f"\nbenchmark failed: {exc}\n(processes stopped, temporary files and databases removed)",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
