"""A stage's due date through the API: set, shown, changed with other fields, cleared, validated, recorded."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from node.audit import AuditEntry
from node.cases.models import CaseEvent
from tests.cases.casedata import create_case, if_match

pytestmark = pytest.mark.usefixtures("partners")  # a consent names only partners of the node


def test_a_due_date_is_set_shown_and_cleared(client, counsellor, db_session):
    case = create_case(client, counsellor)
    url = f"/api/v1/cases/{case['id']}/stages/housing"
    assert client.get(url, headers=counsellor.headers).get_json()["due_on"] is None

    set_ = client.patch(url, headers=if_match(counsellor, 1), json={"due_on": "2026-12-01"})
    assert set_.status_code == 200 and set_.headers["ETag"] == '"2"'
    stage = set_.get_json()
    assert (stage["due_on"], stage["status"], stage["started_on"], stage["version"]) == (
        "2026-12-01", "not_started", None, 2)
    listed = client.get(f"/api/v1/cases/{case['id']}/stages", headers=counsellor.headers).get_json()["items"]
    assert {s["key"]: s["due_on"] for s in listed}["housing"] == "2026-12-01"
    assert {s["due_on"] for s in listed if s["key"] != "housing"} == {None}

    moved = client.patch(url, headers=if_match(counsellor, 2), json={"due_on": "2026-12-15", "status": "in_progress"})
    assert moved.status_code == 200
    assert (moved.get_json()["due_on"], moved.get_json()["started_on"]) == ("2026-12-15", "2026-11-23")
    same = client.patch(url, headers=if_match(counsellor, 3), json={"due_on": "2026-12-15"})
    assert same.status_code == 200 and same.get_json()["version"] == 3  # nothing changed, nothing recorded

    cleared = client.patch(url, headers=if_match(counsellor, 3), json={"due_on": None})
    assert cleared.status_code == 200
    assert (cleared.get_json()["due_on"], cleared.get_json()["version"]) == (None, 4)
    assert client.get(url, headers=counsellor.headers).get_json()["due_on"] is None

    audits = db_session.scalars(sa.select(AuditEntry.detail).where(
        AuditEntry.action == "update", AuditEntry.object_type == "stage").order_by(AuditEntry.seq)).all()
    assert [json.loads(d or "") for d in audits] == [
        {"fields": ["due_on"]}, {"fields": ["due_on", "started_on", "status"]}, {"fields": ["due_on"]}]
    events = db_session.scalars(sa.select(CaseEvent.detail).where(
        CaseEvent.case_id == case["id"], CaseEvent.kind == "stage.updated").order_by(CaseEvent.id)).all()
    assert [e["fields"] for e in events] == [["due_on"], ["due_on", "started_on", "status"], ["due_on"]]


def test_a_due_date_on_any_unfinished_stage_and_a_bad_one_refused(client, counsellor):
    case = create_case(client, counsellor)
    base = f"/api/v1/cases/{case['id']}/stages"
    past = client.patch(f"{base}/documents", headers=if_match(counsellor, 1),
                        json={"due_on": "2026-11-01", "status": "in_progress"})
    assert past.status_code == 200 and past.get_json()["due_on"] == "2026-11-01"  # already overdue: allowed
    for bad in ("2026-13-01", "next week", "1899-12-31", 20261201):
        response = client.patch(f"{base}/housing", headers=if_match(counsellor, 1), json={"due_on": bad})
        assert response.status_code == 422 and "due_on" in response.get_json()["errors"], bad
    done = client.patch(f"{base}/documents", headers=if_match(counsellor, 2), json={"status": "done"})
    assert done.get_json()["due_on"] == "2026-11-01"  # finishing a stage keeps the date it was due by
