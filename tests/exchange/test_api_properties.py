"""Property tests of the exchange API: whatever a client sends to the handover, answer, progress, withdrawal,
revocation, closing and forwarding endpoints, and whatever ids and parameters it reads with, the answer is
2xx or 4xx, never a 500, and a refused request queues no message (nothing half-saved). SQLite and PostgreSQL.

The examples of one test share their nodes: a case ready to hand over, a handover waiting in Sarajevo, and
one accepted there. A request that succeeds changes that state for the next examples (a consent withdrawn, a
case closed), which then get their 4xx: that is part of what is tested.
"""

from __future__ import annotations

import json
import urllib.parse
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from node.exchange.handovers.models import Handover
from node.exchange.models import OutboundMessage
from tests.exchange.desks import Desk, Worker, deliver, hand_over, incoming, open_case
from tests.json_strategies import DATES, JSON, TEXT, maybe

SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
ODD_ID = st.one_of(st.sampled_from(["", "x", "0" * 40, "00000000-0000-0000-0000-000000000000", "%2e%2e",
                                    "a b"]), TEXT)
SUPPORT = maybe({"kind": st.sampled_from(["housing", "medical", "x"]), "note": TEXT})
HANDOVER = maybe({
    "recipient": st.sampled_from(["ba.cldd-sarajevo", "iq.cldd-baghdad", "se.gi-goteborg", "BA.CLDD", "x"]),
    "consent_id": ODD_ID,
    "purpose": st.sampled_from(["reintegration_support", "medical_referral", "x"]),
    "best_interests_outcome": st.sampled_from(["in_best_interests", "inconclusive", "x"]),
    "requested_support": st.lists(SUPPORT, max_size=3),
})
ACCEPT = maybe({"first_meeting_at": DATES, "office": TEXT})
DECLINE = maybe({"reason": TEXT, "reason_code": st.sampled_from(["no_capacity", "outside_mandate", "x"])})
PROGRESS = maybe({
    "note": TEXT,
    "stage_changes": st.lists(maybe({"key": TEXT, "status": st.sampled_from(["in_progress", "done", "x"]),
                                     "note": TEXT}), max_size=2),
    "interventions": st.lists(maybe({"id": ODD_ID, "kind": st.sampled_from(["housing", "x"]),
                                     "status": st.sampled_from(["proposed", "x"]), "start_date": DATES,
                                     "end_date": DATES, "amount": TEXT, "currency": TEXT}), max_size=2),
    "meetings": st.lists(maybe({"at": DATES, "kind": st.sampled_from(["in_person", "x"]), "note": TEXT}),
                         max_size=2),
})
WITHDRAW = maybe({"reason": TEXT, "withdrawn_at": DATES, "scope": maybe({
    "categories": st.lists(st.sampled_from(["health", "contact", "identity", "x"]), max_size=3),
    "recipients": st.lists(st.sampled_from(["ba.cldd-sarajevo", "x"]), max_size=2)})})
REVOKE = maybe({"reason": TEXT})
CLOSE = maybe({"outcome": maybe({"code": st.sampled_from(["plan_completed", "x"]), "text": TEXT})})
FORWARD = maybe({"recipient": st.sampled_from(["iq.cldd-baghdad", "se.gi-goteborg", "x"]), "reason": TEXT})
#: A body as JSON (plausible or anything), or as bytes that may not be JSON at all.
RAW = st.one_of(st.binary(max_size=40), st.sampled_from([b"", b"{", b"[]", b"null", b'{"note": "\\ud800"}']))


