"""The returnee's copy (``/cases/<id>/returnee-copy``): the form, the PDF in Arabic, Bosnian and Swedish (its
first page drawn and not blank, the names and labels in its text layer), who may have it, its audit entry,
and a bad language refused on the form.

The PDF's text is read with ``pdftotext`` and NFKC-normalised (which folds Arabic presentation forms back to
base letters); the first page is drawn with ``pdftoppm`` (poppler-utils) and its pixels counted with Pillow.
"""

from __future__ import annotations

import copy
import datetime as dt
import logging
import re
import subprocess
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Any

import flask_babel
import pyotp
import pytest
import sqlalchemy as sa
from flask import Flask
from PIL import Image

from node.accounts import User
from node.audit import AuditEntry
from node.auth import Actor
from node.cases.returnee_copy import copy_language, returnee_copy
from node.clock import FakeClock
from node.db import make_sessionmaker
from node.errors import NotFound
from tests.web.conftest import PASSWORD, WebClient

SECRET = pyotp.random_base32()
SARAJEVO, BAGHDAD = "ba.cldd-sarajevo", "iq.cldd-baghdad"
ARABIC: dict[str, Any] = {
    "returnee": {"given_names": "Mohammed", "family_name": "Al-Hassan", "given_names_native": "محمد",
                 "family_name_native": "الحسن", "date_of_birth": "1988-02-14", "languages": ["ar", "sv"]},
    "destination_country": "IQ", "destination_locality": "Basra",
    "plan": {"end_date": "2026-09-30", "milestones": [{"title": "Passport", "due_date": "2026-06-01"},
                                                       {"title": "جواز السفر", "due_date": "2026-07-15"}]},
}
BOSNIAN: dict[str, Any] = {
    "returnee": {"given_names": "Amra", "family_name": "Šehić", "date_of_birth": "1990-03-27",
                 "languages": ["bs"]},
    "destination_country": "BA", "destination_locality": "Tuzla",
    "plan": {"end_date": "2026-10-01", "milestones": [{"title": "Kurs za računovođe", "due_date": "2026-07-01"}]},
}
SWEDISH: dict[str, Any] = {
    "returnee": {"given_names": "Åsa", "family_name": "Öström", "date_of_birth": "1979-11-05",
                 "languages": ["sv-SE"]},
    "destination_country": "GH",
    "plan": {"end_date": "2026-12-01", "milestones": [{"title": "Boende i Accra", "due_date": "2026-08-01"}]},
}
CASES = {"ar": (ARABIC, BAGHDAD), "bs": (BOSNIAN, SARAJEVO), "sv": (SWEDISH, "gh.accra-partner")}


def open_case(client: Any, token: str, body: dict[str, Any], partner: str | None = None,
              assignee: WebClient | None = None) -> dict[str, Any]:
    """A case made through the API, with an intervention and (given a partner) a consent naming it; assigned to
    the ``assignee``'s user if given."""
    headers = {"Authorization": f"Bearer {token}"}
    body = copy.deepcopy(body)
    if assignee is not None and assignee.user is not None:
        body["assigned_user_id"] = assignee.user.id
    response = client.post("/api/v1/cases", json=body, headers=headers)
    assert response.status_code == 201, response.get_json()
    case = response.get_json()
    added = client.post(f"/api/v1/cases/{case['id']}/interventions", headers=headers, json={
        "kind": "business_course", "provider": "Ured za zapošljavanje", "status": "planned",
        "start_date": "2026-05-04", "end_date": "2026-06-26"})
    assert added.status_code == 201, added.get_json()
    if partner:
        given = client.post(f"/api/v1/cases/{case['id']}/consents", headers=headers, json={
            "recipients": [partner], "categories": ["identity", "plan"], "purpose": "reintegration_support",
            "method": "written_signature", "valid_until": "2027-11-30"})
        assert given.status_code == 201, given.get_json()
    return dict(case)


@pytest.fixture
def counsellor(web_client: Callable[..., WebClient]) -> WebClient:
    return web_client("counsellor", "gbg", display_name="Karin Lindqvist")


