"""What the handover and consent tests share: two in-process nodes seen through their JSON APIs (``Desk``), a
case with a consent, and the steps of the story (hand over, deliver, accept). The ``desks`` fixture is
registered in ``tests/exchange/conftest.py``."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from node.accounts import create_token, create_user
from node.exchange.delivery.worker import DeliveryWorker
from tests.exchange.conftest import Node

Worker = Callable[..., DeliveryWorker]

CASE: dict[str, Any] = {
    "returnee": {
        "given_names": "Amina", "family_name": "Hadžić", "date_of_birth": "1990-04-02", "sex_or_gender": "woman",
        "nationality": "BA", "languages": ["bs", "sv"],
        "contact": {"phone": "+46 70 123 45 67", "email": "amina@example.org", "address": "Storgatan 1"},
    },
    "destination_country": "BA", "destination_locality": "Sarajevo", "destination_partner": "ba.cldd-sarajevo",
    "household": [{"relation": "child", "date_of_birth": "2015-09-10", "travelling": True}],
    "intake": {
        "family": {"text": "Single mother, one son.", "marital_status": "single"},
        "health": {"text": "Asthma; needs an inhaler."},
        "education": {"text": "Secondary school.", "education_level": 3},
        "work": {"text": "Cook for six years.", "occupations": ["cook"], "skills": ["baking"]},
        "future_work": {"text": "Would like to open a bakery."},
        "wishes": {"text": "Želim da moj sin ide u školu u Sarajevu."},
    },
    "plan": {"end_date": "2027-06-30", "milestones": [{"title": "New passport", "due_date": "2027-01-15"}]},
}
SHARED = ["identity", "contact", "family", "education", "work", "wishes", "plan"]


def consent_body(**changes: Any) -> dict[str, Any]:
    body = {"recipients": ["ba.cldd-sarajevo"], "categories": SHARED, "purpose": "reintegration_support",
            "method": "written_signature", "valid_until": "2027-11-30", "language": "bs"}
    body.update(changes)
    return body


@dataclass
class Desk:
    """A node seen through its API, with one member of staff per role."""

    node: Node
    tokens: dict[str, str] = field(default_factory=dict)

    def staff(self, username: str, role: str, team: str) -> None:
        with self.node.sessionmaker() as session:
            user = create_user(session, username=username, role=role, team=team, now=self.node.clock.now(),
                               display_name=username.replace(".", " ").title())
            self.tokens[role] = create_token(session, user, now=self.node.clock.now(), days=30)
            session.commit()

    def call(self, method: str, path: str, role: str, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.tokens[role]}", **kwargs.pop("headers", {})}
        return self.node.client.open(f"/api/v1{path}", method=method, headers=headers, **kwargs)

    def ok(self, method: str, path: str, role: str, status: int = 200, **kwargs: Any) -> Any:
        response = self.call(method, path, role, **kwargs)
        assert response.status_code == status, response.get_json()
        return response.get_json()

    def count(self, model: type[Any]) -> int:
        return self.node.count(model)


@pytest.fixture
def desks(paired: tuple[Node, Node]) -> tuple[Desk, Desk]:
    gbg, sarajevo = Desk(paired[0]), Desk(paired[1])
    gbg.staff("anna.lindqvist", "counsellor", "gbg")
    gbg.staff("amra.hodzic", "adviser", "gbg")
    sarajevo.staff("emina.kovac", "adviser", "sarajevo")
    sarajevo.staff("haris.begic", "counsellor", "sarajevo")
    return gbg, sarajevo


def open_case(gbg: Desk, body: dict[str, Any] | None = None,
              consent: dict[str, Any] | None = None) -> tuple[str, str]:
    """A case with a consent for Sarajevo; returns (case id, consent id)."""
    case = gbg.ok("POST", "/cases", "counsellor", 201, json=copy.deepcopy(body or CASE))
    given = gbg.ok("POST", f"/cases/{case['id']}/consents", "counsellor", 201, json=consent or consent_body())
    return case["id"], given["id"]


def hand_over(gbg: Desk, case_id: str, consent_id: str, **extra: Any) -> dict[str, Any]:
    result: dict[str, Any] = gbg.ok("POST", f"/cases/{case_id}/handovers", "counsellor", 202,
                                    json={"recipient": "ba.cldd-sarajevo", "consent_id": consent_id, **extra})
    return result


def deliver(make_worker: Worker, desk: Desk) -> int:
    return make_worker(desk.node).run(once=True).delivered


def incoming(sarajevo: Desk) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = sarajevo.ok("GET", "/handovers?direction=incoming", "adviser")["items"]
    return items


def timeline(desk: Desk, case_id: str, role: str = "counsellor") -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = desk.ok("GET", f"/cases/{case_id}/timeline", role)["items"]
    return items
