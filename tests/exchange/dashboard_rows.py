"""Known rows for the dashboard's tests (tests/exchange/test_dashboard_figures.py, tests/web/test_dashboard.py):
cases in every state, stages with due dates, handovers both ways over fifteen months, outbound messages and
erasure requests, written straight into the tables so that each figure is known in advance.

The fake clock's start (2026-11-23 09:00 UTC) is "now"; the node's zone is UTC, so the dashboard's twelve
months run from December 2025 to November 2026.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import sqlalchemy as sa

from node.accounts import create_user
from node.cases.models import Case, CaseStage
from node.db import make_sessionmaker
from node.exchange.chain.models import ErasureRequest
from node.exchange.handovers.models import Handover
from node.exchange.models import OutboundMessage, Partner

UTC = dt.UTC
SARAJEVO, STOCKHOLM = "ba.cldd-sarajevo", "se.cldd-stockholm"


def at(year: int, month: int, day: int, hour: int = 9) -> dt.datetime:
    return dt.datetime(year, month, day, hour, tzinfo=UTC)


def _case(n: int, status: str, stage: str | None, team: str, user_id: int | None, now: dt.datetime) -> dict[str, Any]:
    return {"id": str(uuid.uuid4()), "reference": f"GI-2026-{n:04d}", "status": status, "current_stage": stage,
            "assigned_user_id": user_id, "team": team, "given_names": f"Given{n}", "family_name": f"Family{n}",
            "date_of_birth": dt.date(1990, 1, 1), "child_at_intake": False, "languages": ["bs"],
            "destination_country": "BA", "created_at": now, "updated_at": now, "version": 1}


def _stage(case_id: str, key: str, status: str, due: dt.date | None, now: dt.datetime,
           position: int) -> dict[str, Any]:
    return {"case_id": case_id, "stage_key": key, "position": position, "status": status, "responsible": "shared",
            "due_on": due, "updated_at": now, "version": 1}


def _handover(n: int, direction: str, status: str, partner: Any, created: dt.datetime,
              decided: dt.datetime | None) -> dict[str, Any]:
    return {"id": str(uuid.uuid4()), "direction": direction, "status": status, "partner_id": partner.id,
            "partner_node": partner.node_id, "thread": f"thread{n:02d}", "message_id": f"message{n:02d}",
            "consent_id": f"consent{n}", "purpose": "reintegration_support", "reference": f"REF-{n}",
            "origin_case_id": f"origin{n}", "categories": ["identity"], "withheld": [], "child": False,
            "destination_country": "BA", "created_at": created, "decided_at": decided, "version": 1}


def _message(n: int, partner: Any, status: str, now: dt.datetime, *, delivered: dt.datetime | None = None,
             error: str | None = None) -> dict[str, Any]:
    return {"message_id": f"out{n:02d}", "partner_id": partner.id, "recipient": partner.node_id, "type": "handover",
            "thread": f"t{n:02d}", "seq": 1, "message_hash": "h" * 43, "envelope": b"{}", "status": status,
            "attempts": 1, "created_at": now, "queued_at": now, "expires_at": now + dt.timedelta(days=30),
            "next_attempt_at": now, "last_error": error, "delivered_at": delivered}


def seed(engine: sa.Engine, now: dt.datetime) -> dict[str, Any]:
    """Write the rows (the ``partners`` fixture must have run). Returns the two counsellors' user ids
    (``"gbg"``: team gbg, ``"malmo"``: team malmo) and ``today``."""
    today = now.date()
    with make_sessionmaker(engine)() as session:
        gbg = create_user(session, username="dash.gbg", role="counsellor", team="gbg", now=now, display_name=None)
        malmo = create_user(session, username="dash.malmo", role="counsellor", team="malmo", now=now,
                            display_name=None)
        session.flush()
        cases = [_case(1, "open", "documents", "gbg", gbg.id, now), _case(2, "open", "documents", "gbg", None, now),
                 _case(3, "handed_over", "housing", "malmo", malmo.id, now),
                 _case(4, "in_reintegration", None, "gbg", None, now),
                 _case(5, "closed", "follow_up", "gbg", gbg.id, now),
                 _case(6, "open", "old_stage", "malmo", None, now)]
        session.execute(sa.insert(Case), cases)
        c1, c2, c3, _c4, c5, _c6 = (c["id"] for c in cases)
        day = dt.timedelta(days=1)
        session.execute(sa.insert(CaseStage), [
            _stage(c1, "documents", "in_progress", today - 2 * day, now, 0),  # overdue
            _stage(c1, "housing", "not_started", today, now, 1),              # due today
            _stage(c1, "education", "not_started", today + 8 * day, now, 2),  # beyond the week
            _stage(c2, "documents", "not_started", today + 3 * day, now, 0),  # due in three days
            _stage(c2, "housing", "done", today + day, now, 1),               # done: not due
            _stage(c5, "documents", "in_progress", today + day, now, 0),      # a closed case: not due
            _stage(c3, "documents", "in_progress", today + day, now, 0),      # malmo's
        ])
        p1 = session.scalar(sa.select(Partner).where(Partner.node_id == SARAJEVO))
        p2 = session.scalar(sa.select(Partner).where(Partner.node_id == STOCKHOLM))
        handovers = [
            _handover(1, "outgoing", "pending", p1, at(2026, 11, 2), None),
            _handover(2, "outgoing", "accepted", p1, at(2026, 10, 10), at(2026, 10, 10, 21)),  # half a day
            _handover(3, "outgoing", "accepted", p2, at(2026, 9, 1), at(2026, 9, 6)),          # five days
            _handover(4, "outgoing", "declined", p1, at(2026, 8, 1), at(2026, 11, 5)),
            _handover(5, "outgoing", "accepted", p1, at(2025, 10, 15), at(2025, 12, 3)),       # 49 days
            _handover(6, "outgoing", "revoked", p1, at(2026, 11, 20), None),
            _handover(7, "incoming", "accepted", p1, at(2026, 11, 10), at(2026, 11, 12)),      # two days
        ]
        session.execute(sa.insert(Handover), handovers)
        session.execute(sa.insert(OutboundMessage), [
            _message(1, p1, "delivered", now, delivered=at(2026, 11, 20)),
            _message(2, p1, "delivered", now, delivered=at(2026, 11, 22)),
            _message(3, p1, "queued", now, error="timeout"),
            _message(4, p1, "queued", now),
            _message(5, p1, "undeliverable", now, error="http_500"),
            _message(6, p2, "parked", now),
        ])
        h1 = handovers[0]["id"]

        def erasure(n: int, requested: dt.datetime | None, confirmed: dt.datetime | None) -> dict[str, Any]:
            return {"id": str(uuid.uuid4()), "handover_id": h1, "case_id": c1, "consent_id": "consent1",
                    "partner_node": SARAJEVO, "holder": SARAJEVO, "cause": "withdrawal", "requested_at": requested,
                    "confirmed_at": confirmed}

        session.execute(sa.insert(ErasureRequest), [
            erasure(1, now - dt.timedelta(days=5), now - dt.timedelta(days=4)),  # confirmed
            erasure(2, now - dt.timedelta(hours=1), None),                       # waiting
            erasure(3, now - dt.timedelta(days=4), None),                        # overdue (72 h)
            erasure(4, None, now - dt.timedelta(days=1)),                        # reported by the holder
        ])
        session.commit()
        return {"gbg": gbg.id, "malmo": malmo.id, "today": today}
