"""Strict JSON in, RFC 8785 canonical JSON out.

Parsing refuses what a lenient parser would guess at: duplicate object keys, NaN/Infinity, numbers out of
range, integers outside the I-JSON safe range, lone surrogates, and nesting deeper than ``MAX_DEPTH``.
"""

from __future__ import annotations

import json
import math
from typing import Any

import rfc8785

from .errors import MalformedError, NonCanonicalError

MAX_DEPTH = 32
MAX_SAFE_INTEGER = 2**53 - 1


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    if len(keys) != len(set(keys)):
        raise MalformedError("duplicate JSON object key")
    return dict(pairs)


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


def _check_depth_and_strings(value: Any, depth: int = 0) -> None:
    if depth > MAX_DEPTH:
        raise MalformedError("JSON nested too deeply")
    if isinstance(value, dict):
        for k, v in value.items():
            _check_string(k)
            _check_depth_and_strings(v, depth + 1)
    elif isinstance(value, list):
        for v in value:
            _check_depth_and_strings(v, depth + 1)
    elif isinstance(value, str):
        _check_string(value)


def _check_string(s: str) -> None:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        raise MalformedError("lone surrogate in string") from None


def _bracket_depth_ok(text: str) -> bool:
    depth = 0
    in_string = False
    escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > MAX_DEPTH + 1:
                return False
        elif ch in "]}":
            depth -= 1
    return True


def strict_loads(data: bytes | str) -> Any:
    """Parse untrusted JSON strictly.

    Args:
        data: UTF-8 bytes or text.
    Returns:
        The parsed value (dicts, lists, str, int, float, bool, None).
    Raises:
        MalformedError: invalid UTF-8 or JSON, duplicate keys, NaN/Infinity, unsafe integers, lone
            surrogates, or nesting deeper than ``MAX_DEPTH``.
    """
    if isinstance(data, bytes | bytearray):
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedError("not UTF-8") from None
    else:
        text = data
    if not _bracket_depth_ok(text):
        raise MalformedError("JSON nested too deeply")
    try:
        value = json.loads(text, object_pairs_hook=_pairs, parse_constant=_constant, parse_float=_float,
                           parse_int=_int)
    except MalformedError:
        raise
    except (ValueError, RecursionError) as exc:
        raise MalformedError(f"not valid JSON: {type(exc).__name__}") from None
    _check_depth_and_strings(value)
    return value


def canonical_bytes(value: Any) -> bytes:
    """The RFC 8785 (JCS) canonical encoding of ``value``.

    Raises:
        NonCanonicalError: the value cannot be canonicalised (unsafe integer, NaN, non-string key, lone
            surrogate).
    """
    try:
        return bytes(rfc8785.dumps(value))
    except rfc8785.CanonicalizationError as exc:
        raise NonCanonicalError(f"cannot canonicalise: {type(exc).__name__}") from None
    except (TypeError, ValueError) as exc:
        raise NonCanonicalError(f"cannot canonicalise: {type(exc).__name__}") from None
