"""Strict parsing, the two canonicalisation paths, and base64url."""

from __future__ import annotations

import contextlib
import json

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.canonical import (
    MAX_DEPTH,
    b64decode,
    b64encode,
    canonical_bytes,
    fast_path_applies,
    loads_canonical,
    reference_canonical_bytes,
    strict_loads,
)
from protocol.errors import MalformedError, NonCanonicalError

SAFE = 2**53 - 1
ascii_keys = st.text(st.characters(max_codepoint=127), max_size=8)
any_keys = st.text(max_size=8)
texts = st.text(max_size=12)
plain_leaves = st.none() | st.booleans() | st.integers(-SAFE, SAFE) | texts
all_leaves = plain_leaves | st.floats(allow_nan=False, allow_infinity=False)


def documents(leaves: st.SearchStrategy[object], keys: st.SearchStrategy[str]) -> st.SearchStrategy[object]:
    return st.recursive(leaves, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner,
                                                                                               max_size=4),
                        max_leaves=25)


@given(documents(plain_leaves, ascii_keys))
@settings(max_examples=300)
def test_fast_path_is_byte_identical_to_rfc8785(doc: object) -> None:
    assert fast_path_applies(doc)
    assert canonical_bytes(doc) == bytes(rfc8785.dumps(doc))


@given(documents(all_leaves, any_keys))
@settings(max_examples=300)
def test_canonical_bytes_always_equal_the_reference(doc: object) -> None:
    assert canonical_bytes(doc) == reference_canonical_bytes(doc)


@given(documents(plain_leaves | st.floats(-1e15, 1e15), any_keys))
@settings(max_examples=200)
def test_canonical_bytes_parse_back_as_canonical(doc: object) -> None:
    data = canonical_bytes(doc)
    assert canonical_bytes(loads_canonical(data)) == data


def test_fast_path_refuses_floats_non_ascii_keys_and_big_integers() -> None:
    assert not fast_path_applies({"a": 1.5})
    assert not fast_path_applies({"é": 1})
    assert not fast_path_applies([2**53])
    assert not fast_path_applies({1: "x"})
    assert not fast_path_applies((1, 2))
    assert fast_path_applies({"a": ["é", True, None, -SAFE]})


def test_every_control_character_is_escaped_like_rfc8785() -> None:
    doc = {"s": "".join(chr(c) for c in range(0x20)) + '"\\/\u007f\u2028\U0001f600'}
    assert canonical_bytes(doc) == bytes(rfc8785.dumps(doc))


@pytest.mark.parametrize("value", [[float("nan")], [2**53], {"s": "\ud800"}, {1: 2}, [object()]])
def test_uncanonicalisable_values(value: object) -> None:
    with pytest.raises(NonCanonicalError):
        canonical_bytes(value)


@pytest.mark.parametrize(("text", "reason"), [
    ('{"a":1,"a":2}', "duplicate"),
    ("[NaN]", "NaN"), ("[Infinity]", "Infinity"), ("[-Infinity]", "Infinity"),
    ("[1e400]", "range"),
    ("[9007199254740992]", "safe"), ("[-9007199254740992]", "safe"), ("[" + "9" * 5000 + "]", "safe"),
    ('["\\udc00"]', "surrogate"), ('{"\\ud800":1}', "surrogate"),
    ("[1,]", "JSON"), ("{'a':1}", "JSON"), ("", "JSON"), ('"\t"', "JSON"),
])
def test_strict_loads_refuses(text: str, reason: str) -> None:
    with pytest.raises(MalformedError, match=reason):
        strict_loads(text)


def test_strict_loads_accepts_edge_values() -> None:
    assert strict_loads("[9007199254740991, -9007199254740991]") == [SAFE, -SAFE]
    assert strict_loads('"\\ud83d\\ude00"') == "\U0001f600"
    assert strict_loads('"\\\\ud800"') == "\\ud800"


def test_nesting_limit() -> None:
    assert strict_loads("[" * MAX_DEPTH + "]" * MAX_DEPTH) is not None
    with pytest.raises(MalformedError, match="deep"):
        strict_loads("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1))
    with pytest.raises(MalformedError, match="deep"):
        strict_loads("[" * 200_000 + "]" * 200_000)
    assert strict_loads(json.dumps(["[" * 100])) == ["[" * 100]


def test_invalid_utf8_and_raw_surrogates() -> None:
    with pytest.raises(MalformedError, match="UTF-8"):
        strict_loads(b'"\xff"')
    with pytest.raises(MalformedError, match="surrogate"):
        strict_loads('"\ud800"')


@given(st.binary(max_size=200))
@settings(max_examples=400)
def test_strict_loads_random_bytes_raise_only_malformed(data: bytes) -> None:
    with contextlib.suppress(MalformedError):
        strict_loads(data)


@pytest.mark.parametrize("text", ['{"a": 1}', '{"b":1,"a":2}', "[1.0]", '"\\u00e9"', '{"a":1} '])
def test_loads_canonical_refuses_non_canonical(text: str) -> None:
    with pytest.raises(NonCanonicalError):
        loads_canonical(text.encode())


@given(st.binary(max_size=64))
def test_base64url_round_trip(raw: bytes) -> None:
    text = b64encode(raw)
    assert "=" not in text and "+" not in text and "/" not in text
    assert b64decode(text) == raw


@pytest.mark.parametrize("text", ["A", "AB=", "AB==", "a+bc", "a/bc", "ab c", "AB\n", "AR", "AAB", "é0"])
def test_base64url_refuses_non_canonical_forms(text: str) -> None:
    with pytest.raises(MalformedError):
        b64decode(text)


def test_base64url_length() -> None:
    assert b64decode("AAE", length=2) == b"\0\1"
    with pytest.raises(MalformedError):
        b64decode("AAE", length=3)


@given(documents(plain_leaves, any_keys))
@settings(max_examples=200)
def test_loads_canonical_quick_and_strict_paths_agree(doc: object) -> None:
    data = canonical_bytes(doc)
    assert loads_canonical(data) == strict_loads(data)
    spaced = json.dumps(doc, ensure_ascii=False, indent=1).encode()
    if spaced != data:
        with pytest.raises(NonCanonicalError):
            loads_canonical(spaced)


def test_loads_canonical_key_order_beyond_the_bmp() -> None:
    doc = {"\U0001f600": 1, "\ue000": 2}
    canonical = reference_canonical_bytes(doc)
    assert canonical.index("\U0001f600".encode()) < canonical.index("\ue000".encode())
    assert loads_canonical(canonical) == doc
    code_point_order = json.dumps(doc, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()
    with pytest.raises(NonCanonicalError):
        loads_canonical(code_point_order)


@pytest.mark.parametrize(("data", "error"), [
    (b'{"a":1,"a":1}', MalformedError), (b'["\\ud800"]', MalformedError), (b"[1.5]", type(None)),
    (b"[1.50]", NonCanonicalError), (b"[" * 40 + b"]" * 40, MalformedError),
    (b'"\\u00e9"', NonCanonicalError),
])
def test_loads_canonical_edge_cases(data: bytes, error: type) -> None:
    if error is type(None):
        assert loads_canonical(data) == [1.5]
    else:
        with pytest.raises(error):
            loads_canonical(data)
