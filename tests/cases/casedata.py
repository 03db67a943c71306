"""Case bodies and small helpers shared by the case tests."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from flask.testing import FlaskClient

from node.accounts import User
from node.auth import Actor

MINIMAL_CASE: dict[str, Any] = {
    "returnee": {"given_names": "Amina", "family_name": "Hadžić", "date_of_birth": "1990-04-02"},
    "destination_country": "BA",
}

FULL_CASE: dict[str, Any] = {
    "returnee": {
        "given_names": "Ahmed Ali",
        "family_name": "Al-Jubouri",
        "given_names_native": "أحمد علي",
        "family_name_native": "الجبوري",
        "date_of_birth": "1984-02-29",
        "sex_or_gender": "man",
        "nationality": "iq",
        "languages": ["ar-IQ", "sv", "ckb"],
        "contact": {
            "phone": "+46 70 123 45 67",
            "email": "ahmed@example.org",
            "address": "Storgatan 1\nGöteborg",
            "notes": "Prefers calls after 16:00",
        },
    },
    "destination_country": "IQ",
    "destination_locality": "Erbil",
    "destination_partner": "iq.cldd-baghdad",
    "household": [
        {
            "relation": "spouse",
            "given_names": "Zainab",
            "family_name": "Al-Jubouri",
            "date_of_birth": "1988-05-01",
            "travelling": True,
        },
        {"relation": "child", "date_of_birth": "2015-09-10", "travelling": True},
    ],
    "intake": {
        "family": {"text": "Married, two children.", "marital_status": "married", "number_of_children": 2},
        "health": {"text": "Diabetes type 2, needs insulin."},
        "education": {"text": "Technical school.", "education_level": 4},
        "work": {
            "text": "Car mechanic for ten years.",
            "occupations": ["car mechanic"],
            "skills": ["welding"],
        },
        "future_work": {"occupations": ["workshop owner"], "skills": ["bookkeeping"]},
    },
    "plan": {
        "end_date": "2027-06-30",
        "milestones": [
            {"title": "Passport renewed", "due_date": "2027-01-15"},
            {"title": "Workshop course booked", "due_date": "2027-03-01", "done": False},
        ],
    },
}


@dataclass(frozen=True)
class Staff:
    user: User
    headers: dict[str, str]

    @property
    def actor(self) -> Actor:
        return Actor(self.user.id, self.user.username, self.user.role, self.user.team, "127.0.0.1")


def minimal_case(**changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(MINIMAL_CASE)
    body["returnee"].update(changes.pop("returnee", {}))
    body.update(changes)
    return body


def full_case() -> dict[str, Any]:
    return copy.deepcopy(FULL_CASE)


def create_case(client: FlaskClient, who: Staff, body: dict[str, Any] | None = None) -> dict[str, Any]:
    response = client.post("/api/v1/cases", json=body or minimal_case(), headers=who.headers)
    assert response.status_code == 201, response.get_json()
    data: dict[str, Any] = response.get_json()
    return data


def if_match(who: Staff, version: int) -> dict[str, str]:
    return {**who.headers, "If-Match": f'"{version}"'}
