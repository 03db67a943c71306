"""What the schemathesis run found, pinned as plain tests (fast, and readable when one fails)."""

from __future__ import annotations

from collections.abc import Callable

from flask.testing import FlaskClient

from node.accounts import User


def test_the_document_gives_the_content_type_errors_are_sent_with(client: FlaskClient,
                                                                   make_user: Callable[..., tuple[User, str]]) -> None:
    document = client.get("/api/v1/openapi.json").get_json()
    for name in ("UNPROCESSABLE_ENTITY", "DEFAULT_ERROR"):
        assert list(document["components"]["responses"][name]["content"]) == ["application/problem+json"], name
    _, token = make_user("counsellor", team="gbg")
    sent = client.post("/api/v1/cases", json={}, headers={"Authorization": f"Bearer {token}"})
    assert sent.status_code == 422 and sent.mimetype == "application/problem+json"


def test_an_unknown_query_parameter_is_refused_not_ignored(client: FlaskClient,
                                                          make_user: Callable[..., tuple[User, str]]) -> None:
    _, token = make_user("adviser", team="gbg")
    headers = {"Authorization": f"Bearer {token}"}
    for path, unknown in (("/api/v1/handovers?direction=incoming&stauts=declined", "stauts"),
                          ("/api/v1/cases?statu=open", "statu")):
        answer = client.get(path, headers=headers)
        assert answer.status_code == 422, path
        body = answer.get_json()
        assert body["code"] == "validation_failed" and list(body["errors"]) == [unknown]
    assert client.get("/api/v1/handovers?direction=incoming", headers=headers).status_code == 200
