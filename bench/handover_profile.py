"""Per-stage CPU cost of a handover, in one process (no HTTP, no gunicorn), to find what to optimise.

    .venv/bin/python -m bench.handover_profile [--backend sqlite|postgresql|both] [--handovers 200]
        [--profile api|inbox|bare|record] [--profiler cprofile|pyinstrument]
        [--sort cumulative|tottime|package] [--top 30] [--sql]

Two nodes (Göteborg → Sarajevo) are built with ``create_app`` on their own databases (a SQLite file, or a
fresh PostgreSQL database dropped at the end), partnered under an agreement; N cases with a consent are made
through Göteborg's API (Flask test client). Then, one stage at a time, each timed per handover:

1. ``api``: ``POST /api/v1/cases/{id}/handovers`` through the test client (the sending API), with the CPU of
   the database driver's statements and commit measured apart (``bench/handover_floor.py``);
   ``floor``: the same requests to a bench-only route with the API's token check, Flask and flask-smorest
   with the same schemas, and no handover: the floor of any sending API on this stack, this run;
2. ``inbox``: each queued envelope posted to Sarajevo's ``/federation/v1/inbox`` (the receiving side);
3. ``bare``: the same envelopes posted to a bare inbox (``bench/bare_inbox.py``: verify + decrypt, one INSERT,
   a signed receipt) with Sarajevo's keys, on a database of the same kind: the floor of any inbox, this run;
4. ``record``: the delivery worker's judgement of those answers (receipt verification) and one
   ``record_outcomes`` transaction per 8 of them, as a worker with 8 threads would.

Each stage prints its CPU and wall time and its SQL statements per handover (``before_cursor_execute``), then
where the sending API's time goes (request floor, driver, the rest), then the budget lines of issue #16: the
sending API at most ``API_BUDGET_MS`` ms CPU per handover on SQLite (the PostgreSQL figure is printed for the
record), and the inbox at most ``INBOX_BUDGET`` times the bare inbox's CPU of the same run. With ``--profile
STAGE`` that stage runs under cProfile and the top functions by cumulative time are printed (``--sort
package``: own time summed per package); with ``--sql`` the SQL statements of one more handover (API and
inbox) are printed.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import importlib.util
import io
import pstats
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import Flask
from sqlalchemy import event

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.bare_inbox import BARE_INBOX, METADATA  # noqa: E402
from bench.bare_inbox import make_app as make_bare_inbox  # noqa: E402
from bench.bench_support import databases  # noqa: E402
from bench.handover_floor import (  # noqa: E402
    FLOOR_PREFIX,
    driver_costs,
    floor_lines,
    inbox_lines,
    node_engines,
    register_floor,
)
from node import create_app  # noqa: E402
from node.accounts import create_token, create_user  # noqa: E402
from node.clock import SystemClock  # noqa: E402
from node.config import config_for_tests  # noqa: E402
from node.db import make_engine, make_sessionmaker  # noqa: E402
from node.exchange.delivery.queue import Claim, record_outcomes  # noqa: E402
from node.exchange.delivery.retry import RetryPolicy  # noqa: E402
from node.exchange.delivery.transport import INBOX_PATH, DeliveryAnswer  # noqa: E402
from node.exchange.delivery.worker import DeliveryWorker  # noqa: E402
from node.exchange.handovers.schemas import HandoverOut  # noqa: E402
from node.exchange.models import OutboundMessage  # noqa: E402
from node.exchange.trust.keystore import generate_node_keys, identity_for_app, key_path  # noqa: E402
from node.exchange.trust.partners import add_partner  # noqa: E402
from node.migrate import upgrade  # noqa: E402
from protocol import NodeKeys  # noqa: E402

#: Issue #16's budget: the sending API's CPU per handover on SQLite, in ms ...
API_BUDGET_MS = 3.0
#: ... and the receiving inbox's CPU per handover, as a multiple of the bare inbox's in the same run.
INBOX_BUDGET = 2.0
SENDER, RECEIVER = ("se.gi-goteborg", "Göteborgs-Initiativet"), ("ba.cldd-sarajevo", "CLDD Sarajevo")
AGREEMENT = "dsa-gi-cldd-sarajevo-2026"
CASE: dict[str, Any] = {
    "returnee": {"given_names": "Amina", "date_of_birth": "1988-03-14", "languages": ["bs", "sv"],
                 "contact": {"phone": "+46 70 123 45 67"}},
    "destination_country": "BA", "destination_locality": "Sarajevo",
    "intake": {"health": {"text": "Asthma."}, "wishes": {"text": "Želim otvoriti pekaru u Sarajevu."},
               "work": {"text": "Cook for six years.", "occupations": ["cook"]}},
    "plan": {"end_date": "2027-06-30", "milestones": [{"title": "ID card", "due_date": "2027-01-31"}]},
}


def make_node(root: Path, node: tuple[str, str], url: str | None,
              floor_answers: dict[str, Any] | None = None) -> Flask:
    data_dir = root / node[0]
    data_dir.mkdir()
    generate_node_keys(data_dir, node[0])
    database_url = url or f"sqlite:///{data_dir / 'node.db'}"
    engine = make_engine(database_url)
    upgrade(engine)
    config = config_for_tests(data_dir, database_url, node_id=node[0], name=node[1],
                              base_url=f"http://{node[0]}.test")
    app = create_app(config, clock=SystemClock(), engine=engine)
    if floor_answers is not None:
        register_floor(app, floor_answers)
    return app


def pair(a: Flask, b: Flask) -> None:
    for here, there in ((a, b), (b, a)):
        ctx = here.extensions["ccm"]
        card = there.test_client().get("/federation/v1/card").data
        with ctx.sessionmaker() as session:
            add_partner(session, card_data=card, fingerprint=identity_for_app(there).keys.fingerprint(),
                        agreement=AGREEMENT, now=datetime.now(UTC), own_node_id=ctx.config.node_id)
            session.commit()


def token(app: Flask) -> str:
    with app.extensions["ccm"].sessionmaker() as session:
        user = create_user(session, username="bench", role="counsellor", team="gbg", now=datetime.now(UTC))
        secret = create_token(session, user, now=datetime.now(UTC), days=1)
        session.commit()
    return secret


def call(app: Flask, secret: str, method: str, path: str, status: int, **kwargs: Any) -> Any:
    response = app.test_client().open(f"/api/v1{path}", method=method,
                                      headers={"Authorization": f"Bearer {secret}"}, **kwargs)
    if response.status_code != status:
        raise SystemExit(f"{method} {path}: {response.status_code} {response.get_data(as_text=True)[:300]}")
    return response.get_json()


class Statements:
    """Counts the SQL statements every engine of this process runs (``before_cursor_execute``)."""

    def __init__(self) -> None:
        self.count = 0

    def _seen(self, *_args: Any) -> None:
        self.count += 1

    def __enter__(self) -> Statements:
        event.listen(sa.engine.Engine, "before_cursor_execute", self._seen)
        return self

    def __exit__(self, *_exc: object) -> None:
        event.remove(sa.engine.Engine, "before_cursor_execute", self._seen)


def timed(label: str, count: int, fn: Callable[[], None], profile: str | None, top: int,
          sort: str = "cumulative") -> float:
    """Run ``fn``, print its CPU and wall time and SQL statements per handover, and return the CPU ms per
    handover; ``profile``: None, ``cprofile`` or ``pyinstrument`` (if installed: a sampling profiler that
    distorts less)."""
    profiler: Any = None
    if profile == "pyinstrument":
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0002)
        profiler.start()
    elif profile == "cprofile":
        profiler = cProfile.Profile()
        profiler.enable()
    with Statements() as statements:
        cpu0, wall0 = time.process_time(), time.perf_counter()
        fn()
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    print(f"  {label:8s} {cpu / count * 1000:6.2f} ms CPU, {wall / count * 1000:6.2f} ms wall, "
          f"{statements.count / count:4.1f} statements per handover{f'  ({profile})' if profile else ''}",
          flush=True)
    if profile == "pyinstrument":
        profiler.stop()
        print(profiler.output_text(unicode=False, color=False, show_all=False))
    elif profile == "cprofile":
        profiler.disable()
        if sort == "package":
            print(by_package(pstats.Stats(profiler), count, top))
        else:
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats(sort).print_stats(top)
            print(out.getvalue())
    return cpu / count * 1000


def package_of(filename: str) -> str:
    """Where a profiled function lives: our module (``node.exchange.inbox``), a library (``sqlalchemy``), the
    standard library (``stdlib``) or a built-in (``~``)."""
    if filename == "~" or filename.startswith("<"):
        return "built-in"
    path = Path(filename)
    if "site-packages" in path.parts:
        return path.parts[path.parts.index("site-packages") + 1].removesuffix(".py")
    try:
        parts = path.resolve().relative_to(ROOT).with_suffix("").parts
    except ValueError:
        return "stdlib"
    return ".".join(parts[:3] if parts[0] == "node" and len(parts) > 3 else parts[:2])


def by_package(stats: pstats.Stats, count: int, top: int) -> str:
    """Own time (tottime) per package, in µs per handover, largest first: where the time is spent, not who
    asked for it."""
    totals: dict[str, float] = {}
    for (filename, _line, _name), (_cc, _nc, tottime, _ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        key = package_of(filename)
        totals[key] = totals.get(key, 0.0) + tottime
    rows = sorted(totals.items(), key=lambda kv: -kv[1])[:top]
    whole = sum(totals.values())
    return "\n".join(f"    {name:36s} {seconds / count * 1e6:8.0f} µs  {seconds / whole:5.1%}"
                     for name, seconds in rows)


def budget(backend: str, api_ms: float, inbox_ms: float, bare_ms: float) -> list[str]:
    """Issue #16's budget lines for one database."""
    api = f"sending API  {api_ms:6.2f} ms CPU per handover"
    if backend == "sqlite":
        api += f"   budget ≤ {API_BUDGET_MS:.2f} ms: {'ok' if api_ms <= API_BUDGET_MS else 'OVER BUDGET'}"
    else:
        api += "   (the budget is set on SQLite; this figure is for the record)"
    ratio = inbox_ms / bare_ms
    inbox = (f"inbox        {inbox_ms:6.2f} ms CPU per handover = {ratio:.2f} × the bare inbox's {bare_ms:.2f} ms "
             f"(same run)   budget ≤ {INBOX_BUDGET:.1f} ×: {'ok' if ratio <= INBOX_BUDGET else 'OVER BUDGET'}")
    return [f"-- budget ({backend}, one process, CPU per handover)", f"  {api}", f"  {inbox}"]


