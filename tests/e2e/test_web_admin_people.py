"""The node admin's staff, audit log and erasures pages in a real browser (Debian's Chromium) against a node process
of this test's own (its audit chain is broken on purpose, so no other test shares it): the admin enrols TOTP, adds
a member who must set up TOTP (and who is then sent to the enrolment), verifies the audit chain, edits an entry in
the node's SQLite database and sees the chain reported broken; axe-core and screenshots in four languages."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pyotp
import pytest
from playwright.sync_api import BrowserContext, Page, expect

from node.config import DATABASE_FILE
from tests.e2e.web_support import PASSWORD, Screenshots, add_staff, axe_check, no_horizontal_scroll, sign_in
from tests.harness import Network, NodeProcess

pytestmark = pytest.mark.slow

ADMIN = "greta.admin"


@pytest.fixture(scope="module")
def admin_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    network = Network(tmp_path_factory.mktemp("admin-people"), lambda: None)
    node = network.add("se.gi-admin-test", "GI Admin Test")
    try:
        add_staff(node, ADMIN, "admin", None, "Greta Admin")
        add_staff(node, "olga.counsellor", "counsellor", "gbg", "Olga Counsellor")
        node.start()
        yield node
    finally:
        network.stop_all()


def enrol(page: Page) -> None:
    """On the enrolment page: read the key, send a code from it."""
    expect(page.get_by_role("heading", name="Set up two-step sign-in", level=1)).to_be_visible()
    secret = "".join(page.locator(".secret").inner_text().split())
    page.get_by_label("Code", exact=True).fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Turn on two-step sign-in").click()
    expect(page.get_by_text("Two-step sign-in is on.")).to_be_visible()


def photograph(page: Page, screenshot: Screenshots, name: str) -> None:
    axe_check(page)
    screenshot(page, name)


def test_staff_and_the_audit_chain_in_the_browser(page: Page, new_context: Callable[..., BrowserContext],
                                                  admin_node: NodeProcess, screenshot: Screenshots) -> None:
    url = admin_node.url
    sign_in(page, url, ADMIN)
    expect(page).to_have_url(re.compile(r"/account/two-factor"))  # an admin enrols at first sign-in
    enrol(page)

    page.goto(f"{url}/admin/staff")
    expect(page.get_by_role("heading", name="Staff", level=1)).to_be_visible()
    expect(page.get_by_role("link", name="olga.counsellor")).to_be_visible()
    photograph(page, screenshot, "admin-staff")

    # a duplicate username: the form again with the field's message (the screenshots resend it)
    page.get_by_role("link", name="Add a staff member").click()
    page.get_by_label("Username").fill("olga.counsellor")
    page.get_by_label("Role").select_option("adviser")
    page.get_by_role("button", name="Add the staff member").click()
    expect(page.get_by_role("alert")).to_contain_text("This username is already taken.")
    expect(page.locator("#f-username-error")).to_be_visible()
    photograph(page, screenshot, "admin-staff-new")

    page.goto(f"{url}/admin/staff/new")
    page.get_by_label("Username").fill("mira.totp")
    page.get_by_label("Display name").fill("Mira Totp")
    page.get_by_label("Role").select_option("counsellor")
    page.get_by_label("Team").fill("gbg")
    page.get_by_label("Initial password").fill(PASSWORD)
    expect(page.get_by_label("Must set up two-step sign-in at first sign-in")).to_be_checked()
    page.get_by_role("button", name="Add the staff member").click()
    expect(page.get_by_role("heading", name="Staff member added", level=1)).to_be_visible()
    expect(page.locator(".secret-value")).to_have_count(0)  # typed, so nothing is shown

    member = new_context().new_page()
    sign_in(member, url, "mira.totp")
    expect(member).to_have_url(re.compile(r"/account/two-factor"))
    expect(member.get_by_text("Your account must use two-step sign-in. Set it up to continue.")).to_be_visible()
    member.context.close()

    page.goto(f"{url}/admin/audit")
    expect(page.locator("table").get_by_text("mira.totp").first).to_be_visible()  # her sign-in
    photograph(page, screenshot, "admin-audit")
    page.get_by_role("button", name="Verify the chain").click()
    expect(page.get_by_role("heading", name="Audit chain verified", level=1)).to_be_visible()
    photograph(page, screenshot, "admin-audit-verify")

    database = Path(admin_node.data_dir) / DATABASE_FILE
    with sqlite3.connect(database) as conn:
        conn.execute("UPDATE audit_log SET object_id = '999' WHERE seq = 2")
    page.goto(f"{url}/admin/audit")
    page.get_by_role("button", name="Verify the chain").click()
    expect(page.get_by_role("heading", name="Audit chain broken", level=1)).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text("Entry 2 was changed after it was written")
    axe_check(page)

    page.goto(f"{url}/admin/erasures")
    expect(page.get_by_role("heading", name="Erasures and retention", level=1)).to_be_visible()
    page.get_by_role("button", name="Run retention now").click()
    expect(page.get_by_role("status").first).to_contain_text("Retention run: 0 received case(s) erased.")
    photograph(page, screenshot, "admin-erasures")

    narrow = new_context(viewport={"width": 360, "height": 800}).new_page()
    narrow.context.add_cookies(page.context.cookies())
    for path in ("/admin/staff", "/admin/staff/new", "/admin/audit", "/admin/erasures"):
        narrow.goto(f"{url}{path}")
        no_horizontal_scroll(narrow)
    assert not screenshot.layout_problems, "\n".join(screenshot.layout_problems)
