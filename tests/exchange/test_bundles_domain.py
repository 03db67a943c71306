"""A real handover carried by file (SQLite and PostgreSQL): the receiving domain acts on it exactly once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from node.exchange.delivery.bundles import export_bundle
from node.exchange.delivery.worker import DeliveryWorker
from node.exchange.handovers import appliers
from node.exchange.handovers.models import Handover
from node.exchange.inbox import dispatch
from node.exchange.inbox.bundle_import import import_file
from tests.exchange.conftest import FlaskTransport, Node
from tests.exchange.desks import Desk, hand_over, incoming, open_case

Worker = Callable[..., DeliveryWorker]


@pytest.fixture
def handover_domain(monkeypatch: pytest.MonkeyPatch) -> None:
    """The handover domain's appliers, as in tests/exchange/test_handovers.py."""
    monkeypatch.setattr(dispatch, "_APPLIERS", {
        "handover": appliers.apply_handover, "handover_accepted": appliers.apply_accepted,
        "handover_declined": appliers.apply_declined, "progress_update": appliers.apply_progress})


def _carry(sender: Node, receiver: Node) -> Any:
    with sender.sessionmaker() as session:
        bundle = export_bundle(session, keys=sender.identity.keys, partner=receiver.node_id, now=sender.clock.now())
        session.commit()
    assert bundle.data is not None
    with receiver.sessionmaker() as session:
        result = import_file(session, data=bundle.data, keys=receiver.identity.keys, now=receiver.clock.now())
        session.commit()
    return bundle.data, result


def _receipts(node: Node, data: bytes) -> dict[str, int]:
    with node.sessionmaker() as session:
        result = import_file(session, data=data, keys=node.identity.keys, now=node.clock.now())
        session.commit()
    return dict(result.counts())


@pytest.mark.usefixtures("handover_domain")
def test_a_handover_by_file_is_received_once_and_its_answer_goes_back_by_wire(
        paired: tuple[Node, Node], make_worker: Worker, transport: FlaskTransport) -> None:
    gbg, sarajevo = Desk(paired[0]), Desk(paired[1])
    gbg.staff("anna.lindqvist", "counsellor", "gbg")
    sarajevo.staff("emina.kovac", "adviser", "sarajevo")
    case_id, consent_id = open_case(gbg)
    hand_over(gbg, case_id, consent_id)
    transport.down.add(sarajevo.node.base_url)
    assert make_worker(gbg.node).run(once=True).delivered == 0

    data, first = _carry(gbg.node, sarajevo.node)
    assert first.counts() == {"accepted": 1}
    [waiting] = incoming(sarajevo)
    assert waiting["status"] == "pending" and waiting["partner_name"] == "Göteborgs-Initiativet"
    with sarajevo.node.sessionmaker() as session:
        again = import_file(session, data=data, keys=sarajevo.node.identity.keys, now=sarajevo.node.clock.now())
        session.commit()
    assert again.counts() == {"duplicate": 1} and sarajevo.count(Handover) == 1 and len(incoming(sarajevo)) == 1

    assert first.receipts is not None and _receipts(gbg.node, first.receipts) == {"delivered": 1}
    [shown] = gbg.ok("GET", f"/cases/{case_id}/handovers", "counsellor")["items"]
    assert shown["status"] == "delivered" and shown["delivery"]["status"] == "delivered"

    sarajevo.ok("POST", f"/handovers/{waiting['id']}/accept", "adviser", 201,
                json={"first_meeting_at": "2026-12-01T10:00:00Z"})
    transport.down.clear()  # the link is back: the acceptance goes by wire
    assert make_worker(sarajevo.node).run(once=True).delivered == 1
    [answered] = gbg.ok("GET", f"/cases/{case_id}/handovers", "counsellor")["items"]
    assert answered["status"] == "accepted"
    assert make_worker(gbg.node).run(once=True).delivered == 0  # nothing is sent twice
