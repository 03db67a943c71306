"""Demo data (realistic, complete, reproducible, readable through the API) and the coordinators' report."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from node.audit import AuditEntry
from node.cases.demo import generate_demo_cases
from node.cases.models import (
    Case,
    CaseEvent,
    CaseStage,
    ChildSafeguards,
    Consent,
    Intervention,
    ProgressNote,
)
from node.config import DEFAULT_STAGES
from tests.cases.casedata import create_case, minimal_case

STAGE_KEYS = tuple(key for key, _ in DEFAULT_STAGES)
ARABIC = re.compile("[\u0600-\u06ff]")


@pytest.fixture
def demo(db_session, counsellor, clock):
    made = generate_demo_cases(
        db_session,
        count=300,
        now=clock.now(),
        seed=7,
        counsellor_ids=[counsellor.user.id],
        stage_keys=STAGE_KEYS,
        prefix="GI",
    )
    db_session.commit()
    return made


def test_demo_cases_are_complete_and_realistic(demo, db_session, clock):
    assert demo == 300
    cases = db_session.scalars(sa.select(Case)).all()
    assert len(cases) == 300 and len({c.reference for c in cases}) == 300
    assert {c.current_stage for c in cases} == {*STAGE_KEYS, None}
    assert {c.status for c in cases} == {"open", "handed_over", "in_reintegration", "closed"}
    assert {c.destination_country for c in cases} == {"BA", "IQ", "GH"}
    names = " ".join(f"{c.given_names} {c.family_name}" for c in cases)
    assert set("čćđšž") & set(names.lower()) == set("čćđšž")
    assert any(ARABIC.search(c.family_name_native or "") for c in cases)
    assert any(
        c.family_name in ("Mensah", "Kpodo", "Quaye", "Tetteh") or c.destination_country == "GH"
        for c in cases
    )
    children = [c for c in cases if c.child_at_intake]
    assert children
    assert db_session.scalar(sa.select(sa.func.count()).select_from(ChildSafeguards)) > 0
    for model in (Consent, Intervention, ProgressNote):
        assert db_session.scalar(sa.select(sa.func.count()).select_from(model)) > 0, model
    assert db_session.scalar(sa.select(sa.func.count()).select_from(CaseStage)) == 300 * len(STAGE_KEYS)
    latest = db_session.scalar(sa.select(sa.func.max(CaseEvent.occurred_at)))
    assert latest <= clock.now()
    entries = db_session.scalars(sa.select(AuditEntry)).all()
    assert [(e.action, e.object_type) for e in entries] == [("create", "demo_data")]


def test_demo_data_is_reproducible(db_session, counsellor, clock):
    def names() -> list[tuple[str, str]]:
        rows = db_session.execute(sa.select(Case.given_names, Case.family_name).order_by(Case.created_at))
        return [tuple(row) for row in rows]

    generate_demo_cases(
        db_session,
        count=20,
        now=clock.now(),
        seed=3,
        counsellor_ids=[counsellor.user.id],
        stage_keys=STAGE_KEYS,
        prefix="GI",
    )
    first = names()
    db_session.execute(sa.delete(Case))
    generate_demo_cases(
        db_session,
        count=20,
        now=clock.now(),
        seed=3,
        counsellor_ids=[counsellor.user.id],
        stage_keys=STAGE_KEYS,
        prefix="GI",
    )
    assert names() == first
    db_session.rollback()


def test_demo_cases_can_be_searched_and_read(demo, client, counsellor, db_session):
    case_id, native = db_session.execute(
        sa.select(Case.id, Case.family_name_native).where(Case.family_name_native.is_not(None)).limit(1)
    ).one()
    db_session.rollback()
    found = client.get(f"/api/v1/cases?q={native}&per_page=100", headers=counsellor.headers).get_json()
    assert case_id in [item["id"] for item in found["items"]]
    timeline = client.get(f"/api/v1/cases/{case_id}/timeline", headers=counsellor.headers).get_json()["items"]
    assert timeline[0]["kind"] == "case.created"
    assert [e["occurred_at"] for e in timeline] == sorted(e["occurred_at"] for e in timeline)
    for path in (
        "",
        "/stages",
        "/consents",
        "/interventions",
        "/notes",
        "/household",
        "/intake",
        "/plan",
        "/child-safeguards",
        "/export",
    ):
        assert client.get(f"/api/v1/cases/{case_id}{path}", headers=counsellor.headers).status_code == 200


def test_demo_refuses_nonsense(db_session, clock):
    with pytest.raises(ValueError, match="counsellors"):
        generate_demo_cases(
            db_session,
            count=1,
            now=clock.now(),
            seed=1,
            counsellor_ids=[],
            stage_keys=STAGE_KEYS,
            prefix="GI",
        )


def test_report_counts_without_personal_data(client, counsellor, staff):
    coordinator = staff("coordinator")
    create_case(client, counsellor)
    create_case(
        client, counsellor, minimal_case(returnee={"date_of_birth": "2012-01-01"}, destination_country="IQ")
    )
    report = client.get("/api/v1/reports/summary", headers=coordinator.headers)
    assert report.status_code == 200
    data = report.get_json()
    assert data["total"] == 2 and data["children"] == 1 and data["adults"] == 1
    assert data["by_status"] == {"open": 2, "handed_over": 0, "in_reintegration": 0, "closed": 0}
    assert data["by_destination"] == {"BA": 1, "IQ": 1}
    assert data["by_current_stage"] == {"documents": 2}
    assert data["by_stage_status"]["housing"] == {"not_started": 2}
    text = report.get_data(as_text=True)
    assert "Hadžić" not in text and "Amina" not in text and "1990" not in text


def test_report_permissions(client, staff):
    for role in ("admin", "coordinator", "counsellor", "adviser"):
        assert client.get("/api/v1/reports/summary", headers=staff(role).headers).status_code == 200
    assert client.get("/api/v1/reports/summary").status_code == 401
