"""Aggregate figures for coordinators: counts only, never a name, a date of birth or a case id."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm

from node.audit import record
from node.auth import Actor, require

from .models import STATUSES, Case, CaseStage


def _counts(session: orm.Session, column: sa.ColumnElement[Any]) -> dict[Any, int]:
    rows = session.execute(sa.select(column, sa.func.count()).group_by(column)).all()
    return {key: count for key, count in rows}


def summary(session: orm.Session, actor: Actor, now: dt.datetime) -> dict[str, Any]:
    """``GET /reports/summary``: the node's cases counted by status, current stage, stage status,
    destination country, and children vs adults.

    Raises:
        Forbidden: the role may not read reports.
    """
    require(actor, "report.read")
    by_status = {status: 0 for status in STATUSES} | _counts(session, Case.status)
    by_child = _counts(session, Case.child_at_intake)
    by_current = {key or "none": n for key, n in _counts(session, Case.current_stage).items()}
    by_stage_status: dict[str, dict[str, int]] = {}
    rows = session.execute(sa.select(CaseStage.stage_key, CaseStage.status, sa.func.count())
                           .group_by(CaseStage.stage_key, CaseStage.status)).all()
    for key, status, n in rows:
        by_stage_status.setdefault(key, {})[status] = n
    record(session, actor=actor, action="read", object_type="report", object_id="summary", case_id=None,
           now=now)
    return {"generated_at": now, "total": sum(by_status.values()), "children": by_child.get(True, 0),
            "adults": by_child.get(False, 0), "by_status": by_status, "by_current_stage": by_current,
            "by_stage_status": by_stage_status, "by_destination": _counts(session, Case.destination_country)}
