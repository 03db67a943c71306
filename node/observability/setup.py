"""Adding health and metrics to the node's app (called by :func:`node.create_app`, before the other parts)."""

from __future__ import annotations

from flask import Flask

from . import health, metrics


def init_observability(app: Flask) -> None:
    """``/healthz``, ``/readyz``, ``/metrics`` and the request timing hooks."""
    metrics.init_request_metrics(app)
    app.register_blueprint(health.make_blueprint())
