"""The handover story between two in-process nodes (Göteborg → Sarajevo) through their JSON APIs, with the
delivery worker carrying the messages through the Flask test clients: handover, preview, receipt, accept or
decline, progress back. Runs on SQLite and on PostgreSQL (the ``world`` fixture)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import sqlalchemy as sa

from node.exchange.handovers import appliers
from node.exchange.handovers.models import Handover, PartnerStage, ProgressUpdate
from node.exchange.inbox import dispatch
from node.exchange.models import InboundMessage, OutboundMessage
from protocol import strict_loads
from tests.exchange.desks import (
    CASE,
    SHARED,
    Desk,
    Worker,
    deliver,
    hand_over,
    incoming,
    open_case,
    timeline,
)


@pytest.fixture
def no_domain_appliers(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Overrides the exchange conftest's fixture: these tests run with the handover domain's appliers."""
    registry: dict[str, Any] = {"handover": appliers.apply_handover, "handover_accepted": appliers.apply_accepted,
                                "handover_declined": appliers.apply_declined,
                                "progress_update": appliers.apply_progress}
    monkeypatch.setattr(dispatch, "_APPLIERS", registry)
    return registry


def test_handover_accept_and_progress_back(desks: tuple[Desk, Desk], make_worker: Worker) -> None:
    gbg, sarajevo = desks
    case_id, consent_id = open_case(gbg)
    preview = gbg.ok("GET", f"/cases/{case_id}/handovers/preview?recipient=ba.cldd-sarajevo"
                            f"&consent_id={consent_id}", "counsellor")
    assert preview["categories"] == SHARED and preview["withheld"] == ["health", "background"]
    assert "health" not in preview["body"]["summary"] and gbg.count(Handover) == 0  # nothing stored
    sent = hand_over(gbg, case_id, consent_id)
    assert sent["status"] == "queued" and sent["delivered_at"] is None and sent["withheld"] == preview["withheld"]

    assert deliver(make_worker, gbg) == 1
    [shown] = gbg.ok("GET", f"/cases/{case_id}/handovers", "counsellor")["items"]
    assert shown["status"] == "delivered" and shown["delivered_at"] is not None
    assert shown["delivery"]["status"] == "delivered"
    [inbound] = sarajevo.node.inbound()
    assert inbound.inner is not None and strict_loads(inbound.inner)["body"] == preview["body"]  # exactly

    [waiting] = incoming(sarajevo)
    assert waiting["status"] == "pending" and waiting["partner_name"] == "Göteborgs-Initiativet"
    detail = sarajevo.ok("GET", f"/handovers/{waiting['id']}", "adviser")
    assert detail["summary"]["identity"]["name_latin"] == {"given": "Amina", "family": "Hadžić"}
    assert detail["summary"]["contact"]["phones"] == ["+46701234567"]
    assert detail["consent"]["signatures"] and "health" not in detail["summary"]
    accepted = sarajevo.ok("POST", f"/handovers/{waiting['id']}/accept", "adviser", 201,
                           json={"first_meeting_at": "2026-12-01T10:00:00Z"})
    new_case = sarajevo.ok("GET", f"/cases/{accepted['case_id']}", "adviser")
    assert new_case["returnee"]["family_name"] == "Hadžić" and new_case["reference"] == accepted["reference"]
    assert new_case["returnee"]["contact"]["phone"] == "+46701234567"
    intake = {s["section"]: s for s in sarajevo.ok("GET", f"/cases/{new_case['id']}/intake", "adviser")["items"]}
    assert intake["future_work"]["text"] == "Would like to open a bakery." and intake["health"]["version"] == 0
    assert sarajevo.ok("GET", f"/cases/{new_case['id']}/plan", "adviser")["end_date"] == "2027-06-30"
    assert len(sarajevo.ok("GET", f"/cases/{new_case['id']}/household", "adviser")["items"]) == 1
    kinds = [(e["kind"], e["source"], e["verified"]) for e in timeline(sarajevo, new_case["id"], "adviser")]
    assert ("handover.received", "se.gi-goteborg", True) in kinds
    assert sarajevo.ok("GET", f"/handovers/{waiting['id']}", "adviser").get("summary") is None  # erased

    assert deliver(make_worker, sarajevo) == 1
    [answered] = gbg.ok("GET", f"/cases/{case_id}/handovers", "counsellor")["items"]
    assert answered["status"] == "accepted" and answered["local_reference"] == new_case["reference"]
    assert answered["answer"]["first_meeting_at"] == "2026-12-01T10:00:00Z"
    assert gbg.ok("GET", f"/cases/{case_id}", "counsellor")["status"] == "handed_over"
    event = next(e for e in timeline(gbg, case_id) if e["kind"] == "handover.accepted")
    assert (event["source"], event["verified"], event["detail"]["partner_name"]) == (
        "ba.cldd-sarajevo", True, "CLDD Sarajevo")

    stages = sarajevo.ok("GET", f"/cases/{new_case['id']}/stages", "adviser")["items"]
    first = stages[0]["key"]
    progress = sarajevo.ok("POST", f"/cases/{new_case['id']}/progress", "adviser", 201, json={
        "note": "Amina came to the office; passport application filed.",
        "stage_changes": [{"key": first, "status": "in_progress", "note": "Application filed."}],
        "interventions": [{"kind": "business_course", "provider": "Bakery course Sarajevo"}],
        "meetings": [{"at": "2026-11-23T08:00:00Z", "kind": "in_person"}]})
    assert progress["shared_with"] == "se.gi-goteborg" and progress["direction"] == "sent"
    assert deliver(make_worker, sarajevo) == 1
    event = next(e for e in timeline(gbg, case_id) if e["kind"] == "partner.progress")
    assert (event["source"], event["verified"]) == ("ba.cldd-sarajevo", True)
    assert event["detail"]["stages"] == [{"key": first, "status": "in_progress"}]
    [stage] = gbg.ok("GET", f"/cases/{case_id}/partner-stages", "counsellor")["items"]
    assert (stage["key"], stage["status"], stage["partner_name"]) == (first, "in_progress", "CLDD Sarajevo")
    [received] = gbg.ok("GET", f"/cases/{case_id}/progress", "counsellor")["items"]
    assert received["direction"] == "received" and received["verified"] is True
    assert received["note"].startswith("Amina came") and received["interventions"][0]["kind"] == "business_course"
    assert received["meetings"] == [{"at": "2026-11-23T08:00:00Z", "kind": "in_person"}]


