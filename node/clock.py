"""The node's sense of time, injected so that tests can control expiry, backoff and retention.

A node process (the web server and every ``ccm-node`` command) reads :func:`system_clock`. For process-level
tests only, ``CCM_CLOCK_OFFSET_SECONDS`` (a number, may be negative) moves that clock, and only when
``CCM_TESTING=1`` is set too; otherwise the variable is ignored, so a production node never runs on a moved
clock by accident. ``tests/e2e/test_clock_skew.py`` uses it to run two nodes whose clocks disagree.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Protocol

#: The variable that moves a node process's clock, honoured only with ``CCM_TESTING=1``.
OFFSET_VARIABLE = "CCM_CLOCK_OFFSET_SECONDS"


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class OffsetClock:
    """The system clock moved by a fixed offset (process-level tests of clock skew between nodes)."""

    def __init__(self, offset: timedelta) -> None:
        self.offset = offset

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset


def system_clock(environ: Mapping[str, str] | None = None) -> Clock:
    """The clock a node process runs on: the system clock, or, with ``CCM_TESTING=1`` and
    ``CCM_CLOCK_OFFSET_SECONDS=N``, the system clock moved by N seconds.

    Raises:
        ValueError: the offset is set (and honoured) but is not a finite number.
    """
    env = os.environ if environ is None else environ
    raw = env.get(OFFSET_VARIABLE, "").strip()
    if not raw or env.get("CCM_TESTING") != "1":
        return SystemClock()
    try:
        seconds = float(raw)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds):
        raise ValueError(f"{OFFSET_VARIABLE} must be a number of seconds, not {raw!r}")
    return OffsetClock(timedelta(seconds=seconds))


class FakeClock:
    """A clock that only moves when told to (tests)."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 11, 23, 9, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, **kwargs: float) -> datetime:
        self._now += timedelta(**kwargs)
        return self._now

    def set(self, when: datetime) -> None:
        self._now = when
