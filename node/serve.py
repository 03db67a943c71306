"""Run a node under gunicorn from Python (``ccm-node serve``), with the settings of deploy/gunicorn.conf.py.

The app is loaded once in the master (``preload_app``), warmed (:mod:`node.web.warm`: templates compiled, languages
loaded) and forked, so the workers share its memory pages; each worker drops the pooled database connections it
inherited (``post_fork``). Metrics: the master empties ``<data_dir>/metrics/`` and points prometheus-client's
multiprocess mode at it before the app loads, forgets what its own warm-up counted (``when_ready``), and marks a
worker that exits (``child_exit``).
"""

from __future__ import annotations

from typing import Any

from gunicorn.app.base import BaseApplication

from .config import NodeConfig
from .observability import multiprocess
from .observability.multiprocess import child_exit, when_ready

GUNICORN_DEFAULTS: dict[str, Any] = {
    # Requests are read whole before a thread serves them, with a deadline (node/serve_worker.py): clients
    # that send slowly cannot take the workers.
    "worker_class": "node.serve_worker.BufferingWorker",
    "threads": 4,
    "worker_connections": 1000,
    "preload_app": True,
    "timeout": 60,
    "graceful_timeout": 20,
    "keepalive": 5,
    # Recycle a worker now and then: memory a burst of large requests took is given back (workers fork from
    # the preloaded master, so a fresh one costs a few milliseconds).
    "max_requests": 5000,
    "max_requests_jitter": 500,
    "limit_request_line": 8190,
    "limit_request_fields": 100,
    "accesslog": None,
    "errorlog": "-",
    "loglevel": "info",
}


def post_fork(_server: Any, worker: Any) -> None:
    """In a new worker, before it serves anything: forget the database connections the master's pool holds.

    The master loaded the app (``preload_app``) and its pool keeps the connection the start used; a forked
    worker inherits it, socket and all. Used by two processes at once, one PostgreSQL connection interleaves
    their statements (results of one query read as another's, transactions left open, a pool's ping failing
    on every later request) and an SQLite connection must never cross a fork. ``dispose(close=False)`` gives
    this worker a fresh, empty pool and leaves the inherited sockets to the master.

    The app is the one gunicorn preloaded (``worker.app.callable``): ``worker.wsgi`` is only set after this
    hook, in the worker's ``init_process``.
    """
    app = getattr(worker, "wsgi", None) or getattr(getattr(worker, "app", None), "callable", None)
    ctx = getattr(app, "extensions", {}).get("ccm") if app is not None else None
    if ctx is not None:
        ctx.engine.dispose(close=False)


class NodeApplication(BaseApplication):  # type: ignore[misc]
    def __init__(self, config: NodeConfig, options: dict[str, Any]) -> None:
        self.node_config = config
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            if key in self.cfg.settings and value is not None:
                self.cfg.set(key, value)

    def load(self) -> Any:
        from . import create_app
        from .web.warm import freeze, warm_up

        app = create_app(self.node_config)
        warm_up(app)  # preloaded: templates, languages and mappers built once, shared by the workers
        freeze()
        return app


def serve(config: NodeConfig, *, host: str, port: int, workers: int, **extra: Any) -> None:
    multiprocess.prepare(config.data_dir)  # before the app loads: every worker's metrics go to files a scrape sums
    options = {**GUNICORN_DEFAULTS, "bind": f"{host}:{port}", "workers": workers, "post_fork": post_fork,
               "child_exit": child_exit, "when_ready": when_ready,
               "proc_name": f"ccm-node {config.node_id}", **extra}
    NodeApplication(config, options).run()
