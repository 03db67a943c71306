"""Retry policy, pure: backoff growth, cap, jitter bounds, what each answer means."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from node.exchange.delivery.retry import RetryPolicy, Verdict, backing_off, classify, record_failure, record_success
from node.exchange.models import Partner

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def test_interval_grows_from_the_minimum_and_stops_at_the_cap() -> None:
    policy = RetryPolicy(min_interval=10, max_interval=600, multiplier=2)
    intervals = []
    previous = 0.0
    for _ in range(10):
        previous = policy.next_interval(previous)
        intervals.append(previous)
    assert intervals == [10, 20, 40, 80, 160, 320, 600, 600, 600, 600]


def test_jitter_stays_within_0_8_and_1_4_and_uses_the_range() -> None:
    policy = RetryPolicy()
    rng = random.Random(1)
    waits = [policy.wait(100.0, rng) for _ in range(2000)]
    assert 80.0 <= min(waits) < 82.0 and 138.0 < max(waits) <= 140.0


@pytest.mark.parametrize(("status", "code", "verdict"), [
    (200, None, Verdict.DELIVERED),
    (None, None, Verdict.RETRY),
    (500, None, Verdict.RETRY),
    (502, None, Verdict.RETRY),
    (503, None, Verdict.RETRY),
    (401, "unknown_sender", Verdict.RETRY),
    (408, None, Verdict.RETRY),
    (429, None, Verdict.RETRY),
    (422, "not_yet_valid", Verdict.RETRY),
    (400, "malformed", Verdict.PARK),
    (403, "outside_consent", Verdict.PARK),
    (404, None, Verdict.PARK),
    (409, "broken_chain", Verdict.PARK),
    (413, "oversized", Verdict.PARK),
    (422, "expired", Verdict.PARK),
    (302, None, Verdict.RETRY),
])
def test_classify(status: int | None, code: str | None, verdict: Verdict) -> None:
    assert classify(status, code) is verdict


def _partner() -> Partner:
    return Partner(node_id="ba.cldd-sarajevo", retry_interval=0.0, retry_at=None, retry_last_at=None)


def test_failures_in_flight_together_grow_the_backoff_once() -> None:
    policy = RetryPolicy(min_interval=10, max_interval=600)
    partner = _partner()
    rng = random.Random(3)
    record_failure(partner, now=NOW, attempt_started=NOW - timedelta(seconds=1), policy=policy, rng=rng)
    first = (partner.retry_interval, partner.retry_at)
    record_failure(partner, now=NOW + timedelta(seconds=1), attempt_started=NOW - timedelta(seconds=1),
                   policy=policy, rng=rng)
    assert (partner.retry_interval, partner.retry_at) == first
    assert partner.retry_interval == 10 and backing_off(partner, NOW + timedelta(seconds=7))
    assert not backing_off(partner, NOW + timedelta(seconds=15))


def test_retry_after_is_honoured_up_to_the_cap() -> None:
    policy = RetryPolicy(min_interval=10, max_interval=600)
    partner = _partner()
    record_failure(partner, now=NOW, attempt_started=NOW, policy=policy, rng=random.Random(1),
                   retry_after=300)
    assert partner.retry_at == NOW + timedelta(seconds=300)
    partner = _partner()
    record_failure(partner, now=NOW, attempt_started=NOW, policy=policy, rng=random.Random(1),
                   retry_after=86400)
    assert partner.retry_at == NOW + timedelta(seconds=600)


def test_success_resets() -> None:
    partner = _partner()
    record_failure(partner, now=NOW, attempt_started=NOW, policy=RetryPolicy(), rng=random.Random(1))
    assert record_success(partner) is True
    assert (partner.retry_interval, partner.retry_at, partner.retry_last_at) == (0.0, None, None)
    assert record_success(partner) is False


def test_policy_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="min_interval"):
        RetryPolicy(min_interval=0)
    with pytest.raises(ValueError, match="horizon"):
        RetryPolicy(horizon=timedelta(0))
    assert RetryPolicy().give_up_at(NOW, NOW + timedelta(days=30)) == NOW + timedelta(days=14)
    assert RetryPolicy().give_up_at(NOW, NOW + timedelta(days=3)) == NOW + timedelta(days=3)
