"""Strict JSON in, RFC 8785 canonical JSON out, and the one base64url codec.

Parsing refuses what a lenient parser would guess at: duplicate object keys, NaN/Infinity, numbers out of
range, integers outside the I-JSON safe range, lone surrogates, and nesting deeper than ``MAX_DEPTH``.

Canonicalisation has two paths that produce identical bytes. The pure-Python ``rfc8785`` package is the
reference; it is slow (about 320 µs on a 6 KB document). For the documents this protocol signs (ASCII keys,
no floats, integers inside the safe range) RFC 8785 coincides with ``json.dumps(sort_keys=True,
ensure_ascii=False, separators=(",", ":"))``: key order by UTF-16 code units equals code-point order for ASCII
keys, integers print identically, and both escape exactly ``"``, ``\\`` and U+0000..U+001F (``\\b \\t
\\n \\f \\r`` short, the rest as lowercase ``\\u00xx``). A cheap walk decides which path to take; the
property tests in ``tests/protocol/test_canonical.py`` check the two paths byte for byte.

Receivers check signed bytes with ``loads_canonical`` (parse, then require the bytes to be the canonical
form of their value). Its quick path parses once in C and checks the few ways a valid text can differ from
the canonical form directly on the bytes, without re-encoding; it decides only when the bytes hold no float
and no character above U+FFFF and are canonical. Everything else goes through the strict parser and a full
re-encoding, which also produce the precise error.
"""

from __future__ import annotations

import binascii
import json
import math
import re
from typing import Any

import rfc8785

from .errors import MalformedError, NonCanonicalError

MAX_DEPTH = 32
MAX_SAFE_INTEGER = 2**53 - 1
# The one fast encoder, built once (as python-canonicaljson does); see fast_path_applies for when it is exact.
# Without the circular-reference bookkeeping a cycle ends in RecursionError, which callers turn into an error.
_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, sort_keys=True, separators=(",", ":"),
                            check_circular=False)


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise MalformedError("duplicate JSON object key")
    return obj


def _constant(name: str) -> Any:
    raise MalformedError(f"not a JSON number: {name}")


def _float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise MalformedError("number out of range")
    return value


def _int(text: str) -> int:
    if len(text) > 20:
        raise MalformedError("integer outside the safe range")
    value = int(text)
    if abs(value) > MAX_SAFE_INTEGER:
        raise MalformedError("integer outside the safe range")
    return value


def _check_strings(value: Any) -> None:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, member in item.items():
                _check_string(key)
                stack.append(member)
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str):
            _check_string(item)


def _check_string(s: str) -> None:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        raise MalformedError("lone surrogate in string") from None


_SURROGATE_ESCAPE_RE = re.compile(r"\\u[dD][89a-fA-F]")


def _too_deep(value: Any, text: str) -> bool:
    """Whether containers nest more than MAX_DEPTH deep (the top-level container has depth 1)."""
    if type(value) not in (dict, list) or text.count("[") + text.count("{") <= MAX_DEPTH:
        return False
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            return True
        for member in item.values() if type(item) is dict else item:
            kind = type(member)
            if kind is dict or kind is list:
                stack.append((member, depth + 1))
    return False


