"""Browser fixtures and helpers for the web interface's end-to-end tests (tests/e2e/test_web_*.py).

Playwright drives Debian's Chromium (``/usr/bin/chromium``; never a downloaded browser): pytest-playwright's
``browser_type_launch_args`` is overridden here, so the whole session shares one browser and each test gets its
own context (cookies) from pytest-playwright's ``page`` / ``new_context`` fixtures.

``web_network`` is one pair of real node processes shared by every browser test (gunicorn, SQLite; stopped when
the tests of ``tests/e2e`` are done), partners of each other with a delivery worker each, and staff accounts with
known passwords:

- Göteborg (``se.gi-goteborg``): counsellor ``anna.lindqvist`` (team gbg), counsellor ``olle.berg`` of another
  team (malmo), and accounts used by one test each (``tina.throttle``, ``tove.totp``, ``sara.sprak``);
- Sarajevo (``ba.cldd-sarajevo``): adviser ``emina.kovac`` (team sarajevo).

Helpers: :func:`sign_in`, :func:`axe_check` (fails on serious or critical axe-core violations, listed one a
line), the ``screenshot`` fixture (PNGs ``<page>-<lang>-<width>.png`` under the session's pytest temporary
directory, ``screenshots/``) and :func:`no_horizontal_scroll`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, expect

from tests.harness import Network, NodeProcess

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
LANGUAGES = ("en", "sv", "bs", "ar")
WIDTHS = (1280, 360)
HEIGHT = {1280: 900, 360: 800}
PASSWORD = "correct horse battery staple"
AGREEMENT = "dsa-gbg-sarajevo-2026"
#: the delivery worker's timings in tests (as tests/e2e/test_story.py)
FAST = ("--min-backoff", "0.2", "--max-backoff", "1", "--poll-seconds", "0.05")
COUNSELLOR, OTHER_TEAM, ADVISER = "anna.lindqvist", "olle.berg", "emina.kovac"
_axe = Axe()


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    """Debian's Chromium, headless, without network chatter (pytest-playwright has no option for it)."""
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_ARGS}


@pytest.fixture(scope="session")
def base_url() -> str | None:
    """No base URL: each test names its node's address. (pytest-playwright's stand-in for pytest-base-url is an
    instance-method session fixture, which pytest 9 warns about, and warnings are errors here.)"""
    return None


# -- the nodes ------------------------------------------------------------------------------------------------

def add_staff(node: NodeProcess, username: str, role: str, team: str | None, display_name: str,
              password: str = PASSWORD) -> None:
    """A staff account with a password (``ccm-node user add --password-stdin``)."""
    node.cli("user", "add", username, "--role", role, "--display-name", display_name,
             *(["--team", team] if team else []), "--password-stdin", stdin=password + "\n")


@dataclass
class WebNetwork:
    gbg: NodeProcess
    sarajevo: NodeProcess


@pytest.fixture(scope="package")
def web_network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebNetwork]:
    network = Network(tmp_path_factory.mktemp("web-network"), lambda: None)
    gbg = network.add("se.gi-goteborg", "Göteborgs-Initiativet")
    sarajevo = network.add("ba.cldd-sarajevo", "CLDD Sarajevo")
    try:
        add_staff(gbg, COUNSELLOR, "counsellor", "gbg", "Anna Lindqvist")
        add_staff(gbg, OTHER_TEAM, "counsellor", "malmo", "Olle Berg")
        add_staff(gbg, "tina.throttle", "counsellor", "gbg", "Tina Throttle")
        add_staff(gbg, "tove.totp", "counsellor", "gbg", "Tove Totp")
        add_staff(gbg, "sara.sprak", "counsellor", "gbg", "Sara Språk")
        add_staff(sarajevo, ADVISER, "adviser", "sarajevo", "Emina Kovač")
        for node in (gbg, sarajevo):
            node.start()
            node.spawn("deliver", *FAST)
        network.connect(gbg, sarajevo, AGREEMENT)
        yield WebNetwork(gbg, sarajevo)
    finally:
        network.stop_all()


# -- signing in -----------------------------------------------------------------------------------------------

def sign_in(page: Page, base_url: str, username: str, password: str = PASSWORD) -> None:
    """Sign in on the login page (English labels) and wait for the page after it."""
    page.goto(f"{base_url}/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()


def expect_home(page: Page, base_url: str) -> None:
    """The home page is shown (its menu item is the current one)."""
    expect(page).to_have_url(f"{base_url}/")
    expect(page.get_by_role("navigation", name="Main menu").get_by_role("link", name="Home")).to_have_attribute(
        "aria-current", "page")


def sign_out(page: Page) -> None:
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in", level=1)).to_be_visible()


def wait_for(what: str, probe: Callable[[], Any], seconds: float = 30, every: float = 0.25) -> Any:
    """Poll ``probe`` until it returns something true; fail saying ``what`` was not seen in time."""
    deadline = time.monotonic() + seconds
    while True:
        value = probe()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what}: not seen within {seconds} s"
        time.sleep(every)


