"""Store-and-forward by file, in process on SQLite and PostgreSQL: a partner offline, its queue exported,
imported, the receipts carried back; nothing delivered twice when the link comes back; refusals whole or per
item."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from node.audit import AuditEntry, verify_chain
from node.exchange.delivery.bundles import BundleExport, export_bundle
from node.exchange.delivery.outbox import enqueue
from node.exchange.delivery.worker import DeliveryWorker
from node.exchange.inbox.bundle_import import BundleImport, import_bundle, import_file, import_receipts
from node.exchange.models import InboundMessage, OutboundMessage
from node.exchange.trust.partners import NoAgreement, PartnerNotFound, PartnerStateError, set_status
from protocol import (
    BoxCache,
    ProtocolError,
    open_bundle,
    seal_bundle,
    seal_receipts,
    strict_loads,
    verify_receipt,
)
from protocol.bundle import BUNDLE_OVERHEAD
from protocol.cards import card_from_bytes
from tests.exchange.conftest import FlaskTransport, Node, note_body, thread_id
from tests.protocol.conftest import Directory

pytestmark = pytest.mark.usefixtures("no_domain_appliers")

Worker = Callable[..., DeliveryWorker]


class CountingBoxes(BoxCache):
    """A BoxCache that counts how often a shared key is asked for (i.e. decryption was attempted)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def box(self, private_key: Any, peer_public: bytes) -> Any:
        self.calls += 1
        return super().box(private_key, peer_public)


def export(node: Node, partner: Node, **kwargs: Any) -> BundleExport:
    with node.sessionmaker() as session:
        result = export_bundle(session, keys=node.identity.keys, partner=partner.node_id, now=node.clock.now(),
                               boxes=node.identity.boxes, **kwargs)
        session.commit()
        return result


def import_(node: Node, data: bytes, **kwargs: Any) -> BundleImport:
    with node.sessionmaker() as session:
        result = import_file(session, data=data, keys=node.identity.keys, now=node.clock.now(), **kwargs)
        session.commit()
        return result


def refused_whole(node: Node, data: bytes, code: str | set[str], **kwargs: Any) -> None:
    """Importing ``data`` raises the protocol error ``code`` (or one of ``code``) and changes nothing."""
    before = (node.count(InboundMessage), node.count(AuditEntry), [m.status for m in node.outbound()])
    with node.sessionmaker() as session:
        with pytest.raises(ProtocolError) as info:
            import_file(session, data=data, keys=node.identity.keys, now=node.clock.now(), **kwargs)
        session.rollback()
    assert info.value.code in ({code} if isinstance(code, str) else code), info.value.message
    assert (node.count(InboundMessage), node.count(AuditEntry), [m.status for m in node.outbound()]) == before


def knows(node: Node) -> Directory:
    """An in-memory directory that knows ``node`` (to open its receipts bundle outside the receiving node)."""
    return Directory(card_from_bytes(node.card_bytes()))


def receive_audits(node: Node) -> int:
    with node.sessionmaker() as session:
        return int(session.scalar(sa.select(sa.func.count()).select_from(AuditEntry).where(
            AuditEntry.action == "receive", AuditEntry.object_type == "message")) or 0)


def audit_intact(node: Node) -> bool:
    with node.sessionmaker() as session:
        count, problems = verify_chain(session)
    return count > 0 and problems == []


def queue_three(gbg: Node, sarajevo: Node) -> list[str]:
    """Two messages in one case thread and one in another; returns their ids in queue order."""
    return [gbg.send(sarajevo, note_body(text), thread_id(thread)).message_id
            for text, thread in (("a1", "case-a"), ("b1", "case-b"), ("a2", "case-a"))]


def offline(gbg: Node, sarajevo: Node, make_worker: Worker, transport: FlaskTransport) -> DeliveryWorker:
    """Sarajevo's link is down: one delivery attempt fails and the messages stay queued."""
    transport.down.add(sarajevo.base_url)
    worker = make_worker(gbg, parallel=2)
    stats = worker.run(once=True)
    assert stats.delivered == 0 and stats.retried >= 1
    assert {m.status for m in gbg.outbound()} == {"queued"}
    return worker


