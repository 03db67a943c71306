"""The case API's contract as the OpenAPI document states it: paths, minimal bodies, strictness."""

from __future__ import annotations

from pathlib import Path

from openapi_spec_validator import validate

from node import create_app
from node.config import config_for_tests


def _spec(tmp_path: Path) -> dict:
    app = create_app(config_for_tests(tmp_path))
    response = app.test_client().get("/api/v1/openapi.json")
    assert response.status_code == 200
    spec: dict = response.get_json()
    return spec


def test_the_document_is_valid_and_lists_the_case_api(tmp_path):
    spec = _spec(tmp_path)
    validate(spec)
    paths = spec["paths"]
    for path, methods in {
        "/api/v1/cases": {"get", "post"},
        "/api/v1/cases/{case_id}": {"get", "patch"},
        "/api/v1/cases/{case_id}/household": {"get", "post"},
        "/api/v1/cases/{case_id}/household/{member_id}": {"patch", "delete"},
        "/api/v1/cases/{case_id}/intake": {"get"},
        "/api/v1/cases/{case_id}/intake/{section}": {"get", "put"},
        "/api/v1/cases/{case_id}/plan": {"get", "put"},
        "/api/v1/cases/{case_id}/stages": {"get"},
        "/api/v1/cases/{case_id}/stages/{key}": {"get", "patch"},
        "/api/v1/cases/{case_id}/child-safeguards": {"get", "put"},
        "/api/v1/cases/{case_id}/consents": {"get", "post"},
        "/api/v1/cases/{case_id}/consents/{consent_id}": {"get"},
        "/api/v1/cases/{case_id}/consents/{consent_id}/withdraw": {"post"},
        "/api/v1/cases/{case_id}/interventions": {"get", "post"},
        "/api/v1/cases/{case_id}/interventions/{intervention_id}": {"get", "patch"},
        "/api/v1/cases/{case_id}/notes": {"get", "post"},
        "/api/v1/cases/{case_id}/timeline": {"get"},
        "/api/v1/cases/{case_id}/export": {"get"},
        "/api/v1/reports/summary": {"get"},
    }.items():
        assert methods <= set(paths[path]), path
        for method in methods:
            assert paths[path][method]["security"] == [{"bearer": []}], (path, method)


def test_minimal_bodies_are_the_only_required_fields(tmp_path):
    schemas = _spec(tmp_path)["components"]["schemas"]
    assert sorted(schemas["CaseCreate"]["required"]) == ["destination_country", "returnee"]
    assert sorted(schemas["Returnee"]["required"]) == ["date_of_birth", "family_name", "given_names"]
    assert sorted(schemas["ConsentCreate"]["required"]) == [
        "categories",
        "method",
        "purpose",
        "recipients",
        "valid_until",
    ]
    assert schemas["ConsentWithdraw"]["required"] == ["reason"]
    for name in ("CaseCreate", "Returnee", "CasePatch", "ConsentCreate", "InterventionCreate", "PlanWrite"):
        assert schemas[name]["additionalProperties"] is False, name
    assert schemas["Returnee"]["properties"]["given_names"]["maxLength"] == 200


def test_writes_that_need_a_version_document_if_match(tmp_path):
    paths = _spec(tmp_path)["paths"]
    patch = paths["/api/v1/cases/{case_id}"]["patch"]
    assert [p["name"] for p in patch["parameters"] if p["in"] == "header"] == ["If-Match"]
    assert {"409", "412", "428"} <= set(patch["responses"])
    assert "parameters" not in paths["/api/v1/cases/{case_id}"]["get"]
