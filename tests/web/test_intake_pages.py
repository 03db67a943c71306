"""The intake in sections and the household members in a browser (Flask test client)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import sqlalchemy as sa
from flask import Flask

from node.cases.models import HouseholdMember, IntakeSection
from node.clock import FakeClock
from node.db import make_sessionmaker

from .conftest import WebClient
from .test_cases_pages import new_case


@pytest.fixture
def counsellor(web_client: Callable[..., WebClient]) -> WebClient:
    return web_client("counsellor", "gbg")


def section_row(engine: sa.Engine, case_id: str, name: str) -> IntakeSection | None:
    with make_sessionmaker(engine)() as session:
        row = session.get(IntakeSection, (case_id, name))
        if row is not None:
            session.expunge(row)
        return row


def members(engine: sa.Engine, case_id: str) -> list[HouseholdMember]:
    with make_sessionmaker(engine)() as session:
        rows = list(session.scalars(sa.select(HouseholdMember).where(HouseholdMember.case_id == case_id)))
        session.expunge_all()
        return rows


def test_each_section_is_saved_on_its_own(app: Flask, engine: sa.Engine, clock: FakeClock,
                                          counsellor: WebClient) -> None:
    assert counsellor.user is not None
    case = new_case(app, engine, clock, counsellor.user)
    page = counsellor.get(f"/cases/{case.id}/intake/family")
    text = counsellor.text(page)
    assert page.status_code == 200 and "<h1>Household and family</h1>" in text
    assert 'name="marital_status"' in text and 'name="number_of_children"' in text and 'name="skills"' not in text
    response = counsellor.post(f"/cases/{case.id}/intake/family", {
        "version": "0", "marital_status": "married", "number_of_children": "2", "text": "Två barn, 4 och 7 år.",
        "then": "next"})
    assert response.status_code == 302 and response.headers["Location"].endswith("/intake/health")
    row = section_row(engine, case.id, "family")
    assert row is not None and row.data == {"marital_status": "married", "number_of_children": 2}
    assert row.text == "Två barn, 4 och 7 år."
    work = counsellor.post(f"/cases/{case.id}/intake/work", {
        "version": "0", "occupations": "Carpenter\n\nBaker", "skills": "Welding", "text": ""})
    assert work.status_code == 302
    row = section_row(engine, case.id, "work")
    assert row is not None and row.data == {"occupations": ["Carpenter", "Baker"], "skills": ["Welding"]}
    overview = counsellor.text(counsellor.get(f"/cases/{case.id}"))
    assert overview.count("Filled in") == 2 and overview.count("Not filled in yet") == 5
    again = counsellor.text(counsellor.get(f"/cases/{case.id}/intake/work"))
    assert "Carpenter\nBaker</textarea>" in again


def test_a_validation_error_keeps_everything_typed(app: Flask, engine: sa.Engine, clock: FakeClock,
                                                   counsellor: WebClient) -> None:
    assert counsellor.user is not None
    case = new_case(app, engine, clock, counsellor.user)
    response = counsellor.post(f"/cases/{case.id}/intake/family", {
        "version": "0", "marital_status": "married", "number_of_children": "99", "text": "Långt svar som ska stå kvar"})
    text = counsellor.text(response)
    assert response.status_code == 422
    assert 'href="#f-number_of_children"' in text and "Number of children:" in text
    assert 'value="99"' in text and "Långt svar som ska stå kvar</textarea>" in text
    assert '<option value="married" selected>' in text
    assert section_row(engine, case.id, "family") is None


def test_a_stale_section_shows_both_versions(app: Flask, engine: sa.Engine, clock: FakeClock,
                                             counsellor: WebClient) -> None:
    assert counsellor.user is not None
    case = new_case(app, engine, clock, counsellor.user)
    assert counsellor.post(f"/cases/{case.id}/intake/health", {"version": "0", "text": "First"}).status_code == 302
    stale = counsellor.post(f"/cases/{case.id}/intake/health", {"version": "0", "text": "Mine, typed"})
    text = counsellor.text(stale)
    assert stale.status_code == 409
    assert "Someone changed this case while you were editing" in text
    assert "Mine, typed</textarea>" in text and ">First</p>" in text and 'name="version" value="1"' in text


def test_an_unknown_section_and_other_teams(app: Flask, engine: sa.Engine, clock: FakeClock,
                                            counsellor: WebClient, web_client: Callable[..., WebClient]) -> None:
    assert counsellor.user is not None
    case = new_case(app, engine, clock, counsellor.user)
    assert counsellor.get(f"/cases/{case.id}/intake/nonsense").status_code == 404
    other = web_client("counsellor", "elsewhere")
    assert other.get(f"/cases/{case.id}/intake/health").status_code == 404
    assert other.get(f"/cases/{case.id}/household").status_code == 404
    coordinator = web_client("coordinator", "gbg")
    assert coordinator.get(f"/cases/{case.id}/intake/health").status_code == 403
    assert counsellor.post(f"/cases/{case.id}/intake/health", {"version": "0", "text": "x"},
                           csrf=False).status_code == 400


def test_household_add_change_remove(app: Flask, engine: sa.Engine, clock: FakeClock,
                                     counsellor: WebClient) -> None:
    assert counsellor.user is not None
    case = new_case(app, engine, clock, counsellor.user)
    url = f"/cases/{case.id}/household"
    assert "No household members recorded yet." in counsellor.text(counsellor.get(url))
    bad = counsellor.post(url, {"action": "add", "relation": "child", "given_names": "Lejla",
                                "date_of_birth": "2999-01-01"})
    assert bad.status_code == 422 and 'value="Lejla"' in counsellor.text(bad)
    added = counsellor.post(url, {"action": "add", "relation": "child", "given_names": "Lejla",
                                  "date_of_birth": "2018-05-01", "travelling": "1"})
    assert added.status_code == 302
    [member] = members(engine, case.id)
    assert member.given_names == "Lejla" and member.travelling is True
    page = counsellor.text(counsellor.get(url))
    assert "Household member added." in page and "Lejla" in page
    form = counsellor.text(counsellor.get(f"{url}?member={member.id}"))
    assert "Change a household member" in form and 'value="2018-05-01"' in form
    changed = counsellor.post(url, {"action": "update", "member_id": member.id, "version": "1",
                                    "relation": "child", "given_names": "Lejla", "date_of_birth": ""})
    assert changed.status_code == 302
    [member] = members(engine, case.id)
    assert member.date_of_birth is None and member.travelling is False
    stale = counsellor.post(url, {"action": "update", "member_id": member.id, "version": "1",
                                  "relation": "child", "given_names": "Lejla B"})
    assert stale.status_code == 409 and "Someone changed this case" in counsellor.text(stale)
    removed = counsellor.post(url, {"action": "remove", "member_id": member.id, "version": "2"})
    assert removed.status_code == 302 and members(engine, case.id) == []
