"""Property tests: round trips, every single-byte change rejected, fuzzing raises only ProtocolError."""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol import ProtocolError, b64encode, canonical_bytes, open_envelope, seal, strict_loads

from .conftest import NOW, THREAD, Directory, History, card_for, keys_for

SE, IQ = keys_for("se.gi-goteborg"), keys_for("iq.cldd-baghdad")
SE_CARD, IQ_CARD = card_for(SE), card_for(IQ)
FIXTURES = [HealthCheck.function_scoped_fixture]

free_text = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1,
                    max_size=400).filter(lambda s: not s.isspace())


def open_as_iq(data: bytes) -> Any:
    return open_envelope(data, keys=IQ, directory=Directory(SE_CARD), history=History(), now=NOW)


def must_reject(data: bytes) -> None:
    try:
        open_as_iq(data)
    except ProtocolError:
        return
    raise AssertionError("a modified envelope was accepted")


@given(situation=free_text, wishes=free_text, experience=free_text, notes=st.lists(free_text, max_size=5))
@settings(max_examples=40, deadline=None, suppress_health_check=FIXTURES)
def test_open_seal_round_trip_for_generated_summaries(samples: dict[str, Any], situation: str, wishes: str,
                                                      experience: str, notes: list[str]) -> None:
    body = copy.deepcopy(samples["handover"])
    body["summary"]["family"]["situation"] = situation
    body["summary"]["wishes"]["text"] = wishes
    body["summary"]["work"]["experience"] = experience
    body["requested_support"] = [{"kind": "documents", "note": n} for n in notes]
    sealed = seal(keys=SE, recipient=IQ_CARD, msg_type="handover", body=body, thread=THREAD, now=NOW)
    assert open_as_iq(sealed.data).body == body


def test_every_single_byte_change_of_a_small_envelope_is_rejected(samples: dict[str, Any]) -> None:
    data = seal(keys=SE, recipient=IQ_CARD, msg_type="case_closed", body=samples["case_closed"],
                thread=THREAD, now=NOW).data
    for index in range(len(data)):
        for replacement in {data[index] ^ 0x01, data[index] ^ 0x20, ord('"')} - {data[index]}:
            must_reject(data[:index] + bytes([replacement]) + data[index + 1 :])


@given(index=st.integers(min_value=0), replacement=st.integers(0, 255))
@settings(max_examples=300, deadline=None, suppress_health_check=FIXTURES)
def test_random_byte_change_of_a_handover_is_rejected(samples: dict[str, Any], index: int,
                                                       replacement: int) -> None:
    data = _handover(samples)
    index %= len(data)
    if data[index] != replacement:
        must_reject(data[:index] + bytes([replacement]) + data[index + 1 :])


_CACHE: dict[str, bytes] = {}


def _handover(samples: dict[str, Any]) -> bytes:
    if "handover" not in _CACHE:
        _CACHE["handover"] = seal(keys=SE, recipient=IQ_CARD, msg_type="handover", body=samples["handover"],
                                  thread=THREAD, now=NOW).data
    return _CACHE["handover"]


@given(st.binary(max_size=2000))
@settings(max_examples=300, deadline=None)
def test_fuzz_random_bytes_raise_only_protocol_errors(data: bytes) -> None:
    must_reject(data)


@given(cut=st.integers(min_value=0), length=st.integers(0, 40), insert=st.binary(max_size=40))
@settings(max_examples=300, deadline=None, suppress_health_check=FIXTURES)
def test_fuzz_mutated_envelopes_raise_only_protocol_errors(samples: dict[str, Any], cut: int, length: int,
                                                           insert: bytes) -> None:
    data = _handover(samples)
    cut %= len(data)
    mutated = data[:cut] + insert + data[cut + length :]
    if mutated != data:
        must_reject(mutated)


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner,
                                                                                 max_size=6),
                    max_leaves=30))
@settings(max_examples=300, deadline=None)
def test_fuzz_json_values_raise_only_protocol_errors(value: object) -> None:
    try:
        data = json.dumps(value).encode()
    except (ValueError, UnicodeEncodeError):
        return
    must_reject(data)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=10,
)
FIELDS = ["v", "id", "type", "from", "to", "created", "expires", "thread", "skid", "ekid", "rkid", "nonce",
          "ct", "sig"]


@given(field=st.sampled_from(FIELDS), value=json_values, resign=st.booleans())
@settings(max_examples=300, deadline=None, suppress_health_check=FIXTURES)
def test_fuzz_envelope_fields_with_any_json_value(samples: dict[str, Any], field: str, value: object,
                                                  resign: bool) -> None:
    doc = strict_loads(_handover(samples))
    if doc[field] == value or (field == "sig" and resign):
        return
    doc[field] = value
    if resign:
        unsigned = {k: v for k, v in doc.items() if k != "sig"}
        doc["sig"] = b64encode(SE.signing_key.sign(canonical_bytes(unsigned)).signature)
    must_reject(canonical_bytes(doc))
