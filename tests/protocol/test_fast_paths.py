"""The fast paths agree with the reference ones: every shortcut decides exactly as the slow path would."""

from __future__ import annotations

import contextlib
import dataclasses
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
import rfc8785
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol import canonical_bytes, seal
from protocol.canonical import (
    MAX_DEPTH,
    b64decode,
    b64encode,
    b64encode_ascii,
    fast_path_applies,
    loads_canonical,
    quick_loads_canonical,
    reference_canonical_bytes,
    strict_loads,
)
from protocol.envelope import Envelope, Header, parse_plain_envelope, sig_member
from protocol.errors import MalformedError, NonCanonicalError, ProtocolError
from protocol.times import format_time, parse_time

from .conftest import NOW, THREAD, card_for, keys_for

SE, IQ = keys_for("se.gi-goteborg"), keys_for("iq.cldd-baghdad")
IQ_CARD = card_for(IQ)
SAFE = 2**53 - 1

leaves = (st.none() | st.booleans() | st.integers(-SAFE, SAFE) | st.integers()
          | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=10))
documents = st.recursive(leaves, lambda inner: st.lists(inner, max_size=4)
                         | st.dictionaries(st.text(max_size=6), inner, max_size=4), max_leaves=25)
# Bytes that can turn a canonical text into almost-canonical ones.
NOISE = [b" ", b"\n", b"\t", b"\\", b'"', b",", b":", b"[", b"]", b"{", b"}", b"-", b"0", b"/", b"u", b"\x7f",
         "é".encode(), "\U0001f600".encode()]


def reference_decision(data: bytes) -> object:
    """What loads_canonical must do, from the strict parser and the reference encoder only."""
    try:
        value = strict_loads(data)
    except MalformedError as exc:
        return type(exc)
    try:
        canonical = reference_canonical_bytes(value)
    except NonCanonicalError:
        return NonCanonicalError
    return ("value", value) if canonical == data else NonCanonicalError


def check_agrees(data: bytes) -> None:
    expected = reference_decision(data)
    quick = quick_loads_canonical(data)
    if quick is not None:
        assert expected == ("value", quick)
    try:
        got: object = ("value", loads_canonical(data))
    except ProtocolError as exc:
        got = type(exc)
    assert got == expected


def renderings(doc: object) -> list[bytes]:
    texts = []
    for ensure_ascii in (False, True):
        for sort_keys in (True, False):
            for separators in ((",", ":"), (", ", ": "), (",", ": ")):
                with contextlib.suppress(TypeError, ValueError, UnicodeEncodeError):
                    texts.append(json.dumps(doc, ensure_ascii=ensure_ascii, sort_keys=sort_keys,
                                            separators=separators).encode("utf-8"))
    return texts


@given(documents)
@settings(max_examples=300, deadline=None)
def test_loads_canonical_decides_like_the_reference_on_renderings(doc: object) -> None:
    for data in renderings(doc):
        check_agrees(data)


plain_documents = st.recursive(
    st.none() | st.booleans() | st.integers(-SAFE, SAFE) | st.text(st.characters(max_codepoint=0xFFFF,
                                                                                blacklist_categories=("Cs",))),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text(st.characters(max_codepoint=0xFFFF, blacklist_categories=("Cs",)), max_size=6),
                      inner, max_size=4),
    max_leaves=25)


@given(plain_documents)
@settings(max_examples=300, deadline=None)
def test_quick_path_accepts_canonical_bytes_with_any_escapes(doc: object) -> None:
    data = canonical_bytes(doc)
    assert data == bytes(rfc8785.dumps(doc))
    assert quick_loads_canonical(data) == doc


@given(documents, st.integers(min_value=0), st.sampled_from(NOISE), st.booleans())
@settings(max_examples=600, deadline=None)
def test_loads_canonical_decides_like_the_reference_on_near_misses(doc: object, at: int, noise: bytes,
                                                                   replace: bool) -> None:
    try:
        data = canonical_bytes(doc)
    except ProtocolError:
        return
    at %= len(data) + 1
    check_agrees(data[:at] + noise + data[at + replace :])


