"""After a restore the network resyncs without duplicates or loss (``node/exchange/resync``).

Sarajevo is backed up; then it and Göteborg exchange more (progress both ways, a second handover and its
acceptance), Sarajevo queues one more note and stops; it is restored from the backup, and queues another note
before it has resynced. The resync has Göteborg send again what Sarajevo forgot receiving and tells Sarajevo
what Göteborg received from it: every message arrives once, in order, and the threads go on afterwards.
On SQLite and on PostgreSQL (the ``world`` fixture), the nodes talking through their test clients.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from node.exchange.chain.erasure import BLANK
from node.exchange.handovers.models import Handover
from node.exchange.models import InboundMessage, Partner
from protocol import canonical_bytes, seal, verify_receipt
from protocol.resync import make_request
from tests.backup.resync_support import resync
from tests.backup.test_backup import backup, restore
from tests.exchange.cli_runner import run
from tests.exchange.conftest import Node
from tests.exchange.desks import Desk, Worker, deliver, hand_over, incoming, open_case, timeline
from tests.exchange.test_keys import rotate
from tests.exchange.test_withdrawal import accepted_case, exchange

RESYNC = "/federation/v1/resync"


def progress(desk: Desk, case_id: str, note: str) -> None:
    desk.ok("POST", f"/cases/{case_id}/progress", "adviser", 201, json={"note": note})


def received(node: Node, sender: str) -> list[tuple[str, str]]:
    """(type, message id) of everything received from ``sender``, in the order received."""
    return [(m.type, m.message_id) for m in node.inbound() if m.sender == sender]


def partner_row(node: Node, node_id: str) -> Partner:
    return node.partner(node_id)


def test_a_restored_node_resyncs_without_duplicates_or_loss(desks: tuple[Desk, Desk], make_worker: Worker,
                                                             tmp_path: Path) -> None:
    gbg, sarajevo = desks
    story = accepted_case(gbg, sarajevo, make_worker)
    case_there = story["remote_case_id"]
    out = tmp_path / "sarajevo.ccmbackup"
    backup(sarajevo.node, out)

    # After the backup: a note each way... (Sarajevo's second note, Göteborg's second handover and its answer)
    progress(sarajevo, case_there, "Second meeting: the course has a place for her.")
    second_case, second_consent = open_case(gbg)
    second_sent = hand_over(gbg, second_case, second_consent)
    exchange(make_worker, gbg, sarajevo)
    [second] = [h for h in incoming(sarajevo) if h["status"] == "pending"]
    sarajevo.ok("POST", f"/handovers/{second['id']}/accept", "adviser", 201, json={})
    exchange(make_worker, gbg, sarajevo)
    progress(sarajevo, case_there, "Third meeting: queued when the disk failed.")  # never delivered
    at_gbg_before = received(gbg.node, sarajevo.node.node_id)
    assert [t for t, _ in at_gbg_before] == ["handover_accepted", "progress_update", "progress_update",
                                             "handover_accepted"]
    sent_by_gbg = [(m.type, m.message_id) for m in gbg.node.outbound()]

    result = restore(sarajevo.node, out)
    assert result.partners_to_resync == 1
    assert partner_row(sarajevo.node, gbg.node.node_id).resync_since is not None
    progress(sarajevo, case_there, "Fourth meeting, after the restore.")  # on a chain head that is stale now
    assert deliver(make_worker, sarajevo) == 0  # nothing goes to Göteborg before the resync

    [outcome] = resync(sarajevo.node, gbg.node)
    assert outcome.done and outcome.error is None and outcome.pages == 1
    assert (outcome.recovered, outcome.marked, outcome.resealed) == (2, 0, 1)  # note 2 and the 2nd acceptance
    assert outcome.requeued_there == 2  # the first handover (within the hour's margin) and the second one
    assert partner_row(sarajevo.node, gbg.node.node_id).resync_since is None

    exchange(make_worker, gbg, sarajevo)
    # Göteborg got every note once and in order: nothing twice, the one after the restore on the new link.
    at_gbg = received(gbg.node, sarajevo.node.node_id)
    assert at_gbg[: len(at_gbg_before)] == at_gbg_before and [t for t, _ in at_gbg[len(at_gbg_before):]] == [
        "progress_update"]
    notes = [e["detail"].get("note") or e["detail"] for e in timeline(gbg, story["case_id"])
             if e["kind"] == "partner.progress"]
    assert len(notes) == 3
    # Sarajevo got the second handover again, once; the first one (which it held) was not applied twice.
    assert [t for t, _ in received(sarajevo.node, gbg.node.node_id)] == ["handover", "handover"]
    assert {m for _, m in received(sarajevo.node, gbg.node.node_id)} == {m for t, m in sent_by_gbg
                                                                       if t == "handover"}
    # Every message Sarajevo holds for Göteborg is delivered, the recovered ones with Göteborg's receipt.
    rows = sarajevo.node.outbound()
    assert {m.status for m in rows} == {"delivered"}
    card = gbg.node.identity.card
    for row in rows:
        assert row.receipt is not None
        verify_receipt(json.loads(row.receipt), card, sender=sarajevo.node.node_id, message_id=row.message_id,
                       content_hash=row.message_hash)
    recovered = [r for r in rows if r.envelope == BLANK]
    assert sorted(r.type for r in recovered) == ["handover_accepted", "progress_update"]
    assert all(r.case_id is not None for r in recovered if r.type == "progress_update")

    # The threads go on, both ways.
    progress(sarajevo, case_there, "Fifth meeting.")
    third_case, third_consent = open_case(gbg)
    hand_over(gbg, third_case, third_consent)
    exchange(make_worker, gbg, sarajevo)
    assert [t for t, _ in received(gbg.node, sarajevo.node.node_id)][-2:] == ["progress_update", "progress_update"]
    assert len(received(sarajevo.node, gbg.node.node_id)) == 3
    assert {m.status for m in sarajevo.node.outbound() + gbg.node.outbound()} == {"delivered"}

    # The second handover's acceptance was lost with the restore: accepting it again is taken as the same
    # answer at Göteborg (not refused, no second event).
    [again] = [h for h in incoming(sarajevo) if h["handover_id"] == second_sent["handover_id"]]
    assert again["status"] == "pending"
    sarajevo.ok("POST", f"/handovers/{again['id']}/accept", "adviser", 201, json={})
    exchange(make_worker, gbg, sarajevo)
    assert {m.status for m in sarajevo.node.outbound()} == {"delivered"}
    with gbg.node.sessionmaker() as session:
        statuses = session.scalars(sa.select(Handover.status).where(Handover.direction == "outgoing")).all()
    assert sorted(statuses) == ["accepted", "accepted", "pending"]


def test_messages_the_partner_sends_meanwhile_wait_for_the_resync(desks: tuple[Desk, Desk], make_worker: Worker,
                                                                  tmp_path: Path) -> None:
    gbg, sarajevo = desks
    accepted_case(gbg, sarajevo, make_worker)
    out = tmp_path / "sarajevo.ccmbackup"
    backup(sarajevo.node, out)
    second_case, second_consent = open_case(gbg)
    second = hand_over(gbg, second_case, second_consent)["handover_id"]
    exchange(make_worker, gbg, sarajevo)
    restore(sarajevo.node, out)
    # A message on the thread whose start Sarajevo lost: answered 503 resync_pending (tried again later), not
    # broken_chain (which would park it for good); nothing stored.
    [opening] = [m for m in gbg.node.outbound() if m.message_id == second]
    follow = seal(keys=gbg.node.identity.keys, recipient=sarajevo.node.identity.card, msg_type="case_closed",
                  body={"handover_id": opening.message_id, "closed_at": "2026-11-23T09:30:00Z",
                        "outcome": {"code": "plan_completed", "text": "Closed."}},
                  thread=opening.thread, now=gbg.node.clock.now(), prev=opening.message_hash)
    held = sarajevo.node.count(InboundMessage)
    answer = sarajevo.node.post_inbox(follow.data)
    assert answer.status_code == 503 and answer.get_json()["code"] == "resync_pending"
    assert answer.headers["Retry-After"] == "10" and sarajevo.node.count(InboundMessage) == held
    # A message that opens a new thread follows no chain: taken at once.
    third_case, third_consent = open_case(gbg)
    hand_over(gbg, third_case, third_consent)
    assert deliver(make_worker, gbg) == 1
    # Resync: Göteborg sends the handovers again (Sarajevo answers the two it holds with their receipts); then
    # the message on the second one's thread is taken.
    [outcome] = resync(sarajevo.node, gbg.node)
    assert outcome.done and outcome.recovered == 0 and outcome.requeued_there == 3  # all 3 within the hour
    exchange(make_worker, gbg, sarajevo)
    assert [t for t, _ in received(sarajevo.node, gbg.node.node_id)] == ["handover", "handover", "handover"]
    assert sarajevo.node.post_inbox(follow.data).status_code == 200
    assert {m.status for m in gbg.node.outbound()} == {"delivered"}


def test_an_unreachable_partner_is_asked_again_and_nothing_is_sent_meanwhile(
        desks: tuple[Desk, Desk], make_worker: Worker, tmp_path: Path) -> None:
    gbg, sarajevo = desks
    story = accepted_case(gbg, sarajevo, make_worker)
    out = tmp_path / "sarajevo.ccmbackup"
    backup(sarajevo.node, out)
    restore(sarajevo.node, out)
    progress(sarajevo, story["remote_case_id"], "After the restore.")
    [failed] = resync(sarajevo.node, gbg.node, down=[gbg.node])
    assert not failed.done and failed.error is not None and "refused" in failed.error
    partner = partner_row(sarajevo.node, gbg.node.node_id)
    assert partner.resync_since is not None and partner.retry_at is not None  # backing off like a delivery
    assert resync(sarajevo.node, gbg.node) == []  # not before its backoff is over
    assert deliver(make_worker, sarajevo) == 0
    assert partner.retry_at is not None
    sarajevo.node.clock.advance(seconds=(partner.retry_at - sarajevo.node.clock.now()).total_seconds() + 1)
    [outcome] = resync(sarajevo.node, gbg.node)
    assert outcome.done and outcome.resealed == 0  # nothing happened after the backup: the chain holds
    assert deliver(make_worker, sarajevo) == 1


def test_the_endpoint_refuses_what_it_cannot_verify(desks: tuple[Desk, Desk], make_worker: Worker) -> None:
    gbg, sarajevo = desks
    accepted_case(gbg, sarajevo, make_worker)
    now = gbg.node.clock.now()
    keys = sarajevo.node.identity.keys
    good = make_request(keys, gbg.node.node_id, since=now.replace(hour=now.hour - 1), now=now)

    def post(body: bytes) -> tuple[int, str]:
        answer = gbg.node.client.post(RESYNC, data=body, content_type="application/json")
        return answer.status_code, answer.get_json()["code"] if answer.status_code != 200 else "ok"

    assert post(b"{not json") == (400, "malformed")
    assert post(b"x" * 20_000) == (413, "oversized")
    assert post(canonical_bytes({**good, "after": -1})) == (422, "malformed")
    assert post(canonical_bytes({**good, "since": "2026-11-23T08:00:01Z"})) == (401, "bad_signature")
    to_other = make_request(keys, "iq.cldd-baghdad", since=now.replace(hour=now.hour - 1), now=now)
    assert post(canonical_bytes(to_other)) == (403, "wrong_recipient")
    stranger = make_request(gbg.node.identity.keys, gbg.node.node_id, since=now.replace(hour=now.hour - 1),
                            now=now)
    assert post(canonical_bytes(stranger)) == (401, "unknown_sender")
    gbg.node.clock.advance(seconds=301)
    assert post(canonical_bytes(good)) == (422, "expired")
    gbg.node.clock.advance(seconds=-301)
    before = [(m.status, m.message_id) for m in gbg.node.outbound()]
    status, code = post(canonical_bytes(good))
    assert (status, code) == (200, "ok")
    assert {s for s, _ in before} == {"delivered"}
    assert {m.status for m in gbg.node.outbound()} == {"queued"}  # the handover, delivered within the hour


def test_answers_come_in_pages(desks: tuple[Desk, Desk], make_worker: Worker, tmp_path: Path,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    gbg, sarajevo = desks
    story = accepted_case(gbg, sarajevo, make_worker)
    out = tmp_path / "sarajevo.ccmbackup"
    backup(sarajevo.node, out)
    for n in range(5):
        progress(sarajevo, story["remote_case_id"], f"Meeting {n}.")
    exchange(make_worker, gbg, sarajevo)
    restore(sarajevo.node, out)
    monkeypatch.setattr("node.exchange.resync.responder.PAGE_SIZE", 2)
    [outcome] = resync(sarajevo.node, gbg.node)
    assert outcome.done and outcome.pages == 4 and outcome.recovered == 5  # 7 listed, 2 a page
    seqs = sorted(m.seq for m in sarajevo.node.outbound())  # one thread: acceptance, 6 notes
    assert seqs == list(range(1, 8))
    progress(sarajevo, story["remote_case_id"], "After the restore.")
    assert deliver(make_worker, sarajevo) == 1
    assert [t for t, _ in received(gbg.node, sarajevo.node.node_id)].count("progress_update") == 7


def test_the_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``ccm-node backup restore`` says how many partners wait for a resync, ``partner list`` shows them and
    ``partner resync-skip`` stops waiting for one; refusals are one line and exit 1."""
    node, other = tmp_path / "node", tmp_path / "other"
    for path, node_id in ((node, "ba.cldd-sarajevo"), (other, "se.gi-goteborg")):
        assert run(capsys, path, "init", "--node-id", node_id, "--name", node_id, "--url",
                   f"https://{node_id}.example")[0] == 0
    card = tmp_path / "gbg.card.json"
    card.write_text(run(capsys, other, "card")[1])
    fingerprint = run(capsys, other, "fingerprint")[1].strip()
    code, _, err = run(capsys, node, "partner", "add", "--card-file", str(card), "--fingerprint", fingerprint,
                       "--agreement", "dsa-2026")
    assert code == 0, err
    out = tmp_path / "b.ccmbackup"
    assert run(capsys, node, "backup", "create", "--out", str(out))[0] == 0
    code, stdout, err = run(capsys, node, "backup", "restore", str(out))
    assert code == 0 and "1 partner(s) to resync" in stdout, err
    assert "resync pending" in run(capsys, node, "partner", "list")[1]
    code, _, err = run(capsys, node, "partner", "resync-skip", "iq.unknown")
    assert code == 1 and err.count("\n") == 1
    code, stdout, _ = run(capsys, node, "partner", "resync-skip", "se.gi-goteborg")
    assert code == 0 and "resync skipped" in stdout
    assert "resync pending" not in run(capsys, node, "partner", "list")[1]
    code, stdout, _ = run(capsys, node, "partner", "resync-skip", "se.gi-goteborg")
    assert code == 0 and "no resync pending" in stdout


