"""All delivery retry policy in one place, after Synapse's ``retryutils``.

Backoff is per partner, not per message: when a delivery to a partner fails in a way that may pass later
(no connection, a timeout, a 5xx, or HTTP 401/408/429), the partner's interval grows from ``min_interval``
by ``multiplier`` up to ``max_interval`` (the cap), and nothing is sent to it until ``retry_at``, which is the
interval times a random jitter factor in [0.8, 1.4] (so that many nodes do not retry in step). While a partner
is backing off, a worker sends it one probe message at a time, never a batch. Any success, any message
received from that partner, and an administrator's ``queue retry`` reset the backoff, so a partner that comes
back is caught up at once instead of after the remaining wait.

Any other 4xx is a refusal for good: the message is ``parked`` (the partner is up, its backoff is reset) and
only its own thread waits. A message still not delivered ``horizon`` after it was queued (default 14 days),
or when its envelope expires, is ``undeliverable``. Both are shown to the administrator.

The clock and the random source are passed in; nothing here sleeps.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from node.exchange.models import Partner

RETRYABLE_STATUSES = frozenset({401, 408, 429})
#: Refusal codes that a later attempt of the same bytes can pass (the receiver's clock is behind ours).
RETRYABLE_CODES = frozenset({"not_yet_valid"})


class Verdict(enum.Enum):
    DELIVERED = "delivered"
    RETRY = "retry"
    PARK = "park"


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff parameters (seconds) and the retry horizon."""

    min_interval: float = 10.0
    max_interval: float = 3600.0
    multiplier: float = 2.0
    jitter_low: float = 0.8
    jitter_high: float = 1.4
    horizon: timedelta = timedelta(days=14)

    def __post_init__(self) -> None:
        if not 0 < self.min_interval <= self.max_interval:
            raise ValueError("need 0 < min_interval <= max_interval")
        if self.multiplier < 1 or not 0 < self.jitter_low <= self.jitter_high:
            raise ValueError("need multiplier >= 1 and 0 < jitter_low <= jitter_high")
        if self.horizon <= timedelta(0):
            raise ValueError("the retry horizon must be positive")

    def next_interval(self, previous: float) -> float:
        """The backoff interval after one more failure (before jitter), capped at ``max_interval``."""
        if previous <= 0:
            return self.min_interval
        return min(self.max_interval, previous * self.multiplier)

    def wait(self, interval: float, rng: random.Random) -> float:
        """The time to wait for an interval: the interval times a jitter factor in [low, high]."""
        return interval * rng.uniform(self.jitter_low, self.jitter_high)

    def give_up_at(self, queued_at: datetime, expires_at: datetime) -> datetime:
        """When a message still not delivered becomes ``undeliverable``."""
        return min(queued_at + self.horizon, expires_at)


def classify(status: int | None, code: str | None = None) -> Verdict:
    """What a delivery attempt's answer means.

    Args:
        status: the HTTP status, or None when no answer came (connection error, timeout).
        code: the protocol error code in a refusal body, if any.
    Returns:
        DELIVERED for 200 (the receipt is then checked by the caller), PARK for a refusal for good (a 4xx
        other than 401/408/429 and other than a retryable code), RETRY for everything else.
    """
    if status == 200:
        return Verdict.DELIVERED
    if status is not None and 400 <= status < 500 and status not in RETRYABLE_STATUSES \
            and code not in RETRYABLE_CODES:
        return Verdict.PARK
    return Verdict.RETRY


def backing_off(partner: Partner, now: datetime) -> bool:
    """Whether the partner must not be sent anything now."""
    return partner.retry_at is not None and partner.retry_at > now


def record_failure(partner: Partner, *, now: datetime, attempt_started: datetime, policy: RetryPolicy,
                   rng: random.Random, retry_after: float | None = None) -> None:
    """Grow the partner's backoff after a retryable failure.

    Several attempts that were in flight together fail together: only the first one recorded after they
    started grows the interval.

    Args:
        partner: the partner row (changed in place).
        now: the time the failure is recorded.
        attempt_started: when the failed attempt was claimed.
        policy: the backoff parameters.
        rng: the jitter source.
        retry_after: the partner's Retry-After, in seconds, if it sent one (honoured up to the cap).
    """
    if partner.retry_last_at is not None and partner.retry_last_at >= attempt_started:
        return
    interval = policy.next_interval(partner.retry_interval)
    wait = policy.wait(interval, rng)
    if retry_after is not None and retry_after > 0:
        wait = max(wait, min(retry_after, policy.max_interval))
    partner.retry_interval = interval
    partner.retry_last_at = now
    partner.retry_at = now + timedelta(seconds=wait)


def record_success(partner: Partner) -> bool:
    """Reset the partner's backoff (it answered). Returns whether there was anything to reset."""
    if partner.retry_interval <= 0 and partner.retry_at is None and partner.retry_last_at is None:
        return False
    partner.retry_interval = 0.0
    partner.retry_at = None
    partner.retry_last_at = None
    return True
