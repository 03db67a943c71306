"""Resynchronisation after a restore (SPEC.md 7a): the signed request, the signed paged answer, and reseal.

Göteborg (``se.gi-goteborg``) is the restored requester, Baghdad (``iq.cldd-baghdad``) the responder. An answer
lists messages Göteborg sent to Baghdad, each with the receipt Baghdad signed when it received it.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol import (
    BadSignatureError,
    ChainError,
    DecryptionError,
    ExpiredError,
    MalformedError,
    NodeKeys,
    NotYetValidError,
    ProtocolError,
    ReceivedEntry,
    ResyncAnswer,
    ResyncRequest,
    SchemaError,
    UnknownKeyError,
    UnsupportedVersionError,
    WrongRecipientError,
    b64encode,
    canonical_bytes,
    make_answer,
    make_request,
    open_envelope,
    reseal,
    seal,
    sign_json,
    strict_loads,
    verify_answer,
    verify_request,
)
from protocol.envelope import Envelope
from protocol.resync import MAX_LOOKBACK, PAGE_SIZE
from protocol.times import format_time

from .conftest import NOW, THREAD, Directory, History, card_for, keys_for

SE, IQ, BA = keys_for("se.gi-goteborg"), keys_for("iq.cldd-baghdad"), keys_for("ba.cldd-sarajevo")
SE_CARD, IQ_CARD, BA_CARD = card_for(SE), card_for(IQ), card_for(BA)
# Baghdad after a key rotation (same node, new keys), and Göteborg's.
IQ_NEW, SE_NEW = keys_for("iq.cldd-baghdad", "#2"), keys_for("se.gi-goteborg", "#2")
IQ_NEW_CARD, SE_NEW_CARD = card_for(IQ_NEW), card_for(SE_NEW)
SINCE = NOW - timedelta(days=10)
SKEW = timedelta(seconds=300)
THREAD_A, THREAD_B = "thread-a-0000000000000", "thread-b-0000000000000"


def digest(label: str) -> str:
    return b64encode(hashlib.sha256(label.encode()).digest())


def message_id(label: str) -> str:
    return b64encode(hashlib.sha256(f"id/{label}".encode()).digest()[:16])


def receipt_doc(msg_id: str, msg_hash: str, *, signer: NodeKeys = IQ, at: Any = None,
                **changes: Any) -> dict[str, Any]:
    doc = {"v": 1, "type": "delivery_receipt", "message_id": msg_id, "content_hash": msg_hash,
           "received_at": format_time(at or NOW - timedelta(days=1)), "from": SE.node_id, "to": IQ.node_id,
           **changes}
    return sign_json(doc, signer.node_id, signer.signing_key)


def entry(label: str, thread: str, prev: str | None, *, msg_type: str = "progress_update",
          signer: NodeKeys = IQ, **receipt_changes: Any) -> dict[str, Any]:
    msg_id, content_hash = message_id(label), digest(label)
    return {"thread": thread, "id": msg_id, "type": msg_type, "prev": prev, "message_hash": content_hash,
            "receipt": receipt_doc(msg_id, content_hash, signer=signer, **receipt_changes)}


A1 = entry("a1", THREAD_A, None, msg_type="handover")
B1 = entry("b1", THREAD_B, digest("b0"))  # a page may start in the middle of a thread
A2 = entry("a2", THREAD_A, A1["message_hash"], msg_type="consent_withdrawn")
ENTRIES = [A1, B1, A2]


def request_for(*, after: int | None = None, since: Any = SINCE, now: Any = NOW) -> dict[str, Any]:
    return make_request(SE, IQ.node_id, since=since, now=now, after=after, request_id="request-id-0000000000A")


def verified_request(after: int | None = None) -> ResyncRequest:
    return verify_request(request_for(after=after), SE_CARD, responder=IQ.node_id, now=NOW)


def resigned(doc: dict[str, Any], keys: NodeKeys, **changes: Any) -> dict[str, Any]:
    unsigned = {k: v for k, v in doc.items() if k != "signatures"}
    return sign_json({**unsigned, **changes}, keys.node_id, keys.signing_key)


def answer_for(request: ResyncRequest, received: list[dict[str, Any]] | None = None, *, keys: NodeKeys = IQ,
               requeued: int = 3, next_after: int | None = None, now: Any = NOW) -> dict[str, Any]:
    return make_answer(keys, request, requeued=requeued, received=ENTRIES if received is None else received,
                       next_after=next_after, now=now)


# --- the request ------------------------------------------------------------------------------------------


def test_request_round_trip() -> None:
    doc = request_for()
    assert doc["type"] == "resync_request" and doc["v"] == 1
    assert set(doc) == {"v", "type", "id", "from", "to", "created", "since", "after", "signatures"}
    assert list(doc["signatures"]) == [SE.node_id] and list(doc["signatures"][SE.node_id]) == [SE.skid]
    request = verify_request(doc, SE_CARD, responder=IQ.node_id, now=NOW)
    assert request == ResyncRequest("request-id-0000000000A", SE.node_id, IQ.node_id, NOW, SINCE, None)


def test_request_for_a_later_page_and_a_random_id() -> None:
    first = make_request(SE, IQ.node_id, since=SINCE, now=NOW)
    second = make_request(SE, IQ.node_id, since=SINCE, now=NOW, after=1042)
    assert first["id"] != second["id"] and len(first["id"]) == 22
    request = verify_request(second, SE_CARD, responder=IQ.node_id, now=NOW)
    assert request.after == 1042 and request.id == second["id"]


def test_request_survives_the_wire() -> None:
    doc = request_for(after=7)
    parsed = strict_loads(canonical_bytes(doc))
    assert verify_request(parsed, SE_CARD, responder=IQ.node_id, now=NOW).after == 7


def test_request_times_are_cut_to_whole_seconds() -> None:
    doc = request_for(since=SINCE + timedelta(microseconds=900_000), now=NOW + timedelta(microseconds=500_000))
    assert doc["created"] == format_time(NOW) and doc["since"] == format_time(SINCE)


@pytest.mark.parametrize("since", [NOW + timedelta(seconds=1), NOW - MAX_LOOKBACK - timedelta(seconds=1)])
def test_make_request_refuses_since_out_of_range(since: Any) -> None:
    with pytest.raises(MalformedError, match="90 days"):
        make_request(SE, IQ.node_id, since=since, now=NOW)


def test_make_request_accepts_the_bounds() -> None:
    for since in (NOW, NOW - MAX_LOOKBACK):
        doc = make_request(SE, IQ.node_id, since=since, now=NOW)
        assert verify_request(doc, SE_CARD, responder=IQ.node_id, now=NOW).since == since


def test_make_request_needs_aware_times() -> None:
    with pytest.raises(ValueError, match="naive"):
        make_request(SE, IQ.node_id, since=SINCE.replace(tzinfo=None), now=NOW)


def signed_request(**changes: Any) -> dict[str, Any]:
    return resigned(request_for(), SE, **changes)


def without(doc: dict[str, Any], member: str) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k != member}


@pytest.mark.parametrize(("doc", "error", "code"), [
    (["not", "an", "object"], MalformedError, "malformed"),
    (signed_request(v=2), UnsupportedVersionError, "unsupported_version"),
    (signed_request(v=0), UnsupportedVersionError, "unsupported_version"),
    (signed_request(v=False), SchemaError, "malformed"),  # a bool is not an integer
    (signed_request(v=True), SchemaError, "malformed"),
    (signed_request(v="1"), SchemaError, "malformed"),
    (resigned(without(request_for(), "v"), SE), SchemaError, "malformed"),
    (signed_request(type="resync_answer"), SchemaError, "malformed"),
    (signed_request(note="x"), SchemaError, "malformed"),
    (signed_request(unsigned={"note": "x"}), SchemaError, "malformed"),
    (resigned(without(request_for(), "after"), SE), SchemaError, "malformed"),
    (signed_request(after=-1), SchemaError, "malformed"),
    (signed_request(after=1.5), SchemaError, "malformed"),
    (signed_request(id="short"), SchemaError, "malformed"),
    (signed_request(since="2026-02-20T00:00:00+00:00"), SchemaError, "malformed"),
    (signed_request(**{"from": "SE.GI"}), SchemaError, "malformed"),
    (without(request_for(), "signatures"), SchemaError, "malformed"),
])
def test_verify_request_refuses_the_shape(doc: Any, error: type[ProtocolError], code: str) -> None:
    with pytest.raises(error) as caught:
        verify_request(doc, SE_CARD, responder=IQ.node_id, now=NOW)
    assert caught.value.code == code


def test_verify_request_refuses_another_recipient() -> None:
    with pytest.raises(WrongRecipientError) as caught:
        verify_request(request_for(), SE_CARD, responder=BA.node_id, now=NOW)
    assert caught.value.code == "wrong_recipient"


def test_recipient_is_checked_before_the_signature() -> None:
    tampered = {**request_for(), "to": BA.node_id}  # signature broken too
    with pytest.raises(WrongRecipientError):
        verify_request(tampered, SE_CARD, responder=IQ.node_id, now=NOW)


@pytest.mark.parametrize(("doc", "card"), [
    (request_for(), BA_CARD),  # from another node than the card's
    ({**request_for(), "since": format_time(SINCE - timedelta(days=1))}, SE_CARD),  # changed after signing
    (sign_json(without(request_for(), "signatures"), SE.node_id, BA.signing_key), SE_CARD),  # another key
    (request_for(), SE_NEW_CARD),  # a card of the requester whose key did not sign
])
def test_verify_request_refuses_a_bad_signature(doc: dict[str, Any], card: Any) -> None:
    with pytest.raises(BadSignatureError) as caught:
        verify_request(doc, card, responder=IQ.node_id, now=NOW)
    assert caught.value.code == "bad_signature"


def test_verify_request_refuses_a_signature_that_is_not_64_bytes() -> None:
    doc = request_for()
    sig = doc["signatures"][SE.node_id][SE.skid]
    bad = {**doc, "signatures": {SE.node_id: {SE.skid: sig[:-1] + ("B" if sig[-1] != "B" else "C")}}}
    with pytest.raises(MalformedError) as caught:  # unused bits set in the last character
        verify_request(bad, SE_CARD, responder=IQ.node_id, now=NOW)
    assert caught.value.code == "malformed" and not isinstance(caught.value, SchemaError)


def test_verify_request_time_window() -> None:
    doc = request_for()
    for now in (NOW - SKEW, NOW + SKEW):
        assert verify_request(doc, SE_CARD, responder=IQ.node_id, now=now).created == NOW
    with pytest.raises(NotYetValidError) as early:
        verify_request(doc, SE_CARD, responder=IQ.node_id, now=NOW - SKEW - timedelta(seconds=1))
    assert early.value.code == "not_yet_valid"
    with pytest.raises(ExpiredError) as late:
        verify_request(doc, SE_CARD, responder=IQ.node_id, now=NOW + SKEW + timedelta(seconds=1))
    assert late.value.code == "expired"


@pytest.mark.parametrize(("since", "ok"), [
    (NOW, True), (NOW - MAX_LOOKBACK, True),
    (NOW + timedelta(seconds=1), False), (NOW - MAX_LOOKBACK - timedelta(seconds=1), False),
])
def test_verify_request_since_bounds(since: Any, ok: bool) -> None:
    doc = signed_request(since=format_time(since))
    if ok:
        assert verify_request(doc, SE_CARD, responder=IQ.node_id, now=NOW).since == since
        return
    with pytest.raises(MalformedError, match="since") as caught:
        verify_request(doc, SE_CARD, responder=IQ.node_id, now=NOW)
    assert caught.value.code == "malformed" and not isinstance(caught.value, SchemaError)


def test_verify_request_needs_an_aware_clock() -> None:
    with pytest.raises(ValueError, match="naive"):
        verify_request(request_for(), SE_CARD, responder=IQ.node_id, now=NOW.replace(tzinfo=None))


# --- the answer -------------------------------------------------------------------------------------------


def test_answer_round_trip() -> None:
    request = verified_request()
    doc = answer_for(request, next_after=1042)
    assert set(doc) == {"v", "type", "request", "from", "to", "created", "requeued", "received", "next",
                        "signatures"}
    answer = verify_answer(strict_loads(canonical_bytes(doc)), IQ_CARD, request=request, now=NOW)
    assert isinstance(answer, ResyncAnswer)
    assert (answer.request, answer.responder, answer.requester) == (request.id, IQ.node_id, SE.node_id)
    assert (answer.created, answer.requeued, answer.next) == (NOW, 3, 1042)
    assert [e.message_id for e in answer.received] == [A1["id"], B1["id"], A2["id"]]
    first = answer.received[0]
    assert first == ReceivedEntry(THREAD_A, A1["id"], "handover", None, A1["message_hash"], A1["receipt"],
                                  NOW - timedelta(days=1))
    assert answer.received[2].prev == A1["message_hash"]


def test_last_page_is_empty_with_next_null() -> None:
    request = verified_request(after=1042)
    answer = verify_answer(answer_for(request, [], requeued=0), IQ_CARD, request=request, now=NOW)
    assert (answer.received, answer.next, answer.requeued) == ([], None, 0)


def test_make_answer_refuses_a_request_to_another_node() -> None:
    with pytest.raises(MalformedError, match="another node"):
        answer_for(verified_request(), keys=BA)


def test_make_answer_refuses_an_over_long_page() -> None:
    with pytest.raises(MalformedError, match="too many"):
        answer_for(verified_request(), [A1] * (PAGE_SIZE + 1))


def signed_answer(keys: NodeKeys = IQ, **changes: Any) -> dict[str, Any]:
    return resigned(answer_for(verified_request()), keys, **changes)


def check_answer(doc: Any, *, card: Any = IQ_CARD, request: ResyncRequest | None = None, now: Any = NOW) -> Any:
    return verify_answer(doc, card, request=request or verified_request(), now=now)


@pytest.mark.parametrize(("doc", "error"), [
    ("an answer", MalformedError),
    (signed_answer(v=2), UnsupportedVersionError),
    (signed_answer(v=False), SchemaError),
    (signed_answer(type="resync_request"), SchemaError),
    (signed_answer(extra=1), SchemaError),
    (signed_answer(requeued=-1), SchemaError),
    (signed_answer(next="1042"), SchemaError),
    (signed_answer(received=[*ENTRIES, *[A1] * (PAGE_SIZE - 2)]), SchemaError),  # 501 entries
    (signed_answer(received=[{**A1, "note": "x"}]), SchemaError),
    (signed_answer(received=[without(A1, "prev")]), SchemaError),
    (signed_answer(received=[{**A1, "type": "resync_answer"}]), SchemaError),
    (signed_answer(received=[{**A1, "receipt": {**A1["receipt"], "extra": 1}}]), SchemaError),
    (signed_answer(received=[{**A1, "receipt": without(A1["receipt"], "received_at")}]), SchemaError),
])
def test_verify_answer_refuses_the_shape(doc: Any, error: type[ProtocolError]) -> None:
    with pytest.raises(error) as caught:
        check_answer(doc)
    assert caught.value.code == ("unsupported_version" if error is UnsupportedVersionError else "malformed")


def test_page_of_exactly_500_entries_passes_the_shape() -> None:
    entries = page_entries([0] * PAGE_SIZE)
    request = verified_request()
    assert len(check_answer(answer_for(request, entries), request=request).received) == PAGE_SIZE


@pytest.mark.parametrize("request_", [
    ResyncRequest("another-request-000000", SE.node_id, IQ.node_id, NOW, SINCE, None),
    ResyncRequest("request-id-0000000000A", SE.node_id, BA.node_id, NOW, SINCE, None),
    ResyncRequest("request-id-0000000000A", BA.node_id, IQ.node_id, NOW, SINCE, None),
])
def test_verify_answer_refuses_an_answer_to_another_request(request_: ResyncRequest) -> None:
    with pytest.raises(MalformedError, match="does not answer") as caught:
        check_answer(answer_for(verified_request()), request=request_)
    assert caught.value.code == "malformed"


@pytest.mark.parametrize(("doc", "card"), [
    (answer_for(verified_request()), BA_CARD),
    ({**answer_for(verified_request()), "requeued": 4}, IQ_CARD),
    (signed_answer(BA), IQ_CARD),  # signed under Baghdad's name by another key
    (answer_for(verified_request()), IQ_NEW_CARD),  # the requester holds only the responder's newer card
])
def test_verify_answer_refuses_a_bad_signature(doc: dict[str, Any], card: Any) -> None:
    with pytest.raises(BadSignatureError) as caught:
        check_answer(doc, card=card)
    assert caught.value.code == "bad_signature"


def test_verify_answer_time_window() -> None:
    doc = answer_for(verified_request())
    for now in (NOW - SKEW, NOW + SKEW):
        assert check_answer(doc, now=now).created == NOW
    with pytest.raises(NotYetValidError):
        check_answer(doc, now=NOW - SKEW - timedelta(seconds=1))
    with pytest.raises(ExpiredError):
        check_answer(doc, now=NOW + SKEW + timedelta(seconds=1))


@pytest.mark.parametrize(("after", "next_after", "ok"), [
    (None, 0, True), (None, None, True), (1042, 1043, True), (1042, None, True),
    (1042, 1042, False), (1042, 7, False),
])
def test_next_must_advance(after: int | None, next_after: int | None, ok: bool) -> None:
    request = verified_request(after=after)
    doc = answer_for(request, next_after=next_after, requeued=0)
    if ok:
        assert check_answer(doc, request=request).next == next_after
        return
    with pytest.raises(MalformedError, match="advance"):
        check_answer(doc, request=request)


@pytest.mark.parametrize(("changes", "error"), [
    ({"to": BA.node_id}, BadSignatureError),  # not the responder's receipt
    ({"from": BA.node_id}, MalformedError),
    ({"message_id": message_id("other")}, MalformedError),
    ({"content_hash": digest("other")}, MalformedError),
])
def test_receipt_by_the_current_key_must_name_the_listed_message(changes: dict[str, Any],
                                                                 error: type[ProtocolError]) -> None:
    bad = {**A2, "receipt": receipt_doc(A2["id"], A2["message_hash"], **changes)}
    with pytest.raises(error) as caught:
        check_answer(signed_answer(received=[A1, B1, bad]))
    assert caught.value.code == ("bad_signature" if error is BadSignatureError else "malformed")


def test_receipt_by_the_current_key_must_verify() -> None:
    receipt = {**A2["receipt"], "received_at": format_time(NOW)}  # changed after signing
    with pytest.raises(BadSignatureError):
        check_answer(signed_answer(received=[A1, B1, {**A2, "receipt": receipt}]))


def test_receipt_signed_by_no_key_of_the_responder() -> None:
    bad = {**A2, "receipt": receipt_doc(A2["id"], A2["message_hash"], signer=SE)}
    with pytest.raises(BadSignatureError, match="not signed by the responder"):
        check_answer(signed_answer(received=[A1, B1, bad]))


def test_a_message_listed_twice() -> None:
    with pytest.raises(MalformedError, match="twice"):
        check_answer(signed_answer(received=[A1, B1, B1]))


@pytest.mark.parametrize("prev", [None, digest("elsewhere"), B1["message_hash"]])
def test_broken_link_between_entries_of_a_thread(prev: str | None) -> None:
    bad = {**A2, "prev": prev}
    with pytest.raises(MalformedError, match="follow") as caught:
        check_answer(signed_answer(received=[A1, B1, bad]))
    assert not isinstance(caught.value, ChainError)


def test_receipt_problems_come_before_duplicates_and_links() -> None:
    bad = {**A2, "prev": None, "receipt": receipt_doc(A2["id"], A2["message_hash"], signer=SE)}
    with pytest.raises(BadSignatureError):
        check_answer(signed_answer(received=[A1, B1, bad]))


# --- a rotation of the responder --------------------------------------------------------------------------


def test_receipts_by_the_previous_key_under_an_answer_by_the_current_one() -> None:
    """Baghdad signed the receipts before it rotated; the requester holds its new card."""
    request = verified_request()
    answer = verify_answer(answer_for(request, keys=IQ_NEW), IQ_NEW_CARD, request=request, now=NOW)
    assert [e.message_id for e in answer.received] == [A1["id"], B1["id"], A2["id"]]
    assert answer.received[0].received_at == NOW - timedelta(days=1)


def test_an_answer_by_the_new_key_does_not_verify_with_the_old_card() -> None:
    request = verified_request()
    with pytest.raises(BadSignatureError):
        verify_answer(answer_for(request, keys=IQ_NEW), IQ_CARD, request=request, now=NOW)


@pytest.mark.parametrize("changes", [
    {"to": BA.node_id}, {"from": BA.node_id}, {"message_id": message_id("other")},
    {"content_hash": digest("other")},
])
def test_receipt_by_the_previous_key_must_name_the_listed_message(changes: dict[str, Any]) -> None:
    request = verified_request()
    bad = {**A2, "receipt": receipt_doc(A2["id"], A2["message_hash"], **changes)}
    doc = answer_for(request, [A1, B1, bad], keys=IQ_NEW)
    with pytest.raises(MalformedError, match="does not acknowledge") as caught:
        verify_answer(doc, IQ_NEW_CARD, request=request, now=NOW)
    assert caught.value.code == "malformed"


def test_answer_cosigned_by_both_keys_verifies_against_either_card() -> None:
    request = verified_request()
    doc = sign_json(answer_for(request, keys=IQ_NEW), IQ.node_id, IQ.signing_key)
    assert sorted(doc["signatures"][IQ.node_id]) == sorted([IQ.skid, IQ_NEW.skid])
    for card in (IQ_CARD, IQ_NEW_CARD):
        assert len(verify_answer(doc, card, request=request, now=NOW).received) == 3


# --- reseal -----------------------------------------------------------------------------------------------


def sealed_to_iq(samples: dict[str, Any], *, keys: NodeKeys = SE, card: Any = IQ_CARD, prev: str | None = None,
                 msg_type: str = "progress_update") -> Any:
    return seal(keys=keys, recipient=card, msg_type=msg_type, body=samples[msg_type], thread=THREAD,
                now=NOW - timedelta(hours=1), prev=prev, agreement="gi-cldd-2026-01", ttl=timedelta(days=30))


def history_with_head(head: str | None) -> History:
    history = History()
    if head is not None:
        history.heads[(SE.node_id, THREAD)] = head
    return history


def test_reseal_continues_the_chain_from_the_new_head(samples: dict[str, Any]) -> None:
    original = sealed_to_iq(samples, prev=digest("old head"))
    new_head = digest("last listed message")
    again = reseal(original.data, keys=SE, own_keys=[], recipient=IQ_CARD, prev=new_head)
    opened = open_envelope(again.data, keys=IQ, directory=Directory(SE_CARD), history=history_with_head(new_head),
                           now=NOW)
    first = open_envelope(original.data, keys=IQ, directory=Directory(SE_CARD),
                          history=history_with_head(digest("old head")), now=NOW)
    assert opened.header == original.header == again.header
    assert opened.body == first.body == samples["progress_update"]
    assert opened.agreement == first.agreement == "gi-cldd-2026-01"
    assert opened.prev == new_head and first.prev == digest("old head")
    assert opened.message_hash == again.message_hash != original.message_hash
    old_env, new_env = (Envelope.from_json(strict_loads(d)) for d in (original.data, again.data))
    assert new_env.nonce != old_env.nonce
    assert (new_env.skid, new_env.ekid, new_env.rkid) == (SE.skid, SE.ekid, IQ_CARD.ekid)
    with pytest.raises(ChainError):  # the original names the old head
        open_envelope(original.data, keys=IQ, directory=Directory(SE_CARD), history=history_with_head(new_head),
                      now=NOW)


def test_reseal_onto_an_empty_chain(samples: dict[str, Any]) -> None:
    original = sealed_to_iq(samples, prev=digest("forgotten"))
    again = reseal(original.data, keys=SE, own_keys=[SE], recipient=IQ_CARD, prev=None)
    opened = open_envelope(again.data, keys=IQ, directory=Directory(SE_CARD), history=History(), now=NOW)
    assert opened.prev is None and opened.header.id == original.header.id


def test_reseal_a_thread_in_chain_order(samples: dict[str, Any]) -> None:
    first = sealed_to_iq(samples, prev=digest("old head"))
    second = sealed_to_iq(samples, prev=first.message_hash, msg_type="case_closed")
    head = digest("new head")
    history = history_with_head(head)
    for original in (first, second):
        again = reseal(original.data, keys=SE, own_keys=[], recipient=IQ_CARD, prev=head)
        opened = open_envelope(again.data, keys=IQ, directory=Directory(SE_CARD), history=history, now=NOW)
        assert opened.header.type == original.header.type
        history.accept(SE.node_id, opened.header.id, THREAD, opened.message_hash)
        head = again.message_hash


def test_reseal_after_the_sender_rotated(samples: dict[str, Any]) -> None:
    original = sealed_to_iq(samples, keys=SE, prev=digest("old head"))
    again = reseal(original.data, keys=SE_NEW, own_keys=[SE], recipient=IQ_CARD, prev=digest("new head"))
    opened = open_envelope(again.data, keys=IQ, directory=Directory(SE_NEW_CARD),
                           history=history_with_head(digest("new head")), now=NOW)
    assert opened.skid == SE_NEW.skid and opened.header == original.header


def test_reseal_after_the_recipient_rotated(samples: dict[str, Any]) -> None:
    original = sealed_to_iq(samples, card=IQ_CARD, prev=None)
    again = reseal(original.data, keys=SE, own_keys=[], recipient=IQ_NEW_CARD, prev=None,
                   peer_keys={IQ_CARD.ekid: IQ_CARD.encryption_key})
    assert Envelope.from_json(strict_loads(again.data)).rkid == IQ_NEW_CARD.ekid
    opened = open_envelope(again.data, keys=IQ_NEW, directory=Directory(SE_CARD), history=History(), now=NOW)
    assert opened.body == samples["progress_update"]


def test_reseal_refuses_another_nodes_envelope(samples: dict[str, Any]) -> None:
    original = sealed_to_iq(samples)
    with pytest.raises(MalformedError, match="not a message of this node") as caught:
        reseal(original.data, keys=IQ, own_keys=[], recipient=SE_CARD, prev=None)
    assert caught.value.code == "malformed"
    with pytest.raises(MalformedError, match="not a message of this node"):  # right sender, another recipient
        reseal(original.data, keys=SE, own_keys=[], recipient=BA_CARD, prev=None)


def test_reseal_refuses_keys_no_longer_held(samples: dict[str, Any]) -> None:
    original = sealed_to_iq(samples)
    with pytest.raises(UnknownKeyError) as caught:  # sealed with our previous key pair, not given
        reseal(original.data, keys=SE_NEW, own_keys=[], recipient=IQ_CARD, prev=None)
    assert caught.value.code == "unknown_key"
    with pytest.raises(UnknownKeyError):  # sealed to the recipient's previous key, not given
        reseal(original.data, keys=SE, own_keys=[], recipient=IQ_NEW_CARD, prev=None)


def test_reseal_refuses_a_ciphertext_that_does_not_authenticate(samples: dict[str, Any]) -> None:
    doc = strict_loads(sealed_to_iq(samples).data)
    ct = doc["ct"]
    doc["ct"] = ct[:10] + ("A" if ct[10] != "A" else "B") + ct[11:]
    with pytest.raises(DecryptionError) as caught:
        reseal(canonical_bytes(doc), keys=SE, own_keys=[], recipient=IQ_CARD, prev=None)
    assert caught.value.code == "decryption_failed"


def test_reseal_refuses_bytes_that_are_not_an_envelope() -> None:
    with pytest.raises(MalformedError):
        reseal(b'{"v":1}', keys=SE, own_keys=[], recipient=IQ_CARD, prev=None)


# --- property: pages of any length up to 500 round-trip ---------------------------------------------------

_POOL = [(message_id(f"p{i}"), digest(f"p{i}")) for i in range(PAGE_SIZE)]
_RECEIPTS = [receipt_doc(mid, h, at=NOW - timedelta(days=2) + timedelta(seconds=i))
             for i, (mid, h) in enumerate(_POOL)]
_THREADS = [f"thread-{n}".ljust(22, "0") for n in range(5)]


def page_entries(threads: list[int]) -> list[dict[str, Any]]:
    """Entries ``i`` in thread ``threads[i]``, each linked to the one before it in its thread."""
    heads: dict[int, str] = {}
    entries = []
    for i, t in enumerate(threads):
        msg_id, content_hash = _POOL[i]
        entries.append({"thread": _THREADS[t], "id": msg_id, "type": "progress_update",
                        "prev": heads.get(t, digest(f"before {t}")), "message_hash": content_hash,
                        "receipt": _RECEIPTS[i]})
        heads[t] = content_hash
    return entries


@given(threads=st.lists(st.integers(0, len(_THREADS) - 1), max_size=PAGE_SIZE),
       after=st.none() | st.integers(0, 2**40), more=st.booleans())
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.data_too_large, HealthCheck.too_slow])
def test_pages_of_any_length_round_trip(threads: list[int], after: int | None, more: bool) -> None:
    request = verify_request(request_for(after=after), SE_CARD, responder=IQ.node_id, now=NOW)
    entries = page_entries(threads)
    next_after = (after or 0) + len(entries) + 1 if more else None
    doc = make_answer(IQ, request, requeued=0 if after else len(entries), received=entries,
                      next_after=next_after, now=NOW)
    answer = verify_answer(strict_loads(canonical_bytes(doc)), IQ_CARD, request=request, now=NOW)
    assert [(e.thread, e.message_id, e.prev, e.message_hash) for e in answer.received] == [
        (e["thread"], e["id"], e["prev"], e["message_hash"]) for e in entries]
    assert [e.receipt for e in answer.received] == [e["receipt"] for e in entries]
    assert answer.next == next_after
