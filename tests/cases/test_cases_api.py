"""The case through the API: create, read, change, visibility, roles, validation, concurrency, audit."""

from __future__ import annotations

import sqlalchemy as sa

from node.audit import AuditEntry
from node.cases.models import Case, CaseEvent, CaseNameToken, CaseStage, HouseholdMember, IntakeSection
from tests.cases.casedata import create_case, full_case, if_match, minimal_case


def _audit(db_session, action=None, object_type=None):
    query = sa.select(AuditEntry).order_by(AuditEntry.seq)
    if action:
        query = query.where(AuditEntry.action == action)
    if object_type:
        query = query.where(AuditEntry.object_type == object_type)
    return list(db_session.scalars(query))


def test_create_with_the_minimal_body(client, counsellor, db_session):
    response = client.post("/api/v1/cases", json=minimal_case(), headers=counsellor.headers)
    assert response.status_code == 201
    case = response.get_json()
    assert case["reference"] == "GI-2026-0001"
    assert case["status"] == "open"
    assert case["current_stage"] == "documents"
    assert case["child"] is False
    assert case["assigned_user_id"] == counsellor.user.id and case["team"] == "gbg"
    assert case["returnee"]["family_name"] == "Hadžić"
    assert case["returnee"]["languages"] == []
    assert response.headers["ETag"] == '"1"'
    assert response.headers["Location"].endswith(f"/api/v1/cases/{case['id']}")
    stages = db_session.scalars(
        sa.select(CaseStage.stage_key).where(CaseStage.case_id == case["id"]).order_by(CaseStage.position)
    ).all()
    assert stages == [
        "documents",
        "housing",
        "education",
        "employment",
        "journey",
        "arrival",
        "reintegration",
        "follow_up",
    ]
    entries = _audit(db_session, "create", "case")
    assert [(e.object_id, e.case_id, e.actor_id) for e in entries] == [
        (case["id"], case["id"], counsellor.user.id)
    ]


def test_create_with_a_full_body_stores_every_part(client, counsellor, db_session):
    case = create_case(client, counsellor, full_case())
    assert case["returnee"]["nationality"] == "IQ"  # upper-cased
    assert case["returnee"]["given_names_native"] == "أحمد علي"
    assert case["returnee"]["contact"]["phone"] == "+46 70 123 45 67"
    assert case["destination_partner"] == "iq.cldd-baghdad"
    members = db_session.scalars(
        sa.select(HouseholdMember).where(HouseholdMember.case_id == case["id"])
    ).all()
    assert sorted(m.relation for m in members) == ["child", "spouse"]
    sections = {
        s.section: s
        for s in db_session.scalars(sa.select(IntakeSection).where(IntakeSection.case_id == case["id"]))
    }
    assert set(sections) == {"family", "health", "education", "work", "future_work"}
    assert sections["family"].data == {"marital_status": "married", "number_of_children": 2}
    assert sections["future_work"].data == {"occupations": ["workshop owner"], "skills": ["bookkeeping"]}
    db_session.rollback()  # end the read transaction (SQLite allows one writer at a time)
    plan = client.get(f"/api/v1/cases/{case['id']}/plan", headers=counsellor.headers).get_json()
    assert plan["end_date"] == "2027-06-30" and len(plan["milestones"]) == 2 and plan["version"] == 1


def test_references_count_up_per_year(client, counsellor, clock, staff):
    first = create_case(client, counsellor)
    second = create_case(client, counsellor)
    clock.advance(days=40)
    third = create_case(client, staff("counsellor", team="gbg"))  # tokens made today last 30 days
    assert [first["reference"], second["reference"], third["reference"]] == [
        "GI-2026-0001",
        "GI-2026-0002",
        "GI-2027-0001",
    ]


def test_a_child_case_is_marked_from_the_date_of_birth(client, counsellor):
    case = create_case(client, counsellor, minimal_case(returnee={"date_of_birth": "2010-01-01"}))
    assert case["child"] is True
    eighteen_today = create_case(client, counsellor, minimal_case(returnee={"date_of_birth": "2008-11-23"}))
    assert eighteen_today["child"] is False


def test_read_is_audited_and_answers_an_etag(client, counsellor, db_session):
    case = create_case(client, counsellor)
    response = client.get(f"/api/v1/cases/{case['id']}", headers=counsellor.headers)
    assert response.status_code == 200
    assert response.headers["ETag"] == '"1"'
    assert response.get_json() == case
    reads = _audit(db_session, "read", "case")
    assert [(e.case_id, e.actor_username) for e in reads] == [(case["id"], counsellor.user.username)]


