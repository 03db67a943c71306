"""A CCM Exchange node: one partner organisation's own installation.

``create_app(config)`` builds the Flask app for a :class:`~node.config.NodeConfig`; everything the app
holds (config, engine, sessions, clock) lives in ``app.extensions["ccm"]`` (a :class:`NodeContext`), so
tests build as many independent apps as they like and nothing is a module-level singleton.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from flask import Flask
from sqlalchemy import orm

from .at_rest.startup import open_node_data_keys
from .backup.journal import bind as bind_erasure_journal
from .clock import Clock, system_clock
from .config import NodeConfig
from .db import close_request_session, make_engine, make_sessionmaker


@dataclass
class NodeContext:
    config: NodeConfig
    engine: sa.Engine
    sessionmaker: orm.sessionmaker[orm.Session]
    clock: Clock


def create_app(config: NodeConfig, clock: Clock | None = None, engine: sa.Engine | None = None) -> Flask:
    """Build the node's Flask application.

    Args:
        config: the node's configuration (see :func:`node.config.load_config`).
        clock: the time source; :func:`node.clock.system_clock` unless a test passes a fake one.
        engine: an existing engine (tests share one); made from ``config.database_url`` otherwise.
    Returns:
        The app, with the JSON API under ``/api/v1`` and its OpenAPI document at ``/api/v1/openapi.json``.
    """
    from .api import init_api
    from .auth import init_auth
    from .cases.views import make_blueprint as cases_blueprint
    from .errors import register_error_handlers
    from .exchange import wiring
    from .exchange.chain.views import make_blueprint as consent_chain_blueprint
    from .exchange.handovers.views import make_blueprint as handovers_blueprint
    from .exchange.inbox.federation import make_blueprint as federation_blueprint
    from .exchange.keys.views import make_blueprint as revocation_blueprint
    from .exchange.resync.views import make_blueprint as resync_blueprint
    from .observability.setup import init_observability
    from .web.setup import init_web

    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=config.secret_key,
        MAX_CONTENT_LENGTH=config.max_request_bytes,
        JSON_SORT_KEYS=False,
    )
    app.json.ensure_ascii = False  # type: ignore[attr-defined]  # names in Arabic script stay readable
    engine = engine or make_engine(config.database_url, busy_seconds=config.database_busy_seconds)
    bind_erasure_journal(engine, config.data_dir)  # erasures are journalled beside the database (node/backup)
    clock = clock or system_clock()
    open_node_data_keys(config, engine, clock.now())  # the special-category columns need it (node/at_rest)
    app.extensions["ccm"] = NodeContext(config, engine, make_sessionmaker(engine), clock)
    app.teardown_appcontext(close_request_session)
    init_observability(app)  # first: its hooks time the whole request; /healthz, /readyz, /metrics
    register_error_handlers(app)
    init_auth(app)
    init_api(app, [cases_blueprint(), handovers_blueprint(), consent_chain_blueprint()])
    app.register_blueprint(federation_blueprint())
    app.register_blueprint(revocation_blueprint())
    app.register_blueprint(resync_blueprint())
    init_web(app)
    wiring.wire()
    register_error_handlers(app)  # again: flask-smorest registered its own HTTPException handler
    return app


def context(app: Flask) -> NodeContext:
    ctx: NodeContext = app.extensions["ccm"]
    return ctx
