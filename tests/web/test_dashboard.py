"""The dashboard page (``/dashboard``) per role, on the known rows of tests/exchange/dashboard_rows.py: the
coordinator and the administrator see the node's figures (charts and their tables, no names), a counsellor
sees only their own caseload, an adviser theirs; an empty node says so in words. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pyotp
import pytest
import sqlalchemy as sa
from flask import Flask

from node.accounts import User
from node.clock import FakeClock
from node.web import charts
from tests.exchange.dashboard_rows import seed

from .conftest import PASSWORD, WebClient

SECRET = pyotp.random_base32()


@pytest.fixture
def rows(app: Flask, engine: sa.Engine, clock: FakeClock, partners: list[str]) -> dict[str, Any]:
    return seed(engine, clock.now())


@pytest.fixture
def admin(app: Flask, make_web_user: Callable[..., User], clock: FakeClock) -> WebClient:
    """An administrator signed in with password and TOTP code (admins must have a second factor)."""
    user = make_web_user("admin", totp_secret=SECRET)
    browser = WebClient(app.test_client(), user)
    browser.get("/login")
    assert browser.post("/login", {"username": user.username, "password": PASSWORD}).status_code == 302
    browser.get("/login/code")
    assert browser.post("/login/code", {"code": pyotp.TOTP(SECRET).at(clock.now())}).status_code == 302
    return browser


def page(browser: WebClient, url: str = "/dashboard", status: int = 200) -> str:
    answer = browser.get(url)
    assert answer.status_code == status, answer.get_data(as_text=True)[:1500]
    return answer.get_data(as_text=True)


def cell(html: str, table: str, key: str, column: str | None = None) -> int:
    """The ``data-value`` of row ``key`` (and cell ``column``) in table ``table``."""
    body = re.search(rf'<table class="figures" id="{table}">(.*?)</table>', html, re.S)
    assert body, f"no table {table}"
    row = re.search(rf'<tr data-key="{re.escape(key)}">(.*?)</tr>', body.group(1), re.S)
    assert row, f"no row {key} in {table}"
    pattern = rf'data-key="{column}" data-value="(\d+)"' if column else r'data-value="(\d+)"'
    found = re.search(pattern, row.group(1))
    assert found, (table, key, column)
    return int(found.group(1))


def test_the_coordinator_sees_the_node_figures(web_client: Callable[..., WebClient], rows: dict[str, Any],
                                               engine: sa.Engine) -> None:
    html = page(web_client("coordinator"))
    assert cell(html, "t-stages", "documents") == 2 and cell(html, "t-stages", "housing") == 1
    assert cell(html, "t-stages", "none") == 1 and cell(html, "t-stages", "employment") == 0
    assert "Personal documents in the country of origin" in html  # the configured stage title
    assert cell(html, "t-handovers-outgoing", "2026-11", "sent") == 2
    assert cell(html, "t-handovers-outgoing", "2026-11", "declined") == 1
    assert cell(html, "t-handovers-outgoing", "2025-12", "accepted") == 1
    assert cell(html, "t-handovers-incoming", "2026-11", "sent") == 1
    assert cell(html, "t-acceptance-outgoing", "3_7_days") == 1 and "Median: 5 days" in html
    assert cell(html, "t-erasures", "overdue") == 1 and cell(html, "t-erasures", "confirmed") == 2
    assert cell(html, "t-delivery", "ba.cldd-sarajevo", "queued") == 2
    assert cell(html, "t-delivery", "ba.cldd-sarajevo", "failing") == 1
    assert cell(html, "t-delivery", "se.cldd-stockholm", "stuck") == 1
    # aggregate only: no name, no reference
    assert "Given1" not in html and "Family1" not in html and "GI-2026-0001" not in html and "REF-1" not in html
    # every chart is an image with a title, and no style attribute anywhere
    assert html.count('role="img"') == html.count("<title id=") >= 5
    assert "style=" not in html and "<style" not in html
    assert "charts.css" in html


def test_the_admin_sees_the_node_figures_too(admin: WebClient, rows: dict[str, Any]) -> None:
    html = page(admin)
    assert cell(html, "t-stages", "documents") == 2 and 'id="t-delivery"' in html
    assert 'aria-current="page"' in html and ">Dashboard<" in html  # the menu item is the current one


def test_a_counsellor_sees_only_their_own_caseload(web_client: Callable[..., WebClient],
                                                   rows: dict[str, Any]) -> None:
    html = page(web_client("counsellor", "gbg"))
    assert "My caseload" in html
    assert cell(html, "t-my-stages", "documents") == 2 and cell(html, "t-my-stages", "none") == 1
    assert cell(html, "t-my-stages", "housing") == 0  # malmo's case is not counted
    today = rows["today"]
    assert cell(html, "t-due", "overdue") == 1 and cell(html, "t-due", today.isoformat()) == 1
    # not the node's figures
    assert 't-stages"' not in html and "t-delivery" not in html and "t-erasures" not in html
    other = page(web_client("counsellor", "malmo"))
    assert cell(other, "t-my-stages", "housing") == 1 and cell(other, "t-my-stages", "documents") == 0


def test_an_adviser_sees_their_caseload(web_client: Callable[..., WebClient], rows: dict[str, Any]) -> None:
    html = page(web_client("adviser", "sarajevo"))
    assert "No open case is assigned to you or your team." in html
    assert "No stage is due in the next seven days." in html and "<svg" not in html.split("<main", 1)[1]


def test_an_empty_node_says_so_in_words(web_client: Callable[..., WebClient], app: Flask) -> None:
    html = page(web_client("coordinator"))
    assert "No open cases yet." in html and "No handovers yet." in html and "No partners yet." in html
    assert "No erasure has been asked for yet." in html
    assert 'role="img"' not in html  # no empty frames


def test_the_month_follows_the_app_clock(web_client: Callable[..., WebClient], rows: dict[str, Any],
                                         clock: FakeClock) -> None:
    clock.advance(days=10)  # 3 December 2026 (before signing in: the session would have expired)
    html = page(web_client("coordinator"))
    assert cell(html, "t-handovers-outgoing", "2026-12", "sent") == 0
    assert cell(html, "t-handovers-outgoing", "2026-11", "sent") == 2 and 'data-key="2025-12"' not in html


def test_arabic_mirrors_the_bars_and_keeps_the_text(web_client: Callable[..., WebClient],
                                                    rows: dict[str, Any]) -> None:
    browser = web_client("coordinator", language="ar")
    html = page(browser)
    assert 'dir="rtl"' in html and 'direction="rtl"' in html
    # the longest bar ends at the right edge (x + width == the width)
    bar = re.search(r'<g class="chart__row" data-key="documents">.*?<rect class="chart__bar [^"]*" x="([\d.]+)" '
                    r'y="[\d.]+" width="([\d.]+)"', html, re.S)
    assert bar and float(bar.group(1)) + float(bar.group(2)) == pytest.approx(charts.WIDTH)


def test_who_may_not_see_it(anonymous: WebClient, rows: dict[str, Any]) -> None:
    answer = anonymous.get("/dashboard")
    assert answer.status_code == 302 and "/login" in answer.headers["Location"]
