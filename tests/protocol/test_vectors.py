"""The test vectors: one parametrised test over every vector file, plus a fixed-key known-answer test."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from protocol import NodeKeys, b64encode, message_hash, seal
from protocol.messages import DECLINE_REASONS, enumerations
from protocol.times import parse_time
from protocol.vectors import generate
from protocol.vectors.runner import compute, load_files, party_card, recorded

VECTORS = [(name, index, vector, doc["kind"]) for name, doc in load_files().items()
           for index, vector in enumerate(doc["vectors"])]


@pytest.mark.parametrize(("kind", "vector"), [(kind, vector) for _, _, vector, kind in VECTORS],
                         ids=[f"{name}[{index}] {vec['description']}" for name, index, vec, _ in VECTORS])
def test_vector(kind: str, vector: dict[str, Any]) -> None:
    assert compute(kind, vector["input"]) == recorded(vector)


def test_every_file_is_present_and_negative_vectors_cover_the_issue() -> None:
    files = load_files()
    assert set(generate.GENERATED) | {"rfc8032.json", "rfc8785.json"} == set(files)
    errors = {v["error"] for v in files["open.json"]["vectors"] if "error" in v}
    assert errors >= {
        "bad_signature", "decryption_failed", "header_mismatch", "wrong_recipient", "expired",
        "not_yet_valid",
        "replayed", "unsupported_version", "broken_chain", "outside_consent", "non_canonical", "malformed",
        "oversized", "unknown_sender", "unknown_key", "revoked_key",
    }
    sealed_types = {v["input"]["type"] for v in files["seal.json"]["vectors"]}
    assert len(sealed_types) == 11


def test_the_value_sets_are_the_ones_the_schemas_check() -> None:
    """Every listed value passes the field it names and nothing else does (SPEC.md 8.2): the file is not a copy
    that could drift from the code."""
    sets = {v["input"]["set"]: v["expected"]["values"] for v in load_files()["value_sets.json"]["vectors"]
            if "expected" in v}
    assert len(sets["Country"]) == 250 and "XK" in sets["Country"] and "SE" in sets["Country"]
    assert "SEK" in sets["Currency"] and "XXX" not in sets["Currency"]
    assert sets["handover.summary.family.household[].relation"] == [
        "spouse_or_partner", "child", "parent", "sibling", "other_relative", "other"]
    assert sets["handover_declined.reason_code"] == list(DECLINE_REASONS)
    assert set(sets) == set(enumerations())


def test_generated_files_are_up_to_date() -> None:
    assert generate.main(["--check"]) == 0


def test_known_answer_with_fixed_keys() -> None:
    """Hard-coded answers so that another implementation can compare without running the generator."""
    sender = NodeKeys.from_seed("se.gi-goteborg", bytes(range(32)))
    assert (sender.skid, sender.ekid) == ("6kHXJFAULfmzWva9u52Bri", "RrWWWmJZGgMEZWKh9UGGI2")
    assert sender.fingerprint() == "43282 96634 83026 38599 22864 01611 77992 38635 26609 95654 62473 80458"
    card = party_card({"node_id": "iq.cldd-baghdad", "seed": b64encode(bytes(range(32, 64)))})
    assert card.ekid == "DiyvxFtnuhzI0WgurnsQrB"
    body = {"handover_id": "E4av5ZhRjMT3kWfufcUIGQ", "closed_at": "2026-03-02T10:00:00Z",
            "outcome": {"code": "plan_completed"}}
    sealed = seal(keys=sender, recipient=card, msg_type="case_closed", body=body, thread="T" * 22,
                  now=parse_time("2026-03-02T10:00:00Z"), message_id="M" * 22, nonce=bytes(24))
    assert sealed.inner_bytes.startswith(
        b'{"agreement":null,"body":{"closed_at":"2026-03-02T10:00:00Z","handover_id":"E4av5ZhRjMT3kWfufcUIGQ",'
        b'"outcome":{"code":"plan_completed"}},"header":{"created":"2026-03-02T10:00:00Z",')
    assert sealed.message_hash == "OGsEjPkaDwjEae-h4pV2yw5PYT_dUckRpPMaNuyV63g"
    assert message_hash(sealed.inner_bytes) == sealed.message_hash
    assert b64encode(hashlib.sha256(sealed.data).digest()) == "rjmQhdALbpj7gu9xyhbiySBlCeB854_woMwzQ3wFB3o"
