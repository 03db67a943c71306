"""The API's one error shape (RFC 9457 problem details), strict JSON, size limits, the OpenAPI document."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask.testing import FlaskClient

from node.accounts import User

MakeUser = Callable[..., tuple[User, str]]
MINIMAL = (b'{"returnee": {"given_names": "Amir", "family_name": "Hasanovi\\u0107",'
           b' "date_of_birth": "1990-04-02"}, "destination_country": "BA"}')


def _problem(response) -> dict:  # type: ignore[no-untyped-def]
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["status"] == response.status_code
    assert body["type"] == f"urn:ccm:problem:{body['code']}"
    assert "Traceback" not in response.get_data(as_text=True)
    return body


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer nonsense", "Basic abc", "Bearer ccm_1_x"])
def test_missing_or_bad_token_is_one_opaque_401(client: FlaskClient, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    response = client.get("/api/v1/cases", headers=headers)
    assert response.status_code == 401
    body = _problem(response)
    assert body["code"] == "unauthorized" and body["detail"] == "A valid bearer token is required."
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_openapi_document_is_public_and_valid(client: FlaskClient) -> None:
    from openapi_spec_validator import validate

    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    spec = response.get_json()
    validate(spec)
    assert "/api/v1/cases" in spec["paths"]
    assert "bearer" in spec["components"]["securitySchemes"]


@pytest.mark.parametrize(("body", "fragment"), [
    (b"{not json", "not valid JSON"),
    (b'{"a": 1, "a": 2}', "duplicate"),
    (b'{"x": NaN}', "NaN"),
    (b"[" * 5000 + b"]" * 5000, "nested too deeply"),
    (b'{"n": 123456789012345678901234567890}', "safe range"),
    (b'\xff\xfe', "UTF-8"),
])
def test_broken_json_is_400(client: FlaskClient, make_user: MakeUser, body: bytes, fragment: str) -> None:
    _, token = make_user("counsellor")
    response = client.post("/api/v1/cases", data=body, content_type="application/json",
                           headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 400
    assert fragment in _problem(response)["detail"]


def test_a_broken_body_is_named_once_and_where(client: FlaskClient, make_user: MakeUser) -> None:
    _, token = make_user("counsellor")
    response = client.post("/api/v1/cases", data=b'{"returnee": {"given_names": "A",}}',
                           content_type="application/json", headers={"Authorization": f"Bearer {token}"})
    detail = _problem(response)["detail"]
    assert detail.count("not valid JSON") == 1 and "JSONDecodeError" not in detail
    assert "(line 1, column " in detail


@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", "text/plain", None])
def test_a_body_not_sent_as_json_is_415(client: FlaskClient, make_user: MakeUser, content_type: str | None) -> None:
    """Never parsed as JSON anyway, nor reported as missing fields: the expected content type is named."""
    _, token = make_user("counsellor")
    headers = {"Authorization": f"Bearer {token}"}
    response = client.post("/api/v1/cases", data=MINIMAL, headers=headers,
                           **({"content_type": content_type} if content_type else {}))
    assert response.status_code == 415
    body = _problem(response)
    assert body["code"] == "unsupported_media_type" and "application/json" in body["detail"]
    assert client.get("/api/v1/cases", headers=headers).get_json()["items"] == []


def test_unknown_field_is_422_with_field_errors(client: FlaskClient, make_user: MakeUser) -> None:
    _, token = make_user("counsellor")
    body = MINIMAL[:-1] + b', "favourite_colour": "green"}'
    response = client.post("/api/v1/cases", data=body, content_type="application/json",
                           headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 422
    problem = _problem(response)
    assert problem["code"] == "validation_failed"
    assert "favourite_colour" in problem["errors"]


def test_oversized_body_is_413(client: FlaskClient, make_user: MakeUser) -> None:
    _, token = make_user("counsellor")
    response = client.post("/api/v1/cases", data=b'{"x": "' + b"a" * 2_000_000 + b'"}',
                           content_type="application/json", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 413
    assert _problem(response)["code"] == "too_large"


def test_unknown_path_and_wrong_method(client: FlaskClient, make_user: MakeUser) -> None:
    _, token = make_user("counsellor")
    response = client.get("/api/v1/nothing-here", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 404
    _problem(response)
    response = client.delete("/api/v1/cases", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 405
    _problem(response)
    assert "GET" in response.headers["Allow"]


def test_minimal_create_contract(client: FlaskClient, make_user: MakeUser) -> None:
    """The minimal body partner systems script against answers 201 with the case and its id."""
    _, token = make_user("counsellor")
    response = client.post("/api/v1/cases", data=MINIMAL, content_type="application/json",
                           headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 201, response.get_data(as_text=True)
    case = response.get_json()
    assert case["id"] and case["reference"].startswith("GI-")


def test_a_nul_in_the_path_or_a_parameter_is_refused_before_any_query(client: FlaskClient,
                                                                       make_user: MakeUser) -> None:
    _, token = make_user("counsellor", team="gbg")
    headers = {"Authorization": f"Bearer {token}"}
    for path in ("/api/v1/cases/%00", "/api/v1/cases/x/stages/%00", "/api/v1/handovers/a%00b/accept"):
        response = client.get(path, headers=headers)
        assert response.status_code in (404, 405) and _problem(response)["status"] == response.status_code
    body = _problem(client.get("/api/v1/cases?q=%00&status=open", headers=headers))
    assert body["status"] == 422 and body["errors"] == {"q": ["Must not contain a NUL character."]}
