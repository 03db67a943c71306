"""The protocol's one time format: RFC 3339 UTC with second precision, e.g. ``2026-11-23T09:00:00Z``."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from .errors import MalformedError

_TIME_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")


def format_time(moment: datetime) -> str:
    """Format an aware datetime as ``YYYY-MM-DDTHH:MM:SSZ`` in UTC (sub-seconds dropped).

    Raises:
        ValueError: ``moment`` is naive (a programming error: clocks must be timezone-aware).
    """
    if moment.tzinfo is None:
        raise ValueError("naive datetime: pass a timezone-aware clock value")
    utc = moment.astimezone(UTC)
    if utc.year >= 1000:
        # The same text as strftime below (whose %Y is not zero-padded before year 1000 on every platform),
        # in a third of the time: isoformat gives "YYYY-MM-DDTHH:MM:SS+00:00".
        return utc.isoformat(timespec="seconds")[:19] + "Z"
    return utc.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: object) -> datetime:
    """Parse the protocol time format strictly.

    Raises:
        MalformedError: not exactly ``YYYY-MM-DDTHH:MM:SSZ`` or not a real date.
    """
    if not isinstance(text, str) or _TIME_RE.fullmatch(text) is None:
        raise MalformedError("not a protocol time (YYYY-MM-DDTHH:MM:SSZ)")
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise MalformedError("not a valid date/time") from None


def require_aware(now: datetime) -> datetime:
    """Return ``now`` if timezone-aware.

    Raises:
        ValueError: naive datetime (programming error).
    """
    if now.tzinfo is None:
        raise ValueError("naive datetime: pass a timezone-aware clock value")
    return now
