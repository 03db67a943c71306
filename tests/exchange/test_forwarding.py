"""Forwarding with a chain of custody between three in-process nodes: Göteborg hands a case to Sarajevo, which
forwards it to Baghdad (named in the consent); progress from Baghdad reaches Göteborg through Sarajevo; the
custody is verified on each node (and a tampered link is named); a withdrawal at Göteborg is erased and
confirmed by both holders. SQLite and PostgreSQL (the ``world`` fixture)."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from node.exchange.chain.models import CustodyNotice
from node.exchange.handovers.models import Handover
from tests.exchange.conftest import Node
from tests.exchange.desks import (
    Desk,
    Worker,
    consent_body,
    deliver,
    hand_over,
    incoming,
    open_case,
    timeline,
)
from tests.exchange.test_withdrawal import assert_no_personal_data, exchange

BAGHDAD = "iq.cldd-baghdad"


@pytest.fixture
def three(desks: tuple[Desk, Desk], nodes: dict[str, Node]) -> tuple[Desk, Desk, Desk]:
    """Göteborg and Sarajevo as in the handover tests; Sarajevo and Baghdad trust each other too (Göteborg and
    Baghdad do not know each other)."""
    gbg, sarajevo = desks
    baghdad = Desk(nodes["baghdad"])
    baghdad.staff("zainab.ali", "adviser", "baghdad")
    sarajevo.node.trust(baghdad.node)
    baghdad.node.trust(sarajevo.node)
    return gbg, sarajevo, baghdad


def forwarded(three: tuple[Desk, Desk, Desk], make_worker: Worker) -> dict[str, Any]:
    """Göteborg → Sarajevo (accepted) → Baghdad (accepted)."""
    gbg, sarajevo, baghdad = three
    case_id, consent_id = open_case(gbg, consent=consent_body(recipients=["ba.cldd-sarajevo", BAGHDAD]))
    hand_over(gbg, case_id, consent_id)
    deliver(make_worker, gbg)
    [waiting] = incoming(sarajevo)
    middle = sarajevo.ok("POST", f"/handovers/{waiting['id']}/accept", "adviser", 201, json={})["case_id"]
    sent = sarajevo.ok("POST", f"/cases/{middle}/forwards", "counsellor", 202,
                       json={"recipient": BAGHDAD, "reason": "The family settles with relatives in Baghdad."})
    assert sent["status"] == "queued" and sent["partner"] == BAGHDAD
    exchange(make_worker, sarajevo, gbg)
    [arrived] = incoming(baghdad)
    assert arrived["partner"] == "ba.cldd-sarajevo" and arrived["reference"].startswith("GI-")
    last = baghdad.ok("POST", f"/handovers/{arrived['id']}/accept", "adviser", 201, json={})["case_id"]
    exchange(make_worker, baghdad, sarajevo, gbg)
    return {"case_id": case_id, "consent_id": consent_id, "middle": middle, "last": last, "forward": sent}


def test_forward_progress_back_and_custody_on_every_node(three: tuple[Desk, Desk, Desk],
                                                         make_worker: Worker) -> None:
    gbg, sarajevo, baghdad = three
    story = forwarded(three, make_worker)
    baghdad.ok("POST", f"/cases/{story['last']}/progress", "adviser", 201,
               json={"note": "First meeting in Baghdad; housing found."})
    exchange(make_worker, baghdad, sarajevo, gbg)
    progress = [e for e in timeline(gbg, story["case_id"]) if e["kind"] == "partner.progress"]
    assert progress and progress[-1]["source"] == "ba.cldd-sarajevo" and progress[-1]["verified"]
    assert progress[-1]["detail"]["update_id"].startswith(f"{BAGHDAD}:")

    [disclosure] = gbg.ok("GET", f"/cases/{story['case_id']}/disclosures", "counsellor")["items"]
    [onward] = disclosure["onward"]
    assert onward["holder"] == BAGHDAD and onward["forwarded_by"] == "ba.cldd-sarajevo"

    origin = gbg.ok("GET", f"/cases/{story['case_id']}/custody", "counsellor")
    assert origin["verified"] and [(lk["from"], lk["holder"]) for lk in origin["links"]] == [
        ("se.gi-goteborg", "ba.cldd-sarajevo"), ("ba.cldd-sarajevo", BAGHDAD)]
    middle = sarajevo.ok("GET", f"/cases/{story['middle']}/custody", "adviser")
    assert middle["verified"] and [(lk["from"], lk["holder"]) for lk in middle["links"]] == [
        ("se.gi-goteborg", "ba.cldd-sarajevo"), ("ba.cldd-sarajevo", BAGHDAD)]
    last = baghdad.ok("GET", f"/cases/{story['last']}/custody", "adviser")
    assert last["verified"] and last["origin"] == "se.gi-goteborg"
    assert [(lk["from"], lk["holder"], lk["evidence"]) for lk in last["links"]] == [
        ("se.gi-goteborg", "ba.cldd-sarajevo", "custody step"),
        ("ba.cldd-sarajevo", BAGHDAD, "received message, signed by the sender")]


def _tamper(node: Node, change: Any) -> None:
    with node.sessionmaker() as session:
        handover = session.scalar(sa.select(Handover).where(Handover.kind == "forward",
                                                            Handover.direction == "incoming"))
        assert handover is not None and handover.custody is not None
        custody = {**handover.custody, "chain": change([dict(s) for s in handover.custody["chain"]])}
        session.execute(sa.update(Handover).where(Handover.id == handover.id).values(custody=custody))
        session.commit()


def test_a_tampered_custody_link_is_named(three: tuple[Desk, Desk, Desk], make_worker: Worker) -> None:
    baghdad = three[2]
    story = forwarded(three, make_worker)
    path = f"/cases/{story['last']}/custody"

    def forge(chain: list[dict[str, Any]]) -> list[dict[str, Any]]:
        chain[0]["at"] = "2026-01-01T00:00:00Z"  # moved back in time, signature unchanged
        return chain

    _tamper(baghdad.node, forge)
    forged = baghdad.ok("GET", path, "adviser")
    assert not forged["verified"] and "link 0" in forged["problems"][0] and "forged" in forged["problems"][0]

    _tamper(baghdad.node, lambda chain: [])  # the step Sarajevo signed is gone
    missing = baghdad.ok("GET", path, "adviser")
    assert not missing["verified"] and "missing" in missing["problems"][0]

    origin_step = {"holder": "se.gi-goteborg", "from": "se.gi-goteborg", "at": "2026-11-23T08:00:00Z",
                   "message_hash": "A" * 43, "signatures": {}}
    _tamper(baghdad.node, lambda chain: [origin_step])  # a link that does not start from the origin's hop
    reordered = baghdad.ok("GET", path, "adviser")
    assert not reordered["verified"] and "out of order" in reordered["problems"][0]


def test_withdrawal_reaches_every_holder_and_each_confirms(three: tuple[Desk, Desk, Desk],
                                                           make_worker: Worker) -> None:
    gbg, sarajevo, baghdad = three
    story = forwarded(three, make_worker)
    result = gbg.ok("POST", f"/cases/{story['case_id']}/consents/{story['consent_id']}/withdraw", "counsellor",
                    json={"reason": "The returnee withdrew consent."})
    assert {r["holder"] for r in result["erasure_requests"]} == {"ba.cldd-sarajevo"}
    [disclosure] = gbg.ok("GET", f"/cases/{story['case_id']}/disclosures", "counsellor")["items"]
    assert {r["holder"] for r in disclosure["erasure_requests"]} == {"ba.cldd-sarajevo", BAGHDAD}
    for _ in range(2):
        exchange(make_worker, gbg, sarajevo, baghdad)
    [disclosure] = gbg.ok("GET", f"/cases/{story['case_id']}/disclosures", "counsellor")["items"]
    assert disclosure["erasure"] == "confirmed"
    assert all(r["confirmed"] for r in disclosure["erasure_requests"])
    for desk in (sarajevo, baghdad):
        with desk.node.sessionmaker() as session:
            assert session.scalar(sa.select(Handover.status).where(Handover.direction == "incoming")) == "erased"
        assert_no_personal_data(desk.node)
    confirmations = [e["detail"]["holder"] for e in timeline(gbg, story["case_id"])
                     if e["kind"] == "partner.erasure_confirmed"]
    assert sorted(confirmations) == sorted(["ba.cldd-sarajevo", BAGHDAD])


def test_forwarding_outside_the_consent_is_refused(three: tuple[Desk, Desk, Desk], make_worker: Worker) -> None:
    gbg, sarajevo, _ = three
    case_id, consent_id = open_case(gbg)  # the consent names Sarajevo only
    hand_over(gbg, case_id, consent_id)
    deliver(make_worker, gbg)
    [waiting] = incoming(sarajevo)
    middle = sarajevo.ok("POST", f"/handovers/{waiting['id']}/accept", "adviser", 201, json={})["case_id"]
    refused = sarajevo.call("POST", f"/cases/{middle}/forwards", "counsellor", json={"recipient": BAGHDAD})
    assert refused.status_code == 422 and "recipient" in refused.get_json()["errors"]
    back = sarajevo.call("POST", f"/cases/{middle}/forwards", "counsellor", json={"recipient": "se.gi-goteborg"})
    assert back.status_code == 409
    own = gbg.call("POST", f"/cases/{case_id}/forwards", "counsellor", json={"recipient": "ba.cldd-sarajevo"})
    assert own.status_code == 409  # a case that was not received is handed over, not forwarded
    with sarajevo.node.sessionmaker() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Handover)
                              .where(Handover.direction == "outgoing")) == 0
    with gbg.node.sessionmaker() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(CustodyNotice)) == 0
