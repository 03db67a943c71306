"""The notifications page and the menu's badge: the count, the list (swept on demand), marking one or all read,
CSRF, the e-mail settings, and only one's own notifications. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable

import pyotp
import pytest
import sqlalchemy as sa
from flask import Flask

from node.accounts import User
from node.audit import AuditEntry
from node.clock import FakeClock
from node.db import make_sessionmaker
from node.notifications.models import Notification
from tests.notifications.rows import FAMILY, GIVEN, NOTE, Rows
from tests.web.conftest import PASSWORD, WebClient

BADGE = re.compile(r'id="unread-badge">(\d+)<')


@pytest.fixture
def rows(app: Flask, engine: sa.Engine, partners: list[str]) -> Rows:
    return Rows(make_sessionmaker(engine))


def sign_in_admin(app: Flask, clock: FakeClock, make_web_user: Callable[..., User]) -> WebClient:
    """An admin signed in with the second factor (admins must have one)."""
    secret = pyotp.random_base32()
    user = make_web_user("admin", username="ada.admin", totp_secret=secret)
    browser = WebClient(app.test_client(), user)
    browser.get("/login")
    assert browser.post("/login", {"username": user.username, "password": PASSWORD}).status_code == 302
    browser.get("/login/code")
    assert browser.post("/login/code", {"code": pyotp.TOTP(secret).at(clock.now())}).status_code == 302
    return browser


def badge(browser: WebClient) -> int | None:
    found = BADGE.search(browser.text(browser.get("/")))
    return int(found.group(1)) if found else None


def mine(rows: Rows, browser: WebClient) -> list[Notification]:
    assert browser.user is not None
    with rows.sessionmaker() as session:
        found = list(session.scalars(sa.select(Notification).where(Notification.user_id == browser.user.id)
                                     .order_by(Notification.id)))
        session.expunge_all()
        return found


def two_events(rows: Rows, browser: WebClient, clock: FakeClock) -> tuple[str, str]:
    """A case assigned to the browser's user, its handover accepted and progress received."""
    assert browser.user is not None
    rows.users[browser.user.username] = browser.user.id
    case_id, reference = rows.case(clock.now(), assigned=browser.user.username)
    handover = rows.handover(case_id, clock.now())
    rows.decide(handover, "accepted", clock.now())
    rows.progress(case_id, clock.now())
    return case_id, reference


def test_the_list_sweeps_and_links_to_the_case_and_the_badge_counts(
        rows: Rows, clock: FakeClock, web_client: Callable[..., WebClient]) -> None:
    anna = web_client("counsellor", "gbg")
    assert badge(anna) is None
    case_id, reference = two_events(rows, anna, clock)
    answer = anna.get("/notifications")  # swept on demand: no background loop in this test
    assert answer.status_code == 200
    page = anna.text(answer)
    assert "A partner accepted the handover" in page and "Progress arrived from a partner" in page
    assert page.count(f'href="/cases/{case_id}"') == 2 and reference in page
    assert "ba.cldd-sarajevo" in page
    for personal in (GIVEN, FAMILY, NOTE):
        assert personal not in page
    assert badge(anna) == 2


def test_mark_one_and_all_read(rows: Rows, clock: FakeClock, web_client: Callable[..., WebClient]) -> None:
    anna = web_client("counsellor", "gbg")
    two_events(rows, anna, clock)
    anna.get("/notifications")
    first, second = mine(rows, anna)
    clock.advance(minutes=3)
    answer = anna.post(f"/notifications/{first.id}/read")
    assert answer.status_code == 302 and answer.headers["Location"].endswith("/notifications")
    assert [n.read_at for n in mine(rows, anna)] == [clock.now(), None]
    assert badge(anna) == 1
    anna.get("/notifications")
    assert anna.post("/notifications/read").status_code == 302
    assert all(n.read_at is not None for n in mine(rows, anna))
    assert badge(anna) is None
    assert anna.post(f"/notifications/{second.id}/read").status_code == 302  # already read: no change, no error


def test_a_form_without_its_csrf_token_is_refused(rows: Rows, clock: FakeClock,
                                                  web_client: Callable[..., WebClient]) -> None:
    anna = web_client("counsellor", "gbg")
    two_events(rows, anna, clock)
    anna.get("/notifications")
    first, _ = mine(rows, anna)
    assert anna.post(f"/notifications/{first.id}/read", csrf=False).status_code == 400
    assert anna.post("/notifications/read", csrf=False).status_code == 400
    assert anna.post("/notifications/email", {"email": "x@y.example"}, csrf=False).status_code == 400
    assert all(n.read_at is None for n in mine(rows, anna))


def test_only_ones_own_notifications(rows: Rows, clock: FakeClock, web_client: Callable[..., WebClient]) -> None:
    anna = web_client("counsellor", "gbg")
    olle = web_client("counsellor", "malmo")
    case_id, reference = two_events(rows, anna, clock)
    anna.get("/notifications")
    first, _ = mine(rows, anna)
    page = olle.text(olle.get("/notifications"))
    assert reference not in page and f"/cases/{case_id}" not in page and "Nothing new" in page
    assert badge(olle) is None
    assert olle.post(f"/notifications/{first.id}/read").status_code == 404
    assert olle.post("/notifications/read").status_code == 302
    assert all(n.read_at is None for n in mine(rows, anna))
    assert olle.post("/notifications/99999999/read").status_code == 404
    assert olle.post("/notifications/99999999999999999999/read").status_code == 404
    assert olle.client.post("/notifications/abc/read", data={"csrf_token": olle.csrf}).status_code == 404


def test_the_email_settings(rows: Rows, clock: FakeClock, web_client: Callable[..., WebClient],
                            engine: sa.Engine) -> None:
    anna = web_client("counsellor", "gbg")
    page = anna.text(anna.get("/notifications"))
    assert 'for="f-email"' in page and 'for="f-notify_email"' in page and "checked" in page  # opted in by default
    answer = anna.post("/notifications/email", {"email": "not an address", "notify_email": "1"})
    assert answer.status_code == 422
    page = anna.text(answer)
    assert 'aria-invalid="true"' in page and "not an address" in page and "There is a problem" in page
    answer = anna.post("/notifications/email", {"email": "anna@gi.example"})  # the box left unticked: opted out
    assert answer.status_code == 302
    with make_sessionmaker(engine)() as session:
        user = session.get(User, anna.user.id if anna.user else 0)
        assert user is not None and user.email == "anna@gi.example" and user.notify_email is False
        entry = session.scalar(sa.select(AuditEntry).where(AuditEntry.object_type == "user")
                               .order_by(AuditEntry.seq.desc()).limit(1))
        assert entry is not None and "anna@gi.example" not in str(entry.detail)
    page = anna.text(anna.get("/notifications"))
    assert 'value="anna@gi.example"' in page


def test_admins_see_partner_problems(rows: Rows, clock: FakeClock, app: Flask,
                                     make_web_user: Callable[..., User]) -> None:
    rows.failing_message(clock.now() - dt.timedelta(days=2))
    admin = sign_in_admin(app, clock, make_web_user)
    page = admin.text(admin.get("/notifications"))
    assert "Deliveries to a partner have failed for more than a day" in page and "ba.cldd-sarajevo" in page
    assert badge(admin) == 1
