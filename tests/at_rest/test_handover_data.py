"""Between two nodes: the received summary (``handovers.body``, ``inbound_messages.inner``), progress text sent and
received, and a decline's reason read back through the API as written, and neither node's database copy shows
them. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import copy
import json

import sqlalchemy as sa

from node.exchange.handovers.models import Handover
from node.exchange.models import InboundMessage
from protocol.canonical import strict_loads
from tests.at_rest.conftest import found, raw_bytes
from tests.exchange.desks import CASE, Desk, Worker, deliver, hand_over, incoming, open_case

FAMILY = "Left an abusive marriage in 2020"
WISHES = "Wants her son in school in Sarajevoxyz"
NOTE = "Came to the office shaking; referred to a psychologist"
STAGE_NOTE = "Therapy appointment on Monday"
DECLINE = "No adviser free for a case with this trauma history"


def test_received_summaries_and_progress_are_encrypted_at_both_nodes(desks: tuple[Desk, Desk],
                                                                      make_worker: Worker) -> None:
    gbg, sarajevo = desks
    body = copy.deepcopy(CASE)
    body["intake"]["family"]["text"] = FAMILY
    body["intake"]["wishes"]["text"] = WISHES
    case_id, consent_id = open_case(gbg, body)
    hand_over(gbg, case_id, consent_id)
    assert deliver(make_worker, gbg) == 1

    [waiting] = incoming(sarajevo)
    detail = sarajevo.ok("GET", f"/handovers/{waiting['id']}", "adviser")
    shown_summary = json.dumps(detail["summary"], ensure_ascii=False)
    assert FAMILY in shown_summary and WISHES in shown_summary
    [inbound] = sarajevo.node.inbound()
    assert inbound.inner is not None and WISHES in json.dumps(strict_loads(inbound.inner), ensure_ascii=False)
    with sarajevo.node.engine.connect() as conn:
        stored = conn.execute(sa.select(sa.cast(sa.column("body"), sa.Text), sa.column("inner", sa.LargeBinary))
                              .select_from(sa.table("handovers")).join(
                                  sa.table("inbound_messages", sa.column("id")), sa.true())).first()
        assert stored is not None and stored[0].startswith('"ccm1:') and bytes(stored[1]).startswith(b"ccm1:")
    for desk in (gbg, sarajevo):  # pending: the summary lives only encrypted at the receiver
        copy_of = raw_bytes(desk.node.engine)
        assert not found(copy_of, FAMILY) and not found(copy_of, WISHES), desk.node.key
    assert found(raw_bytes(gbg.node.engine), "Amina")  # the sender's case names, in clear by design

    accepted = sarajevo.ok("POST", f"/handovers/{waiting['id']}/accept", "adviser", 201, json={})
    stages = sarajevo.ok("GET", f"/cases/{accepted['case_id']}/stages", "adviser")["items"]
    sarajevo.ok("POST", f"/cases/{accepted['case_id']}/progress", "adviser", 201, json={
        "note": NOTE, "stage_changes": [{"key": stages[0]["key"], "status": "in_progress", "note": STAGE_NOTE}]})
    assert deliver(make_worker, sarajevo) >= 1
    [received] = gbg.ok("GET", f"/cases/{case_id}/progress", "counsellor")["items"]
    assert received["note"] == NOTE
    [stage] = gbg.ok("GET", f"/cases/{case_id}/partner-stages", "counsellor")["items"]
    assert stage["status"] == "in_progress"

    other_id, other_consent = open_case(gbg)
    hand_over(gbg, other_id, other_consent)
    deliver(make_worker, gbg)
    [second] = [h for h in incoming(sarajevo) if h["status"] == "pending"]
    sarajevo.ok("POST", f"/handovers/{second['id']}/decline", "adviser",
                json={"reason": DECLINE, "reason_code": "no_capacity"})
    deliver(make_worker, sarajevo)
    shown = {h["id"]: h for h in gbg.ok("GET", f"/cases/{other_id}/handovers", "counsellor")["items"]}
    assert [h["reason"] for h in shown.values()] == [DECLINE]

    for desk in (gbg, sarajevo):
        copy_of = raw_bytes(desk.node.engine)
        leaked = [t for t in (FAMILY, WISHES, NOTE, STAGE_NOTE, DECLINE) if found(copy_of, t)]
        assert leaked == [], (desk.node.key, leaked)
    with gbg.node.sessionmaker() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Handover)) == 2
        assert session.scalar(sa.select(sa.func.count()).select_from(InboundMessage)) >= 2
