"""Schemathesis against the node's own OpenAPI document (``/api/v1/openapi.json``), in process, on SQLite and
PostgreSQL: no answer is a 500, and every answer (status, content type, headers, body) is one the document
states; data the document forbids is refused, and so are a missing required header and an unlisted method.

The document is read once at collection from an app without a database (it is the same on both); each
operation is then one test per database, its calls going to that database's app. One counsellor's case (with
a household member) is seeded so that fuzzed requests reach real records as well as random ids: every other
example of an operation names the seeded ids. Each operation is called with the token of a role that may use
it (adviser for incoming handovers, coordinator for the reports, counsellor for the rest), so the fuzzing
gets past the role check.

Left out: ``positive_data_acceptance`` (the services refuse schema-valid data for reasons the schema cannot
state: an unknown stage key, a country code, a consent that is not the case's), ``ignored_auth`` (it doubles
every call; authentication per role is checked cell by cell in ``tests/node/test_roles.py``) and the
stateful checks. Hypothesis is derandomized: the same cases on every run.
"""

from __future__ import annotations

import itertools
import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import schemathesis
from flask import Flask
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    allow_header_conformance,
    content_type_conformance,
    missing_required_header,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from node import create_app
from node.accounts import User
from node.config import config_for_tests
from tests.cases.casedata import MINIMAL_CASE

CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance, content_type_conformance,
          response_headers_conformance, negative_data_rejection, missing_required_header, unsupported_method,
          allow_header_conformance]
#: Random examples per operation and database, on top of schemathesis' deterministic coverage cases
#: (boundaries, missing and wrong-typed fields, unlisted methods): ~4,400 calls per database, ~25 s each.
MAX_EXAMPLES = 25

#: Calls made per database in this run (printed at the end of the run: ``conftest.py``).
CALLS: Counter[str] = Counter()


def _document() -> dict[str, Any]:
    """The OpenAPI document, from an app without a database."""
    with tempfile.TemporaryDirectory() as tmp:
        document: dict[str, Any] = create_app(config_for_tests(Path(tmp))).test_client().get(
            "/api/v1/openapi.json").get_json()
    return document


schema = schemathesis.openapi.from_dict(_document())


@pytest.fixture
def seeded(app: Flask, database_url: str, make_user: Callable[..., tuple[User, str]],
           partners: list[str]) -> dict[str, Any]:
    """Tokens per role, and ids of real records the fuzzed paths may name."""
    client = app.test_client()
    tokens = {role: make_user(role, team="gbg")[1] for role in ("counsellor", "adviser", "coordinator")}
    headers = {"Authorization": f"Bearer {tokens['counsellor']}"}
    made = client.post("/api/v1/cases", json=MINIMAL_CASE, headers=headers)
    assert made.status_code == 201, made.get_json()
    case_id = made.get_json()["id"]
    member = client.post(f"/api/v1/cases/{case_id}/household", json={"relation": "spouse"}, headers=headers)
    assert member.status_code == 201, member.get_json()
    return {"app": app, "database": database_url.split(":", 1)[0], "tokens": tokens, "counter": itertools.count(),
            "ids": {"case_id": case_id, "member_id": member.get_json()["id"]}}


def _token_for(tokens: dict[str, str], path: str) -> str:
    if path.startswith("/api/v1/handovers") and not path.endswith("/revoke"):
        return tokens["adviser"]
    if path.startswith("/api/v1/reports"):
        return tokens["coordinator"]
    return tokens["counsellor"]


@schema.parametrize()
@hypothesis.settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
                     suppress_health_check=list(hypothesis.HealthCheck))
def test_api_answers_within_its_schema(case: Any, seeded: dict[str, Any]) -> None:
    if next(seeded["counter"]) % 2 == 0 and case.path_parameters:
        for name, value in seeded["ids"].items():
            if name in case.path_parameters:
                case.path_parameters[name] = value
    # Calls, and the probes some checks send, go in process to this database's app.
    case.operation.app = case.operation.schema.app = seeded["app"]
    token = _token_for(seeded["tokens"], case.operation.path)
    CALLS[seeded["database"]] += 1
    case.call_and_validate(headers={"Authorization": f"Bearer {token}"}, checks=CHECKS)