def test_a_requester_holding_the_card_from_before_a_rotation_verifies_the_answer(
        desks: tuple[Desk, Desk], make_worker: Worker, tmp_path: Path) -> None:
    """Göteborg rotates its keys after Sarajevo's backup; the restored Sarajevo holds Göteborg's old card (the
    ``key_rotated`` announcement comes back only with the resync): the answer is co-signed by the old key."""
    gbg, sarajevo = desks
    accepted_case(gbg, sarajevo, make_worker)
    out = tmp_path / "sarajevo.ccmbackup"
    backup(sarajevo.node, out)
    rotate(gbg.node, days=30)
    exchange(make_worker, gbg, sarajevo)  # the announcement reaches Sarajevo, which the restore forgets
    restore(sarajevo.node, out)
    old_card = partner_row(sarajevo.node, gbg.node.node_id).signing_kid
    assert old_card != gbg.node.identity.keys.skid
    [outcome] = resync(sarajevo.node, gbg.node)
    assert outcome.done and outcome.error is None
    exchange(make_worker, gbg, sarajevo)  # the announcement again: Sarajevo takes the new card
    assert partner_row(sarajevo.node, gbg.node.node_id).signing_kid == gbg.node.identity.keys.skid
    assert {m.status for m in gbg.node.outbound() + sarajevo.node.outbound()} == {"delivered"}