def link_back(gbg: Node, transport: FlaskTransport) -> None:
    transport.down.clear()
    retry_at = gbg.partner("ba.cldd-sarajevo").retry_at
    if retry_at is not None:
        gbg.clock.set(retry_at)


def test_offline_partner_gets_the_queue_by_file_and_the_receipts_come_back(
        paired: tuple[Node, Node], make_worker: Worker, transport: FlaskTransport) -> None:
    gbg, sarajevo = paired
    ids = queue_three(gbg, sarajevo)
    worker = offline(gbg, sarajevo, make_worker, transport)

    bundle = export(gbg, sarajevo)
    assert bundle.message_ids == tuple(ids) and bundle.left == 0 and bundle.data is not None
    assert {m.status for m in gbg.outbound()} == {"queued"}  # the file is a second way, not a new copy

    imported = import_(sarajevo, bundle.data)
    assert imported.kind == "ccm_bundle" and imported.sender == "se.gi-goteborg"
    assert [(r.message_id, r.outcome) for r in imported.results] == [(i, "accepted") for i in ids]
    assert [m.message_id for m in sarajevo.inbound()] == ids
    assert imported.receipts is not None

    back = import_(gbg, imported.receipts)
    assert back.kind == "ccm_receipts" and back.counts() == {"delivered": 3}
    card = card_from_bytes(gbg.partner("ba.cldd-sarajevo").card.encode())
    for message in gbg.outbound():
        assert message.status == "delivered" and message.receipt is not None
        verify_receipt(strict_loads(message.receipt), card, message_id=message.message_id,
                       content_hash=message.message_hash)

    link_back(gbg, transport)
    calls = len(transport.calls)
    assert worker.run(once=True).delivered == 0
    assert len(transport.calls) == calls  # the worker finds the messages delivered: nothing is sent again
    assert len(sarajevo.inbound()) == 3 and receive_audits(sarajevo) == 3
    assert audit_intact(gbg) and audit_intact(sarajevo)


def test_link_back_before_the_receipts_are_carried_back_applies_nothing_twice(
        paired: tuple[Node, Node], make_worker: Worker, transport: FlaskTransport) -> None:
    gbg, sarajevo = paired
    queue_three(gbg, sarajevo)
    worker = offline(gbg, sarajevo, make_worker, transport)
    bundle = export(gbg, sarajevo)
    assert bundle.data is not None
    imported = import_(sarajevo, bundle.data)
    assert imported.receipts is not None

    link_back(gbg, transport)
    assert worker.run(once=True).delivered == 3  # retransmissions, answered with the stored receipts
    assert len(sarajevo.inbound()) == 3 and receive_audits(sarajevo) == 3
    over_http = {m.message_id: m.receipt for m in gbg.outbound()}
    assert {m.message_id: m.receipt for m in sarajevo.inbound()} == over_http

    late = import_(gbg, imported.receipts)
    assert late.counts() == {"already_delivered": 3}
    assert {m.message_id: m.receipt for m in gbg.outbound()} == over_http
    assert audit_intact(gbg) and audit_intact(sarajevo)


def test_importing_a_bundle_or_its_receipts_twice_changes_nothing(paired: tuple[Node, Node]) -> None:
    gbg, sarajevo = paired
    queue_three(gbg, sarajevo)
    bundle = export(gbg, sarajevo)
    assert bundle.data is not None
    first = import_(sarajevo, bundle.data)
    state = (sarajevo.count(InboundMessage), receive_audits(sarajevo))
    second = import_(sarajevo, bundle.data)
    assert second.counts() == {"duplicate": 3}
    assert (sarajevo.count(InboundMessage), receive_audits(sarajevo)) == state
    assert first.receipts is not None and second.receipts is not None
    opened = [open_bundle(r, keys=gbg.identity.keys, directory=knows(sarajevo), now=gbg.clock.now())
              for r in (first.receipts, second.receipts)]
    assert opened[0].receipts == opened[1].receipts  # the receipts stored the first time

    assert import_(gbg, first.receipts).counts() == {"delivered": 3}
    delivered = [(m.status, m.delivered_at, m.receipt) for m in gbg.outbound()]
    gbg.clock.advance(hours=1)
    assert import_(gbg, second.receipts).counts() == {"already_delivered": 3}
    assert [(m.status, m.delivered_at, m.receipt) for m in gbg.outbound()] == delivered


