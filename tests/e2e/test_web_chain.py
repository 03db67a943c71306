"""The whole CCM chain in a real browser across two real nodes (gunicorn processes, each with a delivery worker):
a counsellor at Göteborg registers a case, fills the intake, records consent naming CLDD Sarajevo, previews and
hands over; the adviser at Sarajevo reads the summary in the intake queue, accepts, records progress after
previewing what flows back; the counsellor sees the progress marked verified from Sarajevo; the returnee withdraws
consent and the counsellor sees the erasure confirmed. Plus: a child's case cannot be handed over without its
safeguards (the page says why), a validation error keeps what was typed, another team's counsellor gets the 404
page. Each main page is checked with axe-core and photographed in the four languages (``screenshot`` fixture).

Selectors are the English labels, roles and button names; the page paths are the URL map's (web brief)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.e2e.web_support import (
    ADVISER,
    COUNSELLOR,
    OTHER_TEAM,
    Screenshots,
    WebNetwork,
    axe_check,
    sign_in,
    wait_for,
)

pytestmark = pytest.mark.slow

SARAJEVO = "CLDD Sarajevo (ba.cldd-sarajevo)"


def _look(page: Page, screenshot: Screenshots, name: str) -> None:
    """A main page (not an error page): no serious or critical axe violation, and its screenshots in the four
    languages."""
    expect(page.locator(".error-page")).to_have_count(0)
    axe_check(page)
    screenshot(page, name)


def _register(page: Page, url: str, given: str, family: str, born: str, *, native: str | None = None) -> str:
    """Register a case through the form; returns its id (from the case page's address)."""
    page.goto(f"{url}/cases/new")
    page.get_by_label("Given names", exact=True).fill(given)
    page.get_by_label("Family name", exact=True).fill(family)
    if native:
        page.get_by_label("Given names in the person's own script").fill(native)
    page.get_by_label("Date of birth").fill(born)
    page.get_by_label("Languages").fill("bs, sv")
    page.get_by_label("Phone").fill("+46 70 123 45 67")
    page.get_by_label("Destination country").select_option("BA")
    page.get_by_label("Town or region").fill("Sarajevo")
    page.get_by_role("button", name="Register the case").click()
    expect(page.get_by_role("status").filter(has_text="registered.")).to_be_visible()
    match = re.search(r"/cases/([^/?#]+)$", page.url)
    assert match, page.url
    return match.group(1)


def _record_consent(page: Page, url: str, case_id: str, categories: list[str]) -> str:
    """Record a consent naming CLDD Sarajevo; returns the flash message shown."""
    page.goto(f"{url}/cases/{case_id}/consents/new")
    for category in categories:
        page.get_by_label(category).check()
    page.get_by_label(SARAJEVO).check()
    page.get_by_label("Reintegration support after return").check()
    page.get_by_label("Written, signed on paper").check()
    page.get_by_label("Valid until").fill((dt.date.today() + dt.timedelta(days=365)).isoformat())
    page.locator("main").get_by_label("Language").fill("bs")
    page.get_by_role("button", name="Record the consent").click()
    expect(page).to_have_url(f"{url}/cases/{case_id}/consents")
    return page.get_by_role("status").first.inner_text()


def test_the_whole_chain_in_the_browser_across_two_nodes(new_context: Callable[..., BrowserContext],
                                                         web_network: WebNetwork, screenshot: Screenshots) -> None:
    gbg, sarajevo = web_network.gbg.url, web_network.sarajevo.url
    anna = new_context().new_page()
    emina = new_context().new_page()
    sign_in(anna, gbg, COUNSELLOR)
    sign_in(emina, sarajevo, ADVISER)

    # -- the counsellor: register and do the intake
    case_id = _register(anna, gbg, "Amina", "Hadžić", "1988-03-14", native="Амина")
    expect(anna.get_by_role("heading", level=1)).to_contain_text("Amina Hadžić")
    reference = anna.locator(".case-head__tags .mono").inner_text().strip()
    anna.goto(f"{gbg}/cases/{case_id}/intake/wishes")
    anna.get_by_label("Notes").fill("Želim otvoriti pekaru u Sarajevu.")
    anna.get_by_role("button", name="Save this section").click()
    expect(anna.get_by_role("status").filter(has_text="saved.")).to_be_visible()
    _look(anna, screenshot, "intake-section")
    anna.goto(f"{gbg}/cases/{case_id}/intake/health")
    anna.get_by_label("Notes").fill("Asthma, well controlled.")
    anna.get_by_role("button", name="Save this section").click()
    expect(anna.get_by_role("status").filter(has_text="saved.")).to_be_visible()
    anna.goto(f"{gbg}/cases/new")
    _look(anna, screenshot, "case-new")

    # -- consent naming the partner (health not included)
    flash = _record_consent(anna, gbg, case_id, ["Identity (names, date of birth, nationality)", "Contact details",
                                                 "Thoughts and wishes for the future"])
    assert "The consent is recorded." in flash
    expect(anna.locator("section.consent")).to_contain_text("CLDD Sarajevo")
    anna.goto(f"{gbg}/cases/{case_id}/consents/new")
    _look(anna, screenshot, "consent-new")

    # -- preview exactly what leaves the node, then hand over
    anna.goto(f"{gbg}/cases/{case_id}/handover")
    _look(anna, screenshot, "handover-choose")
    anna.get_by_label(SARAJEVO).check()
    anna.get_by_role("group", name="Consent").get_by_role("radio").first.check()
    anna.get_by_role("button", name="Preview what will be sent").click()
    expect(anna.get_by_role("heading", name="What will leave this node", level=1)).to_be_visible()
    expect(anna.locator("main")).to_contain_text("Amina")
    expect(anna.locator("main")).to_contain_text("Želim otvoriti pekaru u Sarajevu.")
    withheld = anna.locator("section.withheld")
    expect(withheld).to_contain_text("Health")
    expect(anna.locator("main")).not_to_contain_text("Asthma")
    _look(anna, screenshot, "handover-preview")
    anna.get_by_role("button", name="Confirm and hand over").click()
    expect(anna.get_by_role("status").filter(has_text="The case summary is queued for")).to_be_visible()
    expect(anna).to_have_url(re.compile(r"/handovers/[^/]+$"))
    status_url = anna.url

    def delivered() -> bool:
        anna.reload()
        return anna.get_by_text("Delivered: waiting for the partner's answer").count() > 0

    wait_for("the handover delivered (status page)", delivered)
    _look(anna, screenshot, "handover-status")

    # -- the adviser at Sarajevo: the intake queue, read, accept
    def in_queue() -> bool:
        emina.goto(f"{sarajevo}/intake")
        return emina.get_by_role("link", name=re.compile(f"Case {re.escape(reference)} from")).count() > 0

    wait_for("the handover in Sarajevo's intake queue", in_queue)
    _look(emina, screenshot, "intake-queue")
    emina.get_by_role("link", name=re.compile(f"Case {re.escape(reference)} from")).click()
    expect(emina.get_by_role("heading", level=1)).to_contain_text("Göteborgs-Initiativet")
    expect(emina.locator("main")).to_contain_text("Amina")
    expect(emina.locator("main")).to_contain_text("Želim otvoriti pekaru u Sarajevu.")
    expect(emina.locator("main")).not_to_contain_text("Asthma")  # withheld: never left Göteborg
    expect(emina.get_by_text("Signed by Göteborgs-Initiativet, verified.")).to_be_visible()
    _look(emina, screenshot, "intake-handover")
    emina.get_by_role("button", name="Accept and open the case").click()
    expect(emina.get_by_role("status").filter(has_text="Handover accepted")).to_be_visible()
    match = re.search(r"/cases/([^/?#]+)$", emina.url)
    assert match, emina.url
    local_id = match.group(1)
    expect(emina.get_by_role("heading", level=1)).to_contain_text("Amina")

    # -- progress, previewed before it flows back
    emina.goto(f"{sarajevo}/cases/{local_id}/progress")
    _look(emina, screenshot, "progress")
    emina.get_by_label("How the work goes").fill("Met on arrival; the bakery course starts in May.")
    emina.get_by_role("button", name="Preview what will be sent").click()
    expect(emina.get_by_role("heading", name="Preview: nothing is recorded or sent yet")).to_be_visible()
    expect(emina.locator("section.preview")).to_contain_text("the bakery course starts in May")
    axe_check(emina)
    emina.get_by_role("button", name="Record and send").click()
    expect(emina.get_by_role("status").filter(has_text="Progress recorded and queued for")).to_be_visible()

    # -- back at Göteborg: the progress, verified from Sarajevo, and the handover accepted
    def verified_progress() -> bool:
        anna.goto(f"{gbg}/cases/{case_id}")
        return anna.get_by_text("Verified from CLDD Sarajevo").count() > 0

    wait_for("the progress verified from Sarajevo on the case page", verified_progress)
    expect(anna.locator("main")).to_contain_text("Met on arrival; the bakery course starts in May.")
    _look(anna, screenshot, "case-page")
    anna.goto(status_url)
    expect(anna.get_by_text("Accepted by the partner")).to_be_visible()
    anna.goto(f"{gbg}/cases?q=Amina")
    expect(anna.locator("main")).to_contain_text(reference)
    _look(anna, screenshot, "case-list")

    # -- the returnee withdraws consent: erasure asked, then confirmed by Sarajevo
    anna.goto(f"{gbg}/cases/{case_id}/consents")
    anna.get_by_role("link", name="Withdraw this consent").click()
    _look(anna, screenshot, "consent-withdraw")
    anna.get_by_label("The whole consent").check()
    anna.get_by_label("Reason").fill("The returnee asked us to stop sharing.")
    anna.get_by_role("button", name="Continue: see what will happen").click()
    expect(anna.get_by_role("heading", name="Confirm the withdrawal", level=1)).to_be_visible()
    expect(anna.locator(".holders")).to_contain_text("CLDD Sarajevo")
    anna.get_by_role("button", name="Withdraw and ask for erasure").click()
    expect(anna.get_by_role("status").filter(has_text="The withdrawal is recorded.")).to_be_visible()

    def erasure_confirmed() -> bool:
        anna.goto(f"{gbg}/cases/{case_id}/consents")
        return anna.get_by_text("Erasure confirmed").count() > 0

    wait_for("the erasure confirmed on the consents page", erasure_confirmed)
    expect(anna.locator("section.consent")).to_contain_text("Withdrawn")
    _look(anna, screenshot, "consents")

    emina.goto(f"{sarajevo}/cases/{local_id}")  # nothing of the returnee is left at Sarajevo
    expect(emina.locator("main")).not_to_contain_text("Amina")
    assert not screenshot.layout_problems, "\n".join(screenshot.layout_problems)


def test_a_childs_case_is_not_handed_over_without_its_safeguards(page: Page, web_network: WebNetwork,
                                                                  screenshot: Screenshots) -> None:
    gbg = web_network.gbg.url
    sign_in(page, gbg, COUNSELLOR)
    born = dt.date.today().replace(year=dt.date.today().year - 12, day=1).isoformat()
    case_id = _register(page, gbg, "Lejla", "Hodžić", born)
    expect(page.locator(".case-head__tags")).to_contain_text("Child's case")
    flash = _record_consent(page, gbg, case_id, ["Identity (names, date of birth, nationality)"])
    assert "not active yet" in flash and "child's case" in flash
    consent_id = page.locator("section.consent h2").first.get_attribute("id")
    assert consent_id and consent_id.startswith("consent-")

    page.goto(f"{gbg}/cases/{case_id}/handover")
    why = "This is a child's case: record the guardian, the child's views and the best-interests assessment"
    expect(page.locator("main")).to_contain_text(why)
    expect(page.locator("main")).to_contain_text("the child's own views")  # what is still missing, in words
    expect(page.get_by_role("link", name="Record the child's safeguards").first).to_be_visible()
    # asking for the preview with the (not active) consent anyway: refused, and the page says why
    response = page.goto(f"{gbg}/cases/{case_id}/handover/preview?partner=ba.cldd-sarajevo"
                         f"&consent={consent_id.removeprefix('consent-')}")
    assert response is not None and response.status in (409, 422)
    expect(page.get_by_role("alert")).to_contain_text(why)
    expect(page.get_by_role("heading", name="What will leave this node")).to_have_count(0)
    page.goto(f"{gbg}/cases/{case_id}/safeguards")
    _look(page, screenshot, "safeguards")
    assert not screenshot.layout_problems, "\n".join(screenshot.layout_problems)


def test_a_validation_error_keeps_what_was_typed(page: Page, web_network: WebNetwork) -> None:
    gbg = web_network.gbg.url
    sign_in(page, gbg, COUNSELLOR)
    page.goto(f"{gbg}/cases/new")
    page.get_by_label("Given names", exact=True).fill("Đorđe")
    page.get_by_label("Family name", exact=True).fill("Šćepanović")
    page.get_by_label("Given names in the person's own script").fill("Ђорђе")
    page.get_by_label("Date of birth").fill("2999-01-01")  # in the future
    page.get_by_label("Town or region").fill("Tuzla")
    with page.expect_response(lambda r: r.request.method == "POST") as info:
        page.get_by_role("button", name="Register the case").click()
    assert info.value.status == 422
    expect(page.get_by_role("alert")).to_contain_text("There is a problem")
    expect(page.locator(".field--error")).not_to_have_count(0)
    expect(page.get_by_label("Given names", exact=True)).to_have_value("Đorđe")
    expect(page.get_by_label("Family name", exact=True)).to_have_value("Šćepanović")
    expect(page.get_by_label("Given names in the person's own script")).to_have_value("Ђорђе")
    expect(page.get_by_label("Town or region")).to_have_value("Tuzla")
    axe_check(page)
    page.get_by_label("Date of birth").fill("1979-05-02")
    page.get_by_label("Destination country").select_option("BA")
    page.get_by_role("button", name="Register the case").click()
    expect(page.get_by_role("status").filter(has_text="registered.")).to_be_visible()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Đorđe Šćepanović")


def test_a_counsellor_of_another_team_gets_the_404_page(new_context: Callable[..., BrowserContext],
                                                        web_network: WebNetwork) -> None:
    gbg = web_network.gbg.url
    anna = new_context().new_page()
    sign_in(anna, gbg, COUNSELLOR)
    case_id = _register(anna, gbg, "Emir", "Mehić", "1990-07-07")
    olle = new_context().new_page()
    sign_in(olle, gbg, OTHER_TEAM)
    for path in (f"/cases/{case_id}", f"/cases/{case_id}/consents", f"/cases/{case_id}/handover"):
        response = olle.goto(f"{gbg}{path}")
        assert response is not None and response.status == 404, path
        expect(olle.get_by_role("heading", name="Page not found", level=1)).to_be_visible()
        expect(olle.locator("main")).not_to_contain_text("Mehić")
    olle.goto(f"{gbg}/cases?q=Emir")
    expect(olle.locator("main")).not_to_contain_text("Mehić")
    olle.goto(f"{gbg}/cases/{case_id}")
    axe_check(olle)
