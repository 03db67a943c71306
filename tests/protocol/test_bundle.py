"""Bundles: round trips, a fixed-key known answer, every step of the verification order, tampering."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from typing import Any

import nacl.public
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import (
    BUNDLE,
    RECEIPTS,
    BoxCache,
    MalformedError,
    NodeKeys,
    ProtocolError,
    b64decode,
    b64encode,
    canonical_bytes,
    open_bundle,
    seal_bundle,
    seal_receipts,
    strict_loads,
)
from protocol import bundle as bundle_module
from protocol.bundle import BUNDLE_OVERHEAD, MAX_BUNDLE_ITEMS, envelopes_that_fit

from .conftest import NOW, Directory, card_for, keys_for

SE, BA, IQ = keys_for("se.gi-goteborg"), keys_for("ba.cldd-sarajevo"), keys_for("iq.cldd-baghdad")
SE_CARD, BA_CARD, IQ_CARD = card_for(SE), card_for(BA), card_for(IQ)
ENVELOPES = [b'{"an":"envelope"}', b"\x00\x01binary\xff", b""]
ZERO_NONCE = bytes(24)


class CountingBoxes(BoxCache):
    """A BoxCache that counts how often a shared key is asked for (i.e. decryption was attempted)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def box(self, private_key: nacl.public.PrivateKey, peer_public: bytes) -> nacl.public.Box:
        self.calls += 1
        return super().box(private_key, peer_public)


def sealed(**kwargs: Any) -> bytes:
    params: dict[str, Any] = {"keys": SE, "recipient": BA_CARD, "envelopes": ENVELOPES, "now": NOW}
    params.update(kwargs)
    return seal_bundle(**params)


def open_as_ba(data: bytes, **kwargs: Any) -> Any:
    params: dict[str, Any] = {"keys": BA, "directory": Directory(SE_CARD), "now": NOW}
    params.update(kwargs)
    return open_bundle(data, **params)


def refused(data: bytes, code: str, **kwargs: Any) -> ProtocolError:
    with pytest.raises(ProtocolError) as info:
        open_as_ba(data, **kwargs)
    assert info.value.code == code, info.value.message
    return info.value


def resigned(doc: dict[str, Any], keys: NodeKeys = SE) -> bytes:
    """The bundle ``doc`` signed again (a sender that signs what it got wrong)."""
    unsigned = {k: v for k, v in doc.items() if k != "sig"}
    signature = keys.signing_key.sign(canonical_bytes(unsigned)).signature
    return canonical_bytes({**unsigned, "sig": b64encode(signature)})


def test_round_trip_of_a_bundle_keeps_the_envelopes_in_order() -> None:
    opened = open_as_ba(sealed(now=NOW + timedelta(microseconds=500)))
    assert opened.kind == BUNDLE and opened.sender == "se.gi-goteborg" and opened.recipient == "ba.cldd-sarajevo"
    assert opened.envelopes == tuple(ENVELOPES) and opened.receipts == () and opened.count == 3
    assert opened.created_at == NOW and opened.skid == SE.skid


def test_round_trip_of_a_receipts_bundle() -> None:
    receipts = [{"message_id": "M" * 22, "n": 1}, {"message_id": "N" * 22, "nested": {"a": ["b"]}}]
    data = seal_receipts(keys=BA, recipient=SE_CARD, receipts=receipts, now=NOW)
    opened = open_bundle(data, keys=SE, directory=Directory(BA_CARD), now=NOW)
    assert opened.kind == RECEIPTS and opened.receipts == tuple(receipts) and opened.envelopes == ()


def test_known_answer_with_fixed_keys_and_nonce() -> None:
    """Deterministic, so that another implementation can compare byte for byte."""
    data = sealed(nonce=ZERO_NONCE)
    doc = strict_loads(data)
    assert canonical_bytes(doc) == data
    assert list(doc) == ["ciphertext", "created_at", "ekid", "from", "nonce", "rkid", "sig", "skid", "to", "type",
                         "v"]
    assert {k: doc[k] for k in ("created_at", "from", "to", "type", "v", "skid", "ekid", "rkid", "nonce")} == {
        "created_at": "2026-03-02T10:00:00Z", "from": "se.gi-goteborg", "to": "ba.cldd-sarajevo",
        "type": "ccm_bundle", "v": 1, "skid": SE.skid, "ekid": SE.ekid, "rkid": BA.ekid, "nonce": "A" * 32}
    plaintext = nacl.public.Box(BA.encryption_key, nacl.public.PublicKey(SE.encryption_public)).decrypt(
        b64decode(doc["ciphertext"]), ZERO_NONCE)
    assert plaintext == b'{"items":["eyJhbiI6ImVudmVsb3BlIn0","AAFiaW5hcnn_",""]}'
    signature_input = canonical_bytes({k: v for k, v in doc.items() if k != "sig"})
    SE_CARD.verify_key.verify(signature_input, b64decode(doc["sig"]))
    assert b64encode(hashlib.sha256(data).digest()) == "QVe_OyXlGmNJwq2G4eXrOKIG8uvuBXZXMaKLDue06So"


