"""Signing in to the web interface: throttling, sessions, idle timeout, the second factor, CSRF, headers,
languages and error pages (Flask test client; the browser tests are in tests/e2e/test_web_*.py)."""

from __future__ import annotations

import errno
import html
import os
from collections.abc import Callable

import pyotp
import pytest
import sqlalchemy as sa
from flask import Flask

from node.accounts import User
from node.audit import AuditEntry
from node.clock import FakeClock
from node.db import make_sessionmaker
from node.errors import handle_unexpected
from node.web.login import ACCOUNT_LIMIT, WINDOW
from node.web.models import LoginFailure, WebSession

from .conftest import PASSWORD, WebClient


def read(engine: sa.Engine, statement: sa.Select) -> object:
    """One value, read in a session of its own (a session held open would hold SQLite's write lock)."""
    with make_sessionmaker(engine)() as session:
        return session.scalar(statement)


def sign_in(browser: WebClient, username: str, password: str = PASSWORD) -> int:
    browser.get("/login")
    return browser.post("/login", {"username": username, "password": password}).status_code


def test_pages_need_a_signed_in_user(anonymous: WebClient) -> None:
    response = anonymous.get("/cases?q=x")
    assert response.status_code == 302
    assert response.headers["Location"] == "/login?next=/cases?q%3Dx"
    page = anonymous.get("/login")
    assert page.status_code == 200
    assert 'name="password"' in anonymous.text(page)


def test_sign_in_and_out(make_web_user: Callable[..., User], anonymous: WebClient, engine: sa.Engine) -> None:
    user = make_web_user("counsellor", "team-a", display_name="Anna Lindqvist")
    assert sign_in(anonymous, user.username) == 302
    home = anonymous.get("/")
    assert home.status_code == 200
    assert "Anna Lindqvist" in anonymous.text(home)
    assert read(engine, sa.select(sa.func.count()).select_from(WebSession)) == 1
    out = anonymous.post("/logout")
    assert out.status_code == 302 and out.headers["Location"] == "/login"
    assert read(engine, sa.select(sa.func.count()).select_from(WebSession)) == 0
    assert anonymous.get("/").status_code == 302  # the cookie is worthless now


def test_a_copied_cookie_is_worthless_after_sign_out(app: Flask, make_web_user: Callable[..., User]) -> None:
    user = make_web_user("counsellor", "team-a")
    browser = WebClient(app.test_client(), user)
    assert sign_in(browser, user.username) == 302
    cookie = browser.client.get_cookie("ccm_web")
    assert cookie is not None
    thief = app.test_client()
    thief.set_cookie("ccm_web", cookie.value)
    assert thief.get("/").status_code == 200
    browser.get("/")
    browser.post("/logout")
    assert thief.get("/").status_code == 302


def test_wrong_password_and_unknown_user_get_the_same_answer(make_web_user: Callable[..., User],
                                                             anonymous: WebClient) -> None:
    user = make_web_user("counsellor")
    anonymous.get("/login")
    wrong = anonymous.post("/login", {"username": user.username, "password": "not the password"})
    unknown = anonymous.post("/login", {"username": "nobody-here", "password": "not the password"})
    assert wrong.status_code == unknown.status_code == 401
    assert "The username or password is not right." in anonymous.text(wrong)
    assert "The username or password is not right." in anonymous.text(unknown)
    assert f'value="{user.username}"' in anonymous.text(wrong)  # the username typed is kept


def test_login_is_throttled_per_account(make_web_user: Callable[..., User], anonymous: WebClient,
                                        clock: FakeClock, engine: sa.Engine) -> None:
    user = make_web_user("counsellor")
    anonymous.get("/login")
    for _ in range(ACCOUNT_LIMIT):
        assert anonymous.post("/login", {"username": user.username, "password": "wrong wrong wrong"}).status_code == 401
    refused = anonymous.post("/login", {"username": user.username, "password": PASSWORD})
    assert refused.status_code == 429
    assert "Too many failed sign-ins" in anonymous.text(refused)
    assert refused.headers["Retry-After"]
    clock.advance(seconds=WINDOW.total_seconds() + 1)
    assert anonymous.post("/login", {"username": user.username, "password": PASSWORD}).status_code == 302
    assert read(engine, sa.select(sa.func.count()).select_from(LoginFailure)
                             .where(LoginFailure.username == user.username)) == 0
    with make_sessionmaker(engine)() as session:
        actions = list(session.scalars(sa.select(AuditEntry.action).order_by(AuditEntry.seq)))
    assert actions.count("login_failed") == ACCOUNT_LIMIT and actions[-1] == "login"


def test_login_is_throttled_per_address(make_web_user: Callable[..., User], anonymous: WebClient) -> None:
    user = make_web_user("counsellor")
    anonymous.get("/login")
    for number in range(20):
        anonymous.post("/login", {"username": f"guess{number}", "password": "wrong wrong wrong"})
    refused = anonymous.post("/login", {"username": user.username, "password": PASSWORD})
    assert refused.status_code == 429


def test_an_idle_session_ends(web_client: Callable[..., WebClient], clock: FakeClock) -> None:
    browser = web_client("counsellor", "team-a")
    clock.advance(minutes=29)
    assert browser.get("/").status_code == 200  # used: the idle time starts again
    clock.advance(minutes=29)
    assert browser.get("/").status_code == 200
    clock.advance(minutes=31)
    response = browser.get("/account")
    assert response.status_code == 302
    assert "expired=1" in response.headers["Location"]
    assert "Your session ended" in browser.text(browser.get(response.headers["Location"]))