@contextlib.contextmanager
def nodes(backend: str, floor_answers: dict[str, Any]) -> Iterator[tuple[Flask, Flask, Flask]]:
    """Göteborg (with the floor route answering ``floor_answers``) and Sarajevo, partners, and a bare inbox
    with Sarajevo's keys on a database of the same kind."""
    with contextlib.ExitStack() as stack:
        root = Path(tempfile.mkdtemp(prefix="ccm-hprof-"))
        stack.callback(shutil.rmtree, root, ignore_errors=True)
        make_url = databases(stack, backend)
        apps = (make_node(root, SENDER, make_url(), floor_answers), make_node(root, RECEIVER, make_url()))
        for app in apps:
            stack.callback(app.extensions["ccm"].engine.dispose)
        pair(*apps)
        bare_engine = make_engine(make_url() or f"sqlite:///{root / 'bare.db'}")
        stack.callback(bare_engine.dispose)
        METADATA.create_all(bare_engine)
        bare = make_bare_inbox(keys=NodeKeys.load(key_path(apps[1].extensions["ccm"].config.data_dir)),
                               sender_card=apps[0].test_client().get("/federation/v1/card").data,
                               engine=bare_engine)
        yield (*apps, bare)


def run(backend: str, count: int, stage: str | None = None, profiler: str = "cprofile", top: int = 30,
        sql: bool = False, sort: str = "cumulative") -> list[str]:
    """Measure every stage on one database; print them and return the budget lines."""
    floor_answers: dict[str, Any] = {}
    with nodes(backend, floor_answers) as (gbg, sarajevo, bare):
        secret = token(gbg)
        valid_until = (date.today() + timedelta(days=365)).isoformat()
        cases = []
        extra = max(1, count // 2)  # handed over with the driver measured, apart from the budget's figure
        for i in range(count + extra):
            case = call(gbg, secret, "POST", "/cases", 201,
                        json={**CASE, "returnee": {**CASE["returnee"], "family_name": f"Hadžić-{i:05d}"}})
            consent = call(gbg, secret, "POST", f"/cases/{case['id']}/consents", 201, json={
                "recipients": [RECEIVER[0]], "categories": ["identity", "contact", "work", "wishes", "plan"],
                "purpose": "reintegration_support", "method": "written_signature", "valid_until": valid_until})
            cases.append((case["id"], consent["id"]))
        print(f"== {backend}: {count} handovers", flush=True)

        cases, measured = cases[:count], cases[count:]

        def send(batch: list[tuple[str, str]]) -> None:
            for case_id, consent_id in batch:
                floor_answers[case_id] = call(gbg, secret, "POST", f"/cases/{case_id}/handovers", 202,
                                              json={"recipient": RECEIVER[0], "consent_id": consent_id})

        api_ms = timed("api", count, lambda: send(cases), profiler if stage == "api" else None, top, sort)
        with driver_costs(*node_engines(gbg)) as costs:  # the instruments cost too: not the budget's figure
            measured_ms = timed("api+", len(measured), lambda: send(measured), None, top, sort)
        answer_schema = HandoverOut()
        floor_answers.update({k: answer_schema.load(v) for k, v in floor_answers.items()})

        def floor() -> None:
            for case_id, consent_id in cases:
                call(gbg, secret, "POST", f"{FLOOR_PREFIX.removeprefix('/api/v1')}/cases/{case_id}/handovers", 202,
                     json={"recipient": RECEIVER[0], "consent_id": consent_id})

        floor_ms = timed("floor", count, floor, None, top, sort)
        sessions = make_sessionmaker(gbg.extensions["ccm"].engine)
        with sessions() as session:
            rows = list(session.execute(
                sa.select(OutboundMessage.id, OutboundMessage.message_id, OutboundMessage.partner_id,
                          OutboundMessage.recipient, OutboundMessage.message_hash, OutboundMessage.envelope)
                .order_by(OutboundMessage.id)))
            rows, extra_rows = rows[:count], rows[count:]  # the api stage's, the measured ones'
            card = session.execute(sa.text("SELECT card FROM partners")).scalar_one()
        answers: list[DeliveryAnswer] = []
        inbox_client = sarajevo.test_client()

        def inbox(batch: list[Any], kept: list[DeliveryAnswer]) -> None:
            for row in batch:
                response = inbox_client.post(INBOX_PATH, data=row.envelope, content_type="application/json")
                kept.append(DeliveryAnswer(response.status_code, response.data))

        inbox_ms = timed("inbox", count, lambda: inbox(rows, answers), profiler if stage == "inbox" else None,
                         top, sort)
        bare_client = bare.test_client()

        def bare_inbox(batch: list[Any]) -> None:
            for row in batch:
                response = bare_client.post(INBOX_PATH, data=row.envelope, content_type="application/json")
                if response.status_code != 200:
                    raise SystemExit(f"bare inbox: {response.status_code} {response.data[:200]!r}")

        bare_ms = timed("bare", count, lambda: bare_inbox(rows), profiler if stage == "bare" else None, top, sort)
        with driver_costs(*node_engines(sarajevo)) as inbox_costs:
            measured_inbox_ms = timed("inbox+", len(extra_rows), lambda: inbox(extra_rows, []), None, top, sort)
        with driver_costs(bare.extensions["bare_engine"]) as bare_costs:
            measured_bare_ms = timed("bare+", len(extra_rows), lambda: bare_inbox(extra_rows), None, top, sort)
        with bare.extensions["bare_engine"].connect() as conn:
            assert conn.scalar(sa.select(sa.func.count()).select_from(BARE_INBOX)) == count + len(extra_rows)
        worker = DeliveryWorker(sessionmaker=sessions, clock=SystemClock(), worker_id="profile")
        now = datetime.now(UTC)
        claims = [Claim(r.id, r.message_id, r.partner_id, r.recipient, "http://x.test", card, r.message_hash,
                        r.envelope, now) for r in rows]

        def record() -> None:
            outcomes = [worker.judge(c, a) for c, a in zip(claims, answers, strict=True)]
            for start in range(0, len(outcomes), 8):
                with sessions() as session, session.begin():
                    record_outcomes(session, outcomes[start:start + 8], worker_id="profile",
                                    now=datetime.now(UTC), policy=RetryPolicy(), rng=random.Random(1))

        timed("record", count, record, profiler if stage == "record" else None, top, sort)
        if sql:
            show_sql(gbg, sarajevo, secret, valid_until)
    lines = [*floor_lines(measured_ms, floor_ms, costs, len(measured)),
             *inbox_lines(measured_inbox_ms, measured_bare_ms, inbox_costs, bare_costs, len(extra_rows)),
             *budget(backend, api_ms, inbox_ms, bare_ms)]
    print(*lines, sep="\n", flush=True)
    return lines


def show_sql(gbg: Flask, sarajevo: Flask, secret: str, valid_until: str) -> None:
    """Print the statements of one handover: the sending API call, then the receiving inbox."""
    case = call(gbg, secret, "POST", "/cases", 201, json={**CASE, "returnee": {**CASE["returnee"],
                                                                                 "family_name": "SQL"}})
    consent = call(gbg, secret, "POST", f"/cases/{case['id']}/consents", 201, json={
        "recipients": [RECEIVER[0]], "categories": ["identity", "contact", "work", "wishes", "plan"],
        "purpose": "reintegration_support", "method": "written_signature", "valid_until": valid_until})
    seen: list[str] = []

    def log(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(" ".join(statement.split())[:150])

    event.listen(sa.engine.Engine, "before_cursor_execute", log)
    try:
        call(gbg, secret, "POST", f"/cases/{case['id']}/handovers", 202,
             json={"recipient": RECEIVER[0], "consent_id": consent["id"]})
        print(f"-- POST /cases/{{id}}/handovers: {len(seen)} statements", *seen, sep="\n  ")
        seen.clear()
        with gbg.extensions["ccm"].sessionmaker() as session:
            envelope = session.scalar(sa.select(OutboundMessage.envelope).where(
                OutboundMessage.case_id == case["id"]))
        seen.clear()
        sarajevo.test_client().post(INBOX_PATH, data=envelope, content_type="application/json")
        print(f"-- POST /federation/v1/inbox: {len(seen)} statements", *seen, sep="\n  ")
    finally:
        event.remove(sa.engine.Engine, "before_cursor_execute", log)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="both", choices=("sqlite", "postgresql", "both"))
    parser.add_argument("--handovers", type=int, default=200)
    parser.add_argument("--profile", choices=("api", "inbox", "bare", "record"))
    parser.add_argument("--profiler", choices=("cprofile", "pyinstrument"), default="cprofile")
    parser.add_argument("--top", type=int, default=30, help="functions shown by cProfile (30)")
    parser.add_argument("--sql", action="store_true", help="print the statements of one handover")
    parser.add_argument("--sort", default="cumulative", choices=("cumulative", "tottime", "package"),
                        help="cProfile's order (cumulative); package: own time summed per package")
    args = parser.parse_args()
    if args.profile and args.profiler == "pyinstrument" and importlib.util.find_spec("pyinstrument") is None:
        parser.error("pyinstrument is not installed: .venv/bin/pip install pyinstrument, or --profiler cprofile")
    backends = ("sqlite", "postgresql") if args.backend == "both" else (args.backend,)
    lines = [line for backend in backends
             for line in run(backend, max(1, args.handovers), args.profile, args.profiler, args.top, args.sql,
                             args.sort)]
    if len(backends) > 1:
        print("\n" + "\n".join(lines), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
