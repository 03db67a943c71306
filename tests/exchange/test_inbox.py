"""The inbox over HTTP (Flask test client): delivery with a verified receipt, an exact retransmission, and
every attack answered with its code and nothing stored."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from node.audit import AuditEntry
from node.exchange.delivery.worker import DeliveryWorker
from node.exchange.models import InboundMessage
from node.exchange.trust.partners import set_status
from protocol import OutsideConsentError, canonical_bytes, seal, strict_loads, verify_chain, verify_receipt
from protocol.envelope import MAX_ENVELOPE_BYTES
from tests.exchange.conftest import AGREEMENT, Node, note_body, samples, thread_id

pytestmark = pytest.mark.usefixtures("no_domain_appliers")

THREAD = thread_id("case-gi-0042")


def sealed(sender: Node, recipient: Node, *, to: Node | None = None, body: dict[str, Any] | None = None,
           msg_type: str = "progress_update", thread: str = THREAD, prev: str | None = None,
           agreement: str | None = AGREEMENT, ttl: timedelta = timedelta(days=30),
           message_id: str | None = None, shift: timedelta = timedelta(0), validate: bool = True) -> bytes:
    """An envelope from ``sender`` sealed for ``to`` (default ``recipient``), bypassing the outbox."""
    target = to or recipient
    return seal(keys=sender.identity.keys, recipient=target.identity.card, msg_type=msg_type,
                body=body if body is not None else note_body("Karim started the course."), thread=thread,
                now=sender.clock.now() + shift, prev=prev, agreement=agreement, ttl=ttl,
                message_id=message_id, validate=validate).data


def edit(data: bytes, **changes: Any) -> bytes:
    doc = strict_loads(data)
    doc.update(changes)
    return canonical_bytes(doc)


def tamper(data: bytes, member: str) -> bytes:
    """Change one base64url character of a member (the first, so that padding bits stay valid)."""
    value = strict_loads(data)[member]
    return edit(data, **{member: ("A" if value[0] != "A" else "B") + value[1:]})


def audit_count(node: Node) -> int:
    return node.count(AuditEntry)


def test_card_is_served_self_signed(gbg: Node) -> None:
    response = gbg.client.get("/federation/v1/card")
    assert response.status_code == 200 and response.mimetype == "application/json"
    card = response.get_json()
    assert card["node_id"] == "se.gi-goteborg" and card["base_url"] == "http://gbg.test"
    assert gbg.identity.card.to_json() == card
    assert gbg.identity.card.fingerprint() == gbg.identity.keys.fingerprint()


def test_delivery_stores_the_signed_inner_document_and_a_verified_receipt(
        paired: tuple[Node, Node], make_worker: Callable[..., DeliveryWorker]) -> None:
    gbg, sarajevo = paired
    first = gbg.send(sarajevo, note_body("first"), THREAD, case_id="case-1")
    second = gbg.send(sarajevo, note_body("second"), THREAD, case_id="case-1")
    assert (first.seq, first.prev, second.seq, second.prev) == (1, None, 2, first.message_hash)

    stats = make_worker(gbg).run(once=True)

    assert stats.delivered == 2
    sent = gbg.outbound()
    assert [m.status for m in sent] == ["delivered", "delivered"]
    for message in sent:
        proof = verify_receipt(json.loads(message.receipt or ""), sarajevo.identity.card,
                               message_id=message.message_id, content_hash=message.message_hash)
        assert proof.sender == "se.gi-goteborg" and message.delivered_at == gbg.clock.now()
    received = sarajevo.inbound()
    assert [(m.message_id, m.seq, m.type) for m in received] == [
        (first.message_id, 1, "progress_update"), (second.message_id, 2, "progress_update")]
    verify_chain([m.inner or b"" for m in received])  # the sender-signed documents, chained
    assert received[1].prev == received[0].message_hash == first.message_hash
    assert received[0].receipt == sent[0].receipt
    assert [e.action for e in _entries(gbg)] == ["send", "send"]
    assert [e.action for e in _entries(sarajevo)] == ["receive", "receive"]
    assert all("Karim" not in (e.detail or "") for e in _entries(sarajevo))


def _entries(node: Node) -> list[AuditEntry]:
    import sqlalchemy as sa

    with node.sessionmaker() as session:
        return list(session.scalars(sa.select(AuditEntry).where(AuditEntry.object_type == "message")
                                    .order_by(AuditEntry.seq)))


def test_exact_retransmission_gets_the_original_receipt_and_changes_nothing(
        paired: tuple[Node, Node]) -> None:
    gbg, sarajevo = paired
    data = sealed(gbg, sarajevo)
    first = sarajevo.post_inbox(data)
    assert first.status_code == 200
    before = (sarajevo.count(InboundMessage), audit_count(sarajevo))
    sarajevo.clock.advance(hours=3)
    again = sarajevo.post_inbox(data)
    assert again.status_code == 200 and again.data == first.data
    assert (sarajevo.count(InboundMessage), audit_count(sarajevo)) == before


def test_same_message_id_with_other_bytes_is_replayed(paired: tuple[Node, Node]) -> None:
    gbg, sarajevo = paired
    data = sealed(gbg, sarajevo)
    assert sarajevo.post_inbox(data).status_code == 200
    message_id = strict_loads(data)["id"]
    replay = sealed(gbg, sarajevo, message_id=message_id, thread=thread_id("another case"))
    _refused(sarajevo, replay, 409, "replayed", stored=1)


def _refused(node: Node, data: bytes, status: int, code: str, stored: int = 0) -> None:
    audit_before = audit_count(node)
    sender = node.partner("se.gi-goteborg")
    partner_before = (sender.status, sender.retry_interval, sender.retry_at)
    response = node.post_inbox(data)
    assert response.status_code == status, response.data
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["code"] == code and set(body) == {"type", "title", "status", "code"}
    assert node.count(InboundMessage) == stored
    assert audit_count(node) == audit_before
    sender = node.partner("se.gi-goteborg")
    assert (sender.status, sender.retry_interval, sender.retry_at) == partner_before


ATTACKS: dict[str, tuple[Callable[[Node, Node, Node], bytes], int, str]] = {
    "tampered header": (lambda g, s, b: edit(sealed(g, s), thread=thread_id("other")), 401, "bad_signature"),
    "tampered type": (lambda g, s, b: edit(sealed(g, s), type="case_closed"), 401, "bad_signature"),
    "tampered expiry": (lambda g, s, b: edit(sealed(g, s), expires="2027-01-10T09:00:00Z"), 401,
                        "bad_signature"),
    "tampered ciphertext": (lambda g, s, b: tamper(sealed(g, s), "ct"), 401, "bad_signature"),
    "tampered nonce": (lambda g, s, b: tamper(sealed(g, s), "nonce"), 401, "bad_signature"),
    "tampered signature": (lambda g, s, b: tamper(sealed(g, s), "sig"), 401, "bad_signature"),
    "other sender claimed": (lambda g, s, b: edit(sealed(g, s), **{"from": "iq.cldd-baghdad"}), 401,
                             "unknown_sender"),
    "wrong recipient": (lambda g, s, b: sealed(g, s, to=b), 403, "wrong_recipient"),
    "unknown sender": (lambda g, s, b: sealed(b, s), 401, "unknown_sender"),
    "expired": (lambda g, s, b: sealed(g, s, ttl=timedelta(hours=1), shift=-timedelta(hours=2)), 422,
                "expired"),
    "not yet valid": (lambda g, s, b: sealed(g, s, shift=timedelta(hours=1)), 422, "not_yet_valid"),
    "broken chain link": (lambda g, s, b: sealed(g, s, prev="A" * 43), 409, "broken_chain"),
    "handover citing another agreement": (
        lambda g, s, b: sealed(g, s, msg_type="handover", body=samples()["handover"], agreement="dsa-other"),
        403, "unknown_agreement"),
    "handover citing no agreement": (
        lambda g, s, b: sealed(g, s, msg_type="handover", body=samples()["handover"], agreement=None),
        403, "unknown_agreement"),
    "update citing another agreement": (lambda g, s, b: sealed(g, s, agreement="dsa-other"), 403,
                                        "unknown_agreement"),
    "body outside its schema": (lambda g, s, b: sealed(g, s, body={"note": "no ids"}, validate=False), 422,
                                "malformed"),
    "unsupported version": (lambda g, s, b: edit(sealed(g, s), v=2), 400, "unsupported_version"),
    "non-canonical JSON": (lambda g, s, b: json.dumps(strict_loads(sealed(g, s)), indent=1).encode(), 400,
                           "non_canonical"),
    "garbage": (lambda g, s, b: b"\x00\xffnot json at all", 400, "malformed"),
    "truncated JSON": (lambda g, s, b: sealed(g, s)[:200], 400, "malformed"),
    "empty body": (lambda g, s, b: b"", 400, "malformed"),
    "JSON that is not an envelope": (lambda g, s, b: b'{"hello":"world"}', 400, "malformed"),
    "oversized": (lambda g, s, b: b"[" + b" " * MAX_ENVELOPE_BYTES + b"]", 413, "oversized"),
}


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_attack_is_refused_with_its_code_and_nothing_stored(attack: str, paired: tuple[Node, Node],
                                                            nodes: dict[str, Node]) -> None:
    gbg, sarajevo = paired
    build, status, code = ATTACKS[attack]
    _refused(sarajevo, build(gbg, sarajevo, nodes["baghdad"]), status, code)


@pytest.mark.parametrize("status", ["suspended", "revoked"])
def test_suspended_or_revoked_sender_is_refused_before_decryption(status: str,
                                                                   paired: tuple[Node, Node]) -> None:
    gbg, sarajevo = paired
    data = sealed(gbg, sarajevo)
    with sarajevo.sessionmaker() as session:
        set_status(session, "se.gi-goteborg", status, sarajevo.clock.now())
        session.commit()
    _refused(sarajevo, data, 401, "unknown_sender")


def test_gap_in_the_chain_is_refused(paired: tuple[Node, Node]) -> None:
    gbg, sarajevo = paired
    gbg.send(sarajevo, note_body("one"), THREAD)
    second = gbg.send(sarajevo, note_body("two"), THREAD)
    _refused(sarajevo, second.envelope, 409, "broken_chain")


def test_applier_refusal_is_answered_and_nothing_stored(paired: tuple[Node, Node],
                                                        no_domain_appliers: dict[str, Any]) -> None:
    gbg, sarajevo = paired
    calls: list[str] = []

    def refuse(session: Any, *, message: InboundMessage, **_: Any) -> None:
        calls.append(message.message_id)
        raise OutsideConsentError("summary holds a category the consent does not grant")

    no_domain_appliers["progress_update"] = refuse
    _refused(sarajevo, sealed(gbg, sarajevo), 403, "outside_consent")
    assert len(calls) == 1


def test_applier_runs_in_the_inbox_transaction(paired: tuple[Node, Node],
                                               no_domain_appliers: dict[str, Any]) -> None:
    gbg, sarajevo = paired

    def link_case(session: Any, *, message: InboundMessage, partner: Any, **_: Any) -> None:
        assert partner.node_id == "se.gi-goteborg" and message.id is not None
        message.case_id = "local-case-7"

    no_domain_appliers["progress_update"] = link_case
    assert sarajevo.post_inbox(sealed(gbg, sarajevo)).status_code == 200
    assert [m.case_id for m in sarajevo.inbound()] == ["local-case-7"]
    assert [e.case_id for e in _entries(sarajevo)] == ["local-case-7"]
