"""The dashboards' figures: counts only, never a name, a reference or a case id.

:func:`node_figures` is the node's picture for the coordinator and the administrator (``report.read``; no
case contents): cases per current stage, handovers sent / accepted / declined per month (both directions),
the time from a handover to its acceptance as a distribution with its median, delivery health per partner,
and erasures confirmed vs waiting vs overdue. :func:`caseload` is a counsellor's or adviser's own picture
(``case.read``, the cases they may see, :func:`node.cases.access.visible_cases_filter`): their open cases per
stage and the stages due (overdue, then each day of the coming week, as the home page's "stages due" queue
counts them: :data:`~node.exchange.worklist.STAGE_DUE_DAYS`).

Every figure is one GROUP BY (or a plain count) in the database; no query returns more rows than there are
stages, months, buckets or partners, so the cost does not grow with the number of cases in Python. Months and
days are the node's own calendar (``zone``): a month starts at local midnight on its first day. Durations are
computed in SQL (``julianday`` on SQLite, ``epoch`` on PostgreSQL). Each call is one audited read.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy import orm

from node.audit import record
from node.auth import Actor, require
from node.cases.access import visible_cases_filter
from node.cases.models import STATUSES, Case, CaseStage
from node.exchange.chain.models import ErasureRequest
from node.exchange.handovers.models import Handover
from node.exchange.models import OutboundMessage, Partner
from node.exchange.worklist import OPEN_CASE_STATUSES, OPEN_STAGE_STATUSES, STAGE_DUE_DAYS

#: the key of the cases whose stages are all done or not applicable (``cases.current_stage`` is null)
NO_STAGE = "none"
#: the acceptance-time buckets: (key, upper bound in days, exclusive; None: no bound)
ACCEPTANCE_BUCKETS: tuple[tuple[str, float | None], ...] = (
    ("under_1_day", 1), ("1_3_days", 3), ("3_7_days", 7), ("1_2_weeks", 14), ("over_2_weeks", None))
SERIES = ("sent", "accepted", "declined")
PENDING_DELIVERY = ("queued", "sending")
CLOSED_STATUSES = tuple(status for status in STATUSES if status not in OPEN_CASE_STATUSES)


def month_starts(now: dt.datetime, zone: ZoneInfo, months: int) -> list[dt.date]:
    """The first day of each of the last ``months`` months of the node's calendar, oldest first, this month last."""
    local = now.astimezone(zone).date().replace(day=1)
    starts = []
    year, month = local.year, local.month
    for _ in range(months):
        starts.append(dt.date(year, month, 1))
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return starts[::-1]


def _utc_midnight(day: dt.date, zone: ZoneInfo) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), zone).astimezone(dt.UTC)


