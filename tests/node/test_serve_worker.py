"""The node's gunicorn worker: when it makes way for a fresh fork (recycling after a burst, once idle).

The reading of requests (slow clients, pipelining) is tested from outside in tests/e2e/test_slow_clients.py;
the recycling end to end by bench/web_bench.py (idle PSS back near its start).
"""

from __future__ import annotations

from typing import Any

import pytest

from node.serve_worker import IDLE_RECYCLE_SECONDS, RECYCLE_AFTER_REQUESTS, BufferingWorker


def worker(**state: Any) -> BufferingWorker:
    """A worker's bookkeeping only (no sockets, no arbiter): what recycle_due reads."""
    w = BufferingWorker.__new__(BufferingWorker)
    defaults = {"alive": True, "served": RECYCLE_AFTER_REQUESTS, "in_flight": 0, "nr_conns": 0, "last_busy": 100.0}
    for name, value in {**defaults, **state}.items():
        setattr(w, name, value)
    return w


def test_a_worker_that_served_a_burst_is_recycled_once_quiet() -> None:
    assert worker().recycle_due(100.0 + IDLE_RECYCLE_SECONDS)


@pytest.mark.parametrize(("state", "why"), [
    ({"served": RECYCLE_AFTER_REQUESTS - 1}, "a quiet worker that served little keeps going"),
    ({"in_flight": 1}, "a request is being served"),
    ({"nr_conns": 1}, "a connection is open (kept alive, or a request still arriving)"),
    ({"alive": False}, "already stopping"),
])
def test_a_worker_is_not_recycled_while(state: dict[str, Any], why: str) -> None:
    assert not worker(**state).recycle_due(100.0 + IDLE_RECYCLE_SECONDS), why


def test_not_before_the_quiet_spell_is_over() -> None:
    assert not worker().recycle_due(100.0 + IDLE_RECYCLE_SECONDS - 0.1)