def test_a_form_without_its_csrf_token_is_refused(web_client: Callable[..., WebClient]) -> None:
    browser = web_client("counsellor", "team-a")
    response = browser.post("/account/password", {"current_password": PASSWORD, "new_password": "x" * 20,
                                                   "confirm_password": "x" * 20}, csrf=False)
    assert response.status_code == 400
    assert "The request could not be understood" in browser.text(response)
    assert "<html" in browser.text(response)  # a page, not a problem document


def test_change_password(web_client: Callable[..., WebClient], app: Flask) -> None:
    browser = web_client("counsellor", "team-a")
    short = browser.post("/account/password", {"current_password": PASSWORD, "new_password": "short",
                                               "confirm_password": "short"})
    assert short.status_code == 422
    assert "Use at least 12 characters." in browser.text(short)
    done = browser.post("/account/password", {"current_password": PASSWORD, "new_password": "a brand new password",
                                              "confirm_password": "a brand new password"})
    assert done.status_code == 302
    again = WebClient(app.test_client())
    assert sign_in(again, browser.user.username, PASSWORD) == 401
    assert sign_in(again, browser.user.username, "a brand new password") == 302


def test_totp_enrolment_and_sign_in(web_client: Callable[..., WebClient], app: Flask, clock: FakeClock,
                                    engine: sa.Engine) -> None:
    browser = web_client("counsellor", "team-a")
    page = browser.get("/account/two-factor")
    text = browser.text(page)
    assert "<svg" in text  # the QR code, inline
    secret = text.split('<p class="secret" dir="ltr"><code>')[1].split("</code>")[0].replace(" ", "")
    wrong = browser.post("/account/two-factor", {"code": "000000"})
    assert wrong.status_code == 422
    code = pyotp.TOTP(secret).at(clock.now())
    assert browser.post("/account/two-factor", {"code": code}).status_code == 302
    user = read(engine, sa.select(User).where(User.username == browser.user.username))
    assert user.totp_secret == secret

    again = WebClient(app.test_client())
    assert sign_in(again, user.username) == 302
    assert again.get("/").headers["Location"] == "/login/code"  # nothing else until the code is given
    assert again.get("/account").status_code == 302
    again.get("/login/code")  # the page a browser is sent to (its form carries the new session's CSRF token)
    replayed = again.post("/login/code", {"code": code})  # the enrolment's code was used already
    assert replayed.status_code == 401
    clock.advance(seconds=30)
    assert again.post("/login/code", {"code": pyotp.TOTP(secret).at(clock.now())}).status_code == 302
    assert again.get("/").status_code == 200


def test_an_admin_must_enrol_before_anything_else(app: Flask, make_web_user: Callable[..., User]) -> None:
    admin = make_web_user("admin")
    browser = WebClient(app.test_client())
    assert sign_in(browser, admin.username) == 302
    assert browser.get("/").headers["Location"] == "/account/two-factor"
    assert browser.get("/account").headers["Location"] == "/account/two-factor"
    assert browser.get("/account/two-factor").status_code == 200


def test_security_headers(web_client: Callable[..., WebClient]) -> None:
    browser = web_client("counsellor")
    response = browser.get("/")
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy and "unsafe-inline" not in policy
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["Cache-Control"] == "no-store"
    cookie = browser.client.get_cookie("ccm_web")
    assert cookie is not None and cookie.http_only and cookie.same_site == "Lax"


def test_language_from_the_browser_then_the_users_choice(web_client: Callable[..., WebClient],
                                                         engine: sa.Engine) -> None:
    browser = web_client("counsellor")
    arabic = browser.get("/account", headers={"Accept-Language": "ar,en;q=0.5"})
    assert '<html lang="ar" dir="rtl">' in browser.text(arabic)
    chosen = browser.post("/language", {"language": "sv", "next": "/account"})
    assert chosen.status_code == 302 and chosen.headers["Location"] == "/account"
    assert '<html lang="sv" dir="ltr">' in browser.text(browser.get("/account", headers={"Accept-Language": "ar"}))
    assert read(engine, sa.select(User.language).where(User.username == browser.user.username)) == "sv"
    elsewhere = browser.post("/language", {"language": "sv", "next": "https://evil.example/"})
    assert elsewhere.headers["Location"] == "/"  # never sent to another site


def test_error_pages_are_pages_in_the_users_language(web_client: Callable[..., WebClient]) -> None:
    browser = web_client("counsellor")
    missing = browser.get("/no-such-page")
    assert missing.status_code == 404
    assert missing.mimetype == "text/html"
    assert "Page not found" in browser.text(missing)
    api = browser.client.get("/api/v1/no-such")
    assert api.mimetype == "application/problem+json"  # the API keeps its problem documents


@pytest.mark.parametrize(("language", "title"), [("en", "The node's disk is full"), ("sv", "Nodens disk är full"),
                                                 ("ar", "قرص العقدة ممتلئ")])
def test_a_full_disk_has_its_own_page(app: Flask, language: str, title: str) -> None:
    full = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    with app.test_request_context("/cases/new", method="POST", headers={"Accept-Language": language}):
        page = handle_unexpected(full)
    assert page.status_code == 503 and page.mimetype == "text/html"
    assert page.headers["Retry-After"] == "60"
    text = html.unescape(page.get_data(as_text=True))
    assert title in text and "Wait a few seconds" not in text