def test_every_single_byte_change_is_refused_whole_before_decryption() -> None:
    data = sealed()
    doc = strict_loads(data)
    ct_start = data.index(b'"ciphertext":"') + len(b'"ciphertext":"')
    sig_start = data.index(b'"sig":"') + len(b'"sig":"')
    parts = {"header": 0, "ciphertext": 0, "signature": 0}
    boxes = CountingBoxes()
    for position in range(len(data)):
        for replacement in {data[position] ^ 0x01, ord("A") if data[position] != ord("A") else ord("B")}:
            changed = data[:position] + bytes([replacement]) + data[position + 1 :]
            with pytest.raises(ProtocolError):
                open_as_ba(changed, boxes=boxes)
        if ct_start <= position < ct_start + len(doc["ciphertext"]):
            parts["ciphertext"] += 1
        elif sig_start <= position < sig_start + len(doc["sig"]):
            parts["signature"] += 1
        else:
            parts["header"] += 1
    assert boxes.calls == 0  # nothing was ever decrypted
    assert parts["ciphertext"] == len(doc["ciphertext"]) > 90 and parts["signature"] == 86 and parts["header"] > 200


def test_a_changed_ciphertext_fails_the_signature_and_a_resigned_one_the_decryption() -> None:
    doc = strict_loads(sealed())
    ct = bytearray(b64decode(doc["ciphertext"]))
    ct[20] ^= 0xFF
    changed = {**doc, "ciphertext": b64encode(bytes(ct))}
    refused(canonical_bytes(changed), "bad_signature")
    refused(resigned(changed), "decryption_failed")


def test_a_bundle_for_another_node_is_refused() -> None:
    data = sealed(recipient=IQ_CARD)
    refused(data, "wrong_recipient")


@pytest.mark.parametrize("directory", [Directory(), Directory(BA_CARD)], ids=["empty", "other-partner"])
def test_an_unknown_sender_is_refused_before_anything_is_decrypted(directory: Directory) -> None:
    doc = strict_loads(sealed())
    garbage = {**doc, "ciphertext": b64encode(b"\x00" * 64)}  # would fail decryption, if it were tried
    boxes = CountingBoxes()
    refused(canonical_bytes(garbage), "unknown_sender", directory=directory, boxes=boxes)
    assert boxes.calls == 0


def test_key_ids_are_checked_against_the_directory_and_our_keys() -> None:
    data = sealed()
    refused(data, "revoked_key", directory=Directory(SE_CARD, revoked=frozenset({SE.skid})))
    impostor = keys_for("se.gi-goteborg", "impostor")
    refused(sealed(keys=impostor), "unknown_key")
    refused(data, "unknown_key", keys=keys_for("ba.cldd-sarajevo", "rotated"))
    assert open_as_ba(data, keys=keys_for("ba.cldd-sarajevo", "rotated"), retired_keys=[BA]).count == 3


def test_a_signature_by_another_key_is_refused() -> None:
    doc = strict_loads(sealed())
    refused(resigned(doc, keys_for("se.gi-goteborg", "impostor")), "bad_signature")


def test_size_and_item_limits() -> None:
    data = sealed()
    refused(data, "oversized", max_bytes=len(data) - 1)
    assert open_as_ba(data, max_bytes=len(data)).count == 3
    refused(data, "oversized", max_items=2)
    with pytest.raises(ProtocolError) as info:
        sealed(envelopes=[b""] * (MAX_BUNDLE_ITEMS + 1))
    assert info.value.code == "oversized"