@pytest.mark.parametrize("part", ["header", "ciphertext", "signature", "last byte"])
def test_a_tampered_bundle_is_refused_whole(paired: tuple[Node, Node], part: str) -> None:
    gbg, sarajevo = paired
    queue_three(gbg, sarajevo)
    data = export(gbg, sarajevo).data
    assert data is not None
    position = {"header": data.index(b'"created_at":"') + 20, "ciphertext": data.index(b'"ciphertext":"') + 300,
                "signature": data.index(b'"sig":"') + 30, "last byte": len(data) - 1}[part]
    changed = data[:position] + bytes([data[position] ^ 0x02]) + data[position + 1 :]
    refused_whole(sarajevo, changed, {"bad_signature", "malformed", "non_canonical"})
    assert sarajevo.inbound() == [] and import_(sarajevo, data).counts() == {"accepted": 3}


def test_a_bundle_for_another_node_is_refused(nodes: dict[str, Node]) -> None:
    gbg, sarajevo, baghdad = nodes["gbg"], nodes["sarajevo"], nodes["baghdad"]
    for a, b in ((gbg, sarajevo), (gbg, baghdad)):
        a.trust(b)
        b.trust(a)
    gbg.send(baghdad, note_body("for Baghdad"), thread_id("case-iq"))
    data = export(gbg, baghdad).data
    assert data is not None
    refused_whole(sarajevo, data, "wrong_recipient")
    assert import_(baghdad, data).counts() == {"accepted": 1}


@pytest.mark.parametrize("status", ["unknown", "suspended", "revoked"])
def test_a_bundle_from_an_unknown_or_suspended_partner_is_refused_before_decryption(
        gbg: Node, sarajevo: Node, status: str) -> None:
    gbg.trust(sarajevo)
    if status != "unknown":
        sarajevo.trust(gbg)
        with sarajevo.sessionmaker() as session:
            set_status(session, "se.gi-goteborg", status, sarajevo.clock.now())
            session.commit()
    gbg.send(sarajevo, note_body("x"), thread_id("case"))
    data = export(gbg, sarajevo).data
    assert data is not None
    boxes = CountingBoxes()
    refused_whole(sarajevo, data, "unknown_sender", boxes=boxes)
    assert boxes.calls == 0


def test_a_refused_item_does_not_undo_the_others(nodes: dict[str, Node]) -> None:
    gbg, sarajevo, baghdad = nodes["gbg"], nodes["sarajevo"], nodes["baghdad"]
    for a, b in ((gbg, sarajevo), (baghdad, sarajevo)):
        a.trust(b)
        b.trust(a)
    first = gbg.send(sarajevo, note_body("a1"), thread_id("case-a"))
    second = gbg.send(sarajevo, note_body("a2"), thread_id("case-a"))
    skipped = gbg.send(sarajevo, note_body("b1"), thread_id("case-b"))
    after_gap = gbg.send(sarajevo, note_body("b2"), thread_id("case-b"))
    foreign = baghdad.send(sarajevo, note_body("from Baghdad"), thread_id("case-c"))
    items = [first.envelope, b"not an envelope", foreign.envelope, after_gap.envelope, second.envelope]
    data = seal_bundle(keys=gbg.identity.keys, recipient=card_from_bytes(sarajevo.card_bytes()), envelopes=items,
                       now=gbg.clock.now())
    result = import_(sarajevo, data)
    assert [(r.message_id, r.outcome, r.code) for r in result.results] == [
        (first.message_id, "accepted", None), (None, "refused", "malformed"), (None, "refused", "unknown_sender"),
        (None, "refused", "broken_chain"), (second.message_id, "accepted", None)]
    assert result.refusals() == {"malformed": 1, "unknown_sender": 1, "broken_chain": 1}
    assert [m.message_id for m in sarajevo.inbound()] == [first.message_id, second.message_id]
    assert receive_audits(sarajevo) == 2
    assert skipped.message_id not in {m.message_id for m in sarajevo.inbound()}
    assert audit_intact(sarajevo)