def body_of(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[bytes]:
    return st.one_of(strategy, JSON).map(lambda value: json.dumps(value).encode("utf-8")) | RAW


@dataclass
class Scene:
    """What the examples of one test act on."""

    gbg: Desk
    sarajevo: Desk
    case_id: str  # at Göteborg, with an active consent naming Sarajevo, not handed over yet
    consent_id: str
    sent_case_id: str  # at Göteborg, handed over and accepted in Sarajevo
    sent_consent_id: str
    sent_handover_id: str
    waiting_id: str  # at Sarajevo: an incoming handover waiting for an answer
    local_case_id: str  # at Sarajevo: the case opened by accepting


@pytest.fixture
def scene(desks: tuple[Desk, Desk], make_worker: Worker) -> Scene:
    gbg, sarajevo = desks
    case_id, consent_id = open_case(gbg)
    sent_case_id, sent_consent_id = open_case(gbg)
    sent = hand_over(gbg, sent_case_id, sent_consent_id)
    waiting_case, waiting_consent = open_case(gbg)
    hand_over(gbg, waiting_case, waiting_consent)
    assert deliver(make_worker, gbg) == 2
    by_reference = {item["reference"]: item["id"] for item in incoming(sarajevo)}
    reference = gbg.ok("GET", f"/cases/{sent_case_id}", "counsellor")["reference"]
    accepted = sarajevo.ok("POST", f"/handovers/{by_reference.pop(reference)}/accept", "adviser", 201, json={})
    [waiting_id] = by_reference.values()
    return Scene(gbg, sarajevo, case_id, consent_id, sent_case_id, sent_consent_id, sent["id"], waiting_id,
                 accepted["case_id"])


def segment(value: str) -> str:
    """Any text as one path segment, percent-encoded byte for byte (a lone surrogate as its UTF-8 bytes)."""
    return urllib.parse.quote(value.encode("utf-8", "surrogatepass"), safe="") or "x"


def post(desk: Desk, path: str, role: str, body: bytes) -> int:
    """POST ``body`` and check the answer: no 500, and a refusal queued no message and made no handover."""
    before = desk.count(OutboundMessage), desk.count(Handover)
    response = desk.call("POST", path, role, data=body, content_type="application/json")
    assert response.status_code < 500, response.get_json()
    if response.status_code >= 400:
        assert response.get_json()["status"] == response.status_code
        assert (desk.count(OutboundMessage), desk.count(Handover)) == before
    return response.status_code


@SETTINGS
@example(body=b'{"recipient": "ba.cldd-sarajevo", "consent_id": "\\u0000"}', odd_case=None)
@given(body=body_of(HANDOVER), odd_case=st.one_of(st.none(), ODD_ID))
def test_sending_a_handover_never_fails_with_500(scene: Scene, body: bytes, odd_case: str | None) -> None:
    case_id = scene.case_id if odd_case is None else segment(odd_case)
    for path in (f"/cases/{case_id}/handovers", f"/cases/{case_id}/handovers/preview"):
        if path.endswith("preview"):
            response = scene.gbg.call("GET", path, "counsellor", query_string=_query(body))
            assert response.status_code < 500, response.get_json()
        else:
            post(scene.gbg, path, "counsellor", body)


def _query(body: bytes) -> str:
    """The body's members as a query string, byte for byte (a lone surrogate becomes its UTF-8 bytes)."""
    try:
        value = json.loads(body)
    except ValueError:
        value = {"recipient": body.decode("latin-1")}
    if not isinstance(value, dict):
        return ""
    return urllib.parse.urlencode({str(k).encode("utf-8", "surrogatepass"): str(v).encode("utf-8", "surrogatepass")
                                   for k, v in value.items()})


@SETTINGS
@example(answer="accept", accept=b"{}", decline=b"", odd_id="\x00")  # was a 500 on PostgreSQL (NUL in a query)
@given(answer=st.sampled_from(["accept", "decline"]), accept=body_of(ACCEPT), decline=body_of(DECLINE),
       odd_id=st.one_of(st.none(), ODD_ID))
def test_answering_a_handover_never_fails_with_500(scene: Scene, answer: str, accept: bytes, decline: bytes,
                                                    odd_id: str | None) -> None:
    handover_id = scene.waiting_id if odd_id is None else segment(odd_id)
    post(scene.sarajevo, f"/handovers/{handover_id}/{answer}", "adviser", accept if answer == "accept" else decline)


@SETTINGS
@given(action=st.sampled_from(["progress", "withdraw", "revoke", "close", "forward"]), progress=body_of(PROGRESS),
       withdraw=body_of(WITHDRAW), revoke=body_of(REVOKE), close=body_of(CLOSE), forward=body_of(FORWARD),
       odd_id=st.one_of(st.none(), st.none(), ODD_ID))
def test_working_the_case_never_fails_with_500(scene: Scene, action: str, progress: bytes, withdraw: bytes,
                                               revoke: bytes, close: bytes, forward: bytes,
                                               odd_id: str | None) -> None:
    gbg, sarajevo = scene.gbg, scene.sarajevo

    def given_id(known: str) -> str:
        return known if odd_id is None else segment(odd_id)

    if action == "progress":
        post(sarajevo, f"/cases/{given_id(scene.local_case_id)}/progress", "adviser", progress)
    elif action == "withdraw":
        post(gbg, f"/cases/{scene.sent_case_id}/consents/{given_id(scene.sent_consent_id)}/withdraw",
             "counsellor", withdraw)
    elif action == "revoke":
        post(gbg, f"/handovers/{given_id(scene.sent_handover_id)}/revoke", "counsellor", revoke)
    elif action == "close":
        post(gbg, f"/cases/{given_id(scene.sent_case_id)}/close", "counsellor", close)
    else:
        post(sarajevo, f"/cases/{given_id(scene.local_case_id)}/forwards", "counsellor", forward)


@SETTINGS
@given(path=st.sampled_from(["/handovers/{id}", "/cases/{id}/handovers", "/cases/{id}/progress",
                             "/cases/{id}/partner-stages", "/cases/{id}/disclosures", "/cases/{id}/custody",
                             "/cases/{id}/export", "/handovers", "/cases/{id}/handovers/preview"]),
       odd_id=ODD_ID, query=st.dictionaries(st.sampled_from(["direction", "status", "recipient", "consent_id"]),
                                            TEXT, max_size=3))
def test_reading_never_fails_with_500(scene: Scene, path: str, odd_id: str, query: dict[str, str]) -> None:
    target = path.replace("{id}", segment(odd_id))
    if query:
        target += "?" + urllib.parse.urlencode({k: v.encode("utf-8", "surrogatepass") for k, v in query.items()})
    for desk, role in ((scene.gbg, "counsellor"), (scene.sarajevo, "adviser")):
        response = desk.call("GET", target, role)
        assert response.status_code < 500, response.get_json()
