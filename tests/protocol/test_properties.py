"""Property tests: round trips, every single-byte change rejected, fuzzing raises only ProtocolError."""

from __future__ import annotations

import contextlib
import copy
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol import (
    NodeCard,
    ProtocolError,
    b64encode,
    canonical_bytes,
    make_consent_record,
    make_receipt,
    make_revocation,
    open_envelope,
    seal,
    sign_consent,
    strict_loads,
    verify_card,
    verify_consent,
    verify_receipt,
    verify_revocation,
)
from protocol.signing import sign_json

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


# --- every signed document a partner sends: any member replaced by any value raises only ProtocolError -------

def _revocation() -> dict[str, Any]:
    return make_revocation(SE, SE.skid, revoked_at=NOW, reason="compromised")


def _card() -> dict[str, Any]:
    return dict(SE_CARD.to_json())


def _receipt() -> dict[str, Any]:
    sealed = seal(keys=SE, recipient=IQ_CARD, msg_type="case_closed", body=CLOSED, thread=THREAD, now=NOW)
    return make_receipt(IQ, open_as_iq(sealed.data), NOW)


def _consent() -> dict[str, Any]:
    return sign_consent(make_consent_record(
        consent_id="c-1", origin="se.gi-goteborg", case_id="case-1", given_at=NOW, valid_until=NOW.replace(year=2027),
        method="written_signature", language="ar", subject={"child": False, "date_of_birth": "1990-01-02"},
        grants=[{"recipient": "iq.cldd-baghdad", "purposes": ["reintegration_support"], "categories": ["identity"]}],
    ), "se.gi-goteborg", SE.signing_key)


SIGNED_DOCUMENTS: dict[str, tuple[Any, Any]] = {
    "revocation": (_revocation, lambda doc: verify_revocation(doc, SE_CARD)),
    "card": (_card, lambda doc: verify_card(NodeCard.from_json(doc), NOW)),
    "receipt": (_receipt, lambda doc: verify_receipt(doc, IQ_CARD)),
    "consent": (_consent, lambda doc: verify_consent(doc, SE.signing_key.verify_key)),
}
CLOSED = {"handover_id": "E4av5ZhRjMT3kWfufcUIGQ", "closed_at": "2026-03-01T10:00:00Z",
          "outcome": {"code": "plan_completed"}}


@given(kind=st.sampled_from(sorted(SIGNED_DOCUMENTS)), member=st.text(max_size=12), value=json_values,
       resign=st.booleans(), pick=st.integers(0, 20))
@settings(max_examples=400, deadline=None, suppress_health_check=FIXTURES)
def test_fuzz_signed_documents_raise_only_protocol_errors(kind: str, member: str, value: object, resign: bool,
                                                          pick: int) -> None:
    make, verify = SIGNED_DOCUMENTS[kind]
    doc = make()
    verify(copy.deepcopy(doc))  # the document as made verifies
    members = sorted(doc)
    name = members[pick] if pick < len(members) else member
    if doc.get(name) == value:
        return
    doc[name] = value
    if resign and name != "signatures":  # signed again by the one who signed it: only the checks remain
        signer = IQ if kind == "receipt" else SE
        unsigned = {k: v for k, v in doc.items() if k != "signatures"}
        with contextlib.suppress(ProtocolError):  # (no canonical form: sent as it is)
            doc = sign_json(unsigned, signer.node_id, signer.signing_key)
    try:
        verify(doc)
    except ProtocolError:
        return
    assert resign, f"a {kind} changed in {name!r} and not signed again was accepted"
