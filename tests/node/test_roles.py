"""The role matrix, tested as a matrix: the code equals docs/roles.md, and every role × action answers as the
matrix says through the real HTTP API. Case visibility (assignment or team) is tested beside it."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from node.accounts import User
from node.auth import ROLE_PERMISSIONS

ROLES = ("admin", "counsellor", "adviser", "coordinator")
DOC = Path(__file__).resolve().parents[2] / "docs" / "roles.md"
MakeUser = Callable[..., tuple[User, str]]


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _documented_matrix() -> dict[str, frozenset[str]]:
    granted: dict[str, set[str]] = {role: set() for role in ROLES}
    for line in DOC.read_text(encoding="utf-8").splitlines():
        m = re.match(r"\|\s*`([a-z.]+)`\s*\|[^|]*\|(.*)\|\s*$", line)
        if not m:
            continue
        cells = [c.strip() for c in m.group(2).split("|")]
        for role, cell in zip(ROLES, cells, strict=True):
            if cell:
                granted[role].add(m.group(1))
    return {role: frozenset(perms) for role, perms in granted.items()}


def test_code_matrix_equals_documented_matrix() -> None:
    assert _documented_matrix() == ROLE_PERMISSIONS


NEW_CASE = {"returnee": {"given_names": "Kwame", "family_name": "Mensah", "date_of_birth": "1985-02-11"},
            "destination_country": "GH"}

# (action, method, path template, body factory, expected status for each of ROLES)
ACTIONS: list[tuple[str, str, str, Callable[[dict[str, Any]], Any], tuple[int, int, int, int]]] = [
    ("create case", "POST", "/api/v1/cases", lambda c: NEW_CASE, (403, 201, 201, 403)),
    ("search cases", "GET", "/api/v1/cases", lambda c: None, (403, 200, 200, 403)),
    ("read case", "GET", "/api/v1/cases/{id}", lambda c: None, (403, 200, 200, 403)),
    ("timeline", "GET", "/api/v1/cases/{id}/timeline", lambda c: None, (403, 200, 200, 403)),
    ("update case", "PATCH", "/api/v1/cases/{id}",
     lambda c: {"destination_locality": "Kumasi", "version": c["version"]}, (403, 200, 200, 403)),
    ("add progress note", "POST", "/api/v1/cases/{id}/notes", lambda c: {"text": "Met at the office."},
     (403, 201, 201, 403)),
    ("record consent", "POST", "/api/v1/cases/{id}/consents",
     lambda c: {"recipients": ["gh.accra-partner"], "categories": ["identity", "plan"],
                "purpose": "reintegration_support", "method": "written_signature",
                "valid_until": "2027-06-30", "language": "sv"},
     (403, 201, 403, 403)),
    ("export case", "GET", "/api/v1/cases/{id}/export", lambda c: None, (403, 200, 403, 403)),
    ("report summary", "GET", "/api/v1/reports/summary", lambda c: None, (200, 200, 200, 200)),
]


@pytest.mark.usefixtures("partners")  # the consent names a partner
@pytest.mark.parametrize("action", ACTIONS, ids=[a[0] for a in ACTIONS])
@pytest.mark.parametrize("role_index", range(len(ROLES)), ids=list(ROLES))
def test_role_matrix_over_http(client: FlaskClient, make_user: MakeUser, role_index: int,
                               action: tuple[str, str, str, Callable[[dict[str, Any]], Any],
                                             tuple[int, int, int, int]]) -> None:
    _, owner_token = make_user("counsellor", team="gbg")
    created = client.post("/api/v1/cases", json=NEW_CASE, headers={"Authorization": f"Bearer {owner_token}"})
    assert created.status_code == 201, created.get_data(as_text=True)
    case = created.get_json()
    _, token = make_user(ROLES[role_index], team="gbg")
    name, method, template, body, expected = action
    response = client.open(template.format(id=case["id"]), method=method, json=body(case),
                           headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == expected[role_index], (name, ROLES[role_index], response.get_data())


@pytest.mark.parametrize("role", ["counsellor", "adviser"])
def test_cases_of_another_team_are_invisible(client: FlaskClient, make_user: MakeUser, role: str) -> None:
    _, owner_token = make_user("counsellor", team="gbg")
    case = client.post("/api/v1/cases", json=NEW_CASE, headers=_auth(owner_token)).get_json()
    _, other = make_user(role, team="sthlm")
    headers = {"Authorization": f"Bearer {other}"}
    assert client.get(f"/api/v1/cases/{case['id']}", headers=headers).status_code == 404
    assert client.get(f"/api/v1/cases/{case['id']}/timeline", headers=headers).status_code == 404
    listing = client.get("/api/v1/cases", headers=headers).get_json()
    assert listing["total"] == 0 and listing["items"] == []


def test_case_assigned_to_a_user_without_team_is_theirs_alone(client: FlaskClient,
                                                              make_user: MakeUser) -> None:
    _, solo = make_user("counsellor")
    case = client.post("/api/v1/cases", json=NEW_CASE, headers=_auth(solo)).get_json()
    assert client.get(f"/api/v1/cases/{case['id']}", headers=_auth(solo)).status_code == 200
    _, other = make_user("counsellor")
    assert client.get(f"/api/v1/cases/{case['id']}",
                      headers={"Authorization": f"Bearer {other}"}).status_code == 404
