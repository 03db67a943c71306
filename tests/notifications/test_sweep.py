"""The notification sweep (``node.notifications.sweep``): each kind of event, who hears of it, idempotence, and
the fake clock for "overdue" and "unreachable for more than a day". Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from node.clock import FakeClock
from node.notifications.models import Notification
from node.notifications.sweep import LOOKBACK, SweepResult, sweep

from .rows import SARAJEVO, Rows

WITHIN = dt.timedelta(hours=72)


def run(rows: Rows, clock: FakeClock) -> SweepResult:
    with rows.sessionmaker() as session:
        result = sweep(session, clock.now(), confirm_within=WITHIN)
        session.commit()
    return result


def notified(rows: Rows, kind: str | None = None) -> set[tuple[str, str, str]]:
    """(username, kind, subject key) of every notification row."""
    names = {v: k for k, v in rows.users.items()}
    with rows.sessionmaker() as session:
        query = sa.select(Notification.user_id, Notification.kind, Notification.subject_key)
        if kind is not None:
            query = query.where(Notification.kind == kind)
        return {(names[r.user_id], r.kind, r.subject_key) for r in session.execute(query)}


def test_an_answered_handover_notifies_the_assigned_user_only(rows: Rows, clock: FakeClock) -> None:
    case_id, reference = rows.case(clock.now(), assigned="anna")
    accepted = rows.handover(case_id, clock.now())
    declined = rows.handover(case_id, clock.now())
    pending = rows.handover(case_id, clock.now())
    assert run(rows, clock).total == 0
    clock.advance(hours=2)
    rows.decide(accepted, "accepted", clock.now())
    rows.decide(declined, "declined", clock.now() - dt.timedelta(minutes=5))
    result = run(rows, clock)
    assert result.inserted == {"handover_accepted": 1, "handover_declined": 1}
    assert notified(rows) == {("anna", "handover_accepted", accepted), ("anna", "handover_declined", declined)}
    assert pending not in {key for _, _, key in notified(rows)}
    with rows.sessionmaker() as session:
        row = session.scalar(sa.select(Notification).where(Notification.subject_key == accepted))
        assert row is not None and row.case_id == case_id and row.case_reference == reference
        assert row.partner_node == SARAJEVO and row.read_at is None and row.emailed_at is None
        assert row.created_at == clock.now()


def test_without_an_assigned_user_the_team_members_who_may_read_cases_hear(rows: Rows, clock: FakeClock) -> None:
    case_id, _ = rows.case(clock.now(), team="gbg", assigned=None)
    rows.progress(case_id, clock.now())
    run(rows, clock)
    # counsellors and the adviser of the team; not the coordinator (no case.read), not the disabled account,
    # not another team, not the admins
    assert {user for user, _, _ in notified(rows)} == {"anna", "bo", "cai"}


def test_a_disabled_assigned_user_falls_back_to_the_team(rows: Rows, clock: FakeClock) -> None:
    case_id, _ = rows.case(clock.now(), team="gbg", assigned="gone")
    rows.progress(case_id, clock.now())
    run(rows, clock)
    assert {user for user, _, _ in notified(rows)} == {"anna", "bo", "cai"}


def test_a_case_of_no_team_and_no_user_notifies_nobody(rows: Rows, clock: FakeClock) -> None:
    case_id, _ = rows.case(clock.now(), team=None, assigned=None)
    rows.progress(case_id, clock.now())
    assert run(rows, clock).total == 0


def test_progress_received_notifies_and_progress_sent_does_not(rows: Rows, clock: FakeClock) -> None:
    case_id, _ = rows.case(clock.now(), assigned="olle", team="malmo")
    received = rows.progress(case_id, clock.now())
    rows.progress(case_id, clock.now(), direction="sent")
    rows.progress(case_id, clock.now(), direction="local")
    run(rows, clock)
    assert notified(rows) == {("olle", "progress_received", received)}


def test_an_erasure_confirmed_notifies(rows: Rows, clock: FakeClock) -> None:
    case_id, _ = rows.case(clock.now(), assigned="anna")
    handover = rows.handover(case_id, clock.now(), status="revoked")
    clock.advance(hours=1)
    confirmed = rows.erasure(handover, case_id, clock.now() - dt.timedelta(hours=1), clock.now())
    run(rows, clock)
    assert notified(rows) == {("anna", "erasure_confirmed", confirmed)}


def test_an_erasure_is_overdue_once_the_configured_hours_pass(rows: Rows, clock: FakeClock) -> None:
    case_id, _ = rows.case(clock.now(), assigned="anna")
    handover = rows.handover(case_id, clock.now(), status="revoked")
    request = rows.erasure(handover, case_id, clock.now())
    clock.advance(hours=71)
    run(rows, clock)
    assert notified(rows) == set()
    clock.advance(hours=2)  # 73 h after the request: overdue
    assert run(rows, clock).inserted == {"erasure_overdue": 1}
    assert notified(rows) == {("anna", "erasure_overdue", request)}
    clock.advance(days=30)  # still overdue a month later: still one notification (overdue erasures have no lookback)
    assert run(rows, clock).total == 0


def test_a_partner_unreachable_for_more_than_a_day_notifies_the_admins_once_per_outage(rows: Rows,
                                                                                      clock: FakeClock) -> None:
    first = rows.failing_message(clock.now())
    clock.advance(hours=23)
    assert run(rows, clock).total == 0  # failing, but not for a day yet
    clock.advance(hours=2)
    assert run(rows, clock).inserted == {"partner_unreachable": 2}
    assert {(user, kind) for user, kind, _ in notified(rows)} == {("admin1", "partner_unreachable"),
                                                                  ("admin2", "partner_unreachable")}
    clock.advance(days=3)
    assert run(rows, clock).total == 0  # the same outage
    rows.delivered(first, clock.now())  # it came back...
    assert run(rows, clock).total == 0
    rows.failing_message(clock.now())  # ...and fails again
    clock.advance(hours=12)
    assert run(rows, clock).total == 0  # it answered within the day
    clock.advance(hours=13)
    assert run(rows, clock).inserted == {"partner_unreachable": 2}  # a second outage: told again
    assert len(notified(rows, "partner_unreachable")) == 4


def test_a_partner_that_was_never_attempted_or_is_suspended_is_not_reported(rows: Rows, clock: FakeClock) -> None:
    rows.failing_message(clock.now(), attempts=0)
    clock.advance(days=2)
    assert run(rows, clock).total == 0
    rows.failing_message(clock.now() - dt.timedelta(days=2))
    with rows.sessionmaker() as session:
        rows.partner(session).status = "suspended"
        session.commit()
    assert run(rows, clock).total == 0


def test_the_sweep_is_idempotent(rows: Rows, clock: FakeClock) -> None:
    case_id, _ = rows.case(clock.now())
    handover = rows.handover(case_id, clock.now())
    rows.decide(handover, "accepted", clock.now())
    rows.progress(case_id, clock.now())
    first = run(rows, clock)
    assert first.inserted == {"handover_accepted": 3, "progress_received": 3}
    before = notified(rows)
    for _ in range(3):
        clock.advance(minutes=1)
        assert run(rows, clock).total == 0
    assert notified(rows) == before
    # a sweep in another session (a page's) after the loop's: nothing twice
    with rows.sessionmaker() as one:
        rows.progress(case_id, clock.now())
        sweep(one, clock.now(), confirm_within=WITHIN)
        one.commit()
    with rows.sessionmaker() as two:
        assert sweep(two, clock.now(), confirm_within=WITHIN).total == 0
        two.commit()
    assert len(notified(rows, "progress_received")) == 6


def test_events_older_than_the_lookback_are_not_notified(rows: Rows, clock: FakeClock) -> None:
    case_id, _ = rows.case(clock.now(), assigned="anna")
    handover = rows.handover(case_id, clock.now() - LOOKBACK - dt.timedelta(days=1))
    rows.decide(handover, "accepted", clock.now() - LOOKBACK - dt.timedelta(hours=1))
    assert run(rows, clock).total == 0
