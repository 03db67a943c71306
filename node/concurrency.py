"""Optimistic concurrency: a write carries the version its author read, and a stale write changes nothing.

The version comes either from ``If-Match: "<version>"`` (a stale one answers 412 ``version_conflict``) or from
a ``version`` field in the body (a stale one answers 409 ``conflict``); a write with neither answers 428.
:func:`check_version` compares before anything is changed; the versioned UPDATE that the flush emits
(``WHERE version = :read``) catches a writer that slipped in between, and :func:`flush_versioned` turns that
into the same conflict.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import orm
from sqlalchemy.orm.exc import StaleDataError

from node.errors import Conflict, PreconditionRequired, VersionConflict


@dataclass(frozen=True)
class Expected:
    """The version a writer read; from ``If-Match`` (412 when stale) or from a body field (409)."""

    version: int
    from_header: bool = False

    def conflict(self, what: str, current: int | None = None) -> Conflict:
        now = f" (it is at version {current})" if current is not None else ""
        message = f"The {what} was changed by someone else{now}: read it again and reapply your change."
        return VersionConflict(message) if self.from_header else Conflict(message)


def parse_if_match(header: str | None) -> Expected | None:
    """Read ``If-Match``: ``"3"`` or ``W/"3"``. ``None`` when absent; anything else never matches (412).

    Returns:
        The expected version, or None when the header is absent.
    """
    if header is None or not header.strip():
        return None
    value = header.strip()
    if value.startswith("W/"):
        value = value[2:]
    if len(value) >= 3 and value[0] == value[-1] == '"' and value[1:-1].isdigit() and len(value) < 14:
        return Expected(int(value[1:-1]), from_header=True)
    return Expected(-1, from_header=True)


def expected_from(if_match: str | None, body_version: int | None) -> Expected:
    """The writer's precondition: the header if given, else the body's ``version``.

    Raises:
        PreconditionRequired: neither was given.
    """
    expected = parse_if_match(if_match)
    if expected is not None:
        return expected
    if body_version is not None:
        return Expected(body_version)
    raise PreconditionRequired("Send the version you read: an If-Match header (the ETag) or a 'version' "
                               "field.")


def check_version(current: int, expected: Expected, what: str) -> None:
    """Raises the conflict when ``expected`` is not ``current``.

    Raises:
        VersionConflict: stale If-Match (412).
        Conflict: stale ``version`` field (409).
    """
    if expected.version != current:
        raise expected.conflict(what, current)


def flush_versioned(session: orm.Session, expected: Expected, what: str) -> None:
    """Flush, turning a lost race on a versioned row into the writer's conflict.

    Raises:
        VersionConflict | Conflict: another transaction changed the row after it was read.
    """
    try:
        session.flush()
    except StaleDataError:
        raise expected.conflict(what) from None


def etag(version: int) -> str:
    return f'"{version}"'
