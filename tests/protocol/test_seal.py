"""seal / open_envelope: round trips and every step of the verification order."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from protocol import (
    BadSignatureError,
    ChainError,
    DecryptionError,
    ExpiredError,
    HeaderMismatchError,
    MalformedError,
    NodeKeys,
    NonCanonicalError,
    NotYetValidError,
    OversizedError,
    PartnerView,
    ProtocolError,
    ReplayedError,
    RevokedKeyError,
    SchemaError,
    UnknownKeyError,
    UnknownSenderError,
    UnsupportedVersionError,
    WrongRecipientError,
    b64encode,
    canonical_bytes,
    message_hash,
    open_envelope,
    seal,
    strict_loads,
    verify_signed_json,
)
from protocol.envelope import MAX_ENVELOPE_BYTES, MAX_INNER_BYTES

from .conftest import NOW, THREAD, Directory, History, card_for, keys_for

SE, IQ = keys_for("se.gi-goteborg"), keys_for("iq.cldd-baghdad")
SE_CARD, IQ_CARD = card_for(SE), card_for(IQ)


def sealed_handover(samples: dict[str, Any], **kwargs: Any) -> bytes:
    params: dict[str, Any] = {"keys": SE, "recipient": IQ_CARD, "msg_type": "handover",
                              "body": samples["handover"], "thread": THREAD, "now": NOW,
                              "agreement": "gi-cldd-2026-01"}
    params.update(kwargs)
    return seal(**params).data


def open_as_iq(data: bytes, **kwargs: Any) -> Any:
    params: dict[str, Any] = {"keys": IQ, "directory": Directory(SE_CARD), "history": History(), "now": NOW}
    params.update(kwargs)
    return open_envelope(data, **params)


def resign(doc: dict[str, Any], keys: NodeKeys = SE) -> bytes:
    unsigned = {k: v for k, v in doc.items() if k != "sig"}
    doc = {**unsigned, "sig": b64encode(keys.signing_key.sign(canonical_bytes(unsigned)).signature)}
    return canonical_bytes(doc)


@pytest.mark.parametrize("msg_type", ["handover", "receipt", "handover_accepted", "handover_declined",
                                      "progress_update", "consent_withdrawn", "erasure_confirmed",
                                      "case_closed", "forward", "key_rotated"])
def test_round_trip_every_type(samples: dict[str, Any], msg_type: str, boxes: Any) -> None:
    sealed = seal(keys=SE, recipient=IQ_CARD, msg_type=msg_type, body=samples[msg_type], thread=THREAD,
                  now=NOW, boxes=boxes)
    opened = open_as_iq(sealed.data, boxes=boxes)
    assert opened.body == samples[msg_type]
    assert opened.header == sealed.header
    assert opened.message_hash == sealed.message_hash == message_hash(sealed.inner_bytes)
    assert opened.inner_bytes == sealed.inner_bytes


def test_envelope_layout(samples: dict[str, Any]) -> None:
    data = sealed_handover(samples)
    doc = strict_loads(data)
    assert canonical_bytes(doc) == data
    assert set(doc) == {"v", "id", "type", "from", "to", "created", "expires", "thread", "skid", "ekid",
                        "rkid", "nonce", "ct", "sig"}
    assert (doc["from"], doc["to"], doc["skid"], doc["ekid"], doc["rkid"]) == (
        SE.node_id, IQ.node_id, SE.skid, SE.ekid, IQ.ekid)
    assert doc["created"] == "2026-03-02T10:00:00Z" and doc["expires"] == "2026-04-01T10:00:00Z"
    assert b"Karim" not in data


def test_inner_document_is_third_party_verifiable(samples: dict[str, Any]) -> None:
    opened = open_as_iq(sealed_handover(samples))
    inner = strict_loads(opened.inner_bytes)
    verify_signed_json(inner, SE.node_id, SE_CARD.verify_key)
    assert inner["header"]["to"] == IQ.node_id and inner["agreement"] == "gi-cldd-2026-01"


def test_fixed_id_and_nonce_are_deterministic(samples: dict[str, Any]) -> None:
    one = sealed_handover(samples, message_id="A" * 22, nonce=bytes(24))
    assert one == sealed_handover(samples, message_id="A" * 22, nonce=bytes(24))
    assert one != sealed_handover(samples)


def test_seal_refuses_bad_arguments(samples: dict[str, Any]) -> None:
    with pytest.raises(SchemaError):
        sealed_handover(samples, body={"nope": 1})
    with pytest.raises(MalformedError):
        sealed_handover(samples, msg_type="gossip")
    with pytest.raises(MalformedError):
        sealed_handover(samples, ttl=timedelta(days=91))
    with pytest.raises(MalformedError):
        sealed_handover(samples, nonce=b"short")
    with pytest.raises(MalformedError):
        sealed_handover(samples, thread="no spaces allowed here")
    with pytest.raises(MalformedError):
        sealed_handover(samples, prev="not-a-hash")
    with pytest.raises(MalformedError):
        sealed_handover(samples, agreement="bad agreement id")
    big = {**samples["progress_update"], "note": "x"}
    with pytest.raises((OversizedError, SchemaError)):
        sealed_handover(samples, msg_type="progress_update", body={**big, "filler": "x" * MAX_INNER_BYTES},
                        validate=False)


# ---- the verification order, step by step --------------------------------------------------------------


def test_step1_oversized(samples: dict[str, Any]) -> None:
    data = sealed_handover(samples)
    with pytest.raises(OversizedError):
        open_as_iq(data + b" " * (MAX_ENVELOPE_BYTES + 1 - len(data)))


@pytest.mark.parametrize("data", [b"", b"not json", b"[]", b'{"v":1}', b'"x"', b"\xff"])
def test_step2_4_malformed(data: bytes) -> None:
    with pytest.raises(MalformedError):
        open_as_iq(data)


def test_step2_non_canonical_and_duplicates(samples: dict[str, Any]) -> None:
    data = sealed_handover(samples)
    with pytest.raises(NonCanonicalError):
        open_as_iq(json.dumps(json.loads(data), indent=2).encode())
    with pytest.raises(MalformedError):
        open_as_iq(data[:-1] + b',"v":1}')


@pytest.mark.parametrize("version", [0, 2, 99])
def test_step3_unknown_version(samples: dict[str, Any], version: int) -> None:
    doc = strict_loads(sealed_handover(samples))
    with pytest.raises(UnsupportedVersionError):
        open_as_iq(resign({**doc, "v": version}))


@pytest.mark.parametrize(("field", "value"), [
    ("id", "short"), ("type", "gossip"), ("from", "SE"), ("created", "2026-03-02 10:00:00"),
    ("expires", "2027-03-02T10:00:00Z"), ("nonce", "AAAA"), ("sig", "AAAA"), ("skid", 5), ("v", "1"),
])
def test_step4_shape(samples: dict[str, Any], field: str, value: object) -> None:
    doc = strict_loads(sealed_handover(samples))
    with pytest.raises(MalformedError):
        open_as_iq(canonical_bytes({**doc, field: value}))


def test_step5_wrong_recipient(samples: dict[str, Any], ba_keys: NodeKeys) -> None:
    with pytest.raises(WrongRecipientError):
        open_as_iq(sealed_handover(samples), keys=ba_keys)


def test_step6_unknown_sender(samples: dict[str, Any]) -> None:
    with pytest.raises(UnknownSenderError):
        open_as_iq(sealed_handover(samples), directory=Directory(card_for(keys_for("ba.cldd-sarajevo"))))


def test_step7_keys(samples: dict[str, Any]) -> None:
    data = sealed_handover(samples)
    rotated = card_for(keys_for("se.gi-goteborg", "#2"))
    with pytest.raises(UnknownKeyError):
        open_as_iq(data, directory=Directory(rotated))
    with pytest.raises(RevokedKeyError):
        open_as_iq(data, directory=Directory(SE_CARD, revoked=frozenset({SE.skid})))
    with pytest.raises(RevokedKeyError):
        open_as_iq(data, directory=Directory(SE_CARD, revoked=frozenset({SE.ekid})))
    with pytest.raises(UnknownKeyError):
        open_as_iq(data, keys=keys_for("iq.cldd-baghdad", "#2"))


def test_step7_retired_receiver_key_still_decrypts(samples: dict[str, Any]) -> None:
    data = sealed_handover(samples)
    opened = open_as_iq(data, keys=keys_for("iq.cldd-baghdad", "#2"), retired_keys=[IQ])
    assert opened.header.recipient == IQ.node_id


def test_step8_outer_signature(samples: dict[str, Any]) -> None:
    doc = strict_loads(sealed_handover(samples))
    with pytest.raises(BadSignatureError):
        open_as_iq(canonical_bytes({**doc, "thread": "B" * 22}))
    with pytest.raises(BadSignatureError):
        open_as_iq(resign(doc, keys_for("se.gi-goteborg", "other")))


def test_step9_time_window(samples: dict[str, Any]) -> None:
    data = sealed_handover(samples)
    open_as_iq(data, now=NOW - timedelta(seconds=300))
    with pytest.raises(NotYetValidError):
        open_as_iq(data, now=NOW - timedelta(seconds=301))
    open_as_iq(data, now=NOW + timedelta(days=30, seconds=-1))
    with pytest.raises(ExpiredError):
        open_as_iq(data, now=NOW + timedelta(days=30))


def test_step10_replay(samples: dict[str, Any]) -> None:
    history = History()
    data = sealed_handover(samples)
    opened = open_as_iq(data, history=history)
    history.accept(opened.header.sender, opened.header.id, opened.header.thread, opened.message_hash)
    with pytest.raises(ReplayedError):
        open_as_iq(data, history=history)


def test_step11_decryption(samples: dict[str, Any]) -> None:
    doc = strict_loads(sealed_handover(samples))
    ct = doc["ct"]
    with pytest.raises(DecryptionError):
        open_as_iq(resign({**doc, "ct": ct[:20] + ("A" if ct[20] != "A" else "B") + ct[21:]}))
    with pytest.raises(DecryptionError):
        open_as_iq(resign({**doc, "nonce": b64encode(bytes(24))}))
    with pytest.raises(DecryptionError):
        open_as_iq(resign({**doc, "ct": "AAAA"}))


def test_step14_inner_header_binds_the_envelope(samples: dict[str, Any]) -> None:
    doc = strict_loads(sealed_handover(samples))
    for field, value in (("thread", "B" * 22), ("id", "C" * 22), ("type", "case_closed"),
                         ("expires", "2026-03-03T10:00:00Z")):
        with pytest.raises(HeaderMismatchError):
            open_as_iq(resign({**doc, field: value}))


def test_no_replay_to_another_recipient(samples: dict[str, Any], ba_keys: NodeKeys, ba_card: Any) -> None:
    """A receiver cannot re-address what it received: the inner header still names it."""
    opened = open_as_iq(sealed_handover(samples))
    inner = strict_loads(opened.inner_bytes)
    forged = seal(keys=IQ, recipient=ba_card, msg_type="handover", body=inner["body"], thread=THREAD, now=NOW)
    doc = strict_loads(forged.data)
    reattributed = resign({**doc, "from": SE.node_id, "skid": SE.skid, "ekid": SE.ekid}, IQ)
    with pytest.raises(BadSignatureError):
        open_envelope(reattributed, keys=ba_keys, directory=Directory(SE_CARD), history=History(), now=NOW)


def test_step15_body_schema(samples: dict[str, Any]) -> None:
    bad = {**samples["handover_accepted"], "unexpected": True}
    data = sealed_handover(samples, msg_type="handover_accepted", body=bad, validate=False)
    with pytest.raises(SchemaError) as info:
        open_as_iq(data)
    assert info.value.code == "malformed" and "unexpected" in info.value.errors


def test_step16_chain(samples: dict[str, Any]) -> None:
    history = History()
    first = open_as_iq(sealed_handover(samples), history=history)
    history.accept(SE.node_id, first.header.id, THREAD, first.message_hash)
    with pytest.raises(ChainError):
        open_as_iq(sealed_handover(samples), history=history)
    second = open_as_iq(sealed_handover(samples, prev=first.message_hash), history=history)
    assert second.prev == first.message_hash
    with pytest.raises(ChainError):
        open_as_iq(sealed_handover(samples, prev=first.message_hash))
    opened = open_as_iq(sealed_handover(samples, prev=first.message_hash), check_chain=False)
    assert opened.prev == first.message_hash


def test_errors_carry_stable_codes(samples: dict[str, Any]) -> None:
    with pytest.raises(ProtocolError) as info:
        open_as_iq(sealed_handover(samples), now=NOW + timedelta(days=31))
    assert info.value.code == "expired"


def test_rotation_overlap_accepts_old_and_new_keys(samples: dict[str, Any]) -> None:
    new_keys = keys_for("se.gi-goteborg", "#2")
    new_card = card_for(new_keys, previous=SE)
    view = PartnerView.from_cards([SE_CARD, new_card])
    directory = Directory()
    directory.views = {SE.node_id: view}
    assert open_as_iq(sealed_handover(samples), directory=directory).skid == SE.skid
    assert open_as_iq(sealed_handover(samples, keys=new_keys), directory=directory).skid == new_keys.skid
    with pytest.raises(MalformedError):
        PartnerView.from_cards([SE_CARD, IQ_CARD])
    with pytest.raises(MalformedError):
        PartnerView.from_cards([])
