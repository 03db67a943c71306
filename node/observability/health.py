"""Liveness and readiness: ``GET /healthz`` and ``GET /readyz``, unauthenticated and cheap.

``/healthz`` answers 200 ``{"status": "ok"}`` whenever the process can answer at all; it touches nothing else
(no database), so a busy database never gets a live node restarted. ``/readyz`` answers 200 when the node can
serve: the database answers a trivial query, the node's keys load, the data key is reachable (:mod:`node.at_rest`),
the database is at the migrations' head, and the data directory's disk has room (nearly every request writes: a
full disk answers ``503 storage_full``, :mod:`node.errors`). Otherwise 503 with every check named in words (``{"status":
"unavailable", "checks": {"database": "ok", "migrations": "behind: 0010_x < 0011_y"}}``); the reason of a failure
is logged by its exception type, never a traceback or data in the answer.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Blueprint, Flask, Response, current_app, json
from sqlalchemy import orm

from node.at_rest.keyring import data_key_status
from node.config import NodeConfig
from node.db import request_reader, request_session
from node.exchange.trust.keystore import identity_for_app
from node.migrate import alembic_config

log = logging.getLogger(__name__)

OK = "ok"
#: The data directory's disk counts as full below this much free space ...
DISK_MIN_FREE_BYTES = 64 * 1024 * 1024
#: ... or below this share of its size, whichever is less (a small disk of a test or a container).
DISK_MIN_FREE_SHARE = 0.01


@dataclass(frozen=True)
class Readiness:
    checks: dict[str, str]

    @property
    def ready(self) -> bool:
        return all(value == OK for value in self.checks.values())


def check_database(session: orm.Session) -> tuple[str, str | None]:
    """``SELECT 1`` and the database's migration revision.

    Returns:
        ("ok" or why not, the revision or None).
    """
    try:
        session.execute(sa.text("SELECT 1"))
        revision = MigrationContext.configure(session.connection()).get_current_revision()
    except sa.exc.SQLAlchemyError as exc:
        log.warning("readiness: the database does not answer (%s)", type(exc).__name__)
        return "unreachable", None
    return OK, revision


def check_migrations(current: str | None, head: str | None, known: frozenset[str]) -> str:
    """"ok" at the head; "behind: <current> < <head>"; a revision these scripts do not know (a newer version of
    the node migrated this database) is named as such."""
    if current == head:
        return OK
    if current is None:
        return f"not initialised: none < {head}"
    if current not in known:
        return f"unknown revision: {current} (head {head})"
    return f"behind: {current} < {head}"


def check_keys(load_keys: Callable[[], Any]) -> str:
    try:
        load_keys()
    except Exception as exc:  # a missing, unreadable or foreign key file: the node cannot sign or open
        log.warning("readiness: the node's keys do not load (%s)", type(exc).__name__)
        return "not loadable"
    return OK


def check_data_key(config: NodeConfig) -> str:
    """The data key (encryption at rest, :mod:`node.at_rest`): "ok" when its file is there and readable, else the
    reason in words (never the key or its path's contents)."""
    try:
        return data_key_status(config)
    except OSError as exc:  # e.g. the directory itself became unreadable
        log.warning("readiness: the data key is not reachable (%s)", type(exc).__name__)
        return "unreachable"


def check_disk(data_dir: Path) -> str:
    """"ok" when the data directory's disk has room; "full: N bytes free" when it has less than
    :data:`DISK_MIN_FREE_BYTES` (or :data:`DISK_MIN_FREE_SHARE` of a smaller disk) free for the node."""
    try:
        usage = shutil.disk_usage(data_dir)
    except OSError as exc:
        log.warning("readiness: the data directory's disk cannot be read (%s)", type(exc).__name__)
        return "unreachable"
    if usage.free < min(DISK_MIN_FREE_BYTES, usage.total * DISK_MIN_FREE_SHARE):
        return f"full: {usage.free} bytes free"
    return OK


def readiness(app: Flask, session: orm.Session, load_keys: Callable[[], Any]) -> Readiness:
    """Every check, in order: database, keys, data key, migrations, disk.

    Args:
        app: the node's app (its config; the migrations' head is read once per process and kept).
        session: a session to query with (on SQLite a read-only one: the check never waits for the write lock).
        load_keys: loads the node's keys (raises when they cannot be).
    """
    ctx = app.extensions["ccm"]
    checks: dict[str, str] = {}
    checks["database"], current = check_database(session)
    checks["keys"] = check_keys(load_keys)
    checks["data_key"] = check_data_key(ctx.config)
    if checks["database"] == OK:
        checks["migrations"] = check_migrations(current, *migration_scripts(app))
    else:
        checks["migrations"] = "unknown: database unreachable"
    checks["disk"] = check_disk(ctx.config.data_dir)
    return Readiness(checks)


def migration_scripts(app: Flask) -> tuple[str | None, frozenset[str]]:
    """The migrations' head revision and every revision they know (the scripts do not change while the process
    runs: read once per app)."""
    held: tuple[str | None, frozenset[str]] | None = app.extensions.get("ccm_migration_scripts")
    if held is None:
        scripts = ScriptDirectory.from_config(alembic_config(app.extensions["ccm"].engine))
        held = (scripts.get_current_head(), frozenset(s.revision for s in scripts.walk_revisions()))
        app.extensions["ccm_migration_scripts"] = held
    return held


def _answer(body: dict[str, Any], status: int) -> Response:
    response = Response(json.dumps(body), status=status, mimetype="application/json")
    response.headers["Cache-Control"] = "no-store"
    return response


def healthz() -> Response:
    return _answer({"status": "ok"}, 200)


def readyz() -> Response:
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    reader = request_reader()  # SQLite: a read-only session, never waiting for the write lock
    result = readiness(app, reader or request_session(), lambda: identity_for_app(app))
    if result.ready:
        return _answer({"status": "ok", "checks": result.checks}, 200)
    return _answer({"status": "unavailable", "checks": result.checks}, 503)


def make_blueprint() -> Blueprint:
    bp = Blueprint("health", __name__)
    bp.add_url_rule("/healthz", "healthz", healthz, methods=["GET"])
    bp.add_url_rule("/readyz", "readyz", readyz, methods=["GET"])
    return bp
