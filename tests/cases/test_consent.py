"""Consent: the minimal body, status over time, withdrawal, roles, and the rules for a child's case."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from node.cases.models import CaseEvent
from tests.cases.casedata import create_case, if_match, minimal_case

CONSENT = {
    "recipients": ["ba.cldd-sarajevo"],
    "categories": ["identity", "education", "work", "plan"],
    "purpose": "reintegration_support",
    "method": "written_signature",
    "valid_until": "2027-06-30",
    "language": "sv",
}
SAFEGUARDS = {
    "guardian": {
        "name": "Karin Lindqvist",
        "relation": "appointed guardian (god man)",
        "organisation": "Överförmyndarnämnden Göteborg",
    },
    "guardian_consent_at": "2026-11-20T10:00:00Z",
    "child_views": "Wants to live with the grandmother in Tuzla and go back to school.",
    "best_interests_outcome": "Return to the grandmother is in the child's best interests.",
    "assessed_at": "2026-11-21T14:00:00+01:00",
    "assessed_by": "Social services, Göteborg",
}


pytestmark = pytest.mark.usefixtures("partners")  # a consent names only partners of the node


def _consents(case_id):
    return f"/api/v1/cases/{case_id}/consents"


def test_minimal_consent_is_active(client, counsellor):
    case = create_case(client, counsellor)
    response = client.post(_consents(case["id"]), headers=counsellor.headers, json=CONSENT)
    assert response.status_code == 201, response.get_json()
    consent = response.get_json()
    assert consent["id"] and consent["status"] == "active" and consent["pending_reasons"] == []
    assert consent["given_at"] == "2026-11-23T09:00:00+00:00"
    assert consent["interpreter"] is None and consent["recorded_by"] == counsellor.user.id
    one = client.get(f"{_consents(case['id'])}/{consent['id']}", headers=counsellor.headers)
    assert one.get_json() == consent


def test_full_consent_body_and_deduplication(client, counsellor):
    case = create_case(client, counsellor)
    body = {
        **CONSENT,
        "categories": ["identity", "health", "identity"],
        "language": "bs-Latn-BA",
        "interpreter": "Jasmina Begić",
        "given_at": "2026-11-22T15:30:00+01:00",
        "recipients": ["ba.cldd-sarajevo", "ba.cldd-sarajevo", "se.cldd-stockholm"],
        "method": "oral_witnessed",
    }
    consent = client.post(_consents(case["id"]), headers=counsellor.headers, json=body).get_json()
    assert consent["categories"] == ["identity", "health"]
    assert consent["recipients"] == ["ba.cldd-sarajevo", "se.cldd-stockholm"]
    assert consent["given_at"] == "2026-11-22T14:30:00+00:00"


def test_consent_validation(client, counsellor):
    case = create_case(client, counsellor)
    url = _consents(case["id"])
    cases = (
        ({**CONSENT, "recipients": []}, "recipients"),
        ({**CONSENT, "recipients": ["Not a node"]}, "recipients"),
        ({**CONSENT, "categories": ["shoe_size"]}, "categories"),
        ({**CONSENT, "method": "telepathy"}, "method"),
        ({**CONSENT, "valid_until": "2026-11-22"}, "valid_until"),
        ({**CONSENT, "given_at": "2026-11-24T00:00:00Z"}, "given_at"),
        ({**CONSENT, "language": "not a language"}, "language"),
        ({key: value for key, value in CONSENT.items() if key != "purpose"}, "purpose"),
        ({**CONSENT, "scope": "everything"}, "scope"),
    )
    for body, field in cases:
        response = client.post(url, headers=counsellor.headers, json=body)
        assert response.status_code == 422, body
        assert field in response.get_json()["errors"], (field, response.get_json())
    assert client.get(url, headers=counsellor.headers).get_json() == {"items": []}


def test_a_consent_naming_no_partner_is_refused_when_recorded(client, counsellor):
    """Not later, at the handover: the counsellor learns it while the returnee is still in the room."""
    case = create_case(client, counsellor)
    url = _consents(case["id"])
    body = {**CONSENT, "recipients": ["iq.nobody-here", "gh.nobody-either"]}
    response = client.post(url, headers=counsellor.headers, json=body)
    assert response.status_code == 422
    message = ("is not a partner of this node: its administrator must add it first ('ccm-node partner add'), or "
               "name a partner.")
    assert response.get_json()["errors"] == {"recipients": {"0": [f"iq.nobody-here {message}"],
                                                            "1": [f"gh.nobody-either {message}"]}}
    assert client.get(url, headers=counsellor.headers).get_json() == {"items": []}
    # beside a partner, a node further down a forwarding chain (unknown here) may be named
    onward = {**CONSENT, "recipients": ["ba.cldd-sarajevo", "iq.nobody-here"]}
    assert client.post(url, headers=counsellor.headers, json=onward).status_code == 201


def test_a_consent_needs_a_language_when_the_returnee_has_none(client, counsellor):
    case = create_case(client, counsellor)
    assert not case["returnee"]["languages"]
    url = _consents(case["id"])
    body = {key: value for key, value in CONSENT.items() if key != "language"}
    response = client.post(url, headers=counsellor.headers, json=body)
    assert response.status_code == 422 and list(response.get_json()["errors"]) == ["language"]
    assert client.post(url, headers=counsellor.headers, json=CONSENT).status_code == 201


def test_consent_expires(client, counsellor, clock, staff):
    case = create_case(client, counsellor)
    consent = client.post(
        _consents(case["id"]), headers=counsellor.headers, json={**CONSENT, "valid_until": "2026-12-01"}
    ).get_json()
    clock.advance(days=8)
    assert (
        client.get(f"{_consents(case['id'])}/{consent['id']}", headers=counsellor.headers).get_json()[
            "status"
        ]
        == "active"
    )
    clock.advance(days=1)
    assert (
        client.get(f"{_consents(case['id'])}/{consent['id']}", headers=counsellor.headers).get_json()[
            "status"
        ]
        == "expired"
    )


def test_withdrawal(client, counsellor, clock, db_session):
    case = create_case(client, counsellor)
    url = _consents(case["id"])
    consent = client.post(url, headers=counsellor.headers, json=CONSENT).get_json()
    clock.advance(days=2)
    response = client.post(
        f"{url}/{consent['id']}/withdraw",
        headers=counsellor.headers,
        json={"reason": "No longer wants the partner to have the data."},
    )
    assert response.status_code == 200
    withdrawn = response.get_json()
    assert withdrawn["status"] == "withdrawn" and withdrawn["withdrawn_at"] == "2026-11-25T09:00:00+00:00"
    assert withdrawn["withdrawal_reason"] == "No longer wants the partner to have the data."
    again = client.post(
        f"{url}/{consent['id']}/withdraw", headers=counsellor.headers, json={"reason": "again"}
    )
    assert again.status_code == 409
    assert (
        client.post(f"{url}/{consent['id']}/withdraw", headers=counsellor.headers, json={}).status_code == 422
    )
    kinds = db_session.scalars(
        sa.select(CaseEvent.kind).where(CaseEvent.case_id == case["id"]).order_by(CaseEvent.id)
    ).all()
    assert kinds == ["case.created", "consent.given", "consent.withdrawn"]


def test_withdrawal_time_must_be_after_giving_and_not_in_the_future(client, counsellor):
    case = create_case(client, counsellor)
    url = _consents(case["id"])
    consent = client.post(url, headers=counsellor.headers, json=CONSENT).get_json()
    for when in ("2026-11-22T00:00:00Z", "2026-11-24T00:00:00Z"):
        response = client.post(
            f"{url}/{consent['id']}/withdraw",
            headers=counsellor.headers,
            json={"reason": "x", "withdrawn_at": when},
        )
        assert response.status_code == 422 and "withdrawn_at" in response.get_json()["errors"]


def test_unknown_consent_is_404(client, counsellor, staff):
    case = create_case(client, counsellor)
    other_case = create_case(client, staff("counsellor", team="stockholm"))
    consent = client.post(_consents(case["id"]), headers=counsellor.headers, json=CONSENT).get_json()
    assert (
        client.get(
            f"/api/v1/cases/{other_case['id']}/consents/{consent['id']}", headers=counsellor.headers
        ).status_code
        == 404
    )
    assert (
        client.get(f"/api/v1/cases/{case['id']}/consents/nope", headers=counsellor.headers).status_code == 404
    )
    overlong = f"/api/v1/cases/{case['id']}/consents/{consent['id']}0"
    assert client.get(overlong, headers=counsellor.headers).status_code == 404


def test_advisers_read_consent_but_do_not_manage_it(client, counsellor, staff):
    adviser = staff("adviser", team="gbg")
    case = create_case(client, counsellor)
    url = _consents(case["id"])
    consent = client.post(url, headers=counsellor.headers, json=CONSENT).get_json()
    assert client.get(url, headers=adviser.headers).status_code == 200
    assert client.post(url, headers=adviser.headers, json=CONSENT).status_code == 403
    assert (
        client.post(
            f"{url}/{consent['id']}/withdraw", headers=adviser.headers, json={"reason": "x"}
        ).status_code
        == 403
    )
    assert (
        client.put(
            f"/api/v1/cases/{case['id']}/child-safeguards", headers=if_match(adviser, 0), json=SAFEGUARDS
        ).status_code
        == 403
    )


def test_a_childs_consent_stays_pending_until_the_safeguards_are_complete(client, counsellor):
    case = create_case(client, counsellor, minimal_case(returnee={"date_of_birth": "2011-05-05"}))
    assert case["child"] is True
    url = _consents(case["id"])
    consent = client.post(url, headers=counsellor.headers, json=CONSENT).get_json()
    assert consent["status"] == "pending"
    assert consent["pending_reasons"] == [
        "guardian_identity",
        "guardian_consent",
        "child_views",
        "best_interests_assessment",
    ]
    safeguards_url = f"/api/v1/cases/{case['id']}/child-safeguards"
    empty = client.get(safeguards_url, headers=counsellor.headers)
    assert empty.headers["ETag"] == '"0"' and empty.get_json()["missing"] == consent["pending_reasons"]
    partial = {key: SAFEGUARDS[key] for key in ("guardian", "guardian_consent_at", "child_views")}
    written = client.put(safeguards_url, headers=if_match(counsellor, 0), json=partial)
    assert written.status_code == 200, written.get_json()
    assert written.get_json()["missing"] == ["best_interests_assessment"]
    still = client.get(f"{url}/{consent['id']}", headers=counsellor.headers).get_json()
    assert still["status"] == "pending" and still["pending_reasons"] == ["best_interests_assessment"]
    complete = client.put(safeguards_url, headers=if_match(counsellor, 1), json=SAFEGUARDS)
    assert complete.get_json()["missing"] == [] and complete.get_json()["version"] == 2
    assert complete.get_json()["assessed_at"] == "2026-11-21T13:00:00+00:00"
    assert client.get(f"{url}/{consent['id']}", headers=counsellor.headers).get_json()["status"] == "active"
    timeline = client.get(f"/api/v1/cases/{case['id']}/timeline", headers=counsellor.headers).get_json()
    last = timeline["items"][-1]
    assert last["kind"] == "safeguards.updated" and last["detail"]["complete"] is True
    assert "Lindqvist" not in str(timeline)


def test_safeguards_concurrency_and_validation(client, counsellor):
    case = create_case(client, counsellor, minimal_case(returnee={"date_of_birth": "2011-05-05"}))
    url = f"/api/v1/cases/{case['id']}/child-safeguards"
    assert client.put(url, headers=counsellor.headers, json=SAFEGUARDS).status_code == 428
    assert client.put(url, headers=counsellor.headers, json={**SAFEGUARDS, "version": 0}).status_code == 200
    assert client.put(url, headers=counsellor.headers, json={**SAFEGUARDS, "version": 0}).status_code == 409
    future = client.put(
        url, headers=if_match(counsellor, 1), json={**SAFEGUARDS, "assessed_at": "2027-01-01T00:00:00Z"}
    )
    assert future.status_code == 422 and "assessed_at" in future.get_json()["errors"]
    missing_name = client.put(url, headers=if_match(counsellor, 1), json={"guardian": {"relation": "parent"}})
    assert missing_name.status_code == 422


def test_an_adults_case_needs_no_safeguards(client, counsellor):
    case = create_case(client, counsellor)
    safeguards = client.get(
        f"/api/v1/cases/{case['id']}/child-safeguards", headers=counsellor.headers
    ).get_json()
    assert safeguards["child"] is False and safeguards["missing"] == []
