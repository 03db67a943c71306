"""The node admin's pages for staff, API tokens, the audit log, erasures and retention (Flask test client, SQLite
and PostgreSQL): permissions, field messages with nothing saved, sessions ended, the audit chain verified and then
found broken, the overdue erasure highlighted, a retention run recorded."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any

import pyotp
import pytest
import sqlalchemy as sa
from flask import Flask

from node.accounts import ApiToken, User, check_password, create_token
from node.audit import AuditEntry, record
from node.auth import Actor
from node.cases import services
from node.clock import FakeClock
from node.db import make_sessionmaker
from node.exchange.chain.models import ErasureRequest
from node.exchange.handovers.models import Handover
from node.exchange.models import Partner
from node.web.models import WebSession

from .conftest import PASSWORD, WebClient

SECRET = pyotp.random_base32()


def read(engine: sa.Engine, statement: Any) -> Any:
    """One value, read in a session of its own (a held session would hold SQLite's write lock)."""
    with make_sessionmaker(engine)() as session:
        return session.scalar(statement)


def user_named(engine: sa.Engine, username: str) -> User | None:
    with make_sessionmaker(engine)() as session:
        user = session.scalar(sa.select(User).where(User.username == username))
        if user is not None:
            session.expunge(user)
        return user


def sign_in_admin(app: Flask, clock: FakeClock, make_web_user: Callable[..., User], username: str) -> WebClient:
    user = make_web_user("admin", username=username, display_name="Ada Admin", totp_secret=SECRET)
    browser = WebClient(app.test_client(), user)
    browser.get("/login")
    assert browser.post("/login", {"username": username, "password": PASSWORD}).status_code == 302
    clock.advance(seconds=30)  # a fresh time step for every admin signed in
    browser.get("/login/code")
    answer = browser.post("/login/code", {"code": pyotp.TOTP(SECRET).at(clock.now())})
    assert answer.status_code == 302, browser.text(answer)[:500]
    assert browser.get("/").status_code == 200
    return browser


@pytest.fixture
def admin(app: Flask, clock: FakeClock, make_web_user: Callable[..., User]) -> WebClient:
    return sign_in_admin(app, clock, make_web_user, "ada.admin")


def page(browser: WebClient, url: str, status: int = 200) -> str:
    answer = browser.get(url)
    assert answer.status_code == status, browser.text(answer)[:1500]
    return browser.text(answer)


def test_the_admin_pages_open(admin: WebClient, make_web_user: Callable[..., User]) -> None:
    member = make_web_user("counsellor", "gbg", username="anna.lindqvist", display_name="Anna Lindqvist")
    listing = page(admin, "/admin/staff")
    assert "anna.lindqvist" in listing and "Anna Lindqvist" in listing and "Counsellor" in listing
    assert "ada.admin" in listing and "Set up" in listing  # the admin's TOTP; their sign-in is known
    assert f"/admin/staff/{member.id}" in listing and "Never" in listing  # anna never signed in
    for url in ("/admin/staff/new", f"/admin/staff/{member.id}", f"/admin/staff/{member.id}/tokens",
                "/admin/audit", "/admin/erasures"):
        assert page(admin, url).count("<h1") == 1
    assert admin.get("/admin/staff/999999").status_code == 404
    assert admin.get("/admin/staff/999999/tokens").status_code == 404


@pytest.mark.parametrize("method, url", [
    ("get", "/admin/staff"), ("get", "/admin/staff/new"), ("post", "/admin/staff/new"), ("get", "/admin/staff/1"),
    ("post", "/admin/staff/1"), ("post", "/admin/staff/1/disable"), ("post", "/admin/staff/1/enable"),
    ("post", "/admin/staff/1/password"), ("post", "/admin/staff/1/totp"), ("get", "/admin/staff/1/tokens"),
    ("post", "/admin/staff/1/tokens/1/revoke"), ("get", "/admin/audit"), ("post", "/admin/audit/verify"),
    ("get", "/admin/erasures"), ("post", "/admin/erasures/retention")])
def test_a_counsellor_gets_403(web_client: Callable[..., WebClient], engine: sa.Engine, method: str,
                               url: str) -> None:
    counsellor = web_client("counsellor", "gbg")
    before = read(engine, sa.select(sa.func.count()).select_from(AuditEntry))
    answer = getattr(counsellor, method)(url, *([{"username": "x", "role": "admin"}] if method == "post" else []))
    assert answer.status_code == 403
    assert "Your role does not allow this" in counsellor.text(answer)
    assert read(engine, sa.select(sa.func.count()).select_from(AuditEntry)) == before


def test_add_a_member_who_must_set_up_totp(admin: WebClient, app: Flask, engine: sa.Engine) -> None:
    answer = admin.post("/admin/staff/new", {"username": "Lejla.Adviser", "display_name": "Lejla Begić",
                                             "role": "adviser", "team": "sarajevo", "totp_required": "1"})
    assert answer.status_code == 200
    text = admin.text(answer)
    assert "Staff member added" in text and "shown only this once" in text
    generated = text.split('class="secret-value">')[1].split("<")[0]
    assert len(generated) >= 16
    user = user_named(engine, "lejla.adviser")
    assert user is not None and user.role == "adviser" and user.team == "sarajevo" and user.totp_required
    assert user.display_name == "Lejla Begić" and user.totp_secret is None and check_password(user, generated)
    entry = read(engine, sa.select(AuditEntry).where(AuditEntry.object_type == "user",
                                                     AuditEntry.action == "create"))
    assert entry.actor_username == "ada.admin" and entry.object_id == str(user.id)
    assert generated not in (entry.detail or "")
    # the new member signs in and is sent to set up TOTP before anything else
    member = WebClient(app.test_client())
    member.get("/login")
    assert member.post("/login", {"username": "lejla.adviser", "password": generated}).status_code == 302
    assert member.get("/").headers["Location"] == "/account/two-factor"
    # the generated password is not on the list or the member's page
    assert generated not in page(admin, "/admin/staff") + page(admin, f"/admin/staff/{user.id}")


@pytest.mark.parametrize("form, field, message", [
    ({"username": "ada.admin", "role": "counsellor"}, "username", "This username is already taken."),
    ({"username": "new.one", "role": "root"}, "role", "Choose one of the roles."),
    ({"username": "new.one", "role": "counsellor", "password": "short"}, "password",
     "The password must have at least 12 characters."),
    ({"username": "Not valid!", "role": "counsellor"}, "username", "Use 2 to 63 characters"),
    ({"username": "", "role": "counsellor"}, "username", "Enter a username."),
])
def test_bad_input_gives_field_messages_and_saves_nothing(admin: WebClient, engine: sa.Engine,
                                                          form: dict[str, str], field: str, message: str) -> None:
    users = read(engine, sa.select(sa.func.count()).select_from(User))
    entries = read(engine, sa.select(sa.func.count()).select_from(AuditEntry))
    answer = admin.post("/admin/staff/new", {"display_name": "New Person", "team": "gbg", **form})
    assert answer.status_code == 422
    text = admin.text(answer)
    assert "There is a problem" in text and f'href="#f-{field}"' in text and message in text
    assert f'id="f-{field}-error"' in text and 'value="New Person"' in text  # what was typed stays
    assert 'value="short"' not in text  # a password is never sent back
    assert read(engine, sa.select(sa.func.count()).select_from(User)) == users
    assert read(engine, sa.select(sa.func.count()).select_from(AuditEntry)) == entries


def test_disable_ends_their_sessions_and_enable_lets_them_in(admin: WebClient, engine: sa.Engine,
                                                             web_client: Callable[..., WebClient]) -> None:
    counsellor = web_client("counsellor", "gbg")
    uid = counsellor.user.id
    assert read(engine, sa.select(sa.func.count()).select_from(WebSession).where(WebSession.user_id == uid)) == 1
    page(admin, f"/admin/staff/{uid}")
    answer = admin.post(f"/admin/staff/{uid}/disable")
    assert answer.status_code == 302
    assert read(engine, sa.select(sa.func.count()).select_from(WebSession).where(WebSession.user_id == uid)) == 0
    assert counsellor.get("/").status_code == 302  # signed out
    assert "The account is disabled" in page(admin, f"/admin/staff/{uid}")
    assert read(engine, sa.select(AuditEntry.action).where(AuditEntry.object_id == str(uid),
                                                           AuditEntry.action == "disable")) == "disable"
    assert admin.post(f"/admin/staff/{uid}/enable").status_code == 302
    assert read(engine, sa.select(User.active).where(User.id == uid)) is True


def test_an_admin_cannot_disable_themselves_or_remove_the_last_admin(admin: WebClient, engine: sa.Engine) -> None:
    me = admin.user.id
    page(admin, f"/admin/staff/{me}")
    answer = admin.post(f"/admin/staff/{me}/disable")
    assert answer.status_code == 409 and "You cannot disable your own account." in admin.text(answer)
    answer = admin.post(f"/admin/staff/{me}", {"role": "counsellor", "team": ""})
    assert answer.status_code == 422 and "last active administrator" in admin.text(answer)
    assert read(engine, sa.select(User.role).where(User.id == me)) == "admin"
    assert read(engine, sa.select(User.active).where(User.id == me)) is True


def test_change_role_and_team_and_require_totp(admin: WebClient, engine: sa.Engine,
                                               make_web_user: Callable[..., User]) -> None:
    member = make_web_user("counsellor", "gbg")
    page(admin, f"/admin/staff/{member.id}")
    assert admin.post(f"/admin/staff/{member.id}", {"role": "coordinator", "team": "malmo"}).status_code == 302
    assert admin.post(f"/admin/staff/{member.id}", {"role": "root", "team": "x"}).status_code == 422
    assert admin.post(f"/admin/staff/{member.id}/totp", {"required": "1"}).status_code == 302
    user = user_named(engine, member.username)
    assert user is not None and (user.role, user.team, user.totp_required) == ("coordinator", "malmo", True)


def test_reset_password_typed_or_generated(admin: WebClient, engine: sa.Engine,
                                           web_client: Callable[..., WebClient]) -> None:
    counsellor = web_client("counsellor", "gbg")
    uid = counsellor.user.id
    page(admin, f"/admin/staff/{uid}")
    assert admin.post(f"/admin/staff/{uid}/password", {"password": "short"}).status_code == 422
    answer = admin.post(f"/admin/staff/{uid}/password", {"password": "a brand new password"})
    assert answer.status_code == 200 and "all their sessions ended" in admin.text(answer)
    assert "shown only this once" not in admin.text(answer)
    user = user_named(engine, counsellor.user.username)
    assert user is not None and check_password(user, "a brand new password") and not check_password(user, PASSWORD)
    assert counsellor.get("/").status_code == 302  # the session ended
    answer = admin.post(f"/admin/staff/{uid}/password", {"password": ""})
    made = admin.text(answer).split('class="secret-value">')[1].split("<")[0]
    user = user_named(engine, counsellor.user.username)
    assert user is not None and check_password(user, made)
    assert admin.get("/admin/staff").status_code == 200  # the admin's own session goes on


def test_list_and_revoke_a_token(admin: WebClient, app: Flask, engine: sa.Engine, clock: FakeClock,
                                 make_web_user: Callable[..., User]) -> None:
    member = make_web_user("adviser", "sarajevo")
    other = make_web_user("adviser", "sarajevo")
    with make_sessionmaker(engine)() as session:
        create_token(session, session.get(User, member.id), now=clock.now(), days=30, name="reports script")
        foreign = create_token(session, session.get(User, other.id), now=clock.now(), days=30)
        session.commit()
    token_id = read(engine, sa.select(ApiToken.id).where(ApiToken.user_id == member.id))
    text = page(admin, f"/admin/staff/{member.id}/tokens")
    assert "reports script" in text and "Valid" in text and "secret_hash" not in text
    foreign_id = int(foreign.split("_")[1])
    assert admin.post(f"/admin/staff/{member.id}/tokens/{foreign_id}/revoke").status_code == 404  # not theirs
    answer = admin.post(f"/admin/staff/{member.id}/tokens/{token_id}/revoke")
    assert answer.status_code == 302
    assert read(engine, sa.select(ApiToken.revoked_at).where(ApiToken.id == token_id)) is not None
    assert read(engine, sa.select(ApiToken.revoked_at).where(ApiToken.id == foreign_id)) is None
    assert "Revoked" in page(admin, f"/admin/staff/{member.id}/tokens")
    entry = read(engine, sa.select(AuditEntry).where(AuditEntry.action == "revoke"))
    assert entry.object_type == "api_token" and entry.object_id == str(token_id)


def test_the_audit_filters(admin: WebClient, app: Flask, engine: sa.Engine, clock: FakeClock,
                           make_web_user: Callable[..., User]) -> None:
    member = make_web_user("counsellor", "gbg", username="anna.lindqvist")
    config = app.extensions["ccm"].config
    with make_sessionmaker(engine)() as session:
        case = services.create_case(session, Actor(member.id, member.username, member.role, member.team),
                                    {"returnee": {"given_names": "Amra", "family_name": "Šehić",
                                                  "date_of_birth": dt.date(1990, 3, 27)},
                                     "destination_country": "BA"},
                                    stages=config.stages, prefix=config.reference_prefix, now=clock.now())
        record(session, actor=None, action="export", object_type="case", object_id=case.id, case_id=case.id,
               now=clock.now() - dt.timedelta(days=40))
        session.commit()
        reference, case_id = case.reference, case.id
    everything = page(admin, "/admin/audit")
    assert "anna.lindqvist" in everything and "ada.admin" in everything and "Amra" not in everything
    by_actor = page(admin, "/admin/audit?actor=anna.lindqvist")
    assert "anna.lindqvist" in by_actor and "<code>login</code>" not in by_actor
    by_action = page(admin, "/admin/audit?action=login")
    assert "<code>login</code>" in by_action and "<code>create</code>" not in by_action
    by_case = page(admin, f"/admin/audit?case={reference.lower()}")
    assert case_id in by_case and "<code>export</code>" in by_case and "<code>login</code>" not in by_case
    assert "Šehić" not in by_case and "Amra" not in by_case
    since = (clock.now() - dt.timedelta(days=2)).date().isoformat()
    recent = page(admin, f"/admin/audit?case={reference}&from={since}")
    assert "<code>export</code>" not in recent and "<code>create</code>" in recent
    old = page(admin, f"/admin/audit?case={reference}&to={(clock.now() - dt.timedelta(days=30)).date()}")
    assert "<code>export</code>" in old and "<code>create</code>" not in old
    bad = admin.get("/admin/audit?case=GI-1999-9999&from=yesterday&action=hack")
    assert bad.status_code == 422
    text = admin.text(bad)
    assert "No case with this reference" in text and "Enter a date like" in text and "Choose one of the actions" in text


def test_the_audit_log_pages(admin: WebClient, engine: sa.Engine, clock: FakeClock) -> None:
    with make_sessionmaker(engine)() as session:
        for n in range(60):
            record(session, actor=None, action="notify", object_type="test", object_id=str(n), case_id=None,
                   now=clock.now())
        session.commit()
    first = page(admin, "/admin/audit?action=notify")
    assert "Older entries" in first and "Newer entries" not in first and first.count("<code>notify</code>") == 50
    second = page(admin, "/admin/audit?action=notify&page=2")
    assert second.count("<code>notify</code>") == 10 and "Newer entries" in second


def test_verify_shows_ok_then_the_edited_entry(admin: WebClient, engine: sa.Engine) -> None:
    page(admin, "/admin/audit")
    answer = admin.post("/admin/audit/verify")
    assert answer.status_code == 200
    text = admin.text(answer)
    assert "Audit chain verified" in text and "The chain is intact" in text
    count = read(engine, sa.select(sa.func.count()).select_from(AuditEntry))
    assert read(engine, sa.select(AuditEntry.action).where(AuditEntry.seq == count)) == "verify"
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE audit_log SET object_id = '999' WHERE seq = 2"))
    answer = admin.post("/admin/audit/verify")
    text = admin.text(answer)
    assert answer.status_code == 200 and "Audit chain broken" in text
    assert "Entry 2 was changed after it was written" in text
    last = read(engine, sa.select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(1))
    assert last.action == "verify" and '"problems":1' in last.detail


def _erasure_requests(engine: sa.Engine, clock: FakeClock, partner: str) -> str:
    """An outgoing handover to ``partner`` with two unconfirmed erasure requests: one overdue, one recent."""
    now = clock.now()
    with make_sessionmaker(engine)() as session:
        partner_id = session.scalar(sa.select(Partner.id).where(Partner.node_id == partner))
        handover = Handover(id=str(uuid.uuid4()), direction="outgoing", status="revoked", partner_id=partner_id,
                            partner_node=partner, thread="t" * 22, message_id="m" * 22, case_id=None,
                            consent_id="consent-1", purpose="reintegration", reference="GI-2026-0042",
                            origin_case_id="origin-1", categories=[], withheld=[], child=False,
                            destination_country="BA", created_at=now - dt.timedelta(days=10))
        session.add(handover)
        session.flush()
        for hours, message in ((100, "a" * 22), (2, None)):
            session.add(ErasureRequest(id=str(uuid.uuid4()), handover_id=handover.id, consent_id="consent-1",
                                       partner_node=partner, holder=partner, cause="revocation",
                                       requested_at=now - dt.timedelta(hours=hours), message_id=message))
        session.commit()
        return handover.id


def test_erasures_with_an_overdue_one(admin: WebClient, engine: sa.Engine, clock: FakeClock,
                                      partners: list[str]) -> None:
    _erasure_requests(engine, clock, partners[0])
    text = page(admin, "/admin/erasures")
    assert text.count('class="erasure--overdue"') == 1 and "Overdue" in text and "Waiting" in text
    assert partners[0] in text and "not sent: partner suspended or revoked" in text
    flagged = read(engine, sa.select(sa.func.count()).select_from(ErasureRequest)
                   .where(ErasureRequest.flagged_at.is_not(None)))
    assert flagged == 1
    only = page(admin, "/admin/erasures?overdue=1")
    assert only.count('class="erasure--overdue"') == 1 and "Waiting" not in only


def test_run_retention_now(admin: WebClient, engine: sa.Engine) -> None:
    page(admin, "/admin/erasures")
    assert "No retention run has erased anything yet." in page(admin, "/admin/erasures")
    answer = admin.post("/admin/erasures/retention")
    assert answer.status_code == 302 and answer.headers["Location"] == "/admin/erasures"
    text = page(admin, "/admin/erasures")
    assert "Retention run: 0 received case(s) erased." in text and "ada.admin" in text
    entry = read(engine, sa.select(AuditEntry).where(AuditEntry.object_type == "retention_run"))
    assert entry.action == "delete" and entry.actor_username == "ada.admin" and '"erased":0' in entry.detail