def test_decline_erases_the_summary_and_tells_the_sender(desks: tuple[Desk, Desk], make_worker: Worker) -> None:
    gbg, sarajevo = desks
    case_id, consent_id = open_case(gbg)
    hand_over(gbg, case_id, consent_id)
    deliver(make_worker, gbg)
    [waiting] = incoming(sarajevo)
    declined = sarajevo.ok("POST", f"/handovers/{waiting['id']}/decline", "adviser",
                           json={"reason": "No adviser free in Sarajevo until March.", "reason_code": "no_capacity"})
    assert declined["status"] == "declined" and declined["reason_code"] == "no_capacity"
    with sarajevo.node.sessionmaker() as session:
        row = session.scalar(sa.select(Handover))
        assert row is not None and row.body is None and row.consent is None
        assert session.scalar(sa.select(InboundMessage.inner)) is None  # the signed summary erased too
    again = sarajevo.call("POST", f"/handovers/{waiting['id']}/accept", "adviser", json={})
    assert again.status_code == 409
    assert deliver(make_worker, sarajevo) == 1
    [shown] = gbg.ok("GET", f"/cases/{case_id}/handovers", "counsellor")["items"]
    assert (shown["status"], shown["reason"]) == ("declined", "No adviser free in Sarajevo until March.")
    event = next(e for e in timeline(gbg, case_id) if e["kind"] == "handover.declined")
    assert (event["source"], event["verified"], event["detail"]["reason_code"]) == (
        "ba.cldd-sarajevo", True, "no_capacity")
    assert hand_over(gbg, case_id, consent_id)["status"] == "queued"  # a declined handover may be sent again


def test_child_case_travels_with_its_safeguards(desks: tuple[Desk, Desk], make_worker: Worker) -> None:
    gbg, sarajevo = desks
    child = copy.deepcopy(CASE)
    child["returnee"].update(given_names="Emir", date_of_birth="2011-05-14")
    case_id, consent_id = open_case(gbg, child)
    gbg.ok("PUT", f"/cases/{case_id}/child-safeguards", "counsellor", headers={"If-Match": '"0"'}, json={
        "guardian": {"name": "Karin Berg", "relation": "appointed guardian (god man)"},
        "guardian_consent_at": "2026-11-20T10:00:00Z",
        "child_views": "Emir wants to live with his grandmother in Sarajevo.",
        "best_interests_outcome": "Return to the grandmother is in Emir's best interests.",
        "assessed_at": "2026-11-21T10:00:00Z", "assessed_by": "Göteborgs stad, socialtjänsten"})
    sent = hand_over(gbg, case_id, consent_id, best_interests_outcome="in_best_interests")
    assert sent["child"] is True
    assert deliver(make_worker, gbg) == 1
    [waiting] = incoming(sarajevo)
    consent = sarajevo.ok("GET", f"/handovers/{waiting['id']}", "adviser")["consent"]
    assert waiting["child"] is True and consent["child"]["guardian"]["role"] == "appointed_guardian"
    assert consent["child"]["best_interests"]["outcome"] == "in_best_interests"