def test_patch_with_if_match_changes_fields_and_records_them(client, counsellor, db_session):
    case = create_case(client, counsellor)
    response = client.patch(
        f"/api/v1/cases/{case['id']}",
        headers=if_match(counsellor, 1),
        json={
            "status": "handed_over",
            "returnee": {"family_name": "Hodžić", "contact": {"phone": "+387 61 000 000"}},
            "destination_locality": "Tuzla",
        },
    )
    assert response.status_code == 200, response.get_json()
    changed = response.get_json()
    assert changed["version"] == 2 and response.headers["ETag"] == '"2"'
    assert changed["returnee"]["family_name"] == "Hodžić"
    assert changed["returnee"]["given_names"] == "Amina"
    assert changed["returnee"]["contact"]["phone"] == "+387 61 000 000"
    assert changed["status"] == "handed_over"
    tokens = set(
        db_session.scalars(sa.select(CaseNameToken.token).where(CaseNameToken.case_id == case["id"]))
    )
    assert tokens == {"amina", "hodzic"}
    events = db_session.scalars(
        sa.select(CaseEvent).where(CaseEvent.case_id == case["id"]).order_by(CaseEvent.id)
    ).all()
    assert [e.kind for e in events] == ["case.created", "case.status_changed", "case.updated"]
    assert events[1].detail == {"from": "open", "to": "handed_over"}
    assert events[2].detail == {
        "fields": ["destination_locality", "returnee.contact.phone", "returnee.family_name"]
    }
    assert "Hodžić" not in str([e.detail for e in _audit(db_session)])


def test_patch_with_a_version_field(client, counsellor):
    case = create_case(client, counsellor)
    response = client.patch(
        f"/api/v1/cases/{case['id']}",
        headers=counsellor.headers,
        json={"version": 1, "team": "sarajevo-desk"},
    )
    assert response.status_code == 200
    assert response.get_json()["team"] == "sarajevo-desk"


def test_stale_if_match_is_412_and_changes_nothing(client, counsellor, db_session):
    case = create_case(client, counsellor)
    url = f"/api/v1/cases/{case['id']}"
    assert client.patch(url, headers=if_match(counsellor, 1), json={"status": "closed"}).status_code == 200
    response = client.patch(
        url, headers=if_match(counsellor, 1), json={"returnee": {"family_name": "Overwritten"}}
    )
    assert response.status_code == 412
    assert response.get_json()["code"] == "version_conflict"
    assert response.mimetype == "application/problem+json"
    stored = db_session.get(Case, case["id"])
    assert stored.family_name == "Hadžić" and stored.version == 2


def test_stale_version_field_is_409_and_changes_nothing(client, counsellor, db_session):
    case = create_case(client, counsellor)
    url = f"/api/v1/cases/{case['id']}"
    assert (
        client.patch(url, headers=counsellor.headers, json={"version": 1, "status": "closed"}).status_code
        == 200
    )
    response = client.patch(url, headers=counsellor.headers, json={"version": 1, "status": "open"})
    assert response.status_code == 409
    assert response.get_json()["code"] == "conflict"
    assert db_session.get(Case, case["id"]).status == "closed"


def test_patch_without_a_version_is_428(client, counsellor):
    case = create_case(client, counsellor)
    response = client.patch(
        f"/api/v1/cases/{case['id']}", headers=counsellor.headers, json={"status": "closed"}
    )
    assert response.status_code == 428
    assert response.get_json()["code"] == "precondition_required"


def test_a_garbled_if_match_never_matches(client, counsellor):
    case = create_case(client, counsellor)
    for value in ("*", "1", '"one"', 'W/"x"'):
        response = client.patch(
            f"/api/v1/cases/{case['id']}",
            headers={**counsellor.headers, "If-Match": value},
            json={"status": "closed"},
        )
        assert response.status_code == 412, value


def test_a_noop_patch_keeps_the_version(client, counsellor):
    case = create_case(client, counsellor)
    response = client.patch(
        f"/api/v1/cases/{case['id']}",
        headers=if_match(counsellor, 1),
        json={"status": "open", "returnee": {"given_names": "Amina"}},
    )
    assert response.status_code == 200 and response.get_json()["version"] == 1


def test_staff_see_their_own_and_their_teams_cases_only(client, counsellor, staff):
    teammate = staff("adviser", team="gbg")
    outsider = staff("counsellor", team="stockholm")
    no_team = staff("counsellor")
    case = create_case(client, counsellor)
    assert client.get(f"/api/v1/cases/{case['id']}", headers=teammate.headers).status_code == 200
    for other in (outsider, no_team):
        response = client.get(f"/api/v1/cases/{case['id']}", headers=other.headers)
        assert response.status_code == 404
        assert client.get(f"/api/v1/cases/{case['id']}/timeline", headers=other.headers).status_code == 404
        assert (
            client.patch(
                f"/api/v1/cases/{case['id']}", headers=if_match(other, 1), json={"status": "closed"}
            ).status_code
            == 404
        )
    own = create_case(client, no_team)
    assert own["team"] is None
    assert client.get(f"/api/v1/cases/{own['id']}", headers=no_team.headers).status_code == 200
    assert client.get(f"/api/v1/cases/{own['id']}", headers=counsellor.headers).status_code == 404