@pytest.mark.parametrize("text", [
    '["\\/"]', '["\\u0041"]', '["\\u001F"]', '["\\u001f"]', '["\\u0008"]', '["\\b"]', '["\\\\"]', '["\\""]',
    '["\\\\u0041"]', '["a\\\\\\\\"]', '["\\\\\\"x"]', '["\\u00e9"]', '["\\ud83d\\ude00"]', '["\\ud800"]',
    '{"a":"\\"","b":1}', '{"a\\"":1,"a":2}', '[-0]', '[0,-1,9007199254740991]', '[9007199254740992]',
    '[1.0]', '{"b":1,"a":2}', '{"a":1,"a":1}', '{"a":{"a":1},"a":2}', '[ ]', '{"a" :1}', '"x" ',
    '["x","y"]', '[1,"]",[2]]', '{"":0}', 'null', '"\\t"', '"\t"', '[true,false,null]',
])
def test_loads_canonical_escapes_numbers_and_members(text: str) -> None:
    check_agrees(text.encode("utf-8"))


@pytest.mark.parametrize("depth", [MAX_DEPTH - 1, MAX_DEPTH, MAX_DEPTH + 1, MAX_DEPTH + 5])
def test_quick_path_nesting_limit(depth: int) -> None:
    # Wide siblings keep the container count above the limit, and brackets in strings must not count.
    deep: object = ["[[[[", {"k": "}}}"}]
    for level in range(depth - 2):  # the innermost list and its object are two levels
        deep = [deep, [[level]], "]]"]
    data = canonical_bytes(deep)
    check_agrees(data)
    if depth <= MAX_DEPTH:
        assert quick_loads_canonical(data) == deep
    else:
        assert quick_loads_canonical(data) is None
        with pytest.raises(MalformedError, match="deep"):
            loads_canonical(data)


class _Key(str):
    pass


def test_fast_path_applies_checks_every_leaf() -> None:
    assert fast_path_applies({"a": ["x", ["y", {"b": [1, True, None, "z"]}]]})
    assert not fast_path_applies({"a": ["x", ["y", {"b": [1.0]}]]})
    assert not fast_path_applies(["x", [2**60]])
    assert not fast_path_applies({_Key("a"): 1})
    assert not fast_path_applies([_Key("a")])
    assert not fast_path_applies({"a": ("x",)})
    assert fast_path_applies("plain") and fast_path_applies(None) and fast_path_applies(-SAFE)
    assert canonical_bytes({"a": [1.5, "é"]}) == bytes(rfc8785.dumps({"a": [1.5, "é"]}))


@given(st.binary(max_size=100))
def test_base64url_bytes_and_text_agree(raw: bytes) -> None:
    assert b64encode_ascii(raw) == b64encode(raw).encode("ascii")
    assert b64decode(b64encode(raw)) == raw


ids = st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", min_size=22, max_size=22)
node_ids = st.from_regex(r"[a-z]{2}\.[a-z0-9][a-z0-9-]{1,20}", fullmatch=True)


@st.composite
def envelopes(draw: st.DrawFn) -> Envelope:
    created = NOW + timedelta(seconds=draw(st.integers(-10**8, 10**8)))
    header = Header(id=draw(ids), type=draw(st.from_regex(r"[a-z][a-z_]{0,31}", fullmatch=True)),
                    sender=draw(node_ids), recipient=draw(node_ids), created=created,
                    expires=created + timedelta(seconds=draw(st.integers(1, 90 * 86400))), thread=draw(ids))
    return Envelope(header, draw(ids), draw(ids), draw(ids), draw(st.binary(min_size=24, max_size=24)),
                    draw(st.binary(max_size=300)), draw(st.binary(min_size=64, max_size=64)))


@given(envelopes())
@settings(max_examples=200, deadline=None)
def test_envelope_bytes_are_spliced_canonically(envelope: Envelope) -> None:
    head, tail = envelope.canonical_parts()
    assert head + tail == canonical_bytes(envelope.unsigned_json())
    data = head + sig_member(envelope.sig) + tail
    assert data == canonical_bytes(envelope.to_json())
    plain = parse_plain_envelope(data)
    assert plain is not None
    assert plain == (loads_canonical(data), Envelope.from_json(loads_canonical(data)))