def _loads(data: bytes | str) -> tuple[Any, bool]:
    """Strict parse; also tells whether the value is on the fast canonical path (no floats, ASCII keys)."""
    if isinstance(data, bytes | bytearray):
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedError("not UTF-8") from None
    else:
        text = data
        _check_string(text)
    plain = [True]

    def pairs(members: list[tuple[str, Any]]) -> dict[str, Any]:
        obj = _pairs(members)
        if plain[0] and not "".join(obj).isascii():
            plain[0] = False
        return obj

    def parse_float(number: str) -> float:
        plain[0] = False
        return _float(number)

    # The C decoder guards its own recursion (RecursionError below), so depth is checked after parsing.
    try:
        value = json.loads(text, object_pairs_hook=pairs, parse_constant=_constant, parse_float=parse_float,
                           parse_int=_int)
    except MalformedError:
        raise
    except RecursionError:
        raise MalformedError("JSON nested too deeply") from None
    except json.JSONDecodeError as exc:
        raise MalformedError(f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from None
    except ValueError as exc:
        raise MalformedError(f"not valid JSON: {type(exc).__name__}") from None
    if _too_deep(value, text):
        raise MalformedError("JSON nested too deeply")
    # A lone surrogate can only come from a \\uD800-\\uDFFF escape (raw ones are not valid UTF-8).
    if "\\u" in text and _SURROGATE_ESCAPE_RE.search(text):
        _check_strings(value)
    return value, plain[0]


def strict_loads(data: bytes | str) -> Any:
    """Parse untrusted JSON strictly.

    Args:
        data: UTF-8 bytes or text.
    Returns:
        The parsed value (dicts, lists, str, int, float, bool, None).
    Raises:
        MalformedError: invalid UTF-8 or JSON, duplicate keys, NaN/Infinity, numbers out of range,
            integers outside the I-JSON safe range, lone surrogates, or containers nested deeper than
            ``MAX_DEPTH`` (the top-level container has depth 1).
    """
    return _loads(data)[0]


class _NotPlain(Exception):
    """Internal: the quick path of ``loads_canonical`` cannot decide (the strict path will)."""


def _refuse_float(number: str) -> float:
    raise _NotPlain


def _canonical_int(text: str) -> int:
    # JSON's integer grammar has no leading zeros, so "-0" is the only integer text that is not canonical.
    # Anything longer than the safe range's 16 digits, or outside it, is left to the strict path.
    if len(text) <= 17 and text != "-0":
        value = int(text)
        if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            return value
    raise _NotPlain


# An escape other than the one RFC 8785 writes: it escapes only '"', '\\' (both removed before this is
# applied), the five short forms and the other controls as lowercase \u00xx; everything else is written raw.
_NON_CANONICAL_ESCAPE_RE = re.compile(rb'\\(?:[^"bfnrtu]|u(?!00(?:0[0-7bef]|1[0-9a-f])))')
_UNIFY_BRACKETS = bytes.maketrans(b"{}", b"[]")
_NOT_BRACKETS = bytes(c for c in range(256) if c not in b"[]{}")


def _skeleton(data: bytes) -> bytes | None:
    """``data`` with every string removed, or None if a string holds an escape RFC 8785 would not write.

    ``data`` must be valid JSON. Removing the ``\\\\`` pairs left to right consumes backslashes exactly as
    JSON's escape rules do, so each backslash left starts an escape; once the ``\\"`` ones are gone, every
    ``"`` delimits a string and the pieces between pairs of them are the text outside strings.
    """
    if b"\\" in data:
        data = data.replace(b"\\\\", b"")
        if _NON_CANONICAL_ESCAPE_RE.search(data):
            return None
        data = data.replace(b'\\"', b"")
    return b"".join(data.split(b'"')[::2])


def _nesting_exceeds(skeleton: bytes, limit: int) -> bool:
    """Whether the containers in ``skeleton`` (text outside strings) nest more than ``limit`` deep."""
    brackets = skeleton.translate(_UNIFY_BRACKETS, _NOT_BRACKETS)
    if len(brackets) <= 2 * limit:
        return False
    # Each round removes every container that holds no container: one level of the tree.
    for _ in range(limit):
        brackets = brackets.replace(b"[]", b"")
        if not brackets:
            return False
    return True


def quick_loads_canonical(data: bytes) -> Any:
    """The common case without re-encoding; None when it cannot decide (the strict path will).

    A valid JSON text differs from the RFC 8785 form of its value only by whitespace outside strings, member
    order, duplicate members, string escapes or number forms. Without floats and characters above U+FFFF
    (where UTF-16 and code-point order differ), each is checked directly: members sorted (in the parser's
    object hook), as many members in the text as in the parsed objects (``:`` outside strings), no
    non-canonical escape (see ``_skeleton``; raw control characters are refused by the parser), integers
    other than ``-0`` (JSON allows no leading zeros), and no whitespace outside strings.
    """
    # Lead bytes F0-F4 start the 4-byte UTF-8 sequences (characters above U+FFFF): only with such characters
    # can UTF-16 and code-point key order differ.
    if not data.isascii() and (
        b"\xf0" in data or b"\xf1" in data or b"\xf2" in data or b"\xf3" in data or b"\xf4" in data
    ):
        return None
    members = 0

    def sorted_members(obj: dict[str, Any]) -> dict[str, Any]:
        nonlocal members
        size = len(obj)
        members += size
        if size == 2:
            first, second = obj
            if not first < second:
                raise _NotPlain
        elif size > 2:
            keys = list(obj)
            if keys != sorted(keys):
                raise _NotPlain
        return obj

    decoder = json.JSONDecoder(object_hook=sorted_members, parse_float=_refuse_float, parse_int=_canonical_int,
                               parse_constant=_constant)
    try:
        text = data.decode("utf-8")
        value, end = decoder.raw_decode(text)
    except (ValueError, RecursionError, _NotPlain, MalformedError):
        return None
    if end != len(text):
        return None
    skeleton = _skeleton(data)
    if (
        skeleton is None
        or b" " in skeleton or b"\n" in skeleton or b"\r" in skeleton or b"\t" in skeleton
        or skeleton.count(b":") != members
        or _nesting_exceeds(skeleton, MAX_DEPTH)
    ):
        return None
    return value


def loads_canonical(data: bytes) -> Any:
    """Parse signed bytes strictly and require them to be exactly the RFC 8785 form of their value.

    Args:
        data: UTF-8 bytes received.
    Returns:
        The parsed value.
    Raises:
        MalformedError: as ``strict_loads``.
        NonCanonicalError: valid JSON, but not in canonical form (whitespace, key order, escapes, number
            form).
    """
    quick = quick_loads_canonical(data)
    if quick is not None:
        return quick
    value, plain = _loads(data)
    if plain:
        try:
            encoded = _ENCODER.encode(value).encode("utf-8")
        except (ValueError, UnicodeEncodeError):
            raise NonCanonicalError("cannot canonicalise") from None
    else:
        encoded = reference_canonical_bytes(value)
    if encoded != data:
        raise NonCanonicalError("not in canonical form")
    return value


def canonical_bytes(value: Any) -> bytes:
    """The RFC 8785 (JCS) canonical encoding of ``value``.

    Raises:
        NonCanonicalError: the value cannot be canonicalised (unsafe integer, NaN, non-string key, lone
            surrogate).
    """
    if fast_path_applies(value):
        try:
            return _ENCODER.encode(value).encode("utf-8")
        except UnicodeEncodeError:
            raise NonCanonicalError("cannot canonicalise: lone surrogate") from None
        except (ValueError, RecursionError) as exc:
            raise NonCanonicalError(f"cannot canonicalise: {type(exc).__name__}") from None
    return reference_canonical_bytes(value)



_MAX_VISITS = 500_000


def fast_path_applies(value: Any) -> bool:
    """Whether ``json.dumps`` (sorted, compact, UTF-8) is byte-identical to RFC 8785 for ``value``.

    True when every object key is an ASCII string, and every leaf is a str, a bool, None or an int inside
    the I-JSON safe range (no floats, no other types).
    """
    stack = [value]
    budget = _MAX_VISITS  # a self-referencing structure would loop forever; the reference path refuses it
    while stack:
        budget -= 1
        if budget < 0:
            return False
        item = stack.pop()
        kind = type(item)
        # Strings, the commonest leaves, are skipped where they are met instead of going through the stack.
        if kind is dict:
            for key, member in item.items():
                if type(key) is not str or not key.isascii():
                    return False
                if type(member) is not str:
                    stack.append(member)
        elif kind is list:
            for member in item:
                if type(member) is not str:
                    stack.append(member)
        elif kind is int:
            if not -MAX_SAFE_INTEGER <= item <= MAX_SAFE_INTEGER:
                return False
        elif kind is not bool and item is not None and kind is not str:
            return False
    return True


def reference_canonical_bytes(value: Any) -> bytes:
    """RFC 8785 canonical bytes from the reference implementation only (no fast path).

    Raises:
        NonCanonicalError: as ``canonical_bytes``.
    """
    try:
        return bytes(rfc8785.dumps(value))
    except rfc8785.CanonicalizationError as exc:
        raise NonCanonicalError(f"cannot canonicalise: {type(exc).__name__}") from None
    except (TypeError, ValueError, RecursionError) as exc:
        raise NonCanonicalError(f"cannot canonicalise: {type(exc).__name__}") from None


# For an encoding whose length is 2 or 3 modulo 4, the low 4 or 2 bits of the last character are unused.
_UNUSED_BITS_MASK = {2: 0x0F, 3: 0x03}
_B64_VALUE = {c: i for i, c in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")}


def b64encode(data: bytes) -> str:
    """base64url (RFC 4648 section 5) without ``=`` padding: the protocol's only binary-to-text encoding."""
    return b64encode_ascii(data).decode("ascii")


def b64encode_ascii(data: bytes) -> bytes:
    """``b64encode`` as ASCII bytes, to splice a long value into canonical bytes without a detour via str."""
    standard = binascii.b2a_base64(data, newline=False).rstrip(b"=")
    # Two bytes.replace calls run several times faster than bytes.translate here.
    return standard.replace(b"+", b"-").replace(b"/", b"_")


def b64decode(text: str, *, length: int | None = None) -> bytes:
    """Decode strict base64url without padding.

    Args:
        text: the encoded string; only ``A-Z a-z 0-9 - _``, no padding, no whitespace, and the unused low
            bits of the last character must be zero (so every byte string has exactly one encoding).
        length: if given, the exact number of decoded bytes required.
    Returns:
        The decoded bytes.
    Raises:
        MalformedError: any deviation from the above.
    """
    if not isinstance(text, str) or len(text) % 4 == 1 or "+" in text or "/" in text or "=" in text:
        raise MalformedError("not unpadded base64url")
    mask = _UNUSED_BITS_MASK.get(len(text) % 4)
    if mask is not None and _B64_VALUE.get(text[-1], 0) & mask:
        raise MalformedError("non-canonical base64url (unused bits set)")
    try:
        # a2b_base64 takes ASCII text as is (and refuses other text with ValueError).
        standard = (text + "=" * (-len(text) % 4)).replace("-", "+").replace("_", "/")
        raw = binascii.a2b_base64(standard, strict_mode=True)
    except (binascii.Error, ValueError):
        raise MalformedError("not unpadded base64url") from None
    if length is not None and len(raw) != length:
        raise MalformedError(f"expected {length} bytes")
    return raw
