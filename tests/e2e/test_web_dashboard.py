"""The dashboard in a real browser on a real node (the shared ``web_network``'s Göteborg): the dashboard shows the
figures the database holds (checked against a direct count), for the coordinator (the whole node) and for a
counsellor (their own caseload); axe-core, no sideways scroll at 360 px, and screenshots in the four languages
(``dashboard-<lang>-<width>.png``, ``dashboard-caseload-<lang>-<width>.png``).

A few cases are made through the API first (one with its first stage done, one with a stage due in two days), so
that the figures are not all zero whatever other browser tests ran before."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from node.config import DATABASE_FILE
from tests.e2e.web_support import COUNSELLOR, Screenshots, WebNetwork, add_staff, axe_check, sign_in
from tests.harness import NodeProcess

pytestmark = pytest.mark.slow

COORDINATOR = "cora.coordinator"


@pytest.fixture(scope="module")
def gbg(web_network: WebNetwork) -> NodeProcess:
    node = web_network.gbg
    add_staff(node, COORDINATOR, "coordinator", None, "Cora Coordinator")
    token = node.user("dash.maker", "counsellor", "gbg")
    due = (dt.date.today() + dt.timedelta(days=2)).isoformat()
    for i, given in enumerate(("Dina", "Faruk", "Hana")):
        answer = node.api("POST", "/cases", token, json={
            "returnee": {"given_names": given, "family_name": "Testcase", "date_of_birth": f"1988-05-0{i + 1}"},
            "destination_country": "BA"})
        assert answer.status_code == 201, answer.text
        case_id = answer.json()["id"]
        change = {"status": "done"} if i == 1 else {"due_on": due} if i == 2 else None
        if change:
            answer = node.api("PATCH", f"/cases/{case_id}/stages/documents", token, json=change,
                              headers={"If-Match": '"1"'})
            assert answer.status_code == 200, answer.text
    return node


@pytest.fixture
def database(gbg: NodeProcess) -> Iterator[sqlite3.Connection]:
    """The node's SQLite file, read-only, beside the running node."""
    conn = sqlite3.connect(f"file:{gbg.data_dir / DATABASE_FILE}?mode=ro", uri=True)
    yield conn
    conn.close()


def table_figures(page: Page, table: str) -> dict[str, int]:
    """``{row key: number}`` as the page's table shows the numbers (English: "1,234")."""
    rows = page.locator(f"table#{table} tbody tr")
    figures = {}
    for i in range(rows.count()):
        row = rows.nth(i)
        figures[str(row.get_attribute("data-key"))] = int(row.locator("td").first.inner_text().replace(",", ""))
    return figures


def stage_counts(db: sqlite3.Connection, where: str = "", *params: object) -> dict[str, int]:
    rows = db.execute("SELECT coalesce(current_stage, 'none'), count(*) FROM cases WHERE status <> 'closed' "
                      f"{where} GROUP BY current_stage", params).fetchall()
    return {key: n for key, n in rows}


def test_the_coordinator_dashboard_shows_the_figures_the_database_holds(
        page: Page, gbg: NodeProcess, database: sqlite3.Connection, screenshot: Screenshots) -> None:
    sign_in(page, gbg.url, COORDINATOR)
    page.get_by_role("navigation", name="Main menu").get_by_role("link", name="Dashboard").click()
    expect(page.get_by_role("heading", name="Dashboard", level=1)).to_be_visible()
    expect(page.get_by_role("img", name="Open cases per stage")).to_be_visible()

    shown = {key: n for key, n in table_figures(page, "t-stages").items() if n}
    assert shown == stage_counts(database) and sum(shown.values()) >= 3
    assert shown.get("housing", 0) >= 1  # the case whose first stage is done
    (total,) = database.execute("SELECT count(*) FROM cases").fetchone()
    expect(page.locator(".lead")).to_contain_text(f"{total:,} cases in all")
    this_month = dt.datetime.now(dt.UTC).strftime("%Y-%m")
    (sent,) = database.execute("SELECT count(*) FROM handovers WHERE direction = 'outgoing' AND "
                               "strftime('%Y-%m', created_at) = ?", (this_month,)).fetchone()
    if sent:
        cell = page.locator(f'table#t-handovers-outgoing tr[data-key="{this_month}"] td[data-key="sent"]')
        expect(cell).to_have_text(f"{sent:,}")
    else:
        expect(page.get_by_text("No handovers yet.")).to_be_visible()
    (partners,) = database.execute("SELECT count(*) FROM partners").fetchone()
    expect(page.locator("table#t-delivery tbody tr")).to_have_count(partners)
    assert "Dina" not in page.content() and "Testcase" not in page.content()  # figures only, no names

    axe_check(page)
    screenshot(page, "dashboard")
    assert not screenshot.layout_problems, "\n".join(screenshot.layout_problems)


def test_a_counsellor_sees_their_own_caseload_as_the_database_holds_it(
        page: Page, gbg: NodeProcess, database: sqlite3.Connection, screenshot: Screenshots) -> None:
    sign_in(page, gbg.url, COUNSELLOR)
    page.goto(f"{gbg.url}/dashboard")
    expect(page.get_by_role("heading", name="My caseload", level=1)).to_be_visible()
    (user_id,) = database.execute("SELECT id FROM users WHERE username = ?", (COUNSELLOR,)).fetchone()
    mine = stage_counts(database, "AND (assigned_user_id = ? OR team = 'gbg')", user_id)
    shown = {key: n for key, n in table_figures(page, "t-my-stages").items() if n}
    assert shown == mine and sum(shown.values()) >= 3
    everyone = stage_counts(database)
    assert sum(everyone.values()) >= sum(mine.values())  # never more than the node holds
    (due,) = database.execute(
        "SELECT count(*) FROM case_stages s JOIN cases c ON c.id = s.case_id WHERE c.status <> 'closed' AND "
        "s.status IN ('not_started', 'in_progress') AND s.due_on BETWEEN date('now') AND date('now', '+7 days') "
        "AND (c.assigned_user_id = ? OR c.team = 'gbg')", (user_id,)).fetchone()
    shown_due = table_figures(page, "t-due")
    assert sum(n for key, n in shown_due.items() if key != "overdue") == due >= 1

    axe_check(page)
    screenshot(page, "dashboard-caseload")
    assert not screenshot.layout_problems, "\n".join(screenshot.layout_problems)
