"""Handovers refused: at the sender (the API answers a clear 4xx and stores nothing), at the receiver (the inbox
answers the protocol's code and stores nothing), and an adviser's decision that is no longer possible."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import sqlalchemy as sa

from node.cases.models import CaseEvent
from node.exchange.handovers.models import Handover
from node.exchange.models import InboundMessage, OutboundMessage
from node.exchange.trust.partners import set_status
from protocol import make_consent_record, seal, sign_consent
from tests.exchange import test_handovers as story
from tests.exchange.conftest import Node
from tests.exchange.desks import CASE, Desk, Worker, consent_body, deliver, hand_over, incoming, open_case

no_domain_appliers = story.no_domain_appliers  # the story tests' appliers


def stored(gbg: Desk) -> tuple[int, int, int]:
    """What a refused handover must not have left behind: handovers, messages, handover events."""
    with gbg.node.sessionmaker() as session:
        events = session.scalar(sa.select(sa.func.count()).select_from(CaseEvent)
                                .where(CaseEvent.kind.like("handover%")))
    return gbg.count(Handover), gbg.count(OutboundMessage), int(events or 0)


def refused(gbg: Desk, case_id: str, body: dict[str, Any], status: int, code: str, role: str = "counsellor",
            ) -> dict[str, Any]:
    response = gbg.call("POST", f"/cases/{case_id}/handovers", role, json=body)
    problem: dict[str, Any] = response.get_json()
    assert (response.status_code, problem["code"]) == (status, code), problem
    assert response.mimetype == "application/problem+json"
    assert stored(gbg) == (0, 0, 0)
    return problem


def to_sarajevo(consent_id: str, **extra: Any) -> dict[str, Any]:
    return {"recipient": "ba.cldd-sarajevo", "consent_id": consent_id, **extra}


def test_no_such_consent(desks: tuple[Desk, Desk]) -> None:
    gbg, _ = desks
    case_id, _consent = open_case(gbg)
    problem = refused(gbg, case_id, to_sarajevo("0b7d2c11-4f6e-4b8a-9a51-2d9f3c1e7a00"), 422, "validation_failed")
    assert "consent_id" in problem["errors"]


def test_withdrawn_consent(desks: tuple[Desk, Desk]) -> None:
    gbg, _ = desks
    case_id, consent_id = open_case(gbg)
    gbg.ok("POST", f"/cases/{case_id}/consents/{consent_id}/withdraw", "counsellor",
           json={"reason": "Amina changed her mind."})
    problem = refused(gbg, case_id, to_sarajevo(consent_id), 409, "consent_inactive")
    assert "withdrawn" in problem["detail"]


def test_expired_consent(desks: tuple[Desk, Desk]) -> None:
    gbg, _ = desks
    case_id, consent_id = open_case(gbg, consent=consent_body(valid_until="2026-11-30"))
    gbg.node.clock.advance(days=8)
    problem = refused(gbg, case_id, to_sarajevo(consent_id), 409, "consent_inactive")
    assert "expired" in problem["detail"]


def test_recipient_or_purpose_outside_the_consent(desks: tuple[Desk, Desk], nodes: dict[str, Node]) -> None:
    gbg, _ = desks
    gbg.node.trust(nodes["baghdad"])  # a partner too, but not the one the consent names
    case_id, consent_id = open_case(gbg, consent=consent_body(recipients=["iq.cldd-baghdad"]))
    problem = refused(gbg, case_id, to_sarajevo(consent_id), 422, "outside_consent")
    assert "iq.cldd-baghdad" in problem["errors"]["recipient"][0]
    case_id, consent_id = open_case(gbg)
    problem = refused(gbg, case_id, to_sarajevo(consent_id, purpose="follow_up"), 422, "outside_consent")
    assert "purpose" in problem["errors"]


def test_child_without_safeguards(desks: tuple[Desk, Desk]) -> None:
    gbg, _ = desks
    child = copy.deepcopy(CASE)
    child["returnee"]["date_of_birth"] = "2012-01-01"
    case_id, consent_id = open_case(gbg, child)
    problem = refused(gbg, case_id, to_sarajevo(consent_id, best_interests_outcome="in_best_interests"), 409,
                      "consent_inactive")
    assert "child_views" in problem["detail"] and "guardian_consent" in problem["detail"]
    gbg.ok("PUT", f"/cases/{case_id}/child-safeguards", "counsellor", headers={"If-Match": '"0"'}, json={
        "guardian": {"name": "Karin Berg", "relation": "social services"},
        "guardian_consent_at": "2026-11-20T10:00:00Z", "child_views": "Wants to go home.",
        "best_interests_outcome": "Not decided yet.", "assessed_at": "2026-11-21T10:00:00Z",
        "assessed_by": "Socialtjänsten"})
    problem = refused(gbg, case_id, to_sarajevo(consent_id), 422, "validation_failed")
    assert "best_interests_outcome" in problem["errors"]
    problem = refused(gbg, case_id, to_sarajevo(consent_id, best_interests_outcome="inconclusive"), 409,
                      "consent_invalid")
    assert "best-interests" in problem["detail"]


def test_partner_unknown_suspended_or_without_agreement(desks: tuple[Desk, Desk], nodes: dict[str, Node]) -> None:
    gbg, _ = desks
    case_id, consent_id = open_case(gbg, consent=consent_body(
        recipients=["ba.cldd-sarajevo", "iq.cldd-baghdad", "gh.accra-partner"]))
    problem = refused(gbg, case_id, {"recipient": "gh.accra-partner", "consent_id": consent_id}, 422,
                      "unknown_partner")
    assert "partner add" in problem["errors"]["recipient"][0]
    gbg.node.trust(nodes["baghdad"], agreement=None)
    problem = refused(gbg, case_id, {"recipient": "iq.cldd-baghdad", "consent_id": consent_id}, 409,
                      "no_agreement")
    assert "agreement" in problem["detail"]
    with gbg.node.sessionmaker() as session:
        set_status(session, "ba.cldd-sarajevo", "suspended", gbg.node.clock.now())
        session.commit()
    problem = refused(gbg, case_id, to_sarajevo(consent_id), 409, "partner_unavailable")
    assert "suspended" in problem["detail"]


def test_no_language_for_the_consent(desks: tuple[Desk, Desk]) -> None:
    gbg, _ = desks
    body = copy.deepcopy(CASE)
    body["returnee"]["languages"] = []
    case = gbg.ok("POST", "/cases", "counsellor", 201, json=body)
    answer = gbg.call("POST", f"/cases/{case['id']}/consents", "counsellor", json=consent_body(language=None))
    assert answer.status_code == 422 and list(answer.get_json()["errors"]) == ["language"]  # refused at once
    # the returnee's languages removed after the consent was recorded: the handover still needs one
    case_id, consent_id = open_case(gbg, consent=consent_body(language=None))
    version = gbg.ok("GET", f"/cases/{case_id}", "counsellor")["version"]
    gbg.ok("PATCH", f"/cases/{case_id}", "counsellor", json={"returnee": {"languages": []}, "version": version})
    problem = refused(gbg, case_id, to_sarajevo(consent_id), 422, "validation_failed")
    assert "language" in problem["errors"]


def test_roles_and_duplicates(desks: tuple[Desk, Desk]) -> None:
    gbg, sarajevo = desks
    case_id, consent_id = open_case(gbg)
    refused(gbg, case_id, to_sarajevo(consent_id), 403, "forbidden", role="adviser")
    preview = gbg.call("GET", f"/cases/{case_id}/handovers/preview?recipient=ba.cldd-sarajevo"
                              f"&consent_id={consent_id}", "adviser")
    assert preview.status_code == 403
    assert sarajevo.call("GET", "/handovers?direction=incoming", "counsellor").status_code == 403
    hand_over(gbg, case_id, consent_id)
    again = gbg.call("POST", f"/cases/{case_id}/handovers", "counsellor", json=to_sarajevo(consent_id))
    assert again.status_code == 409 and "already" in again.get_json()["detail"]
    assert gbg.count(Handover) == 1


# --- at the receiver --------------------------------------------------------------------------------------

def _preview_body(gbg: Desk, case_id: str, consent_id: str) -> dict[str, Any]:
    body: dict[str, Any] = gbg.ok("GET", f"/cases/{case_id}/handovers/preview?recipient=ba.cldd-sarajevo"
                                         f"&consent_id={consent_id}", "counsellor")["body"]
    return body


def _post(gbg: Desk, sarajevo: Desk, body: dict[str, Any], thread: str = "TTTTTTTTTTTTTTTTTTTTTT") -> Any:
    envelope = seal(keys=gbg.node.identity.keys, recipient=sarajevo.node.identity.card, msg_type="handover",
                    body=body, thread=thread, now=gbg.node.clock.now(), agreement="dsa-gi-cldd-2026")
    return sarajevo.node.post_inbox(envelope.data)


def _nothing_received(sarajevo: Desk) -> None:
    assert (sarajevo.count(Handover), sarajevo.count(InboundMessage)) == (0, 0)


def test_receiver_refuses_a_summary_outside_the_consent(desks: tuple[Desk, Desk]) -> None:
    gbg, sarajevo = desks
    case_id, consent_id = open_case(gbg)
    body = _preview_body(gbg, case_id, consent_id)
    body["summary"]["health"] = {"text": "Asthma."}
    body["withheld"].remove("health")
    response = _post(gbg, sarajevo, body)
    assert (response.status_code, response.get_json()["code"]) == (403, "outside_consent")
    _nothing_received(sarajevo)


def test_receiver_refuses_a_changed_or_lapsed_consent(desks: tuple[Desk, Desk]) -> None:
    gbg, sarajevo = desks
    case_id, consent_id = open_case(gbg, consent=consent_body(valid_until="2026-11-23"))
    body = _preview_body(gbg, case_id, consent_id)
    forged = copy.deepcopy(body)
    forged["consent"]["grants"][0]["categories"].append("health")
    response = _post(gbg, sarajevo, forged)
    assert (response.status_code, response.get_json()["code"]) == (401, "bad_signature")
    gbg.node.clock.advance(hours=16)  # the consent lapsed at 23:59:59 the same day; the envelope is valid
    response = _post(gbg, sarajevo, body)
    assert (response.status_code, response.get_json()["code"]) == (403, "consent_invalid")
    _nothing_received(sarajevo)


def test_receiver_refuses_a_child_consent_without_safeguards(desks: tuple[Desk, Desk]) -> None:
    gbg, sarajevo = desks
    case_id, consent_id = open_case(gbg)
    body = _preview_body(gbg, case_id, consent_id)
    keys = gbg.node.identity.keys
    record = make_consent_record(
        consent_id=consent_id, origin=keys.node_id, case_id=case_id, given_at=gbg.node.clock.now(),
        valid_until=gbg.node.clock.now().replace(year=2027), method="written_signature", language="bs",
        subject={"child": True}, grants=[{"recipient": "ba.cldd-sarajevo", "purposes": ["reintegration_support"],
                                          "categories": ["identity", "plan"]}])
    body["consent"] = sign_consent(record, keys.node_id, keys.signing_key)
    body["summary"] = {k: v for k, v in body["summary"].items() if k in ("identity", "plan")}
    body["withheld"] = ["contact", "family", "health", "background", "education", "work", "wishes"]
    response = _post(gbg, sarajevo, body)
    assert (response.status_code, response.get_json()["code"]) == (403, "consent_invalid")
    _nothing_received(sarajevo)


def test_a_handover_must_open_its_thread(desks: tuple[Desk, Desk], make_worker: Worker) -> None:
    gbg, sarajevo = desks
    case_id, consent_id = open_case(gbg)
    body = _preview_body(gbg, case_id, consent_id)
    gbg.node.send(sarajevo.node, body, "TTTTTTTTTTTTTTTTTTTTTT", msg_type="handover")
    gbg.node.send(sarajevo.node, body, "TTTTTTTTTTTTTTTTTTTTTT", msg_type="handover")
    assert deliver(make_worker, gbg) == 1
    assert [m.last_error for m in gbg.node.outbound()] == [None, "malformed"]
    assert sarajevo.count(Handover) == 1


# --- the adviser's decision -----------------------------------------------------------------------------

def test_accept_refused_when_the_consent_lapsed_while_waiting(desks: tuple[Desk, Desk],
                                                             make_worker: Worker) -> None:
    gbg, sarajevo = desks
    case_id, consent_id = open_case(gbg, consent=consent_body(valid_until="2026-11-23"))
    hand_over(gbg, case_id, consent_id)
    deliver(make_worker, gbg)
    [waiting] = incoming(sarajevo)
    assert sarajevo.call("POST", f"/handovers/{waiting['id']}/accept", "counsellor", json={}).status_code == 403
    sarajevo.node.clock.advance(hours=16)
    response = sarajevo.call("POST", f"/handovers/{waiting['id']}/accept", "adviser", json={})
    assert (response.status_code, response.get_json()["code"]) == (409, "consent_invalid")
    assert "decline" in response.get_json()["detail"]
    [still] = incoming(sarajevo)
    assert still["status"] == "pending" and still["case_id"] is None
    assert sarajevo.count(OutboundMessage) == 0
    declined = sarajevo.ok("POST", f"/handovers/{waiting['id']}/decline", "adviser",
                           json={"reason": "The consent lapsed.", "reason_code": "consent_problem"})
    assert declined["status"] == "declined"


def test_handovers_are_shown_only_to_those_who_may_see_them(desks: tuple[Desk, Desk],
                                                           make_worker: Worker) -> None:
    gbg, sarajevo = desks
    case_id, consent_id = open_case(gbg)
    sent = hand_over(gbg, case_id, consent_id)
    gbg.staff("erik.nilsson", "counsellor", "other-team")
    assert gbg.call("GET", f"/handovers/{sent['id']}", "counsellor").status_code == 404  # another team's
    assert gbg.ok("GET", "/handovers?direction=outgoing", "counsellor")["items"] == []
    assert gbg.call("GET", f"/cases/{case_id}/handovers", "counsellor").status_code == 404
    deliver(make_worker, gbg)
    [waiting] = incoming(sarajevo)
    assert sarajevo.call("GET", f"/handovers/{waiting['id']}", "counsellor").status_code == 404
    assert sarajevo.call("GET", "/handovers/not-an-id", "adviser").status_code == 404


@pytest.mark.parametrize("body", [{"reason": "x"}, {"reason": "x", "reason_code": "bored"}, {"reason_code": "other"}])
def test_decline_needs_a_reason_and_a_code(desks: tuple[Desk, Desk], make_worker: Worker,
                                           body: dict[str, Any]) -> None:
    gbg, sarajevo = desks
    case_id, consent_id = open_case(gbg)
    hand_over(gbg, case_id, consent_id)
    deliver(make_worker, gbg)
    [waiting] = incoming(sarajevo)
    assert sarajevo.call("POST", f"/handovers/{waiting['id']}/decline", "adviser", json=body).status_code == 422
    assert incoming(sarajevo)[0]["status"] == "pending"
