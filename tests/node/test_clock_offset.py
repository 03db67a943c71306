"""``CCM_CLOCK_OFFSET_SECONDS`` moves a node process's clock only in tests (``CCM_TESTING=1``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from node.clock import OffsetClock, SystemClock, system_clock


def test_the_offset_is_ignored_without_the_testing_gate() -> None:
    assert isinstance(system_clock({"CCM_CLOCK_OFFSET_SECONDS": "600"}), SystemClock)
    assert isinstance(system_clock({"CCM_CLOCK_OFFSET_SECONDS": "600", "CCM_TESTING": "true"}), SystemClock)
    assert isinstance(system_clock({}), SystemClock)


def test_with_the_gate_the_clock_runs_that_far_ahead_or_behind() -> None:
    ahead = system_clock({"CCM_CLOCK_OFFSET_SECONDS": "600", "CCM_TESTING": "1"})
    behind = system_clock({"CCM_CLOCK_OFFSET_SECONDS": "-90.5", "CCM_TESTING": "1"})
    assert isinstance(ahead, OffsetClock) and ahead.offset == timedelta(seconds=600)
    assert isinstance(behind, OffsetClock) and behind.offset == timedelta(seconds=-90.5)
    assert abs(ahead.now() - datetime.now(UTC) - timedelta(seconds=600)) < timedelta(seconds=5)


@pytest.mark.parametrize("raw", ["ten", "nan", "inf", "1e400"])
def test_an_offset_that_is_not_a_number_is_refused(raw: str) -> None:
    with pytest.raises(ValueError, match="CCM_CLOCK_OFFSET_SECONDS"):
        system_clock({"CCM_CLOCK_OFFSET_SECONDS": raw, "CCM_TESTING": "1"})