def _set_status(node: Node, message_id: str, status: str) -> None:
    with node.sessionmaker() as session:
        session.execute(sa.update(OutboundMessage).where(OutboundMessage.message_id == message_id)
                        .values(status=status))
        session.commit()


def test_export_takes_what_the_worker_would_send(nodes: dict[str, Node]) -> None:
    gbg, sarajevo, baghdad = nodes["gbg"], nodes["sarajevo"], nodes["baghdad"]
    for a, b in ((gbg, sarajevo), (gbg, baghdad)):
        a.trust(b)
        b.trust(a)
    gbg.send(sarajevo, note_body("d1"), thread_id("done"))
    first = import_(sarajevo, export(gbg, sarajevo).data or b"")
    assert import_(gbg, first.receipts or b"").counts() == {"delivered": 1}
    parked = gbg.send(sarajevo, note_body("p1"), thread_id("parked"))
    gbg.send(sarajevo, note_body("p2"), thread_id("parked"))  # behind a parked message: would be refused
    _set_status(gbg, parked.message_id, "parked")
    ready = gbg.send(sarajevo, note_body("d2"), thread_id("done"))
    with gbg.sessionmaker() as session:
        short = enqueue(session, keys=gbg.identity.keys, recipient=sarajevo.node_id, msg_type="progress_update",
                        body=note_body("short-lived"), thread=thread_id("short"), now=gbg.clock.now(),
                        ttl=timedelta(hours=1))
        session.commit()
    gbg.send(baghdad, note_body("for Baghdad"), thread_id("other"))
    fresh = gbg.send(sarajevo, note_body("n1"), thread_id("new"))

    assert export(gbg, sarajevo).message_ids == (ready.message_id, short.message_id, fresh.message_id)
    gbg.clock.advance(hours=2)  # the short-lived envelope has expired
    result = export(gbg, sarajevo)
    assert result.message_ids == (ready.message_id, fresh.message_id) and result.left == 2
    assert import_(sarajevo, result.data or b"").counts() == {"accepted": 2}