@pytest.fixture
def token(make_user: Callable[..., Any]) -> str:
    _user, bearer = make_user("counsellor", "gbg")
    return str(bearer)


def pdf_text(pdf: bytes, tmp_path: Path) -> str:
    path = tmp_path / "copy.pdf"
    path.write_bytes(pdf)
    out = subprocess.run(["pdftotext", "-enc", "UTF-8", str(path), "-"], capture_output=True, check=True)
    text = unicodedata.normalize("NFKC", out.stdout.decode("utf-8"))
    return re.sub("[\u202a-\u202e\u2066-\u2069]", "", text)  # the bidi marks pdftotext puts around RTL runs


def first_page(pdf: bytes, tmp_path: Path, dpi: int = 40) -> Image.Image:
    path = tmp_path / "copy.pdf"
    path.write_bytes(pdf)
    subprocess.run(["pdftoppm", "-png", "-singlefile", "-r", str(dpi), "-f", "1", "-l", "1", str(path),
                    str(tmp_path / "page")], capture_output=True, check=True)
    with Image.open(tmp_path / "page.png") as image:
        return image.convert("L")


def ink(image: Image.Image) -> float:
    """The share of pixels that are not (nearly) white."""
    histogram = image.histogram()
    dark = sum(histogram[:200])
    return dark / (image.width * image.height)


def translated(app: Flask, lang: str, text: str) -> str:
    with app.test_request_context(), flask_babel.force_locale(lang):
        return str(flask_babel.gettext(text))


def admin_browser(app: Flask, make_web_user: Callable[..., User], clock: FakeClock) -> WebClient:
    """An administrator signed in with password and TOTP code (admins must have a second factor)."""
    user = make_web_user("admin", "gbg", totp_secret=SECRET)
    browser = WebClient(app.test_client(), user)
    browser.get("/login")
    assert browser.post("/login", {"username": user.username, "password": PASSWORD}).status_code == 302
    browser.get("/login/code")
    assert browser.post("/login/code", {"code": pyotp.TOTP(SECRET).at(clock.now())}).status_code == 302
    return browser


def audit_entries(app: Flask, case_id: str) -> list[AuditEntry]:
    with make_sessionmaker(app.extensions["ccm"].engine)() as session:
        found = list(session.scalars(sa.select(AuditEntry).where(AuditEntry.case_id == case_id)
                                     .order_by(AuditEntry.seq)))
        session.expunge_all()
        return found


def test_the_returnees_language_comes_first() -> None:
    supported = ("en", "sv", "bs", "ar")
    assert copy_language(["ar", "sv"], supported, "en") == "ar"
    assert copy_language(["ti", "sv-SE"], supported, "en") == "sv"
    assert copy_language(["ti"], supported, "bs") == "bs"
    assert copy_language([], supported, "en") == "en"


def test_the_form_offers_the_returnees_language(app: Flask, client: Any, counsellor: WebClient, token: str,
                                                 partners: list[str]) -> None:
    case = open_case(client, token, ARABIC)
    page = counsellor.get(f"/cases/{case['id']}")
    assert f'href="/cases/{case["id"]}/returnee-copy"' in counsellor.text(page)
    form = counsellor.get(f"/cases/{case['id']}/returnee-copy")
    text = counsellor.text(form)
    assert form.status_code == 200
    assert '<option value="ar" selected>' in text and 'name="csrf_token"' in text
    assert 'for="f-language"' in text and text.count("<h1") == 1
    other = open_case(client, token, {**ARABIC, "returnee": {**ARABIC["returnee"], "languages": ["ti"]}})
    text = counsellor.text(counsellor.get(f"/cases/{other['id']}/returnee-copy"))
    assert '<option value="en" selected>' in text  # none of the returnee's languages: the counsellor's


