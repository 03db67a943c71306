"""The individual plan (milestones as repeated rows, the timeline on the case page) and a stage, in a browser."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import sqlalchemy as sa
from flask import Flask

from node.cases.models import CasePlan, CaseStage
from node.clock import FakeClock
from node.db import make_sessionmaker

from .conftest import WebClient
from .test_cases_pages import new_case, stored


@pytest.fixture
def counsellor(web_client: Callable[..., WebClient]) -> WebClient:
    return web_client("counsellor", "gbg")


def plan_of(engine: sa.Engine, case_id: str) -> CasePlan | None:
    with make_sessionmaker(engine)() as session:
        plan = session.get(CasePlan, case_id)
        if plan is not None:
            session.expunge(plan)
        return plan


def stage_of(engine: sa.Engine, case_id: str, key: str) -> CaseStage:
    with make_sessionmaker(engine)() as session:
        stage = session.scalar(sa.select(CaseStage).where(CaseStage.case_id == case_id, CaseStage.stage_key == key))
        assert stage is not None
        session.expunge(stage)
        return stage


def test_the_plan_with_milestones_and_its_timeline(app: Flask, engine: sa.Engine, clock: FakeClock,
                                                    counsellor: WebClient) -> None:
    assert counsellor.user is not None
    case = new_case(app, engine, clock, counsellor.user)
    url = f"/cases/{case.id}/plan"
    form = counsellor.text(counsellor.get(url))
    assert form.count('name="milestones.') == 3 * 3  # three empty rows (title, date, done)
    today = clock.now().date()
    response = counsellor.post(url, {
        "version": "0", "end_date": today.replace(year=today.year + 1).isoformat(),
        "milestones.0.title": "ID card", "milestones.0.due_date": today.replace(year=today.year - 1).isoformat(),
        "milestones.0.done": "1",
        "milestones.2.title": "Housing found", "milestones.2.due_date": today.replace(year=today.year + 1,
                                                                                      month=1, day=1).isoformat(),
        "milestones.1.title": "", "milestones.1.due_date": ""})
    assert response.status_code == 302, counsellor.text(response)[:2000]
    plan = plan_of(engine, case.id)
    assert plan is not None and [m["title"] for m in plan.milestones] == ["ID card", "Housing found"]
    assert plan.milestones[0]["done"] is True and plan.milestones[1]["done"] is False
    page = counsellor.text(counsellor.get(f"/cases/{case.id}"))
    assert "The plan is saved." in page
    assert "<svg" in page and 'class="timeline-list"' in page
    assert "ID card" in page and "Housing found" in page and "Return date" in page and "Today" in page
    assert "1 of 2 milestones done." in page
    again = counsellor.text(counsellor.get(url))
    assert again.count('name="milestones.') == 5 * 3 and 'value="ID card"' in again


def test_a_milestone_without_a_title_is_refused_on_its_row(app: Flask, engine: sa.Engine, clock: FakeClock,
                                                            counsellor: WebClient) -> None:
    assert counsellor.user is not None
    case = new_case(app, engine, clock, counsellor.user)
    response = counsellor.post(f"/cases/{case.id}/plan", {
        "version": "0", "end_date": "2027-06-01", "milestones.0.title": "Passport",
        "milestones.1.title": "", "milestones.2.title": "", "milestones.2.due_date": "2027-01-01"})
    text = counsellor.text(response)
    assert response.status_code == 422
    assert 'href="#f-milestones-1-title"' in text and "Milestone 2: what" in text
    assert 'value="Passport"' in text and 'value="2027-01-01"' in text
    assert plan_of(engine, case.id) is None


def test_a_stale_plan_shows_both(app: Flask, engine: sa.Engine, clock: FakeClock, counsellor: WebClient) -> None:
    assert counsellor.user is not None
    case = new_case(app, engine, clock, counsellor.user)
    url = f"/cases/{case.id}/plan"
    assert counsellor.post(url, {"version": "0", "milestones.0.title": "Saved one"}).status_code == 302
    stale = counsellor.post(url, {"version": "0", "milestones.0.title": "Typed one"})
    text = counsellor.text(stale)
    assert stale.status_code == 409 and "Someone changed this case" in text
    assert "Saved one" in text and 'value="Typed one"' in text


def test_advance_a_stage_with_a_note(app: Flask, engine: sa.Engine, clock: FakeClock,
                                     counsellor: WebClient, web_client: Callable[..., WebClient]) -> None:
    assert counsellor.user is not None
    case = new_case(app, engine, clock, counsellor.user)
    url = f"/cases/{case.id}/stages/documents"
    page = counsellor.text(counsellor.get(url))
    assert "<h1>Personal documents in the country of origin</h1>" in page and "Stage 1 of 8" in page
    response = counsellor.post(url, {"version": "1", "status": "in_progress", "responsible": "returnee",
                                     "notes": "Passport applied for at the embassy."})
    assert response.status_code == 302
    stage = stage_of(engine, case.id, "documents")
    assert stage.status == "in_progress" and stage.notes == "Passport applied for at the embassy."
    assert stage.started_on == clock.now().date()
    text = counsellor.text(counsellor.get(f"/cases/{case.id}"))
    assert "Stage “Personal documents in the country of origin” saved." in text
    assert "In progress" in text and "Stage updated: Personal documents in the country of origin" in text
    stale = counsellor.post(url, {"version": "1", "status": "done", "responsible": "returnee", "notes": "Mine"})
    assert stale.status_code == 409 and "Passport applied for" in counsellor.text(stale)
    bad = counsellor.post(url, {"version": "2", "status": "finished", "responsible": "returnee",
                                "started_on": "2026-02-02", "completed_on": "2026-01-01", "notes": "kept"})
    text = counsellor.text(bad)
    assert bad.status_code == 422 and 'href="#f-status"' in text and "kept</textarea>" in text
    assert counsellor.get(f"/cases/{case.id}/stages/nosuch").status_code == 404
    assert web_client("coordinator", "gbg").get(url).status_code == 403
    assert web_client("counsellor", "other").get(url).status_code == 404
    assert stored(engine, case.id) is not None
