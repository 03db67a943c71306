"""The node administrator's exchange pages in a real browser against a pair of real node processes that are not
partners yet: the admin enrols TOTP, reads the node page, adds the partner from its card URL after comparing the
fingerprints, suspends and resumes it, and retries a delivery that failed while the partner was down. Axe and
screenshots (4 languages, 2 widths) of the node, partner list, compare step, partner and delivery pages."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyotp
import pytest
import sqlalchemy as sa
from playwright.sync_api import Page, expect

from node.config import default_database_url
from node.db import normalise_url
from tests.e2e.web_support import AGREEMENT, Screenshots, add_staff, axe_check, sign_in, wait_for
from tests.harness import Network, NodeProcess

pytestmark = pytest.mark.slow

ADMIN = "ada.admin"
#: the worker's backoff is long, so that only the administrator's "Retry now" sends the failed message again
SLOW_RETRY = ("--min-backoff", "300", "--max-backoff", "600", "--poll-seconds", "0.1")


@dataclass
class Pair:
    gbg: NodeProcess
    sarajevo: NodeProcess


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    """Göteborg (with an admin and a delivery worker) and Sarajevo, which trusts Göteborg already (by its
    command line); Göteborg's admin adds Sarajevo in the browser."""
    network = Network(tmp_path_factory.mktemp("admin-exchange"), lambda: None)
    gbg = network.add("se.gi-goteborg", "Göteborgs-Initiativet")
    sarajevo = network.add("ba.cldd-sarajevo", "CLDD Sarajevo")
    try:
        add_staff(gbg, ADMIN, "admin", None, "Ada Admin")
        gbg.start()
        sarajevo.start()
        gbg.spawn("deliver", *SLOW_RETRY)
        sarajevo.trust(gbg, AGREEMENT)
        yield Pair(gbg, sarajevo)
    finally:
        network.stop_all()


def _enrol_and_sign_in(page: Page, url: str) -> None:
    sign_in(page, url, ADMIN)
    expect(page).to_have_url(re.compile(r"/account/two-factor"))  # an admin sets up TOTP first
    totp = pyotp.TOTP("".join(page.locator(".secret").inner_text().split()))
    page.get_by_label("Code", exact=True).fill(totp.now())
    page.get_by_role("button", name="Turn on two-step sign-in").click()
    expect(page.get_by_role("navigation", name="Main menu").get_by_role("link", name="Partners")).to_be_visible()


def _groups(fingerprint: str) -> list[str]:
    return fingerprint.split()


def test_admin_adds_a_partner_and_retries_a_failed_delivery(page: Page, pair: Pair,
                                                            screenshot: Screenshots) -> None:
    url, sarajevo = pair.gbg.url, pair.sarajevo
    _enrol_and_sign_in(page, url)

    # the node page: the fingerprint in groups, the card as a download
    page.get_by_role("navigation", name="Main menu").get_by_role("link", name="Node").click()
    expect(page.get_by_role("heading", name="This node", level=1)).to_be_visible()
    expect(page.locator(".fingerprint__group")).to_have_text(_groups(pair.gbg.fingerprint()))
    with page.expect_download() as download:
        page.get_by_role("link", name="Download this node's card").click()
    card = json.loads(Path(download.value.path()).read_text(encoding="utf-8"))
    assert card["node_id"] == "se.gi-goteborg" and download.value.suggested_filename == "se.gi-goteborg.card.json"
    axe_check(page)
    screenshot(page, "admin-node")

    # add Sarajevo from its card URL: the compare step, then trust with the fingerprint read out
    page.goto(f"{url}/admin/partners")
    page.get_by_role("link", name="Add a partner").click()
    page.get_by_label("Card address").fill(sarajevo.url)
    page.get_by_role("button", name="Read the card", exact=True).click()
    expect(page.get_by_role("heading", name="Compare the fingerprint", level=1)).to_be_visible()
    spoken = sarajevo.fingerprint()
    expect(page.locator(".fingerprint__group")).to_have_text(_groups(spoken))
    axe_check(page)
    screenshot(page, "admin-partner-compare")
    page.get_by_label("Fingerprint read out by the partner").fill(spoken)
    page.get_by_label("Data-sharing agreement id").fill(AGREEMENT)
    page.get_by_role("button", name="The fingerprints match: trust this partner").click()
    expect(page.get_by_role("heading", name="CLDD Sarajevo", level=1)).to_be_visible()
    expect(page.get_by_text("is now a trusted partner")).to_be_visible()

    # suspend and resume
    page.get_by_role("button", name="Suspend").click()
    expect(page.locator(".page-head .badge")).to_have_text("Suspended")
    page.get_by_role("button", name="Resume").click()
    expect(page.locator(".page-head .badge")).to_have_text("Active")

    page.goto(f"{url}/admin/partners")
    expect(page.get_by_role("link", name="CLDD Sarajevo")).to_be_visible()
    axe_check(page)
    screenshot(page, "admin-partners")

    # the partner goes down; a key announcement is queued for it and fails
    sarajevo.stop()
    pair.gbg.cli("keys", "rotate")
    page.goto(f"{url}/admin/deliveries")

    def failing_shown() -> bool:
        page.reload()
        return page.locator("#section-failing").count() > 0 and "could not be reached" in page.content()

    wait_for("the failing delivery on the queue page", failing_shown, seconds=30, every=0.5)
    expect(page.locator("main")).to_contain_text("Key announcement")
    axe_check(page)
    screenshot(page, "admin-deliveries")
    page.goto(f"{url}/admin/partners/ba.cldd-sarajevo")
    expect(page.locator("main")).to_contain_text("could not be reached")
    axe_check(page)
    screenshot(page, "admin-partner")

    # it comes back; "Retry now" sends the message at once (the worker alone would wait minutes)
    sarajevo.start()
    page.goto(f"{url}/admin/deliveries")
    page.get_by_role("button", name=re.compile(r"^Retry message ")).first.click()
    expect(page.get_by_text("will be sent again now")).to_be_visible()

    def delivered() -> bool:
        page.reload()
        return page.locator(".figures .figure__value").all_inner_texts() == ["0", "0", "0", "0"]

    wait_for("the retried delivery", delivered, seconds=30, every=0.5)
    page.goto(f"{url}/admin/partners/ba.cldd-sarajevo")
    expect(page.locator("main")).not_to_contain_text("could not be reached")

    # after a restore from backup (what 'ccm-node backup restore' marks), while the partner is down: the list
    # and the page say it; once the partner is back, the delivery worker resyncs with it by itself
    sarajevo.stop()
    engine = sa.create_engine(normalise_url(pair.gbg.database_url or default_database_url(pair.gbg.data_dir)))
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE partners SET resync_since = :at"),
                         {"at": datetime.now(UTC) - timedelta(hours=2)})
    finally:
        engine.dispose()
    page.goto(f"{url}/admin/partners")
    expect(page.locator("main")).to_contain_text("Resync pending")
    axe_check(page)
    screenshot(page, "admin-partners-resync")
    page.goto(f"{url}/admin/partners/ba.cldd-sarajevo")
    expect(page.locator("main .notice")).to_contain_text("restored from a backup")
    axe_check(page)
    screenshot(page, "admin-partner-resync")
    sarajevo.start()

    def in_step() -> bool:
        page.reload()
        return "restored from a backup" not in page.locator("main").inner_text()

    wait_for("the resync with Sarajevo", in_step, seconds=60, every=0.5)
    assert screenshot.layout_problems == []
