"""The four languages: every text of the interface is translated in every catalogue, the catalogues match the
source, they compile, and the pages use them (Arabic right to left)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir

from node.web.catalogues import TRANSLATIONS, catalogue_paths, compile_catalogues, problems_of, read_catalogue
from node.web.i18n import SUPPORTED

from .conftest import WebClient

ROOT = Path(__file__).resolve().parents[2]
TRANSLATED = [code for code in SUPPORTED if code != "en"]


def source_messages() -> set[str]:
    """Every message the interface's Python and templates mark for translation (as babel.cfg extracts them)."""
    method_map = [("node/web/**.py", "python"), ("node/notifications/mail.py", "python"),
                  ("node/web/templates/**.html", "jinja2")]
    found = set()
    keywords = {**DEFAULT_KEYWORDS, "_l": None}  # lazy_gettext, as the Python modules import it
    for _filename, _lineno, message, _comments, _context in extract_from_dir(str(ROOT), method_map, keywords=keywords):
        found.add(message if isinstance(message, str) else message[0])
    return found


def test_every_language_has_a_catalogue() -> None:
    languages = {path.parent.parent.name for path in catalogue_paths()}
    assert languages == set(TRANSLATED)


@pytest.mark.parametrize("language", TRANSLATED)
def test_catalogue_is_complete_and_sound(language: str) -> None:
    catalogue = read_catalogue(TRANSLATIONS / language / "LC_MESSAGES" / "messages.po")
    assert problems_of(catalogue, language) == []
    missing = sorted(source_messages() - {message.id if isinstance(message.id, str) else message.id[0]
                                          for message in catalogue if message.id})
    assert missing == [], f"{language}: not in the catalogue (run pybabel extract/update): {missing[:10]}"


@pytest.mark.parametrize("language", TRANSLATED)
def test_msgfmt_counts_nothing_untranslated(language: str) -> None:
    if shutil.which("msgfmt") is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("msgfmt (Debian package gettext) is required in CI")
        pytest.skip("msgfmt not installed (apt-get install gettext)")
    po_path = TRANSLATIONS / language / "LC_MESSAGES" / "messages.po"
    result = subprocess.run(["msgfmt", "--check", "--statistics", "-o", "/dev/null", str(po_path)],
                            capture_output=True, text=True, check=False, env={"LC_ALL": "C"})
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(r"\d+ translated messages\.\n", result.stderr), result.stderr


def test_catalogues_compile() -> None:
    written = compile_catalogues()
    assert {path.parent.parent.name for path in written} == set(TRANSLATED)
    assert all(path.stat().st_size > 1000 for path in written)


@pytest.mark.parametrize(("language", "words", "direction"), [
    ("sv", "Logga in", "ltr"), ("bs", "Prijav", "ltr"), ("ar", "تسجيل الدخول", "rtl")])
def test_pages_speak_the_language(anonymous: WebClient, language: str, words: str, direction: str) -> None:
    page = anonymous.text(anonymous.get("/login", headers={"Accept-Language": language}))
    assert f'<html lang="{language}" dir="{direction}">' in page
    assert words in page


def test_a_signed_in_page_in_arabic(web_client: Callable[..., WebClient]) -> None:
    browser = web_client("counsellor", "team-a")
    browser.post("/language", {"language": "ar", "next": "/"})
    page = browser.text(browser.get("/"))
    assert '<html lang="ar" dir="rtl">' in page
    assert "Needs you now" not in page  # the home page's headings are translated
