"""The sweep: turning what the exchange tables already record into notification rows, idempotently.

Rather than a hook in every applier, :func:`sweep` reads the tables that record the events and inserts one
:class:`~node.notifications.models.Notification` per (user, kind, subject) that is not there yet:

- ``handover_accepted`` / ``handover_declined``: outgoing handovers the partner answered (``decided_at``);
- ``progress_received``: progress updates received from a partner (``created_at``, the time of arrival);
- ``erasure_confirmed``: erasure requests (or a holder's own retention report) the holder confirmed;
- ``erasure_overdue``: erasure requests still unconfirmed after ``erasure_confirm_hours``
  (:func:`node.exchange.chain.disclosures.open_requests`, the list ``ccm-node erasures --overdue`` prints);
- ``partner_unreachable``: an active partner the node keeps failing to deliver to (it is backing off,
  ``retry_interval`` > 0) whose oldest attempted, undelivered message has waited more than
  :data:`UNREACHABLE_AFTER`, counted from its last successful delivery if that is later. One notification per
  outage: the subject is the partner and its last successful delivery, which only a recovery changes.

**Who**: for a case's events, the case's assigned user if that account is active and may read cases, else the
active members of the case's team who may read cases (the visibility of ``node.cases.access``); for a partner,
every active admin (``partner.manage``).

**Since when**: the time-stamped events are looked for within :data:`LOOKBACK` of now, not after a stored
watermark: a partner's decision carries the partner's own clock and a transaction may commit after a later one,
so a watermark could step over an event. The unique ``(user_id, kind, subject_key)`` makes the repeated look
idempotent; rows already there are read first (one indexed query per kind), and the insert also ignores a
conflict, so two sweeps at once (the background loop and a page) insert each row once. Overdue erasures are read
whatever their age (open requests are few). Nothing here commits.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy import orm
from sqlalchemy.dialects import postgresql, sqlite

from node.accounts import User
from node.auth import ROLE_PERMISSIONS, can
from node.cases.models import Case
from node.exchange.chain.disclosures import open_requests
from node.exchange.chain.models import ErasureRequest
from node.exchange.handovers.models import Handover, ProgressUpdate
from node.exchange.models import OutboundMessage, Partner

from .models import Notification

#: How far back the sweep looks for time-stamped events.
LOOKBACK = dt.timedelta(days=7)
#: A partner failing this long is reported to the admins.
UNREACHABLE_AFTER = dt.timedelta(days=1)
#: Outbound statuses of a message still trying to reach its partner.
_TRYING = ("queued", "sending")


@dataclass(frozen=True)
class Event:
    """One thing that happened: its kind, its subject (the idempotence key) and what it is about."""

    kind: str
    subject_key: str
    case_id: str | None = None
    partner_node: str | None = None


@dataclass
class SweepResult:
    """How many notification rows a sweep inserted, per kind."""

    inserted: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.inserted.values())


def _roles(permission: str) -> list[str]:
    return [role for role in ROLE_PERMISSIONS if can(role, permission)]


def handover_answers(session: orm.Session, since: dt.datetime) -> list[Event]:
    rows = session.execute(sa.select(Handover.id, Handover.status, Handover.case_id, Handover.partner_node).where(
        Handover.direction == "outgoing", Handover.status.in_(("accepted", "declined")),
        Handover.decided_at >= since, Handover.case_id.is_not(None)))
    return [Event(f"handover_{r.status}", r.id, r.case_id, r.partner_node) for r in rows]


def progress_received(session: orm.Session, since: dt.datetime) -> list[Event]:
    rows = session.execute(sa.select(ProgressUpdate.id, ProgressUpdate.case_id, ProgressUpdate.partner_node).where(
        ProgressUpdate.direction == "received", ProgressUpdate.created_at >= since))
    return [Event("progress_received", r.id, r.case_id, r.partner_node) for r in rows]


def erasures_confirmed(session: orm.Session, since: dt.datetime) -> list[Event]:
    rows = session.execute(sa.select(ErasureRequest.id, ErasureRequest.case_id, ErasureRequest.holder).where(
        ErasureRequest.confirmed_at >= since, ErasureRequest.case_id.is_not(None)))
    return [Event("erasure_confirmed", r.id, r.case_id, r.holder) for r in rows]


def erasures_overdue(session: orm.Session, now: dt.datetime, confirm_within: dt.timedelta) -> list[Event]:
    return [Event("erasure_overdue", r.id, r.case_id, r.holder)
            for r in open_requests(session, now, confirm_within, overdue_only=True) if r.case_id is not None]


def partners_unreachable(session: orm.Session, now: dt.datetime) -> list[Event]:
    events = []
    for partner in session.scalars(sa.select(Partner).where(Partner.status == "active", Partner.retry_interval > 0)):
        oldest = session.scalar(sa.select(sa.func.min(OutboundMessage.queued_at)).where(
            OutboundMessage.partner_id == partner.id, OutboundMessage.status.in_(_TRYING),
            OutboundMessage.attempts > 0))
        if oldest is None or oldest > now - UNREACHABLE_AFTER:
            continue
        last_ok = session.scalar(sa.select(sa.func.max(OutboundMessage.delivered_at)).where(
            OutboundMessage.partner_id == partner.id, OutboundMessage.delivered_at.is_not(None)))
        if last_ok is not None and last_ok > now - UNREACHABLE_AFTER:
            continue  # it answered within the day: not failing for a day yet
        anchor = last_ok.isoformat(timespec="seconds") if last_ok is not None else "never"
        events.append(Event("partner_unreachable", f"{partner.node_id}@{anchor}", None, partner.node_id))
    return events


def case_recipients(session: orm.Session, case_ids: Iterable[str]) -> dict[str, tuple[str, list[int]]]:
    """Each case's reference and who hears about it (see the module docstring), by case id."""
    wanted = sorted(set(case_ids))
    if not wanted:
        return {}
    cases = session.execute(sa.select(Case.id, Case.reference, Case.assigned_user_id, Case.team)
                            .where(Case.id.in_(wanted))).all()
    assigned = {c.assigned_user_id for c in cases if c.assigned_user_id is not None}
    teams = {c.team for c in cases if c.team is not None}
    readers = session.execute(sa.select(User.id, User.team).where(
        User.active.is_(True), User.role.in_(_roles("case.read")),
        sa.or_(User.id.in_(assigned), User.team.in_(teams)))).all()
    ids = {u.id for u in readers}
    by_team: dict[str, list[int]] = {}
    for user in readers:
        if user.team is not None:
            by_team.setdefault(user.team, []).append(user.id)
    result = {}
    for case in cases:
        if case.assigned_user_id in ids:
            result[case.id] = (case.reference, [case.assigned_user_id])
        else:
            result[case.id] = (case.reference, sorted(by_team.get(case.team, [])) if case.team else [])
    return result