def generic_outcome(data: bytes) -> object:
    try:
        doc = loads_canonical(data)
        return ("ok", doc, Envelope.from_json(doc))
    except ProtocolError as exc:
        return ("error", type(exc), str(exc))


def plain_outcome(data: bytes) -> object:
    try:
        plain = parse_plain_envelope(data)
    except ProtocolError as exc:
        return ("error", type(exc), str(exc))
    return None if plain is None else ("ok", *plain)


def sealed_envelope() -> bytes:
    body = {"outcome": "plan_completed", "reason": "x"}
    return seal(keys=SE, recipient=IQ_CARD, msg_type="case_closed", body=body, thread=THREAD, now=NOW,
                validate=False).data


ENVELOPE = sealed_envelope()


@given(st.integers(min_value=0), st.integers(0, 8), st.sampled_from([*NOISE, b"", b'"v":2', b"\x00", b"="]))
@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_plain_envelope_path_decides_like_the_general_path(at: int, cut: int, insert: bytes) -> None:
    at %= len(ENVELOPE) + 1
    data = ENVELOPE[:at] + insert + ENVELOPE[at + cut :]
    plain = plain_outcome(data)
    if plain is not None:
        assert plain == generic_outcome(data)


@pytest.mark.parametrize(("field", "value"), [
    ("v", 2), ("v", "1"), ("id", "short"), ("ct", "AB="), ("ct", "A"), ("sig", "AA"), ("from", "Bad"),
    ("created", "2026-13-01T00:00:00Z"), ("type", "handover\u00e9"), ("nonce", "é"), ("to", "a\tb"),
])
def test_plain_envelope_path_on_bad_fields(field: str, value: object) -> None:
    doc = strict_loads(ENVELOPE)
    doc[field] = value
    data = canonical_bytes(doc)
    plain = plain_outcome(data)
    assert plain is None or plain == generic_outcome(data)
    assert generic_outcome(data)[0] == "error"


def test_sealed_envelopes_take_the_plain_path() -> None:
    plain = parse_plain_envelope(ENVELOPE)
    assert plain is not None
    assert plain == (loads_canonical(ENVELOPE), Envelope.from_json(loads_canonical(ENVELOPE)))
    assert parse_plain_envelope(json.dumps(strict_loads(ENVELOPE), indent=1).encode()) is None


def test_header_time_texts_follow_replace() -> None:
    header = Envelope.from_json(strict_loads(ENVELOPE)).header
    assert header.to_json()["created"] == strict_loads(ENVELOPE)["created"]
    later = dataclasses.replace(header, created=header.created + timedelta(seconds=1))
    assert later.to_json()["created"] != header.to_json()["created"]


def test_key_ids_are_cached_per_instance() -> None:
    keys = keys_for("se.gi-goteborg", "other")
    assert keys.skid != SE.skid and keys.ekid != SE.ekid
    card = card_for(keys)
    assert (card.skid, card.ekid) == (keys.skid, keys.ekid)
    assert dataclasses.replace(card, signing_key=SE.signing_public).skid == SE.skid


@given(st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
       st.integers(-14 * 60, 14 * 60))
def test_format_time_matches_strftime(moment: datetime, offset_minutes: int) -> None:
    aware = moment.replace(tzinfo=timezone(timedelta(minutes=offset_minutes)))
    utc = aware.astimezone(UTC)
    assert format_time(aware) == utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    if utc.year >= 1000:
        assert parse_time(format_time(aware)) == utc.replace(microsecond=0)


def test_self_referencing_structure_is_refused_not_looped() -> None:
    import pytest

    from protocol.canonical import canonical_bytes
    from protocol.errors import NonCanonicalError

    loop: dict[str, object] = {"a": []}
    loop["a"].append(loop)  # type: ignore[attr-defined]
    with pytest.raises(NonCanonicalError):
        canonical_bytes(loop)
