"""gunicorn hooks of ``node/serve.py``."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from node.serve import post_fork


class RecordingEngine:
    def __init__(self) -> None:
        self.disposed: list[bool] = []

    def dispose(self, close: bool = True) -> None:
        self.disposed.append(close)


def test_a_new_worker_drops_the_connections_the_master_pooled() -> None:
    engine = RecordingEngine()
    app = SimpleNamespace(extensions={"ccm": SimpleNamespace(engine=engine)})
    # what gunicorn passes: the worker before init_process (no .wsgi yet), its .app holding the preloaded callable
    worker: Any = SimpleNamespace(app=SimpleNamespace(callable=app))
    assert not hasattr(worker, "wsgi")
    post_fork(None, worker)
    assert engine.disposed == [False]  # the master's connections are forgotten, not closed under its feet
