"""The whole story over real HTTP between real processes, on SQLite and on PostgreSQL: GI Göteborg and CLDD
Sarajevo, each a gunicorn node with its own database and a ``ccm-node deliver`` worker, trust each other by
fetching each other's card from its URL with the fingerprint read out; a counsellor records a case and consent
and hands the case over; the signed receipt comes back; the adviser accepts; progress flows back and shows on
the counsellor's timeline, verified, and in the partner's stages."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import pytest

from tests.harness import Network, NodeProcess

pytestmark = pytest.mark.slow
T = TypeVar("T")
AGREEMENT = "dsa-gi-cldd-sarajevo-2026"
FAST = ("--min-backoff", "0.2", "--max-backoff", "1", "--poll-seconds", "0.05")
CASE = {
    "returnee": {"given_names": "Amina", "family_name": "Hadžić", "date_of_birth": "1988-03-14",
                 "languages": ["bs", "sv"], "contact": {"phone": "+46 70 123 45 67"}},
    "destination_country": "BA", "destination_locality": "Sarajevo",
    "intake": {"health": {"text": "Asthma."}, "wishes": {"text": "Želim otvoriti pekaru u Sarajevu."},
               "work": {"text": "Cook for six years.", "occupations": ["cook"]}},
    "plan": {"end_date": "2027-06-30", "milestones": [{"title": "ID card", "due_date": "2027-01-31"}]},
}


def wait(what: str, probe: Callable[[], T | None], seconds: float = 30) -> T:
    deadline = time.monotonic() + seconds
    while True:
        value = probe()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what}: not seen within {seconds} s"
        time.sleep(0.1)


def ok(node: NodeProcess, method: str, path: str, token: str, status: int = 200, **kwargs: Any) -> Any:
    response = node.api(method, path, token, **kwargs)
    assert response.status_code == status, response.text
    return response.json()


def test_story_goteborg_to_sarajevo(network: Network) -> None:
    gbg = network.add("se.gi-goteborg", "Göteborgs-Initiativet")
    sarajevo = network.add("ba.cldd-sarajevo", "CLDD Sarajevo")
    anna = gbg.user("anna.lindqvist", "counsellor", team="gbg")
    emina = sarajevo.user("emina.kovac", "adviser", team="sarajevo")
    for node in (gbg, sarajevo):
        node.start()
        node.spawn("deliver", *FAST)
    gbg.trust(sarajevo, AGREEMENT, by_url=True)
    sarajevo.trust(gbg, AGREEMENT, by_url=True)

    case = ok(gbg, "POST", "/cases", anna, 201, json=CASE)
    consent = ok(gbg, "POST", f"/cases/{case['id']}/consents", anna, 201, json={
        "recipients": ["ba.cldd-sarajevo"], "categories": ["identity", "contact", "work", "wishes", "plan"],
        "purpose": "reintegration_support", "method": "written_signature", "valid_until": "2027-11-30"})
    preview = ok(gbg, "GET", f"/cases/{case['id']}/handovers/preview", anna,
                 params={"recipient": "ba.cldd-sarajevo", "consent_id": consent["id"]})
    sent = ok(gbg, "POST", f"/cases/{case['id']}/handovers", anna, 202,
              json={"recipient": "ba.cldd-sarajevo", "consent_id": consent["id"]})
    assert sent["status"] == "queued" and sent["withheld"] == preview["withheld"]
    assert "health" in sent["withheld"]

    def handover() -> dict[str, Any]:
        items: list[dict[str, Any]] = ok(gbg, "GET", f"/cases/{case['id']}/handovers", anna)["items"]
        return items[0]

    delivered = wait("the signed receipt", lambda: handover() if handover()["delivered_at"] else None)
    assert delivered["status"] == "delivered" and delivered["delivery"]["attempts"] >= 1

    waiting = wait("the incoming handover", lambda: ok(sarajevo, "GET", "/handovers", emina,
                                                       params={"direction": "incoming"})["items"])[0]
    detail = ok(sarajevo, "GET", f"/handovers/{waiting['id']}", emina)
    assert detail["summary"] == preview["body"]["summary"] and "health" not in detail["summary"]
    accepted = ok(sarajevo, "POST", f"/handovers/{waiting['id']}/accept", emina, 201, json={})
    local = ok(sarajevo, "GET", f"/cases/{accepted['case_id']}", emina)
    assert local["returnee"]["family_name"] == "Hadžić"
    wait("the acceptance at Göteborg", lambda: handover()["status"] == "accepted")
    assert handover()["local_reference"] == local["reference"]

    stage = ok(sarajevo, "GET", f"/cases/{local['id']}/stages", emina)["items"][0]["key"]
    progress = ok(sarajevo, "POST", f"/cases/{local['id']}/progress", emina, 201, json={
        "note": "First meeting held; ID card application filed.",
        "stage_changes": [{"key": stage, "status": "in_progress"}]})
    assert progress["shared_with"] == "se.gi-goteborg"

    def partner_event() -> dict[str, Any] | None:
        events = ok(gbg, "GET", f"/cases/{case['id']}/timeline", anna)["items"]
        return next((e for e in events if e["kind"] == "partner.progress"), None)

    event = wait("progress on Göteborg's timeline", partner_event)
    assert (event["source"], event["verified"], event["detail"]["partner_name"]) == (
        "ba.cldd-sarajevo", True, "CLDD Sarajevo")
    stages = ok(gbg, "GET", f"/cases/{case['id']}/partner-stages", anna)["items"]
    assert [(s["key"], s["status"]) for s in stages] == [(stage, "in_progress")]
    [update] = ok(gbg, "GET", f"/cases/{case['id']}/progress", anna)["items"]
    assert update["note"] == "First meeting held; ID card application filed." and update["verified"]

    for node in (gbg, sarajevo):
        assert "intact" in node.cli("audit", "verify").stdout
        assert "the outbox is empty" in node.cli("queue").stdout  # everything delivered