@pytest.mark.parametrize("lang", ["ar", "bs", "sv"])
def test_the_pdf_in_the_returnees_language(app: Flask, client: Any, counsellor: WebClient, token: str,
                                           partners: list[str], tmp_path: Path, lang: str,
                                           caplog: pytest.LogCaptureFixture) -> None:
    body, partner = CASES[lang]
    case = open_case(client, token, body, partner, assignee=counsellor)
    counsellor.get(f"/cases/{case['id']}/returnee-copy")
    with caplog.at_level(logging.DEBUG):
        response = counsellor.post(f"/cases/{case['id']}/returnee-copy", {"language": lang})
    assert response.status_code == 200, counsellor.text(response)[:2000]
    assert response.mimetype == "application/pdf"
    assert response.headers["Content-Disposition"] == (
        f'attachment; filename="{case["reference"]}-returnee-copy-{lang}.pdf"')
    assert response.headers["Cache-Control"] == "no-store"
    pdf = response.get_data()
    assert pdf.startswith(b"%PDF-")
    assert body["returnee"]["family_name"] not in caplog.text  # nothing logs the returnee's data
    assert not [r for r in caplog.records if r.name.startswith("weasyprint") and r.levelno >= logging.WARNING]

    image = first_page(pdf, tmp_path)
    assert ink(image) > 0.02, "page 1 is blank"

    text = pdf_text(pdf, tmp_path)
    assert case["reference"] in text
    for label in ("Reference", "Return destination", "Not started", "Valid until"):
        assert translated(app, lang, label) in text, label
    with app.test_request_context(), flask_babel.force_locale(lang):
        assert str(flask_babel.get_locale().territories[body["destination_country"]]) in text
    if lang == "ar":
        assert translated(app, "ar", "Reference") != "Reference"
        assert "محمد" in text and "الحسن" in text  # the native-script names, joined letters folded back
        assert "Mohammed" in text and "Al-Hassan" in text
        assert "وجهة العودة" in text
    if lang == "bs":
        assert "Šehić" in text and "Kurs za računovođe" in text and "Ured za zapošljavanje" in text
    if lang == "sv":
        assert "Åsa" in text and "Öström" in text and "Boende i Accra" in text
        assert "Inte påbörjat" in text
    assert partner in text  # the consent's recipient, by its name (the test partners are named as their ids)
    assert "Karin Lindqvist" in text  # the counsellor to contact


