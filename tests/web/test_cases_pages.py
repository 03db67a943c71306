"""The case pages in a browser (Flask test client): the case list with search, filters and pages; registering
and changing a case; the case page with its stage tracker, plan timeline, handovers and timeline; the print
summary and the subject-access export."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from node.accounts import User
from node.auth import Actor
from node.cases import services
from node.cases.assignees import assignable_users
from node.cases.models import Case
from node.clock import FakeClock
from node.db import make_sessionmaker

from .conftest import WebClient


def stored(engine: sa.Engine, case_id: str | None = None) -> Case | None:
    """The case as the database holds it now (read in a session of its own, closed at once)."""
    with make_sessionmaker(engine)() as session:
        found = session.get(Case, case_id) if case_id else session.scalar(sa.select(Case))
        if found is not None:
            session.expunge(found)
        return found


def count_cases(engine: sa.Engine) -> int:
    with make_sessionmaker(engine)() as session:
        return session.scalar(sa.select(sa.func.count()).select_from(Case)) or 0


def actor_of(user: User) -> Actor:
    return Actor(user.id, user.username, user.role, user.team)


def new_case(app: Flask, engine: sa.Engine, clock: FakeClock, user: User, given: str = "Amra",
             family: str = "Šehić", **more: Any) -> Case:
    config = app.extensions["ccm"].config
    data: dict[str, Any] = {"returnee": {"given_names": given, "family_name": family,
                                         "date_of_birth": dt.date(1990, 3, 27), **more.pop("returnee", {})},
                            "destination_country": more.pop("destination_country", "BA"), **more}
    with make_sessionmaker(engine)() as session:
        case = services.create_case(session, actor_of(user), data, stages=config.stages,
                                    prefix=config.reference_prefix, now=clock.now())
        session.commit()
        session.expunge(case)
    return case


@pytest.fixture
def counsellor(web_client: Callable[..., WebClient]) -> WebClient:
    return web_client("counsellor", "gbg", display_name="Karin Counsellor")


def test_register_a_case_then_see_it_on_its_page(counsellor: WebClient, engine: sa.Engine) -> None:
    form = counsellor.get("/cases/new")
    assert form.status_code == 200
    assert 'name="returnee.given_names"' in counsellor.text(form)
    response = counsellor.post("/cases/new", {
        "returnee.given_names": "Amra", "returnee.family_name": "Šehić", "returnee.date_of_birth": "1990-03-27",
        "returnee.languages": "bs, sv", "returnee.contact.phone": "+46 70 123 45 67",
        "destination_country": "BA", "destination_locality": "Sarajevo"})
    assert response.status_code == 302, counsellor.text(response)[:3000]
    case = stored(engine)
    assert case is not None and case.family_name == "Šehić" and case.languages == ["bs", "sv"]
    page = counsellor.get(response.headers["Location"])
    text = counsellor.text(page)
    assert page.status_code == 200
    assert f"Case {case.reference} registered." in text
    assert "Šehić" in text and "Sarajevo" in text and "Bosnia" in text
    assert text.count("<h1") == 1
    assert "Personal documents in the country of origin" in text  # the stage tracker
    assert 'class="stepper"' in text and 'aria-current="step"' in text
    assert "Not started" in text and "Not filled in yet" in text
    assert "This case has not been handed over." in text


def test_a_validation_error_keeps_what_was_typed(counsellor: WebClient, engine: sa.Engine) -> None:
    response = counsellor.post("/cases/new", {
        "returnee.given_names": "Ḥasan", "returnee.family_name": "", "returnee.family_name_native": "الحسن",
        "returnee.date_of_birth": "2090-01-01", "destination_country": "IQ"})
    text = counsellor.text(response)
    assert response.status_code == 422
    assert "There is a problem" in text
    assert 'value="Ḥasan"' in text and 'value="الحسن"' in text
    assert 'href="#f-returnee-family_name"' in text and "Family name:" in text
    assert count_cases(engine) == 0


def test_the_date_of_birth_in_the_future_is_refused_by_the_service(counsellor: WebClient) -> None:
    response = counsellor.post("/cases/new", {
        "returnee.given_names": "Ana", "returnee.family_name": "B", "returnee.date_of_birth": "2090-01-01",
        "destination_country": "IQ"})
    assert response.status_code == 422
    assert "Must not be in the future." in counsellor.text(response)


def test_csrf_missing_is_refused(counsellor: WebClient, engine: sa.Engine) -> None:
    response = counsellor.post("/cases/new", {
        "returnee.given_names": "Ana", "returnee.family_name": "B", "returnee.date_of_birth": "1990-01-01",
        "destination_country": "IQ"}, csrf=False)
    assert response.status_code == 400
    assert count_cases(engine) == 0


def test_another_teams_counsellor_gets_the_404_page(app: Flask, engine: sa.Engine, clock: FakeClock,
                                                     counsellor: WebClient,
                                                     web_client: Callable[..., WebClient]) -> None:
    assert counsellor.user is not None
    case = new_case(app, engine, clock, counsellor.user)
    other = web_client("counsellor", "stockholm")
    for url in (f"/cases/{case.id}", f"/cases/{case.id}/edit", f"/cases/{case.id}/print",
                f"/cases/{case.id}/export"):
        response = other.get(url)
        assert response.status_code == 404, url
        assert "a case you may not see" in other.text(response)
    listing = other.get("/cases?q=sehic")
    assert "No case matches this search." in other.text(listing)


def test_a_coordinator_gets_403(app: Flask, engine: sa.Engine, clock: FakeClock, counsellor: WebClient,
                                web_client: Callable[..., WebClient]) -> None:
    assert counsellor.user is not None
    case = new_case(app, engine, clock, counsellor.user)
    coordinator = web_client("coordinator", "gbg")
    for url in ("/cases", "/cases/new", f"/cases/{case.id}", f"/cases/{case.id}/edit"):
        response = coordinator.get(url)
        assert response.status_code == 403, url
        assert "Your role does not allow this" in coordinator.text(response)


def test_search_ignores_accents_and_reads_arabic(app: Flask, engine: sa.Engine, clock: FakeClock,
                                                 counsellor: WebClient) -> None:
    assert counsellor.user is not None
    new_case(app, engine, clock, counsellor.user, "Amra", "Šehić")
    new_case(app, engine, clock, counsellor.user, "Mohammed", "Al-Hassan", destination_country="IQ",
             returnee={"given_names_native": "مُحَمَّد", "family_name_native": "الحسن"})
    text = counsellor.text(counsellor.get("/cases?q=sehic"))
    assert "Šehić" in text and "Al-Hassan" not in text
    assert "Showing 1–1 of 1 cases" in text
    text = counsellor.text(counsellor.get("/cases?q=محمد"))
    assert "Al-Hassan" in text and "Šehić" not in text
    assert 'dir="auto"' in text
    text = counsellor.text(counsellor.get("/cases?destination=IQ"))
    assert "Al-Hassan" in text and "Šehić" not in text


def test_search_by_reference(app: Flask, engine: sa.Engine, clock: FakeClock, counsellor: WebClient) -> None:
    assert counsellor.user is not None
    first = new_case(app, engine, clock, counsellor.user, "Amra", "Šehić")
    new_case(app, engine, clock, counsellor.user, "Emir", "Hodžić")
    text = counsellor.text(counsellor.get(f"/cases?q={first.reference.lower()}"))
    assert "Šehić" in text and "Hodžić" not in text


def test_paging_20_a_page(app: Flask, engine: sa.Engine, clock: FakeClock, counsellor: WebClient) -> None:
    assert counsellor.user is not None
    for i in range(45):
        new_case(app, engine, clock, counsellor.user, f"Person{i:02d}", "Test")
        clock.advance(seconds=1)
    first = counsellor.text(counsellor.get("/cases?status=open"))
    assert "Showing 1–20 of 45 cases" in first
    assert "Person44" in first and "Person24" not in first
    assert "Next page" in first and "Previous page" not in first
    assert "status=open" in first and "page=2" in first
    third = counsellor.text(counsellor.get("/cases?status=open&page=3"))
    assert "Showing 41–45 of 45 cases" in third and "Person00" in third and "Next page" not in third
    beyond = counsellor.text(counsellor.get("/cases?page=9"))
    assert "There are no cases on this page" in beyond


def test_a_long_list_is_counted_only_to_its_limit(app: Flask, engine: sa.Engine, clock: FakeClock,
                                                  counsellor: WebClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past COUNT_LIMIT matches the list says "more than" and offers a next page without counting them all."""
    from node.web import cases as case_pages
    monkeypatch.setattr(case_pages, "COUNT_LIMIT", 30)
    assert counsellor.user is not None
    for i in range(45):
        new_case(app, engine, clock, counsellor.user, f"Person{i:02d}", "Test")
        clock.advance(seconds=1)
    first = counsellor.text(counsellor.get("/cases"))
    assert "Showing 1–20 of more than 30 cases" in first
    assert "Page 1<" in first and "Page 1 of" not in first and "page=2" in first
    second = counsellor.text(counsellor.get("/cases?page=2"))
    assert "Showing 21–40 of more than 40 cases" in second and "page=3" in second
    third = counsellor.text(counsellor.get("/cases?page=3"))  # counted to the end of page 3 (60): exact
    assert "Showing 41–45 of 45 cases" in third and "Page 3 of 3" in third and "Next page" not in third