@pytest.mark.parametrize(("change", "code"), [
    (lambda d: d.replace(b'"v":1}', b'"v":2}'), "unsupported_version"),
    (lambda d: d.replace(b'"v":1}', b'"v":"1"}'), "malformed"),
    (lambda d: d.replace(b'"ccm_bundle"', b'"ccm_bundlx"'), "malformed"),
    (lambda d: d.replace(b'"v":1}', b'"v":1,"x":1}'), "malformed"),
    (lambda d: d.replace(b",", b", ", 1), "non_canonical"),
    (lambda d: json.dumps(json.loads(d), indent=1).encode(), "non_canonical"),
    (lambda d: d[:-1], "malformed"),
    (lambda d: b"[" + d + b"]", "malformed"),
    (lambda d: d.replace(b'"from":"se.gi-goteborg"', b'"from":"Se.gi-goteborg"'), "malformed"),
    (lambda d: d.replace(b'"created_at":"2026-03-02T10:00:00Z"', b'"created_at":"2026-03-02 10:00:00Z"'),
     "malformed"),
], ids=["version", "version-type", "type", "extra-member", "whitespace", "indented", "truncated", "array",
        "node-id", "time-format"])
def test_the_document_is_parsed_strictly(change: Any, code: str) -> None:
    data = sealed()
    changed = change(data)
    assert changed != data
    refused(changed, code)


def test_the_strict_path_agrees_with_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    data = sealed()
    assert bundle_module.parse_plain(data) is not None
    fast = open_as_ba(data)
    monkeypatch.setattr(bundle_module, "parse_plain", lambda _data: None)
    assert open_as_ba(data) == fast
    refused(data.replace(b'"v":1}', b'"v":2}'), "unsupported_version")


def test_a_bundle_from_the_future_is_refused() -> None:
    refused(sealed(now=NOW + timedelta(minutes=6)), "not_yet_valid")
    assert open_as_ba(sealed(now=NOW + timedelta(minutes=5))).count == 3


@pytest.mark.parametrize(("kind", "items"), [
    (BUNDLE, [1]), (BUNDLE, ["not base64!"]), (BUNDLE, [{"a": "b"}]), (RECEIPTS, ["x"]), (RECEIPTS, [[]]),
])
def test_a_signed_bundle_with_items_of_the_wrong_form_is_refused_whole(kind: str, items: list[Any]) -> None:
    data = bundle_module.seal_items(SE, BA_CARD, kind, items, NOW, None, None)
    refused(data, "malformed")


def test_sealing_refuses_a_bad_nonce_and_a_naive_time() -> None:
    with pytest.raises(MalformedError):
        sealed(nonce=b"short")
    with pytest.raises(ValueError, match="naive"):
        sealed(now=NOW.replace(tzinfo=None))


@given(envelopes=st.lists(st.binary(max_size=300), max_size=12),
       receipts=st.lists(st.dictionaries(st.text(max_size=8), st.text(max_size=20), max_size=4), max_size=6))
@settings(max_examples=60, deadline=None)
def test_property_round_trip(envelopes: list[bytes], receipts: list[dict[str, str]]) -> None:
    assert open_as_ba(sealed(envelopes=envelopes)).envelopes == tuple(envelopes)
    data = seal_receipts(keys=BA, recipient=SE_CARD, receipts=receipts, now=NOW)
    assert open_bundle(data, keys=SE, directory=Directory(BA_CARD), now=NOW).receipts == tuple(receipts)


@given(sizes=st.lists(st.integers(min_value=0, max_value=3000), max_size=20),
       max_bytes=st.integers(min_value=1000, max_value=20000))
@settings(max_examples=60, deadline=None)
def test_property_envelopes_that_fit_fill_a_bundle_without_exceeding_it(sizes: list[int], max_bytes: int) -> None:
    count = envelopes_that_fit(sizes, max_bytes)
    envelopes = [b"x" * size for size in sizes]
    assert len(sealed(envelopes=envelopes[:count])) <= max_bytes
    if count < len(sizes):
        assert len(sealed(envelopes=envelopes[: count + 1])) > max_bytes - BUNDLE_OVERHEAD


def test_fuzzed_bundles_raise_only_protocol_errors() -> None:
    data = sealed()
    for cut in range(1, len(data), 7):
        for junk in (data[:cut], data[cut:], data[:cut] + b"\\u0000" + data[cut:]):
            with pytest.raises(ProtocolError):
                open_as_ba(junk)
    with pytest.raises(ProtocolError):
        open_as_ba("é".encode("latin-1"))