def test_an_answer_overtaking_the_receipt_still_sets_the_status(desks: tuple[Desk, Desk],
                                                               make_worker: Worker) -> None:
    gbg, sarajevo = desks
    case_id, consent_id = open_case(gbg)
    hand_over(gbg, case_id, consent_id)
    [queued] = gbg.node.outbound()
    assert sarajevo.node.post_inbox(queued.envelope).status_code == 200  # arrived; the answer got lost
    [waiting] = incoming(sarajevo)
    sarajevo.ok("POST", f"/handovers/{waiting['id']}/accept", "adviser", 201, json={})
    assert deliver(make_worker, sarajevo) == 1
    [shown] = gbg.ok("GET", f"/cases/{case_id}/handovers", "counsellor")["items"]
    assert shown["status"] == "accepted" and shown["delivery"]["status"] == "queued"
    assert deliver(make_worker, gbg) == 1  # the retry gets the original receipt
    [shown] = gbg.ok("GET", f"/cases/{case_id}/handovers", "counsellor")["items"]
    assert shown["status"] == "accepted" and shown["delivered_at"] is not None


def test_progress_on_a_local_case_stays_local(desks: tuple[Desk, Desk]) -> None:
    gbg, _sarajevo = desks
    case_id, _consent_id = open_case(gbg)
    result = gbg.ok("POST", f"/cases/{case_id}/progress", "counsellor", 201, json={"note": "Called Amina."})
    assert (result["direction"], result["shared_with"]) == ("local", None)
    assert gbg.count(OutboundMessage) == 0
    notes = gbg.ok("GET", f"/cases/{case_id}/notes", "counsellor")["items"]
    assert [n["text"] for n in notes] == ["Called Amina."]


def test_progress_is_recorded_when_the_origin_cannot_receive(desks: tuple[Desk, Desk],
                                                              make_worker: Worker) -> None:
    gbg, sarajevo = desks
    case_id, consent_id = open_case(gbg)
    hand_over(gbg, case_id, consent_id)
    deliver(make_worker, gbg)
    [waiting] = incoming(sarajevo)
    new_case = sarajevo.ok("POST", f"/handovers/{waiting['id']}/accept", "adviser", 201, json={})["case_id"]
    from node.exchange.trust.partners import set_status

    with sarajevo.node.sessionmaker() as session:
        set_status(session, "se.gi-goteborg", "suspended", sarajevo.node.clock.now())
        session.commit()
    result = sarajevo.ok("POST", f"/cases/{new_case}/progress", "adviser", 201, json={"note": "Met Amina."})
    assert result["shared_with"] is None and "suspended" in result["not_shared"]
    assert sarajevo.count(ProgressUpdate) == 1


def test_progress_and_answers_must_cite_the_thread_handover(desks: tuple[Desk, Desk],
                                                            make_worker: Worker) -> None:
    gbg, sarajevo = desks
    case_id, consent_id = open_case(gbg)
    hand_over(gbg, case_id, consent_id)
    deliver(make_worker, gbg)
    [row] = gbg.node.outbound()
    wrong = {"handover_id": "AAAAAAAAAAAAAAAAAAAAAA", "accepted_at": "2026-11-23T09:00:00Z"}
    sarajevo.node.send(gbg.node, wrong, row.thread, msg_type="handover_accepted")
    assert deliver(make_worker, sarajevo) == 0
    assert [m.last_error for m in sarajevo.node.outbound()] == ["malformed"]  # parked: refused for good
    other = {"handover_id": row.message_id, "update_id": "u1", "at": "2026-11-23T09:00:00Z", "note": "x"}
    sarajevo.node.send(gbg.node, other, "TTTTTTTTTTTTTTTTTTTTTT")
    deliver(make_worker, sarajevo)
    assert gbg.count(ProgressUpdate) == gbg.count(PartnerStage) == 0
    [shown] = gbg.ok("GET", f"/cases/{case_id}/handovers", "counsellor")["items"]
    assert shown["status"] == "delivered"