def test_an_invalid_filter_shows_the_form_with_the_message(counsellor: WebClient) -> None:
    response = counsellor.get("/cases?status=nonsense&page=0&destination=XX")
    text = counsellor.text(response)
    assert response.status_code == 422
    assert "There is a problem" in text and 'href="#f-status"' in text and 'href="#f-destination"' in text
    response = counsellor.get("/cases?stage=nosuchstage")
    assert response.status_code == 422 and "Unknown stage key" in counsellor.text(response)
    response = counsellor.get("/cases?partner=nobody.example")
    assert response.status_code == 422 and "Choose a partner from the list." in counsellor.text(response)


def test_the_partner_filter(app: Flask, engine: sa.Engine, clock: FakeClock, counsellor: WebClient,
                            partners: list[str]) -> None:
    assert counsellor.user is not None
    new_case(app, engine, clock, counsellor.user)
    text = counsellor.text(counsellor.get(f"/cases?partner={partners[0]}"))
    assert "No case matches this search." in text  # not handed over to anyone yet
    assert f'value="{partners[0]}" selected' in text


def test_edit_a_case_and_the_stale_version_shows_both(app: Flask, engine: sa.Engine, clock: FakeClock,
                                                      counsellor: WebClient) -> None:
    assert counsellor.user is not None
    case = new_case(app, engine, clock, counsellor.user, returnee={"contact": {"phone": "+46 1"}})
    form = counsellor.get(f"/cases/{case.id}/edit")
    assert form.status_code == 200 and 'name="version" value="1"' in counsellor.text(form)
    fields = {"version": "1", "status": "open", "returnee.given_names": "Amra", "returnee.family_name": "Šehić",
              "returnee.date_of_birth": "1990-03-27", "returnee.contact.phone": "",
              "destination_country": "BA", "destination_locality": "Mostar", "team": "gbg",
              "assigned_user_id": str(counsellor.user.id)}
    response = counsellor.post(f"/cases/{case.id}/edit", fields)
    assert response.status_code == 302, counsellor.text(response)[:2000]
    saved = stored(engine, case.id)
    assert saved is not None and saved.destination_locality == "Mostar" and saved.phone is None
    assert saved.version == 2
    # a second edit made on the page of version 1
    stale = counsellor.post(f"/cases/{case.id}/edit", {**fields, "destination_locality": "Tuzla"})
    text = counsellor.text(stale)
    assert stale.status_code == 409
    assert "Someone changed this case while you were editing" in text
    assert 'value="Tuzla"' in text and "Mostar" in text  # what was typed, and the saved version
    assert 'name="version" value="2"' in text
    assert stored(engine, case.id).destination_locality == "Mostar"  # type: ignore[union-attr]
    again = counsellor.post(f"/cases/{case.id}/edit", {**fields, "version": "2", "destination_locality": "Tuzla"})
    assert again.status_code == 302


