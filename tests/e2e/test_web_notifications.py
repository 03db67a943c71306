"""Notifications in a real browser across two real nodes: the counsellor at Göteborg hands a case to Sarajevo,
the adviser there accepts it, and the counsellor's notifications page lists "A partner accepted the handover"
with a link to the case, and the menu's badge counts it; marking it read lowers the count. The page is checked
with axe-core and photographed in the four languages at both widths (``notifications-<lang>-<width>.png``).

The e-mail side (a real SMTP server) is proven in tests/notifications/test_mail.py: the node processes here have
no ``[smtp]`` section."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.e2e.web_support import ADVISER, COUNSELLOR, Screenshots, WebNetwork, axe_check, sign_in, wait_for

pytestmark = pytest.mark.slow

SARAJEVO = "CLDD Sarajevo (ba.cldd-sarajevo)"


def badge(page: Page) -> int:
    found = page.locator("#unread-badge")
    if found.count() == 0:
        return 0
    match = re.match(r"\d+", found.inner_text().strip())
    return int(match.group(0)) if match else 0


def hand_over(page: Page, url: str) -> tuple[str, str]:
    """Register a case, record a consent naming Sarajevo and hand it over; returns (case id, reference)."""
    page.goto(f"{url}/cases/new")
    page.get_by_label("Given names", exact=True).fill("Nermin")
    page.get_by_label("Family name", exact=True).fill("Mehić")
    page.get_by_label("Date of birth").fill("1979-06-02")
    page.get_by_label("Languages").fill("bs")
    page.get_by_label("Destination country").select_option("BA")
    page.get_by_role("button", name="Register the case").click()
    expect(page.get_by_role("status").filter(has_text="registered.")).to_be_visible()
    case_id = re.search(r"/cases/([^/?#]+)$", page.url).group(1)  # type: ignore[union-attr]
    reference = page.locator(".case-head__tags .mono").inner_text().strip()
    page.goto(f"{url}/cases/{case_id}/consents/new")
    page.get_by_label("Identity (names, date of birth, nationality)").check()
    page.get_by_label(SARAJEVO).check()
    page.get_by_label("Reintegration support after return").check()
    page.get_by_label("Written, signed on paper").check()
    page.get_by_label("Valid until").fill((dt.date.today() + dt.timedelta(days=365)).isoformat())
    page.locator("main").get_by_label("Language").fill("bs")
    page.get_by_role("button", name="Record the consent").click()
    expect(page).to_have_url(f"{url}/cases/{case_id}/consents")
    page.goto(f"{url}/cases/{case_id}/handover")
    page.get_by_label(SARAJEVO).check()
    page.get_by_role("group", name="Consent").get_by_role("radio").first.check()
    page.get_by_role("button", name="Preview what will be sent").click()
    page.get_by_role("button", name="Confirm and hand over").click()
    expect(page.get_by_role("status").filter(has_text="The case summary is queued for")).to_be_visible()
    return case_id, reference


def test_the_counsellor_is_told_the_handover_was_accepted(new_context: Callable[..., BrowserContext],
                                                          web_network: WebNetwork, screenshot: Screenshots) -> None:
    gbg, sarajevo = web_network.gbg.url, web_network.sarajevo.url
    anna = new_context().new_page()
    emina = new_context().new_page()
    sign_in(anna, gbg, COUNSELLOR)
    sign_in(emina, sarajevo, ADVISER)
    anna.goto(f"{gbg}/notifications")
    before = badge(anna)
    case_id, reference = hand_over(anna, gbg)

    link = re.compile(f"Case {re.escape(reference)} from")

    def in_queue() -> bool:
        emina.goto(f"{sarajevo}/intake")
        return emina.get_by_role("link", name=link).count() > 0

    wait_for("the handover in Sarajevo's intake queue", in_queue)
    emina.get_by_role("link", name=link).click()
    emina.get_by_role("button", name="Accept and open the case").click()
    expect(emina.get_by_role("status").filter(has_text="Handover accepted")).to_be_visible()

    item = anna.locator("li.notification").filter(has=anna.get_by_role("link", name=reference))

    def told() -> bool:
        anna.goto(f"{gbg}/notifications")  # the page sweeps before it shows the list
        return item.count() > 0

    wait_for("the acceptance in the counsellor's notifications", told)
    expect(item).to_contain_text("A partner accepted the handover")
    expect(item.get_by_role("link", name=reference)).to_have_attribute("href", f"/cases/{case_id}")
    assert badge(anna) == before + 1
    anna.goto(f"{gbg}/")
    assert badge(anna) == before + 1  # the badge is on every page
    anna.goto(f"{gbg}/notifications")
    expect(anna.locator("main")).not_to_contain_text("Nermin")  # no names on the list
    axe_check(anna)
    screenshot(anna, "notifications")

    item.get_by_role("button", name=re.compile("Mark as read")).click()
    expect(anna).to_have_url(f"{gbg}/notifications")
    assert badge(anna) == before
    anna.get_by_role("link", name=reference).click()
    expect(anna).to_have_url(f"{gbg}/cases/{case_id}")
    assert not screenshot.layout_problems, "\n".join(screenshot.layout_problems)
