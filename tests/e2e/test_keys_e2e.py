"""Keys over time with real processes, on SQLite and on PostgreSQL: Göteborg rotates its keys in the middle of
a conversation with Sarajevo while both delivery workers are stopped, with messages queued on both sides that
were sealed with (or to) the old keys; the running gunicorn workers take the new keys without a restart, and
when delivery resumes nothing is lost. Then Göteborg revokes its keys as compromised: the revocation reaches
Sarajevo over HTTP, Sarajevo stops trusting it, and trust comes back only through a new fingerprint check.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.test_story import CASE, ok, wait
from tests.harness import Network, NodeProcess

pytestmark = pytest.mark.slow
AGREEMENT = "dsa-gi-cldd-sarajevo-2026"
FAST = ("--min-backoff", "0.2", "--max-backoff", "1", "--poll-seconds", "0.05")
WAIT = 60.0


def hand_over(gbg: NodeProcess, token: str, label: str) -> str:
    """A case with a consent for Sarajevo, handed over; returns the case id (the handover is queued)."""
    case = ok(gbg, "POST", "/cases", token, 201, json={**CASE, "returnee": {**CASE["returnee"],
                                                                           "given_names": f"Amina {label}"}})
    consent = ok(gbg, "POST", f"/cases/{case['id']}/consents", token, 201, json={
        "recipients": ["ba.cldd-sarajevo"], "categories": ["identity", "contact", "work", "wishes", "plan"],
        "purpose": "reintegration_support", "method": "written_signature", "valid_until": "2027-11-30"})
    ok(gbg, "POST", f"/cases/{case['id']}/handovers", token, 202,
       json={"recipient": "ba.cldd-sarajevo", "consent_id": consent["id"]})
    return str(case["id"])


def handover(gbg: NodeProcess, token: str, case_id: str) -> dict[str, Any]:
    items: list[dict[str, Any]] = ok(gbg, "GET", f"/cases/{case_id}/handovers", token)["items"]
    return items[0]


def incoming(sarajevo: NodeProcess, token: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = ok(sarajevo, "GET", "/handovers", token, params={"direction": "incoming"})["items"]
    return items


def test_rotation_mid_conversation_then_revocation(network: Network) -> None:
    gbg = network.add("se.gi-goteborg", "Göteborgs-Initiativet")
    sarajevo = network.add("ba.cldd-sarajevo", "CLDD Sarajevo")
    anna = gbg.user("anna.lindqvist", "counsellor", team="gbg")
    emina = sarajevo.user("emina.kovac", "adviser", team="sarajevo")
    for node in (gbg, sarajevo):
        node.start()
    network.connect(gbg, sarajevo, AGREEMENT)
    workers = [gbg.spawn("deliver", *FAST), sarajevo.spawn("deliver", *FAST)]
    case_a = hand_over(gbg, anna, "A")
    wait("handover A delivered", lambda: handover(gbg, anna, case_a)["delivered_at"], WAIT)
    first = wait("handover A at Sarajevo", lambda: incoming(sarajevo, emina), WAIT)[0]

    # Delivery stops on both sides; each side queues messages sealed with (or to) Göteborg's current keys.
    for node, worker in zip((gbg, sarajevo), workers, strict=True):
        node.stop_process(worker)
    ok(sarajevo, "POST", f"/handovers/{first['id']}/accept", emina, 201, json={})  # to Göteborg's old key
    case_b = hand_over(gbg, anna, "B")  # signed with the old key
    old_card = gbg.http.get(f"{gbg.url}/federation/v1/card", timeout=10).json()

    rotated = gbg.cli("keys", "rotate", "--overlap-days", "30").stdout
    assert "announced to 1 partner(s)" in rotated
    card = gbg.http.get(f"{gbg.url}/federation/v1/card", timeout=10).json()  # the running server's card
    assert card["replaces"] == old_card["signing_kid"] != card["signing_kid"]
    case_c = hand_over(gbg, anna, "C")  # sealed by the running server with the new key

    # B (old key), the announcement, C (new key), in parallel threads: B may arrive after the announcement,
    # when Sarajevo checks its consent (signed with the old key) with the key history (signing_key_for)
    gbg.spawn("deliver", *FAST)
    for case_id in (case_b, case_c):
        wait(f"handover {case_id} delivered", lambda c=case_id: handover(gbg, anna, c)["delivered_at"], WAIT)
    history = sarajevo.cli("keys", "partners", "se.gi-goteborg").stdout
    assert "by rotation" in history and "accepted until" in history
    sarajevo.spawn("deliver", *FAST)  # the acceptance, sealed to Göteborg's previous card
    wait("the acceptance at Göteborg", lambda: handover(gbg, anna, case_a)["status"] == "accepted", WAIT)
    pending = incoming(sarajevo, emina)
    assert len(pending) == 3
    # B's consent was signed with Göteborg's previous key: it still verifies when the adviser accepts it now
    b = next(h for h in pending if h["id"] != first["id"] and h["status"] == "pending"
             and ok(sarajevo, "GET", f"/handovers/{h['id']}", emina)["summary"]["identity"]["name_latin"]
             ["given"] == "Amina B")
    ok(sarajevo, "POST", f"/handovers/{b['id']}/accept", emina, 201, json={})
    wait("B accepted at Göteborg", lambda: handover(gbg, anna, case_b)["status"] == "accepted", WAIT)
    for node in (gbg, sarajevo):
        wait(f"{node.node_id}'s outbox empty", lambda n=node: "the outbox is empty" in n.cli("queue").stdout, WAIT)

    # Compromise: the revocation goes straight to Sarajevo's federation endpoint.
    revoked = gbg.cli("keys", "revoke", "--reason", "compromised").stdout
    assert "ba.cldd-sarajevo: accepted (4 key id(s) newly revoked there)" in revoked
    assert "\tkey_revoked\t" in sarajevo.cli("partner", "list").stdout
    case_d = hand_over(gbg, anna, "D")  # new keys Sarajevo does not trust yet: refused, retried
    wait("a refused attempt", lambda: handover(gbg, anna, case_d)["delivery"]["attempts"] >= 1, WAIT)
    assert handover(gbg, anna, case_d)["delivered_at"] is None
    sarajevo.trust(gbg, None, by_url=True)  # the administrators compared the new fingerprint
    assert "\tactive\t" in sarajevo.cli("partner", "list").stdout
    wait("handover D delivered", lambda: handover(gbg, anna, case_d)["delivered_at"], WAIT)
    assert len(incoming(sarajevo, emina)) == 4
    for node in (gbg, sarajevo):
        assert "intact" in node.cli("audit", "verify").stdout