def test_unknown_and_malformed_case_ids_are_404(client, counsellor):
    for case_id in ("00000000-0000-4000-8000-000000000000", "not-a-uuid", "x" * 300):
        assert client.get(f"/api/v1/cases/{case_id}", headers=counsellor.headers).status_code == 404


def test_roles_outside_the_matrix_get_403(client, counsellor, staff):
    case = create_case(client, counsellor)
    for role in ("admin", "coordinator"):
        other = staff(role, team="gbg")
        assert client.post("/api/v1/cases", json=minimal_case(), headers=other.headers).status_code == 403
        assert client.get("/api/v1/cases", headers=other.headers).status_code == 403
        assert client.get(f"/api/v1/cases/{case['id']}", headers=other.headers).status_code == 403
        assert client.get(f"/api/v1/cases/{case['id']}/export", headers=other.headers).status_code == 403
    adviser = staff("adviser", team="gbg")
    assert client.get(f"/api/v1/cases/{case['id']}/export", headers=adviser.headers).status_code == 403


def test_no_token_is_401(client, counsellor):
    case = create_case(client, counsellor)
    assert client.get(f"/api/v1/cases/{case['id']}").status_code == 401
    assert client.post("/api/v1/cases", json=minimal_case()).status_code == 401
    bad = {"Authorization": "Bearer ccm_1_wrong"}
    assert client.get("/api/v1/cases", headers=bad).status_code == 401


def test_field_errors_are_reported_per_field(client, counsellor, db_session):
    body = minimal_case(
        returnee={
            "given_names": "",
            "date_of_birth": "1899-12-31",
            "nationality": "XX",
            "languages": ["not a tag"],
            "contact": {"email": "nope"},
        },
        destination_country="ZZ",
        destination_partner="Not A Node",
    )
    response = client.post("/api/v1/cases", json=body, headers=counsellor.headers)
    assert response.status_code == 422
    problem = response.get_json()
    assert problem["code"] == "validation_failed"
    errors = problem["errors"]
    assert set(errors["returnee"]) == {"given_names", "date_of_birth", "nationality", "languages", "contact"}
    assert set(errors) == {"returnee", "destination_country", "destination_partner"}
    assert db_session.scalar(sa.select(sa.func.count()).select_from(Case)) == 0


def test_unknown_fields_are_rejected(client, counsellor):
    response = client.post("/api/v1/cases", json={**minimal_case(), "ssn": "x"}, headers=counsellor.headers)
    assert response.status_code == 422
    assert response.get_json()["errors"] == {"ssn": ["Unknown field."]}
    nested = minimal_case(returnee={"nickname": "x"})
    response = client.post("/api/v1/cases", json=nested, headers=counsellor.headers)
    assert response.get_json()["errors"] == {"returnee": {"nickname": ["Unknown field."]}}


def test_strings_and_lists_are_bounded_and_clean(client, counsellor):
    for returnee in (
        {"given_names": "A" * 201},
        {"given_names": "A\x00B"},
        {"family_name": "a\nb"},
        {"languages": ["sv"] * 21},
    ):
        response = client.post(
            "/api/v1/cases", json=minimal_case(returnee=returnee), headers=counsellor.headers
        )
        assert response.status_code == 422, returnee


def test_a_future_date_of_birth_is_refused(client, counsellor):
    response = client.post(
        "/api/v1/cases",
        json=minimal_case(returnee={"date_of_birth": "2026-11-24"}),
        headers=counsellor.headers,
    )
    assert response.status_code == 422
    assert response.get_json()["errors"] == {"returnee": {"date_of_birth": ["Must not be in the future."]}}


def test_nothing_is_half_saved_when_a_late_check_fails(client, counsellor, db_session):
    body = full_case()
    body["intake"]["health"]["education_level"] = 3  # a field of another section: refused by the service
    response = client.post("/api/v1/cases", json=body, headers=counsellor.headers)
    assert response.status_code == 422
    assert response.get_json()["errors"] == {
        "intake": {"health": {"education_level": ["Not a field of the 'health' section."]}}
    }
    for model in (Case, CaseStage, CaseNameToken, HouseholdMember, CaseEvent, AuditEntry):
        assert db_session.scalar(sa.select(sa.func.count()).select_from(model)) == 0, model


def test_assigning_to_a_missing_or_non_staff_user_is_refused(client, counsellor, staff):
    coordinator = staff("coordinator")
    for user_id in (99999, coordinator.user.id):
        response = client.post(
            "/api/v1/cases", json=minimal_case(assigned_user_id=user_id), headers=counsellor.headers
        )
        assert response.status_code == 422
        assert "assigned_user_id" in response.get_json()["errors"]


def test_broken_json_is_400(client, counsellor):
    response = client.post(
        "/api/v1/cases",
        data=b'{"returnee": {"a": 1, "a": 2}}',
        headers={**counsellor.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 400