def test_the_arabic_copy_runs_right_to_left(app: Flask, client: Any, counsellor: WebClient, token: str,
                                            partners: list[str], tmp_path: Path) -> None:
    """The title block of the Arabic copy is set against the right margin: more ink on the right half."""
    case = open_case(client, token, ARABIC, BAGHDAD)
    counsellor.get(f"/cases/{case['id']}/returnee-copy")
    pdfs = {lang: counsellor.post(f"/cases/{case['id']}/returnee-copy", {"language": lang}).get_data()
            for lang in ("ar", "en")}
    for lang, pdf in pdfs.items():
        image = first_page(pdf, tmp_path)
        top = image.crop((0, 0, image.width, image.height // 6))
        left = ink(top.crop((0, 0, top.width // 2, top.height)))
        right = ink(top.crop((top.width // 2, 0, top.width, top.height)))
        assert (right > left) if lang == "ar" else (left > right), lang


def test_a_bad_language_is_a_field_error(app: Flask, client: Any, counsellor: WebClient, token: str) -> None:
    case = open_case(client, token, BOSNIAN)
    counsellor.get(f"/cases/{case['id']}/returnee-copy")
    for value in ("xx", "", "../../etc/passwd", "ar\x00"):
        response = counsellor.post(f"/cases/{case['id']}/returnee-copy", {"language": value})
        text = counsellor.text(response)
        assert response.status_code == 422, value
        assert response.mimetype == "text/html"
        assert "There is a problem" in text and 'href="#f-language"' in text
    assert counsellor.post(f"/cases/{case['id']}/returnee-copy", {}).status_code == 422
    assert counsellor.get(f"/cases/{case['id']}/returnee-copy?language=klingon").status_code == 422
    assert not [e for e in audit_entries(app, case["id"]) if e.action == "export"]


def test_a_get_with_the_language_downloads_too(client: Any, counsellor: WebClient, token: str) -> None:
    case = open_case(client, token, SWEDISH)
    response = counsellor.get(f"/cases/{case['id']}/returnee-copy?language=sv")
    assert response.status_code == 200 and response.mimetype == "application/pdf"


def test_the_copy_is_audited_as_an_export(app: Flask, client: Any, counsellor: WebClient, token: str,
                                          partners: list[str]) -> None:
    case = open_case(client, token, ARABIC, BAGHDAD)
    counsellor.get(f"/cases/{case['id']}/returnee-copy")
    assert counsellor.post(f"/cases/{case['id']}/returnee-copy", {"language": "ar"}).status_code == 200
    exports = [e for e in audit_entries(app, case["id"]) if e.action == "export"]
    assert len(exports) == 1
    [entry] = exports
    assert entry.object_type == "case" and entry.object_id == case["id"]
    assert counsellor.user is not None and entry.actor_id == counsellor.user.id
    assert "returnee_copy" in (entry.detail or "")
    for personal in ("Mohammed", "Al-Hassan", "محمد", "Basra"):
        assert personal not in (entry.detail or "")


def test_who_may_have_the_copy(app: Flask, client: Any, counsellor: WebClient, token: str, clock: FakeClock,
                               web_client: Callable[..., WebClient], make_web_user: Callable[..., User],
                               anonymous: WebClient) -> None:
    case = open_case(client, token, BOSNIAN)
    url = f"/cases/{case['id']}/returnee-copy"
    other_team = web_client("counsellor", "stockholm")
    for response in (other_team.get(url), other_team.get(f"{url}?language=bs"),
                     other_team.post(url, {"language": "bs"})):
        assert response.status_code == 404
        assert "a case you may not see" in other_team.text(response)
    assert other_team.get("/cases/not-a-case/returnee-copy?language=bs").status_code == 404
    for browser in (web_client("coordinator", "gbg"), admin_browser(app, make_web_user, clock)):
        role = browser.user.role if browser.user else "?"
        assert browser.get(url).status_code == 403, role
        assert browser.post(url, {"language": "bs"}).status_code == 403, role
    adviser = web_client("adviser", "gbg")
    assert adviser.get(f"{url}?language=bs").status_code == 200  # reads the case, as on the case page
    assert anonymous.get(url).status_code == 302
    assert counsellor.post(url, {"language": "bs"}, csrf=False).status_code == 400
    assert [e.actor_role for e in audit_entries(app, case["id"]) if e.action == "export"] == ["adviser"]


def test_the_service_holds_what_the_returnee_may_keep(app: Flask, client: Any, counsellor: WebClient,
                                                      token: str, partners: list[str]) -> None:
    case = open_case(client, token, BOSNIAN, SARAJEVO)
    assert counsellor.user is not None
    user = counsellor.user
    who = Actor(user.id, user.username, user.role, user.team)
    config = app.extensions["ccm"].config
    now = dt.datetime(2026, 5, 1, 9, tzinfo=dt.UTC)
    with make_sessionmaker(app.extensions["ccm"].engine)() as session:
        document = returnee_copy(session, who, case["id"], config.stages, now,
                                 partner_names={SARAJEVO: "CLDD Sarajevo"})
        assert document["case"].family_name == "Šehić"
        assert document["plan"]["end_date"] == dt.date(2026, 10, 1)
        assert [a["kind"] for a in document["activities"]] == ["business_course"]
        assert "notes" not in document["activities"][0] and "amount" not in document["activities"][0]
        assert len(document["stages"]) == len(config.stages)
        assert document["consents"][0]["recipients"] == ["CLDD Sarajevo"]
        assert document["counsellor"] is not None and document["counsellor"].startswith("counsellor")
        outsider = Actor(user.id + 1000, "x", "counsellor", "elsewhere")
        with pytest.raises(NotFound):
            returnee_copy(session, outsider, case["id"], config.stages, now, partner_names={})