def admins(session: orm.Session) -> list[int]:
    return list(session.scalars(sa.select(User.id).where(User.active.is_(True),
                                                         User.role.in_(_roles("partner.manage")))
                                .order_by(User.id)))


def _existing(session: orm.Session, kind: str, keys: Sequence[str]) -> set[tuple[int, str]]:
    found: set[tuple[int, str]] = set()
    for start in range(0, len(keys), 500):
        found.update((r.user_id, r.subject_key) for r in session.execute(
            sa.select(Notification.user_id, Notification.subject_key).where(
                Notification.kind == kind, Notification.subject_key.in_(keys[start:start + 500]))))
    return found


def _insert_ignoring_conflicts(session: orm.Session, rows: list[dict[str, object]]) -> int:
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(Notification).on_conflict_do_nothing(index_elements=["user_id", "kind", "subject_key"])
    inserted = 0
    for row in rows:  # one at a time: what it returns says whether it was new
        if session.execute(statement.values(**row).returning(Notification.id)).first() is not None:
            inserted += 1
    return inserted


def notify(session: orm.Session, events: Sequence[Event], now: dt.datetime) -> SweepResult:
    """Insert the notifications of ``events`` that are not there yet (no commit)."""
    result = SweepResult()
    recipients = case_recipients(session, (e.case_id for e in events if e.case_id is not None))
    admin_ids = admins(session) if any(e.case_id is None for e in events) else []
    by_kind: dict[str, list[Event]] = {}
    for event in events:
        by_kind.setdefault(event.kind, []).append(event)
    for kind, items in by_kind.items():
        existing = _existing(session, kind, sorted({e.subject_key for e in items}))
        rows: list[dict[str, object]] = []
        for event in items:
            reference, users = recipients.get(event.case_id, (None, [])) if event.case_id else (None, admin_ids)
            for user_id in users:
                if (user_id, event.subject_key) in existing:
                    continue
                existing.add((user_id, event.subject_key))
                rows.append({"user_id": user_id, "kind": kind, "case_id": event.case_id, "case_reference": reference,
                             "partner_node": event.partner_node, "subject_key": event.subject_key,
                             "created_at": now})
        if rows:
            result.inserted[kind] = _insert_ignoring_conflicts(session, rows)
    return result


def sweep(session: orm.Session, now: dt.datetime, *, confirm_within: dt.timedelta,
          lookback: dt.timedelta = LOOKBACK) -> SweepResult:
    """Find the events of the last ``lookback`` (and every overdue erasure, every partner failing for a day) and
    insert their notifications (no commit).

    Args:
        now: the current time (the injected clock's).
        confirm_within: how long a holder has to confirm an erasure (``erasure_confirm_hours``).
        lookback: how far back time-stamped events are looked for.
    Returns:
        How many rows were inserted, per kind.
    """
    since = now - lookback
    events = [*handover_answers(session, since), *progress_received(session, since),
              *erasures_confirmed(session, since), *erasures_overdue(session, now, confirm_within),
              *partners_unreachable(session, now)]
    return notify(session, events, now)
