"""The web interface's foundation in a real browser (Debian's Chromium) against a real node process: signing in,
a wrong password, login throttling, TOTP enrolment and a sign-in with a code, CSRF, Arabic right to left, the
phone width, axe-core, and screenshots of the login, home and account pages in the four languages."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import pyotp
import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.e2e.web_support import (
    COUNSELLOR,
    PASSWORD,
    Screenshots,
    WebNetwork,
    axe_check,
    expect_home,
    no_horizontal_scroll,
    sign_in,
    sign_out,
)

pytestmark = pytest.mark.slow


def _login_response_status(page: Page, username: str, password: str) -> int:
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password", exact=True).fill(password)
    with page.expect_response(lambda r: r.request.method == "POST" and "/login" in r.url) as info:
        page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()
    return info.value.status


def test_sign_in_shows_the_home_page_and_sign_out_ends_it(page: Page, web_network: WebNetwork) -> None:
    url = web_network.gbg.url
    page.goto(f"{url}/")
    expect(page).to_have_url(re.compile(r"/login"))  # deny by default: the login page first
    sign_in(page, url, COUNSELLOR)
    expect_home(page, url)
    expect(page.locator(".site-header")).to_contain_text("Anna Lindqvist")
    sign_out(page)
    expect(page.get_by_text("You have signed out.")).to_be_visible()
    page.goto(f"{url}/account")
    expect(page).to_have_url(re.compile(r"/login"))


def test_a_wrong_password_is_refused_with_a_message(page: Page, web_network: WebNetwork) -> None:
    page.goto(f"{web_network.gbg.url}/login")
    assert _login_response_status(page, COUNSELLOR, "not the password at all") == 401
    expect(page.get_by_role("alert")).to_contain_text("The username or password is not right.")
    expect(page.get_by_label("Username")).to_have_value(COUNSELLOR)  # what was typed stays
    expect(page.get_by_label("Password", exact=True)).to_have_value("")


def test_the_sixth_try_for_an_account_is_refused_even_with_the_right_password(page: Page,
                                                                            web_network: WebNetwork) -> None:
    page.goto(f"{web_network.gbg.url}/login")
    for attempt in range(5):
        assert _login_response_status(page, "tina.throttle", f"wrong password {attempt}") == 401
        expect(page.get_by_role("alert")).to_contain_text("The username or password is not right.")
    assert _login_response_status(page, "tina.throttle", PASSWORD) == 429
    expect(page.get_by_role("alert")).to_contain_text("Too many failed sign-ins")
    expect(page).to_have_url(re.compile(r"/login"))
    page.goto(f"{web_network.gbg.url}/")
    expect(page).to_have_url(re.compile(r"/login"))  # not signed in


def test_totp_enrolment_in_the_browser_then_sign_in_with_password_and_code(page: Page,
                                                                           web_network: WebNetwork) -> None:
    url = web_network.gbg.url
    sign_in(page, url, "tove.totp")
    page.goto(f"{url}/account")
    expect(page.get_by_text("Two-step sign-in is off.")).to_be_visible()
    page.get_by_role("link", name="Set up two-step sign-in").click()
    expect(page.get_by_role("heading", name="Set up two-step sign-in", level=1)).to_be_visible()
    expect(page.locator(".qr svg")).to_be_visible()  # the QR code, inline SVG
    secret = "".join(page.locator(".secret").inner_text().split())
    assert re.fullmatch(r"[A-Z2-7]{16,}", secret), secret
    totp = pyotp.TOTP(secret)  # the node runs on the real clock

    page.get_by_label("Code", exact=True).fill("000000" if totp.now() != "000000" else "111111")
    page.get_by_role("button", name="Turn on two-step sign-in").click()
    expect(page.get_by_role("alert")).to_contain_text("That code is not right.")
    page.get_by_label("Code", exact=True).fill(totp.now())
    page.get_by_role("button", name="Turn on two-step sign-in").click()
    expect(page.get_by_text("Two-step sign-in is on. You will be asked for a code each time you sign in.")
           ).to_be_visible()
    page.goto(f"{url}/account")
    expect(page.get_by_text("Two-step sign-in is on:")).to_be_visible()
    sign_out(page)

    sign_in(page, url, "tove.totp")
    expect(page).to_have_url(re.compile(r"/login/code"))
    expect(page.get_by_role("heading", name="Enter your code", level=1)).to_be_visible()
    page.goto(f"{url}/account")  # nothing else opens before the code
    expect(page).not_to_have_url(f"{url}/account")
    page.goto(f"{url}/login/code")
    # the enrolment used this time step's code: the next step's is fresh (the node accepts one step either way)
    page.get_by_label("Code", exact=True).fill(totp.at(time.time() + 30))
    page.get_by_role("button", name="Continue").click()
    expect_home(page, url)


def test_a_form_sent_without_its_csrf_token_is_refused(page: Page, web_network: WebNetwork) -> None:
    url = web_network.gbg.url
    sign_in(page, url, COUNSELLOR)
    # a request of the signed-in browser (its cookies) without a token
    response = page.request.post(f"{url}/language", form={"language": "sv", "next": "/"}, max_redirects=0)
    assert response.status == 400
    assert "The request could not be understood" in response.text()
    # a real form whose hidden token was taken out: the 400 page in the browser, and nothing changed
    page.goto(f"{url}/account")
    page.evaluate("document.querySelectorAll('input[name=csrf_token]').forEach(e => e.remove())")
    page.get_by_label("Current password").fill(PASSWORD)
    page.get_by_label("New password", exact=True).fill("a completely new password")
    page.get_by_label("New password again").fill("a completely new password")
    with page.expect_response(lambda r: r.request.method == "POST") as info:
        page.get_by_role("button", name="Change password").click()
    assert info.value.status == 400
    expect(page.get_by_role("heading", name="The request could not be understood", level=1)).to_be_visible()
    expect(page.get_by_text("Error 400")).to_be_visible()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    page.goto(f"{url}/account")
    sign_out(page)
    sign_in(page, url, COUNSELLOR)  # the old password still works
    expect_home(page, url)


def test_arabic_pages_are_right_to_left(new_context: Callable[..., BrowserContext],
                                        web_network: WebNetwork) -> None:
    url = web_network.gbg.url
    # the browser's language (Accept-Language) before sign-in
    anonymous = new_context(locale="ar").new_page()
    anonymous.goto(f"{url}/login")
    expect(anonymous.locator("html")).to_have_attribute("dir", "rtl")
    expect(anonymous.locator("html")).to_have_attribute("lang", "ar")

    page = new_context().new_page()
    sign_in(page, url, COUNSELLOR)
    page.context.add_cookies([{"name": "ccm_lang", "value": "ar", "url": url}])
    page.goto(f"{url}/")
    expect(page.locator("html")).to_have_attribute("dir", "rtl")
    links = page.locator("nav.main-nav a")
    assert links.count() >= 2
    first, last = links.first.bounding_box(), links.last.bounding_box()
    assert first and last
    width = page.viewport_size["width"] if page.viewport_size else 1280
    # the menu starts at the right and runs leftwards
    assert first["x"] > last["x"], (first, last)
    assert first["x"] + first["width"] > width / 2, first
    # the same page in English starts at the left
    page.context.add_cookies([{"name": "ccm_lang", "value": "en", "url": url}])
    page.goto(f"{url}/")
    first, last = links.first.bounding_box(), links.last.bounding_box()
    assert first and last and first["x"] < last["x"] and first["x"] < width / 2


def test_the_pages_fit_a_phone_without_sideways_scrolling(new_context: Callable[..., BrowserContext],
                                                           web_network: WebNetwork) -> None:
    url = web_network.gbg.url
    page = new_context(viewport={"width": 360, "height": 800}).new_page()
    page.goto(f"{url}/login")
    no_horizontal_scroll(page)
    sign_in(page, url, COUNSELLOR)
    for path in ("/", "/account", "/account/two-factor"):
        page.goto(f"{url}{path}")
        no_horizontal_scroll(page)


def test_the_language_picker_keeps_the_choice(page: Page, web_network: WebNetwork) -> None:
    url = web_network.gbg.url
    sign_in(page, url, "sara.sprak")
    page.goto(f"{url}/account")
    page.get_by_label("Language").select_option("sv")
    page.get_by_role("button", name="Change language").click()
    expect(page).to_have_url(f"{url}/account")
    expect(page.locator("html")).to_have_attribute("lang", "sv")
    page.context.clear_cookies()  # a new browser: the stored choice of the user counts
    page.goto(f"{url}/login")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    page.locator("input[name=username]").fill("sara.sprak")
    page.locator("input[name=password]").fill(PASSWORD)
    page.locator("form.card button[type=submit]").click()
    expect(page).to_have_url(f"{url}/")
    expect(page.locator("html")).to_have_attribute("lang", "sv")


@pytest.mark.parametrize("name, path", [("login", "/login"), ("home", "/"), ("account", "/account"),
                                        ("two-factor", "/account/two-factor")])
def test_foundation_pages_pass_axe_and_are_photographed_in_four_languages(
        page: Page, web_network: WebNetwork, screenshot: Screenshots, name: str, path: str) -> None:
    url = web_network.gbg.url
    if name != "login":
        sign_in(page, url, COUNSELLOR)
    page.goto(f"{url}{path}")
    expect(page.locator("h1")).to_have_count(1)
    axe_check(page)
    shots = screenshot(page, name)
    assert len(shots) == 8 and all(p.stat().st_size > 1000 for p in shots)
    assert not screenshot.layout_problems, "\n".join(screenshot.layout_problems)
