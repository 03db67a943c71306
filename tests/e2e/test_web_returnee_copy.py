"""The returnee's copy in a real browser on a real node: the counsellor registers an Arabic-speaking returnee with
names in both scripts, makes a plan and records consent, opens the returnee-copy form (axe-core, screenshots in
four languages) and downloads the PDF in Arabic, Bosnian, Swedish and English. Each PDF's first page is drawn
with ``pdftoppm`` and saved beside the screenshots as ``returnee-copy-<lang>.png``: look at them to see the
Arabic joined and right to left."""

from __future__ import annotations

import datetime as dt
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.e2e.web_support import COUNSELLOR, Screenshots, WebNetwork, axe_check, sign_in

pytestmark = pytest.mark.slow

SARAJEVO = "CLDD Sarajevo (ba.cldd-sarajevo)"


def _register(page: Page, url: str) -> str:
    page.goto(f"{url}/cases/new")
    page.get_by_label("Given names", exact=True).fill("Mohammed")
    page.get_by_label("Family name", exact=True).fill("Al-Hassan")
    page.get_by_label("Given names in the person's own script").fill("محمد")
    page.get_by_label("Family name in the person's own script").fill("الحسن")
    page.get_by_label("Date of birth").fill("1988-02-14")
    page.get_by_label("Languages").fill("ar, sv")
    page.get_by_label("Destination country").select_option("BA")
    page.get_by_label("Town or region").fill("Sarajevo")
    page.get_by_role("button", name="Register the case").click()
    expect(page.get_by_role("status").filter(has_text="registered.")).to_be_visible()
    match = re.search(r"/cases/([^/?#]+)$", page.url)
    assert match, page.url
    return match.group(1)


def _plan_and_consent(page: Page, url: str, case_id: str) -> None:
    today = dt.date.today()
    page.goto(f"{url}/cases/{case_id}/plan")
    page.locator("#f-end_date").fill((today + dt.timedelta(days=120)).isoformat())
    page.locator("#f-milestones-0-title").fill("جواز السفر")
    page.locator("#f-milestones-0-due_date").fill((today + dt.timedelta(days=30)).isoformat())
    page.locator("#f-milestones-1-title").fill("Kurs za računovođe")
    page.locator("#f-milestones-1-due_date").fill((today + dt.timedelta(days=60)).isoformat())
    page.get_by_role("button", name="Save the plan").click()
    expect(page.get_by_role("status").first).to_be_visible()
    page.goto(f"{url}/cases/{case_id}/consents/new")
    page.get_by_label("Identity (names, date of birth, nationality)").check()
    page.get_by_label("Individual plan and stages").check()
    page.get_by_label(SARAJEVO).check()
    page.get_by_label("Reintegration support after return").check()
    page.get_by_label("Written, signed on paper").check()
    page.get_by_label("Valid until").fill((today + dt.timedelta(days=365)).isoformat())
    page.get_by_role("button", name="Record the consent").click()
    expect(page).to_have_url(f"{url}/cases/{case_id}/consents")


def _first_page_png(pdf: Path, target: Path) -> None:
    """Page 1 of ``pdf`` drawn at 100 dpi as ``target`` (a PNG)."""
    subprocess.run(["pdftoppm", "-png", "-singlefile", "-r", "100", "-f", "1", "-l", "1", str(pdf),
                    str(target.with_suffix(""))], check=True, capture_output=True)
    assert target.stat().st_size > 10_000, target


def test_the_returnee_copy_form_and_its_pdfs(new_context: Callable[..., BrowserContext], web_network: WebNetwork,
                                             screenshot: Screenshots, screenshot_dir: Path, tmp_path: Path) -> None:
    gbg = web_network.gbg.url
    page = new_context(accept_downloads=True).new_page()
    sign_in(page, gbg, COUNSELLOR)
    case_id = _register(page, gbg)
    reference = page.locator(".case-head__tags .mono").inner_text().strip()
    _plan_and_consent(page, gbg, case_id)

    page.goto(f"{gbg}/cases/{case_id}")
    page.get_by_role("link", name="Returnee's copy (PDF)").click()
    expect(page.get_by_role("heading", name="Returnee's copy", level=1)).to_be_visible()
    select = page.get_by_label("Language of the copy")
    expect(select).to_have_value("ar")  # the returnee's language comes first
    axe_check(page)
    screenshot(page, "returnee-copy-form")

    for lang in ("ar", "bs", "sv", "en"):
        page.get_by_label("Language of the copy").select_option(lang)
        with page.expect_download() as info:
            page.get_by_role("button", name="Download the PDF").click()
        download = info.value
        assert download.suggested_filename == f"{reference}-returnee-copy-{lang}.pdf"
        pdf = tmp_path / f"{lang}.pdf"
        download.save_as(pdf)
        assert pdf.read_bytes().startswith(b"%PDF-")
        _first_page_png(pdf, screenshot_dir / f"returnee-copy-{lang}.png")
    assert not screenshot.layout_problems, "\n".join(screenshot.layout_problems)
