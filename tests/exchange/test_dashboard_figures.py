"""The dashboard's figures (``node.exchange.dashboard_figures``) on a database with known rows
(tests/exchange/dashboard_rows.py), each checked against the expected number and against a direct
``SELECT count(*)``. Runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from flask import Flask

from node.audit import AuditEntry
from node.auth import Actor
from node.clock import FakeClock
from node.config import DEFAULT_STAGES
from node.db import make_sessionmaker
from node.errors import Forbidden
from node.exchange.dashboard_figures import NO_STAGE, caseload, month_starts, node_figures
from tests.exchange.dashboard_rows import SARAJEVO, STOCKHOLM, at, seed

STAGE_KEYS = [key for key, _ in DEFAULT_STAGES]
UTC = ZoneInfo("UTC")
CONFIRM = dt.timedelta(hours=72)
COORDINATOR = Actor(0, "coord", "coordinator", None)


@pytest.fixture
def rows(app: Flask, engine: sa.Engine, clock: FakeClock, partners: list[str]) -> dict[str, Any]:
    return seed(engine, clock.now())


def figures(engine: sa.Engine, clock: FakeClock, who: Actor = COORDINATOR, **options: Any) -> dict[str, Any]:
    with make_sessionmaker(engine)() as session:
        result = node_figures(session, who, clock.now(), stage_keys=STAGE_KEYS, zone=options.pop("zone", UTC),
                              confirm_within=CONFIRM, **options)
        session.commit()
        return result


def load(engine: sa.Engine, clock: FakeClock, user_id: int, team: str) -> dict[str, Any]:
    with make_sessionmaker(engine)() as session:
        result = caseload(session, Actor(user_id, "c", "counsellor", team), clock.now(), stage_keys=STAGE_KEYS,
                          zone=UTC)
        session.commit()
        return result


def count(engine: sa.Engine, sql: str, **params: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text(sql), params).scalar_one())


def test_cases_per_stage_match_a_direct_count(engine: sa.Engine, clock: FakeClock, rows: dict[str, Any]) -> None:
    result = figures(engine, clock)
    by_stage = dict(result["cases_by_stage"])
    # every configured stage in order, then the unknown one, then the cases with no stage left
    assert [key for key, _ in result["cases_by_stage"]] == [*STAGE_KEYS, "old_stage", NO_STAGE]
    assert by_stage == {**dict.fromkeys(STAGE_KEYS, 0), "documents": 2, "housing": 1, "old_stage": 1, NO_STAGE: 1}
    for key in ("documents", "housing", "old_stage", "employment"):
        assert by_stage[key] == count(engine, "SELECT count(*) FROM cases WHERE status <> 'closed' "
                                              "AND current_stage = :key", key=key)
    assert by_stage[NO_STAGE] == count(engine, "SELECT count(*) FROM cases WHERE status <> 'closed' "
                                               "AND current_stage IS NULL")
    assert result["cases_total"] == 6 == count(engine, "SELECT count(*) FROM cases")
    assert result["cases_open"] == 5 == count(engine, "SELECT count(*) FROM cases WHERE status <> 'closed'")


def test_handovers_per_month_for_the_last_twelve_months(engine: sa.Engine, clock: FakeClock,
                                                        rows: dict[str, Any]) -> None:
    result = figures(engine, clock)
    assert result["months"][0] == dt.date(2025, 12, 1) and result["months"][-1] == dt.date(2026, 11, 1)
    out = result["handovers"]["outgoing"]
    index = {month: i for i, month in enumerate(result["months"])}
    nov, oct_, sep, aug, dec = (index[dt.date(2026, 11, 1)], index[dt.date(2026, 10, 1)], index[dt.date(2026, 9, 1)],
                                index[dt.date(2026, 8, 1)], index[dt.date(2025, 12, 1)])
    assert out["sent"] == [1 if i in (oct_, sep, aug) else 2 if i == nov else 0 for i in range(12)]
    assert out["accepted"] == [1 if i in (oct_, sep, dec) else 0 for i in range(12)]
    assert out["declined"] == [1 if i == nov else 0 for i in range(12)]
    assert sum(out["sent"]) == count(engine, "SELECT count(*) FROM handovers WHERE direction = 'outgoing' "
                                             "AND created_at >= :since", since=at(2025, 12, 1).replace(tzinfo=None)
                                     if engine.dialect.name == "sqlite" else at(2025, 12, 1))
    incoming = result["handovers"]["incoming"]
    assert incoming["sent"][nov] == incoming["accepted"][nov] == 1 and sum(incoming["declined"]) == 0


def test_a_new_month_moves_the_window(engine: sa.Engine, clock: FakeClock, rows: dict[str, Any]) -> None:
    clock.set(at(2026, 12, 1, 0))  # midnight: December has begun, December 2025 has left the window
    result = figures(engine, clock)
    assert result["months"][0] == dt.date(2026, 1, 1) and result["months"][-1] == dt.date(2026, 12, 1)
    out = result["handovers"]["outgoing"]
    assert out["sent"][-1] == 0 and out["sent"][-2] == 2 and sum(out["accepted"]) == 2
    assert result["acceptance"]["outgoing"]["count"] == 2  # the one decided in December 2025 is out


def test_months_follow_the_node_time_zone() -> None:
    now = at(2026, 11, 30, 23)  # already 1 December in Stockholm
    assert month_starts(now, ZoneInfo("Europe/Stockholm"), 2) == [dt.date(2026, 11, 1), dt.date(2026, 12, 1)]
    assert month_starts(now, UTC, 2) == [dt.date(2026, 10, 1), dt.date(2026, 11, 1)]
    assert month_starts(at(2026, 1, 15), UTC, 3) == [dt.date(2025, 11, 1), dt.date(2025, 12, 1), dt.date(2026, 1, 1)]


def test_time_to_acceptance_in_buckets_with_the_median(engine: sa.Engine, clock: FakeClock,
                                                       rows: dict[str, Any]) -> None:
    result = figures(engine, clock)["acceptance"]
    out = result["outgoing"]
    assert dict(out["buckets"]) == {"under_1_day": 1, "1_3_days": 0, "3_7_days": 1, "1_2_weeks": 0,
                                    "over_2_weeks": 1}
    assert out["count"] == 3 == count(engine, "SELECT count(*) FROM handovers WHERE direction = 'outgoing' "
                                              "AND status = 'accepted'")
    assert out["median_days"] == pytest.approx(5.0, abs=1e-3)
    assert dict(result["incoming"]["buckets"])["1_3_days"] == 1 and result["incoming"]["count"] == 1
    assert result["incoming"]["median_days"] == pytest.approx(2.0, abs=1e-3)


def test_an_even_number_of_acceptances_has_the_mean_of_the_middle_two(engine: sa.Engine, clock: FakeClock,
                                                                        rows: dict[str, Any]) -> None:
    clock.set(at(2026, 12, 1, 0))  # two acceptances left in the window: 0.5 and 5 days
    assert figures(engine, clock)["acceptance"]["outgoing"]["median_days"] == pytest.approx(2.75, abs=1e-3)


def test_delivery_health_per_partner(engine: sa.Engine, clock: FakeClock, rows: dict[str, Any]) -> None:
    delivery = {item["partner"]: item for item in figures(engine, clock)["delivery"]}
    sarajevo, stockholm = delivery[SARAJEVO], delivery[STOCKHOLM]
    assert sarajevo["last_success"] == at(2026, 11, 22)
    assert (sarajevo["queued"], sarajevo["failing"], sarajevo["undeliverable"], sarajevo["parked"]) == (2, 1, 1, 0)
    assert sarajevo["queued"] == count(engine, "SELECT count(*) FROM outbound_messages m JOIN partners p "
                                               "ON p.id = m.partner_id WHERE p.node_id = :node "
                                               "AND m.status IN ('queued', 'sending')", node=SARAJEVO)
    assert stockholm["last_success"] is None and stockholm["parked"] == 1 and stockholm["queued"] == 0
    assert len(delivery) == count(engine, "SELECT count(*) FROM partners")  # partners with no message too


def test_erasures_confirmed_waiting_and_overdue(engine: sa.Engine, clock: FakeClock, rows: dict[str, Any]) -> None:
    erasures = figures(engine, clock)["erasures"]
    assert erasures == {"confirmed": 2, "waiting": 1, "overdue": 1}
    assert erasures["confirmed"] == count(engine, "SELECT count(*) FROM erasure_requests "
                                                  "WHERE confirmed_at IS NOT NULL")
    assert erasures["waiting"] + erasures["overdue"] == count(engine, "SELECT count(*) FROM erasure_requests "
                                                                      "WHERE confirmed_at IS NULL")


def test_the_caseload_is_only_the_visible_cases(engine: sa.Engine, clock: FakeClock, rows: dict[str, Any]) -> None:
    mine = load(engine, clock, rows["gbg"], "gbg")
    assert {k: n for k, n in mine["cases_by_stage"] if n} == {"documents": 2, NO_STAGE: 1}
    assert mine["cases_open"] == 3 == count(engine, "SELECT count(*) FROM cases WHERE status <> 'closed' AND "
                                                    "(team = 'gbg' OR assigned_user_id = :u)", u=rows["gbg"])
    today = rows["today"]
    assert mine["today"] == today and mine["overdue"] == 1
    due = dict(mine["due"])
    assert len(due) == 8 and min(due) == today and max(due) == today + dt.timedelta(days=7)
    assert {day: n for day, n in due.items() if n} == {today: 1, today + dt.timedelta(days=3): 1}
    theirs = load(engine, clock, rows["malmo"], "malmo")
    assert {k: n for k, n in theirs["cases_by_stage"] if n} == {"housing": 1, "old_stage": 1}
    assert theirs["overdue"] == 0 and dict(theirs["due"])[today + dt.timedelta(days=1)] == 1


def test_an_empty_node_has_zeros_everywhere(app: Flask, engine: sa.Engine, clock: FakeClock) -> None:
    result = figures(engine, clock)
    assert result["cases_total"] == 0 and all(n == 0 for _, n in result["cases_by_stage"])
    assert all(sum(values) == 0 for d in result["handovers"].values() for values in d.values())
    assert result["acceptance"]["outgoing"] == {"buckets": [(k, 0) for k, _ in result["acceptance"]["outgoing"]
                                                            ["buckets"]], "count": 0, "median_days": None}
    assert result["delivery"] == [] and result["erasures"] == {"confirmed": 0, "waiting": 0, "overdue": 0}


def test_roles_and_audit(engine: sa.Engine, clock: FakeClock, rows: dict[str, Any]) -> None:
    with pytest.raises(Forbidden), make_sessionmaker(engine)() as session:  # the coordinator reads no cases
        caseload(session, COORDINATOR, clock.now(), stage_keys=STAGE_KEYS, zone=UTC)
    figures(engine, clock, Actor(0, "admin", "admin", None))
    load(engine, clock, rows["gbg"], "gbg")
    with make_sessionmaker(engine)() as session:
        entries = session.execute(sa.select(AuditEntry.object_type, AuditEntry.object_id, AuditEntry.action)
                                  .where(AuditEntry.object_type == "report")).all()
    assert sorted(tuple(e) for e in entries) == [("report", "caseload", "read"), ("report", "dashboard", "read")]
