"""Case search at the service level: ``node.cases.search.search_cases`` called as the API view calls it, on an
existing node's database (no HTTP, no gunicorn), with the SQL of each statement timed.

    .venv/bin/python bench/search_profile.py DATA_DIR [DATA_DIR ...] [--samples 200] [--count-limit 1000]

DATA_DIR is a node made as ``bench/api_bench.py`` makes one (``ccm-node init`` + counsellors c1..c4 in team
"bench" + ``ccm-node demo-data --cases 100000``), on SQLite or PostgreSQL. The searches are made as c1 (who
sees every case through the team), each in its own transaction, rolled back (the audit entry is not kept).
It prints p50/p95/p99 of the whole call and the slowest statement of each query kind, for the exact count
(the API) and, with ``--count-limit``, the capped count a list page asks for.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event, orm

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_support import pct  # noqa: E402

from node.auth import Actor  # noqa: E402
from node.cases.models import Case  # noqa: E402
from node.cases.search import search_cases  # noqa: E402
from node.clock import SystemClock  # noqa: E402
from node.config import load_config  # noqa: E402
from node.db import make_engine  # noqa: E402

COUNTRIES = ["BA", "IQ", "GH", "AF", "XK", "SO", "TN", "KE"]
STATUSES = ["open", "handed_over", "in_reintegration", "closed"]


def queries(session: orm.Session, stage_keys: tuple[str, ...], rng: random.Random,
            ) -> dict[str, Callable[[], dict[str, Any]]]:
    """The query kinds: each a function giving fresh filters (the API's defaults: page 1, 20 a page)."""
    latest = session.execute(sa.select(Case.family_name, Case.given_names)
                             .order_by(Case.created_at.desc()).limit(200)).all()
    short = sorted({f[:2] for f, _ in latest if len(f) >= 2})
    full = sorted({f"{g.split()[0]} {f}" for f, g in latest})
    stages = [k for k in stage_keys[1:]]

    def base(**kw: Any) -> dict[str, Any]:
        return {"page": 1, "per_page": 20, **kw}

    return {
        "list (no filter)": lambda: base(),
        "list page 50": lambda: base(page=50),
        "q two-letter prefix": lambda: base(q=rng.choice(short)),
        "q full name": lambda: base(q=rng.choice(full)),
        "status+destination": lambda: base(status=rng.choice(STATUSES), destination=rng.choice(COUNTRIES)),
        "stage": lambda: base(stage=rng.choice(stages)),
        "stage+destination": lambda: base(stage=rng.choice(stages), destination=rng.choice(COUNTRIES)),
    }


class StatementTimer:
    """The slowest statement seen since ``reset`` (its SQL head and milliseconds)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.slowest: tuple[float, str] = (0.0, "")
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)

    def _before(self, conn: Any, _cur: Any, _stmt: str, _params: Any, _ctx: Any, _many: bool) -> None:
        conn.info["t0"] = time.perf_counter()

    def _after(self, conn: Any, _cur: Any, stmt: str, _params: Any, _ctx: Any, _many: bool) -> None:
        ms = (time.perf_counter() - conn.info.pop("t0")) * 1000
        if ms > self.slowest[0]:
            self.slowest = (ms, " ".join(stmt.split())[:70])

    def reset(self) -> None:
        self.slowest = (0.0, "")


def profile(data_dir: Path, samples: int, count_limit: int | None) -> None:
    config = load_config(data_dir)
    engine = make_engine(config.database_url)
    timer = StatementTimer(engine)
    make_session = orm.sessionmaker(bind=engine, expire_on_commit=False)
    with make_session() as session:
        user_id = session.execute(sa.text("SELECT id FROM users WHERE username = 'c1'")).scalar_one()
        total = session.scalar(sa.select(sa.func.count()).select_from(Case))
        kinds = queries(session, config.stage_keys, random.Random(1))
    actor = Actor(user_id, "c1", "counsellor", "bench")
    clock = SystemClock()
    limits: list[int | None] = [None] + ([count_limit] if count_limit else [])
    print(f"\n== {engine.dialect.name}: {total:,} cases ({data_dir})")
    for name, make_filters in kinds.items():
        for limit in limits:
            extra = {"count_limit": limit} if limit else {}
            times, slow = [], []
            for i in range(samples + 10):
                filters = make_filters()
                with make_session() as session:
                    timer.reset()
                    t0 = time.perf_counter()
                    page = search_cases(session, actor, filters, stage_keys=config.stage_keys, now=clock.now(),
                                        **extra)
                    elapsed = (time.perf_counter() - t0) * 1000
                    session.rollback()
                if i >= 10:  # warm-up
                    times.append(elapsed)
                    slow.append(timer.slowest)
            worst = max(slow)
            label = f"{name}{' (capped count)' if limit else ''}"
            print(f"  {label:36s} p50 {pct(times, 50):6.1f}  p95 {pct(times, 95):6.1f}  p99 {pct(times, 99):6.1f} ms"
                  f"   total e.g. {page['total']:>6}   slowest SQL {worst[0]:6.1f} ms: {worst[1]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dirs", nargs="+", type=Path)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--count-limit", type=int, default=None)
    args = parser.parse_args()
    for data_dir in args.data_dirs:
        profile(data_dir, args.samples, args.count_limit)


if __name__ == "__main__":
    main()
