"""The node's gunicorn worker: when it makes way for a fresh fork (recycling after a burst, once idle), and
that a forked worker never uses the database connections of the master it was forked from.

The reading of requests (slow clients, pipelining) is tested from outside in tests/e2e/test_slow_clients.py;
the recycling end to end by bench/web_bench.py (idle PSS back near its start).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from gunicorn.app.base import BaseApplication

from node.db import make_engine
from node.serve import post_fork
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


class _Preloaded(BaseApplication):  # type: ignore[misc]
    def __init__(self, app: Any) -> None:
        self.app = app
        super().__init__()

    def load_config(self) -> None:
        pass

    def load(self) -> Any:
        return self.app


def test_a_forked_worker_does_not_use_the_masters_database_connections(tmp_path: Path) -> None:
    """gunicorn's order: the master loads the app (preload_app), makes a worker object, forks, calls
    ``post_fork`` in the child, and only then does the worker's ``init_process`` set ``worker.wsgi``. The
    master's pool holds the connection its start used; a worker that took it would share one connection with
    the master and every other worker (on PostgreSQL: statements of several processes interleaved on one
    socket)."""
    engine = make_engine(f"sqlite:///{tmp_path / 'node.db'}")
    with engine.connect() as conn:  # the app's start in the master used the database
        inherited = conn.connection.dbapi_connection
    preloaded = _Preloaded(SimpleNamespace(extensions={"ccm": SimpleNamespace(engine=engine)}))
    preloaded.wsgi()  # preload_app
    worker = BufferingWorker(1, os.getpid(), [], preloaded, 30, preloaded.cfg, logging.getLogger(__name__))
    worker.tmp.close()  # (its heartbeat file: not needed here)
    assert getattr(worker, "wsgi", None) is None  # not yet, at post_fork
    post_fork(None, worker)
    with engine.connect() as conn:
        assert conn.connection.dbapi_connection is not inherited
    inherited.close()
    engine.dispose()