def test_a_queue_larger_than_one_bundle_goes_in_parts(paired: tuple[Node, Node]) -> None:
    gbg, sarajevo = paired
    ids = [gbg.send(sarajevo, note_body(f"m{i}"), thread_id("long-case")).message_id for i in range(5)]
    size = max(len(m.envelope) for m in gbg.outbound())
    plaintext = 12 + 2 * ((4 * size + 2) // 3 + 2) + 1
    limit = BUNDLE_OVERHEAD + (4 * (plaintext + 16) + 2) // 3  # room for two envelopes, not three
    received: list[str] = []
    for expected in (2, 2, 1):
        part = export(gbg, sarajevo, max_bytes=limit)
        assert part.count == expected and part.left == 5 - len(received) - expected and part.data is not None
        assert len(part.data) <= limit
        imported = import_(sarajevo, part.data)
        received += [r.message_id for r in imported.results if r.message_id]
        assert import_(gbg, imported.receipts or b"").counts() == {"delivered": expected}
    assert received == ids == [m.message_id for m in sarajevo.inbound()]
    nothing = export(gbg, sarajevo)
    assert nothing.data is None and nothing.count == 0 and nothing.left == 0


def test_export_needs_an_active_partner_with_an_agreement(nodes: dict[str, Node]) -> None:
    gbg, sarajevo, baghdad = nodes["gbg"], nodes["sarajevo"], nodes["baghdad"]
    gbg.trust(sarajevo)
    gbg.trust(baghdad, agreement=None)
    with pytest.raises(NoAgreement):
        export(gbg, baghdad)
    with gbg.sessionmaker() as session:
        set_status(session, sarajevo.node_id, "suspended", gbg.clock.now())
        session.commit()
    with pytest.raises(PartnerStateError):
        export(gbg, sarajevo)
    with pytest.raises(PartnerNotFound), gbg.sessionmaker() as session:
        export_bundle(session, keys=gbg.identity.keys, partner="de.nobody", now=gbg.clock.now())


def test_receipts_are_verified_one_by_one_as_the_worker_does(paired: tuple[Node, Node]) -> None:
    gbg, sarajevo = paired
    ids = queue_three(gbg, sarajevo)
    bundle = export(gbg, sarajevo)
    imported = import_(sarajevo, bundle.data or b"")
    opened = open_bundle(imported.receipts or b"", keys=gbg.identity.keys, directory=knows(sarajevo),
                         now=gbg.clock.now())
    good, changed, wrong = (dict(r) for r in opened.receipts)
    changed["received_at"] = "2030-01-01T00:00:00Z"  # no longer what Sarajevo signed
    wrong = {**wrong, "content_hash": good["content_hash"]}
    unknown = {**good, "message_id": "U" * 22}
    data = seal_receipts(keys=sarajevo.identity.keys, recipient=card_from_bytes(gbg.card_bytes()),
                         receipts=[good, changed, wrong, unknown, good], now=sarajevo.clock.now())
    result = import_(gbg, data)
    assert [(r.message_id, r.outcome, r.code) for r in result.results] == [
        (ids[0], "delivered", None), (None, "refused", "bad_signature"),
        (None, "refused", "malformed"),  # another message's content: members are checked before the signature
        (None, "refused", "malformed"), (ids[0], "already_delivered", None)]
    assert [m.status for m in gbg.outbound()] == ["delivered", "queued", "queued"]


def test_a_file_of_the_other_kind_or_for_the_other_side_is_refused(paired: tuple[Node, Node]) -> None:
    gbg, sarajevo = paired
    queue_three(gbg, sarajevo)
    data = export(gbg, sarajevo).data or b""
    with sarajevo.sessionmaker() as session, pytest.raises(ProtocolError, match="not a ccm_receipts"):
        import_receipts(session, data=data, keys=sarajevo.identity.keys, now=sarajevo.clock.now())
    receipts = import_(sarajevo, data).receipts or b""
    with gbg.sessionmaker() as session, pytest.raises(ProtocolError, match="not a ccm_bundle"):
        import_bundle(session, data=receipts, keys=gbg.identity.keys, now=gbg.clock.now())
    refused_whole(sarajevo, receipts, "wrong_recipient")  # our own receipts bundle, for Göteborg
    assert import_(gbg, receipts).counts() == {"delivered": 3}


def test_export_and_import_are_audited_with_ids_and_counts_only(paired: tuple[Node, Node]) -> None:
    gbg, sarajevo = paired
    queue_three(gbg, sarajevo)
    data = export(gbg, sarajevo).data or b""
    import_(sarajevo, data)
    with gbg.sessionmaker() as session:
        entry = session.scalar(sa.select(AuditEntry).where(AuditEntry.object_type == "bundle"))
        assert entry is not None and entry.action == "export"
        assert strict_loads(entry.detail or "") == {"to": "ba.cldd-sarajevo", "messages": 3, "left": 0}
    with sarajevo.sessionmaker() as session:
        entry = session.scalar(sa.select(AuditEntry).where(AuditEntry.object_type == "bundle"))
        assert entry is not None and entry.action == "receive"
        assert strict_loads(entry.detail or "") == {"from": "se.gi-goteborg", "kind": "ccm_bundle", "items": 3,
                                                    "accepted": 3}


class _Crash(Exception):
    """The importing process dies (simulated between two checkpoints)."""


def test_a_large_import_commits_in_steps_and_an_interrupted_one_completes_when_imported_again(
        paired: tuple[Node, Node]) -> None:
    gbg, sarajevo = paired
    ids = [gbg.send(sarajevo, note_body(f"m{i}"), thread_id(f"case-{i % 2}")).message_id for i in range(5)]
    data = export(gbg, sarajevo).data or b""
    seen: list[int] = []
    with sarajevo.sessionmaker() as session:

        def checkpoint() -> None:
            session.commit()
            seen.append(sarajevo.count(InboundMessage))  # visible to other connections at once
            if len(seen) == 2:
                raise _Crash

        with pytest.raises(_Crash):
            import_file(session, data=data, keys=sarajevo.identity.keys, now=sarajevo.clock.now(),
                        checkpoint=checkpoint, checkpoint_every=2)
    assert seen == [2, 4] and [m.message_id for m in sarajevo.inbound()] == ids[:4]
    again = import_(sarajevo, data)
    assert [r.outcome for r in again.results] == ["duplicate"] * 4 + ["accepted"]
    assert import_(gbg, again.receipts or b"").counts() == {"delivered": 5}