def test_edit_validation_error_names_the_field(app: Flask, engine: sa.Engine, clock: FakeClock,
                                               counsellor: WebClient) -> None:
    assert counsellor.user is not None
    case = new_case(app, engine, clock, counsellor.user)
    response = counsellor.post(f"/cases/{case.id}/edit", {
        "version": "1", "status": "open", "returnee.given_names": "", "returnee.family_name": "Šehić Typed",
        "returnee.date_of_birth": "1990-03-27", "destination_country": "BA", "returnee.contact.email": "nope"})
    text = counsellor.text(response)
    assert response.status_code == 422
    assert 'href="#f-returnee-given_names"' in text and 'href="#f-returnee-contact-email"' in text
    assert 'value="Šehić Typed"' in text


def test_print_and_export(app: Flask, engine: sa.Engine, clock: FakeClock, counsellor: WebClient,
                          web_client: Callable[..., WebClient]) -> None:
    assert counsellor.user is not None
    case = new_case(app, engine, clock, counsellor.user)
    printed = counsellor.get(f"/cases/{case.id}/print")
    text = counsellor.text(printed)
    assert printed.status_code == 200 and "Case summary" in text and "Šehić" in text and "Case registered" in text
    export = counsellor.get(f"/cases/{case.id}/export")
    assert export.status_code == 200
    assert export.headers["Content-Disposition"] == (
        f'attachment; filename="{case.reference}-subject-access-export.json"')
    document = json.loads(export.get_data())
    assert document["case"]["reference"] == case.reference
    assert document["case"]["returnee"]["family_name"] == "Šehić"
    assert "disclosures" in document and "timeline" in document
    adviser = web_client("adviser", "gbg")
    assert adviser.get(f"/cases/{case.id}/export").status_code == 403  # advisers may not export
    page = adviser.text(adviser.get(f"/cases/{case.id}"))
    assert "Export (subject access)" not in page and "Hand over" not in page and "Record progress" in page


def test_the_case_page_in_arabic(app: Flask, engine: sa.Engine, clock: FakeClock, counsellor: WebClient) -> None:
    assert counsellor.user is not None
    case = new_case(app, engine, clock, counsellor.user, "Mohammed", "Al-Hassan", destination_country="IQ",
                    returnee={"given_names_native": "محمد", "family_name_native": "الحسن"})
    response = counsellor.get(f"/cases/{case.id}", headers={"Accept-Language": "ar"})
    text = counsellor.text(response)
    assert response.status_code == 200
    assert 'dir="rtl"' in text and "الحسن" in text and "العراق" in text


def test_assignable_users(engine: sa.Engine, make_web_user: Callable[..., User]) -> None:
    me = make_web_user("counsellor", "gbg", display_name="Zoran")
    make_web_user("adviser", "sarajevo", display_name="Adela")
    make_web_user("coordinator", "gbg", display_name="Cora")
    make_web_user("counsellor", "gbg", display_name="Gone", active=False)
    with make_sessionmaker(engine)() as session:
        people = assignable_users(session, actor_of(me))
    assert [p.name for p in people] == ["Zoran", "Adela"]  # own team first; active case workers only
