"""A case's records through the API: household, intake sections, plan, stages, interventions, notes, and the
timeline they leave."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from node.audit import AuditEntry
from node.cases.models import Case, CaseStage
from tests.cases.casedata import create_case, full_case, if_match

pytestmark = pytest.mark.usefixtures("partners")  # a consent names only partners of the node


def test_household_add_change_remove(client, counsellor):
    case = create_case(client, counsellor)
    base = f"/api/v1/cases/{case['id']}/household"
    response = client.post(
        base,
        headers=counsellor.headers,
        json={"relation": "child", "given_names": "Emina", "date_of_birth": "2016-03-01"},
    )
    assert response.status_code == 201 and response.headers["ETag"] == '"1"'
    member = response.get_json()
    assert member["travelling"] is False
    changed = client.patch(
        f"{base}/{member['id']}", headers=if_match(counsellor, 1), json={"travelling": True}
    )
    assert changed.status_code == 200 and changed.get_json()["version"] == 2
    stale = client.delete(f"{base}/{member['id']}", headers=if_match(counsellor, 1))
    assert stale.status_code == 412
    assert client.delete(f"{base}/{member['id']}", headers=counsellor.headers).status_code == 428
    assert client.delete(f"{base}/{member['id']}", headers=if_match(counsellor, 2)).status_code == 204
    assert client.get(base, headers=counsellor.headers).get_json() == {"items": []}
    assert (
        client.patch(
            f"{base}/{member['id']}", headers=if_match(counsellor, 2), json={"travelling": False}
        ).status_code
        == 404
    )


def test_household_refuses_a_future_birth_and_unknown_relation(client, counsellor):
    case = create_case(client, counsellor)
    base = f"/api/v1/cases/{case['id']}/household"
    assert (
        client.post(
            base, headers=counsellor.headers, json={"relation": "child", "date_of_birth": "2030-01-01"}
        ).status_code
        == 422
    )
    response = client.post(base, headers=counsellor.headers, json={"relation": "cousin-in-law"})
    assert response.status_code == 422 and "relation" in response.get_json()["errors"]


def test_intake_sections_start_empty_at_version_0(client, counsellor):
    case = create_case(client, counsellor)
    items = client.get(f"/api/v1/cases/{case['id']}/intake", headers=counsellor.headers).get_json()["items"]
    assert [s["section"] for s in items] == [
        "family",
        "health",
        "background",
        "education",
        "work",
        "wishes",
        "future_work",
    ]
    assert all(s["version"] == 0 and s["text"] is None for s in items)
    work = next(s for s in items if s["section"] == "work")
    assert work["occupations"] == [] and "marital_status" not in work


def test_intake_section_first_write_and_conflicts(client, counsellor):
    case = create_case(client, counsellor)
    url = f"/api/v1/cases/{case['id']}/intake/education"
    assert client.put(url, headers=counsellor.headers, json={"text": "x"}).status_code == 428
    assert client.put(url, headers=if_match(counsellor, 1), json={"text": "x"}).status_code == 412
    response = client.put(
        url, headers=if_match(counsellor, 0), json={"text": "Gymnasium", "education_level": 3}
    )
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["version"] == 1 and response.headers["ETag"] == '"1"'
    again = client.put(url, headers=counsellor.headers, json={"version": 0, "text": "Other"})
    assert again.status_code == 409
    replaced = client.put(url, headers=if_match(counsellor, 1), json={"text": "Gymnasium, two years"})
    assert replaced.get_json()["education_level"] is None  # PUT replaces the section
    got = client.get(url, headers=counsellor.headers)
    assert got.headers["ETag"] == '"2"' and got.get_json()["text"] == "Gymnasium, two years"


def test_intake_refuses_fields_of_other_sections_and_unknown_sections(client, counsellor):
    case = create_case(client, counsellor)
    response = client.put(
        f"/api/v1/cases/{case['id']}/intake/health",
        headers=if_match(counsellor, 0),
        json={"text": "ok", "skills": ["x"]},
    )
    assert response.status_code == 422
    assert response.get_json()["errors"] == {"skills": ["Not a field of the 'health' section."]}
    response = client.put(
        f"/api/v1/cases/{case['id']}/intake/hobbies", headers=if_match(counsellor, 0), json={"text": "x"}
    )
    assert response.status_code == 422 and "section" in response.get_json()["errors"]


def test_plan_replace_and_timeline(client, counsellor):
    case = create_case(client, counsellor)
    url = f"/api/v1/cases/{case['id']}/plan"
    plan = client.get(url, headers=counsellor.headers)
    assert plan.get_json() == {"end_date": None, "milestones": [], "updated_at": None, "version": 0}
    body = {
        "end_date": "2027-05-01",
        "milestones": [{"title": "ID card", "due_date": "2027-01-10"}, {"title": "Flat found", "done": True}],
    }
    written = client.put(url, headers=if_match(counsellor, 0), json=body)
    assert written.status_code == 200
    assert written.get_json()["milestones"][0] == {
        "title": "ID card",
        "due_date": "2027-01-10",
        "done": False,
    }
    body["milestones"][0]["done"] = True
    assert client.put(url, headers=if_match(counsellor, 1), json=body).get_json()["version"] == 2
    events = client.get(f"/api/v1/cases/{case['id']}/timeline", headers=counsellor.headers).get_json()[
        "items"
    ]
    plan_events = [e for e in events if e["kind"] == "plan.updated"]
    assert [e["detail"] for e in plan_events] == [
        {"fields": ["end_date", "milestones"], "milestones": 2, "milestones_done": 1},
        {"fields": ["milestones"], "milestones": 2, "milestones_done": 2},
    ]


def test_stage_update_sets_dates_and_moves_the_current_stage(client, counsellor, clock):
    case = create_case(client, counsellor)
    url = f"/api/v1/cases/{case['id']}/stages/documents"
    stage = client.get(url, headers=counsellor.headers)
    assert stage.headers["ETag"] == '"1"' and stage.get_json()["title"].startswith("Personal documents")
    started = client.patch(url, headers=if_match(counsellor, 1), json={"status": "in_progress"}).get_json()
    assert started["started_on"] == "2026-11-23" and started["completed_on"] is None
    clock.advance(days=3)
    done = client.patch(
        url,
        headers=if_match(counsellor, 2),
        json={"status": "done", "responsible": "returnee", "notes": "Passport issued"},
    ).get_json()
    assert done["completed_on"] == "2026-11-26" and done["started_on"] == "2026-11-23"
    read = client.get(f"/api/v1/cases/{case['id']}", headers=counsellor.headers).get_json()
    assert read["current_stage"] == "housing"
    assert read["version"] == 1  # stage work is not an edit of the case
    assert read["updated_at"] == "2026-11-26T09:00:00+00:00"


def test_stage_errors(client, counsellor):
    case = create_case(client, counsellor)
    base = f"/api/v1/cases/{case['id']}/stages"
    response = client.patch(f"{base}/nonexistent", headers=if_match(counsellor, 1), json={"status": "done"})
    assert response.status_code == 422 and "stage" in response.get_json()["errors"]
    response = client.patch(
        f"{base}/housing",
        headers=if_match(counsellor, 1),
        json={"started_on": "2026-11-20", "completed_on": "2026-11-01"},
    )
    assert response.status_code == 422 and "completed_on" in response.get_json()["errors"]
    response = client.patch(
        f"{base}/housing",
        headers=if_match(counsellor, 1),
        json={"completed_on": "2026-11-01", "started_on": None},
    )
    assert response.status_code == 200
    response = client.patch(
        f"{base}/housing", headers=if_match(counsellor, 2), json={"started_on": "2026-11-20"}
    )
    assert response.status_code == 422
    assert (
        client.patch(f"{base}/housing", headers=if_match(counsellor, 1), json={"status": "done"}).status_code
        == 412
    )


def test_when_every_stage_is_done_there_is_no_current_stage(client, counsellor):
    case = create_case(client, counsellor)
    stages = client.get(f"/api/v1/cases/{case['id']}/stages", headers=counsellor.headers).get_json()["items"]
    for stage in stages:
        status = "not_applicable" if stage["key"] == "education" else "done"
        response = client.patch(
            f"/api/v1/cases/{case['id']}/stages/{stage['key']}",
            headers=if_match(counsellor, stage["version"]),
            json={"status": status},
        )
        assert response.status_code == 200
    assert (
        client.get(f"/api/v1/cases/{case['id']}", headers=counsellor.headers).get_json()["current_stage"]
        is None
    )


def test_interventions(client, counsellor, staff):
    adviser = staff("adviser", team="gbg")
    case = create_case(client, counsellor)
    base = f"/api/v1/cases/{case['id']}/interventions"
    response = client.post(
        base,
        headers=adviser.headers,
        json={
            "kind": "business_course",
            "provider": "Start-up centre Tuzla",
            "amount": "1500.50",
            "currency": "bam",
            "start_date": "2027-01-10",
            "end_date": "2027-03-10",
        },
    )
    assert response.status_code == 201, response.get_json()
    item = response.get_json()
    assert item["amount"] == "1500.50" and item["currency"] == "BAM" and item["status"] == "proposed"
    assert item["author"] == adviser.user.username
    changed = client.patch(
        f"{base}/{item['id']}", headers=if_match(adviser, 1), json={"status": "in_progress", "amount": 2000}
    )
    assert changed.status_code == 200 and changed.get_json()["amount"] == "2000.00"
    bad = client.patch(f"{base}/{item['id']}", headers=if_match(adviser, 2), json={"end_date": "2026-12-01"})
    assert bad.status_code == 422 and "end_date" in bad.get_json()["errors"]
    assert client.get(f"{base}/{item['id']}", headers=adviser.headers).headers["ETag"] == '"2"'
    listed = client.get(base, headers=counsellor.headers).get_json()["items"]
    assert [i["status"] for i in listed] == ["in_progress"]


def test_intervention_validation(client, counsellor):
    case = create_case(client, counsellor)
    base = f"/api/v1/cases/{case['id']}/interventions"
    for body, field in (
        ({"kind": "job", "amount": 10}, "currency"),
        ({"kind": "job", "amount": "1.005", "currency": "SEK"}, "amount"),
        ({"kind": "job", "amount": -1, "currency": "SEK"}, "amount"),
        ({"kind": "job", "amount": "NaN", "currency": "SEK"}, "amount"),
        ({"kind": "job", "amount": 1e300, "currency": "SEK"}, "amount"),
        ({"kind": "job", "currency": "XYZ"}, "currency"),
        ({"kind": "lottery"}, "kind"),
    ):
        response = client.post(base, headers=counsellor.headers, json=body)
        assert response.status_code == 422, body
        assert field in response.get_json()["errors"], body


def test_notes_with_stage_changes(client, counsellor, db_session):
    case = create_case(client, counsellor)
    base = f"/api/v1/cases/{case['id']}/notes"
    response = client.post(
        base,
        headers=counsellor.headers,
        json={
            "text": "Passport application submitted.",
            "stage_changes": [
                {"stage": "documents", "status": "in_progress", "version": 1},
                {"stage": "housing", "status": "in_progress", "version": 1},
            ],
        },
    )
    assert response.status_code == 201, response.get_json()
    note = response.get_json()
    assert note["stage_changes"] == [
        {"stage": "documents", "status": "in_progress", "previous_status": "not_started"},
        {"stage": "housing", "status": "in_progress", "previous_status": "not_started"},
    ]
    assert note["author"] == counsellor.user.username
    stale = client.post(
        base,
        headers=counsellor.headers,
        json={
            "text": "Housing found.",
            "stage_changes": [
                {"stage": "documents", "status": "done", "version": 2},
                {"stage": "housing", "status": "done", "version": 1},
            ],
        },
    )
    assert stale.status_code == 409
    notes = client.get(base, headers=counsellor.headers).get_json()["items"]
    assert len(notes) == 1
    statuses = dict(
        db_session.execute(
            sa.select(CaseStage.stage_key, CaseStage.status).where(CaseStage.case_id == case["id"])
        ).all()
    )
    assert statuses["documents"] == "in_progress" and statuses["housing"] == "in_progress"


def test_note_stage_change_errors(client, counsellor):
    case = create_case(client, counsellor)
    base = f"/api/v1/cases/{case['id']}/notes"
    unknown = client.post(
        base,
        headers=counsellor.headers,
        json={"text": "x", "stage_changes": [{"stage": "moon", "status": "done", "version": 1}]},
    )
    assert unknown.status_code == 422
    assert unknown.get_json()["errors"] == {"stage_changes": {"0": {"stage": ["Unknown stage key 'moon'."]}}}
    twice = client.post(
        base,
        headers=counsellor.headers,
        json={
            "text": "x",
            "stage_changes": [
                {"stage": "housing", "status": "done", "version": 1},
                {"stage": "housing", "status": "in_progress", "version": 1},
            ],
        },
    )
    assert twice.status_code == 422
    assert client.post(base, headers=counsellor.headers, json={"text": ""}).status_code == 422


def test_timeline_lists_everything_in_order(client, counsellor, clock):
    case = create_case(client, counsellor, full_case())
    cid = case["id"]
    clock.advance(hours=1)
    client.patch(
        f"/api/v1/cases/{cid}/stages/documents",
        headers=if_match(counsellor, 1),
        json={"status": "in_progress"},
    )
    clock.advance(hours=1)
    consent = client.post(
        f"/api/v1/cases/{cid}/consents",
        headers=counsellor.headers,
        json={
            "recipients": ["iq.cldd-baghdad"],
            "categories": ["identity", "plan"],
            "purpose": "return_preparation",
            "method": "written_signature",
            "valid_until": "2027-12-31",
            "language": "ar",
        },
    ).get_json()
    clock.advance(hours=1)
    client.post(f"/api/v1/cases/{cid}/interventions", headers=counsellor.headers, json={"kind": "documents"})
    clock.advance(hours=1)
    client.post(
        f"/api/v1/cases/{cid}/notes", headers=counsellor.headers, json={"text": "Called the registry."}
    )
    clock.advance(hours=1)
    client.post(
        f"/api/v1/cases/{cid}/consents/{consent['id']}/withdraw",
        headers=counsellor.headers,
        json={"reason": "Changed their mind"},
    )
    clock.advance(hours=1)
    client.put(
        f"/api/v1/cases/{cid}/intake/wishes", headers=if_match(counsellor, 0), json={"text": "Own shop"}
    )
    clock.advance(hours=1)
    client.patch(
        f"/api/v1/cases/{cid}", headers=if_match(counsellor, 1), json={"destination_locality": "Dohuk"}
    )
    timeline = client.get(f"/api/v1/cases/{cid}/timeline", headers=counsellor.headers).get_json()
    kinds = [e["kind"] for e in timeline["items"]]
    assert kinds == [
        "case.created",
        "stage.updated",
        "consent.given",
        "intervention.added",
        "note.added",
        "consent.withdrawn",
        "intake.updated",
        "case.updated",
    ]
    times = [e["occurred_at"] for e in timeline["items"]]
    assert times == sorted(times)
    assert all(
        e["source"] == "local" and e["verified"] and e["actor"] == counsellor.user.username
        for e in timeline["items"]
    )
    assert timeline["items"][-1]["detail"] == {"fields": ["destination_locality"]}
    assert "Dohuk" not in str(timeline) and "registry" not in str(timeline)


def test_every_read_and_write_is_audited(client, counsellor, db_session):
    case = create_case(client, counsellor)
    cid = case["id"]
    paths = (
        "",
        "/timeline",
        "/stages",
        "/stages/housing",
        "/intake",
        "/intake/family",
        "/plan",
        "/household",
        "/consents",
        "/interventions",
        "/notes",
        "/child-safeguards",
        "/export",
    )
    for path in paths:
        assert client.get(f"/api/v1/cases/{cid}{path}", headers=counsellor.headers).status_code == 200, path
    client.get("/api/v1/cases?q=hadzic", headers=counsellor.headers)
    entries = db_session.scalars(sa.select(AuditEntry).order_by(AuditEntry.seq)).all()
    summary = [(e.action, e.object_type) for e in entries]
    assert summary[0] == ("create", "case")
    assert summary[1:] == [
        ("read", "case"),
        ("read", "timeline"),
        ("read", "stage"),
        ("read", "stage"),
        ("read", "intake_section"),
        ("read", "intake_section"),
        ("read", "plan"),
        ("read", "household_member"),
        ("read", "consent"),
        ("read", "intervention"),
        ("read", "progress_note"),
        ("read", "child_safeguards"),
        ("export", "case"),
        ("read", "case_list"),
    ]
    assert all(e.case_id == cid for e in entries[:-1])
    assert entries[-1].detail == '{"filters":["q"],"results":1,"returned":1}'
    assert "hadzic" not in str([e.detail for e in entries]).lower()


def test_export_holds_the_whole_case(client, counsellor, db_session):
    case = create_case(client, counsellor, full_case())
    document = client.get(f"/api/v1/cases/{case['id']}/export", headers=counsellor.headers).get_json()
    assert document["case"]["id"] == case["id"]
    assert len(document["household"]) == 2 and len(document["stages"]) == 8 and len(document["intake"]) == 7
    assert document["plan"]["version"] == 1 and document["timeline"][0]["kind"] == "case.created"
    assert db_session.get(Case, case["id"]) is not None