def _next_month(day: dt.date) -> dt.date:
    return dt.date(day.year + day.month // 12, day.month % 12 + 1, 1)


def _month_index(column: Any, bounds: Sequence[dt.datetime]) -> sa.ColumnElement[Any]:
    """Which month of ``bounds`` (their UTC starts, oldest first) ``column`` falls in, as 0.. (SQL CASE)."""
    whens = [(column >= start, i) for i, start in reversed(list(enumerate(bounds)))]
    return sa.case(*whens, else_=-1)


def _days_between(session: orm.Session, start: Any, end: Any) -> sa.ColumnElement[Any]:
    if session.get_bind().dialect.name == "sqlite":
        return sa.func.julianday(end) - sa.func.julianday(start)
    return sa.extract("epoch", end - start) / 86400.0


def _cases_by_stage(session: orm.Session, where: Sequence[Any]) -> dict[str, int]:
    rows = session.execute(sa.select(Case.current_stage, sa.func.count()).where(*where)
                           .group_by(Case.current_stage)).all()
    return {key or NO_STAGE: n for key, n in rows}


def _open_cases_by_stage(session: orm.Session) -> dict[str, int]:
    """Every case per stage less the closed ones: both read an index only (``ix_cases_stage_created_at``,
    ``ix_cases_status_created_at``), where filtering the open ones would read every case at 100k cases."""
    counts = _cases_by_stage(session, ())
    for key, n in _cases_by_stage(session, (Case.status.in_(CLOSED_STATUSES),)).items():
        counts[key] -= n
    return {key: n for key, n in counts.items() if n}


def ordered_stages(counts: dict[str, int], stage_keys: Sequence[str]) -> list[tuple[str, int]]:
    """Every configured stage in order (0 where none), then stages the configuration no longer has, then
    :data:`NO_STAGE` if any case has no stage left."""
    items = [(key, counts.get(key, 0)) for key in stage_keys]
    items += [(key, n) for key, n in sorted(counts.items()) if key not in stage_keys and key != NO_STAGE]
    if counts.get(NO_STAGE):
        items.append((NO_STAGE, counts[NO_STAGE]))
    return items


def _handovers_by_month(session: orm.Session, starts: Sequence[dt.date], zone: ZoneInfo,
                        end: dt.datetime) -> dict[str, dict[str, list[int]]]:
    bounds = [_utc_midnight(day, zone) for day in starts]
    out = {d: {s: [0] * len(starts) for s in SERIES} for d in ("outgoing", "incoming")}
    sent = _month_index(Handover.created_at, bounds)
    for direction, month, n in session.execute(
            sa.select(Handover.direction, sent, sa.func.count())
            .where(Handover.created_at >= bounds[0], Handover.created_at < end).group_by(Handover.direction, sent)):
        if direction in out and month >= 0:
            out[direction]["sent"][month] = n
    decided = _month_index(Handover.decided_at, bounds)
    for direction, status, month, n in session.execute(
            sa.select(Handover.direction, Handover.status, decided, sa.func.count())
            .where(Handover.status.in_(("accepted", "declined")), Handover.decided_at >= bounds[0],
                   Handover.decided_at < end)
            .group_by(Handover.direction, Handover.status, decided)):
        if direction in out and month >= 0:
            out[direction][status][month] = n
    return out


def _acceptance(session: orm.Session, since: dt.datetime, end: dt.datetime) -> dict[str, dict[str, Any]]:
    days = _days_between(session, Handover.created_at, Handover.decided_at)
    whens = [(days < bound, key) for key, bound in ACCEPTANCE_BUCKETS if bound is not None]
    bucket = sa.case(*whens, else_=ACCEPTANCE_BUCKETS[-1][0])
    where = (Handover.status == "accepted", Handover.decided_at >= since, Handover.decided_at < end)
    counts: dict[str, dict[str, int]] = {"outgoing": {}, "incoming": {}}
    for direction, key, n in session.execute(sa.select(Handover.direction, bucket, sa.func.count()).where(*where)
                                             .group_by(Handover.direction, bucket)):
        if direction in counts:
            counts[direction][key] = n
    out = {}
    for direction, found in counts.items():
        total = sum(found.values())
        median = None
        if total:
            # the middle one (odd) or the two middle ones (even), read in order: at most two rows
            middle = session.scalars(sa.select(days).where(*where, Handover.direction == direction)
                                     .order_by(days).offset((total - 1) // 2).limit(2 - total % 2)).all()
            median = sum(float(v) for v in middle) / len(middle)
        out[direction] = {"buckets": [(key, found.get(key, 0)) for key, _ in ACCEPTANCE_BUCKETS],
                          "count": total, "median_days": median}
    return out


def _delivery(session: orm.Session) -> list[dict[str, Any]]:
    pending = OutboundMessage.status.in_(PENDING_DELIVERY)

    def total(condition: sa.ColumnElement[bool]) -> Any:
        return sa.func.coalesce(sa.func.sum(sa.case((condition, 1), else_=0)), 0)

    stats = {row.partner_id: row for row in session.execute(
        sa.select(OutboundMessage.partner_id,
                  sa.func.max(OutboundMessage.delivered_at).label("last_success"),
                  total(pending).label("queued"),
                  total(sa.and_(pending, OutboundMessage.last_error.is_not(None))).label("failing"),
                  total(OutboundMessage.status == "parked").label("parked"),
                  total(OutboundMessage.status == "undeliverable").label("undeliverable"))
        .group_by(OutboundMessage.partner_id))}
    items = []
    for partner in session.execute(sa.select(Partner.id, Partner.node_id, Partner.name, Partner.status,
                                             Partner.retry_interval, Partner.retry_at)
                                   .order_by(Partner.name, Partner.node_id)):
        row = stats.get(partner.id)
        items.append({"partner": partner.node_id, "name": partner.name, "status": partner.status,
                      "backing_off": bool(partner.retry_interval), "retry_at": partner.retry_at,
                      "last_success": row.last_success if row else None,
                      **{key: int(getattr(row, key)) if row else 0
                         for key in ("queued", "failing", "parked", "undeliverable")}})
    return items


def _erasures(session: orm.Session, now: dt.datetime, confirm_within: dt.timedelta) -> dict[str, int]:
    waiting = ErasureRequest.confirmed_at.is_(None)
    overdue = sa.and_(waiting, ErasureRequest.requested_at.is_not(None),
                      ErasureRequest.requested_at < now - confirm_within)
    row = session.execute(sa.select(
        sa.func.count(ErasureRequest.confirmed_at),
        sa.func.coalesce(sa.func.sum(sa.case((sa.and_(waiting, sa.not_(overdue)), 1), else_=0)), 0),
        sa.func.coalesce(sa.func.sum(sa.case((overdue, 1), else_=0)), 0))).one()
    return {"confirmed": int(row[0]), "waiting": int(row[1]), "overdue": int(row[2])}


def node_figures(session: orm.Session, actor: Actor, now: dt.datetime, *, stage_keys: Sequence[str],
                 zone: ZoneInfo, confirm_within: dt.timedelta, months: int = 12) -> dict[str, Any]:
    """The node's dashboard (see the module docstring); one audited read.

    Args:
        stage_keys: the node's configured stages, in order.
        zone: the node's time zone (its months).
        confirm_within: how long a holder has to confirm an erasure (``erasure_confirm_hours``).
        months: how many months the handover figures cover, this month included.
    Returns:
        ``{"cases_by_stage": [(stage key, open cases)], "cases_total", "cases_open", "months": [first days],
        "handovers": {direction: {"sent"|"accepted"|"declined": [count per month]}},
        "acceptance": {direction: {"buckets": [(key, n)], "count", "median_days"}},
        "delivery": [per partner], "erasures": {"confirmed", "waiting", "overdue"}}``.
    Raises:
        Forbidden: the role may not read reports.
    """
    require(actor, "report.read")
    starts = month_starts(now, zone, months)
    since, end = _utc_midnight(starts[0], zone), _utc_midnight(_next_month(starts[-1]), zone)
    by_status = dict(session.execute(sa.select(Case.status, sa.func.count()).group_by(Case.status)).all())
    figures = {
        "cases_by_stage": ordered_stages(_open_cases_by_stage(session), stage_keys),
        "cases_total": sum(by_status.values()),
        "cases_open": sum(n for status, n in by_status.items() if status in OPEN_CASE_STATUSES),
        "months": starts,
        "handovers": _handovers_by_month(session, starts, zone, end),
        "acceptance": _acceptance(session, since, end),
        "delivery": _delivery(session),
        "erasures": _erasures(session, now, confirm_within),
    }
    record(session, actor=actor, action="read", object_type="report", object_id="dashboard", case_id=None, now=now)
    return figures


def caseload(session: orm.Session, actor: Actor, now: dt.datetime, *, stage_keys: Sequence[str],
             zone: ZoneInfo) -> dict[str, Any]:
    """The actor's own caseload: the open cases they may see per current stage, and their stages due; one
    audited read.

    Returns:
        ``{"cases_by_stage": [(stage key, n)], "cases_open", "today", "overdue": n,
        "due": [(day, n) for today .. today + STAGE_DUE_DAYS]}``.
    Raises:
        Forbidden: the role may not read cases.
    """
    require(actor, "case.read")
    visible = visible_cases_filter(actor)
    counts = _cases_by_stage(session, (Case.status.in_(OPEN_CASE_STATUSES), visible))
    today = now.astimezone(zone).date()
    horizon = today + dt.timedelta(days=STAGE_DUE_DAYS)
    # the visible open cases as a set the stages are checked against (SQLite probes it in memory, instead of
    # reading each case of every overdue stage: twice as fast at 100k cases)
    cases = sa.select(Case.id).where(Case.status.in_(OPEN_CASE_STATUSES), visible)
    open_stage = (CaseStage.status.in_(OPEN_STAGE_STATUSES), CaseStage.case_id.in_(cases))
    overdue = session.scalar(sa.select(sa.func.count()).where(*open_stage, CaseStage.due_on < today)) or 0
    by_day = dict(session.execute(sa.select(CaseStage.due_on, sa.func.count())
                                  .where(*open_stage, CaseStage.due_on >= today, CaseStage.due_on <= horizon)
                                  .group_by(CaseStage.due_on)).all())
    due = [(day, by_day.get(day, 0)) for day in (today + dt.timedelta(days=i) for i in range(STAGE_DUE_DAYS + 1))]
    record(session, actor=actor, action="read", object_type="report", object_id="caseload", case_id=None, now=now)
    return {"cases_by_stage": ordered_stages(counts, stage_keys), "cases_open": sum(counts.values()),
            "today": today, "overdue": overdue, "due": due}