# -- checks ---------------------------------------------------------------------------------------------------

def axe_check(page: Page) -> None:
    """Fail on any serious or critical axe-core violation on the page, listing rule, impact and elements."""
    results = _axe.run(page)
    bad = [v for v in results.response["violations"] if v.get("impact") in ("serious", "critical")]
    if bad:
        lines = []
        for violation in bad:
            targets = ", ".join(" ".join(map(str, node["target"])) for node in violation["nodes"][:5])
            lines.append(f"  [{violation['impact']}] {violation['id']}: {violation['help']} — {targets}")
        raise AssertionError(f"axe-core on {page.url}: {len(bad)} serious/critical violation(s):\n"
                             + "\n".join(lines))


def scroll_width(page: Page) -> int:
    return int(page.evaluate("document.scrollingElement.scrollWidth"))


_OVERFLOWING = """(width) => {
  const out = [];
  for (const el of document.querySelectorAll('body *')) {
    const box = el.getBoundingClientRect();
    if (box.width === 0 || (box.right <= width + 0.5 && box.left >= -0.5)) continue;
    if ([...el.children].some(c => { const b = c.getBoundingClientRect();
                                     return b.width > 0 && (b.right > width + 0.5 || b.left < -0.5); })) continue;
    const cls = typeof el.className === 'string' && el.className.trim()
                ? '.' + el.className.trim().split(/\\s+/).join('.') : '';
    const name = el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + cls;
    const text = (el.textContent || '').trim().slice(0, 40);
    out.push(`${name} [${Math.round(box.left)}..${Math.round(box.right)}] "${text}"`);
  }
  return out.slice(0, 8);
}"""


def no_horizontal_scroll(page: Page, width: int = 360) -> None:
    """The page is no wider than ``width``; if it is, the message names the innermost elements sticking out."""
    wide = scroll_width(page)
    if wide > width:
        culprits = page.evaluate(_OVERFLOWING, width)
        raise AssertionError(f"{page.url} (lang {page.locator('html').get_attribute('lang')}) scrolls sideways at "
                             f"{width} px: {wide} px wide; sticking out:\n  " + "\n  ".join(culprits))


# -- screenshots ----------------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def screenshot_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.getbasetemp() / "screenshots"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _set_language(page: Page, lang: str) -> None:
    """The language cookie the interface reads (after the user's stored choice, before Accept-Language)."""
    page.context.add_cookies([{"name": "ccm_lang", "value": lang, "url": page.url}])


class Screenshots:
    """``screenshots(page, name)``: the page now shown (reached by GET: it is reloaded), in every language at 1280
    and 360 px, saved as ``<name>-<lang>-<width>.png``. Checks each is in its language (``<html lang dir>``);
    a page scrolling sideways at 360 px is noted in :attr:`layout_problems` (not raised at once, so that a long
    test goes on and reports every page): assert it is empty at the end. Leaves the page in English at 1280 px."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.layout_problems: list[str] = []

    def __call__(self, page: Page, name: str, languages: tuple[str, ...] = LANGUAGES,
                 widths: tuple[int, ...] = WIDTHS) -> list[Path]:
        assert re.fullmatch(r"[a-z0-9-]+", name), name
        files = []
        try:
            for lang in languages:
                _set_language(page, lang)
                for width in widths:
                    page.set_viewport_size({"width": width, "height": HEIGHT.get(width, 900)})
                    page.reload()
                    expect(page.locator("html")).to_have_attribute("lang", lang)
                    expect(page.locator("html")).to_have_attribute("dir", "rtl" if lang == "ar" else "ltr")
                    if width <= 360:
                        try:
                            no_horizontal_scroll(page, width)
                        except AssertionError as problem:
                            self.layout_problems.append(f"{name}: {problem}")
                    path = self.directory / f"{name}-{lang}-{width}.png"
                    page.screenshot(path=str(path), full_page=True)
                    files.append(path)
        finally:
            _set_language(page, "en")
            page.set_viewport_size({"width": 1280, "height": 900})
            page.reload()
        return files


@pytest.fixture
def screenshot(screenshot_dir: Path) -> Screenshots:
    return Screenshots(screenshot_dir)
