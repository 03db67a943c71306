"""The floor under a handover's cost: what any sending API request on this stack pays before the handover's own
work, measured in the same run as the handover (``bench/handover_profile.py`` prints it after the API stage).

- :func:`floor_blueprint`: ``POST /api/v1/bench-floor/cases/{id}/handovers``, a bench-only route with the
  sending API's own parts and nothing else: the bearer-token check (``before_request``), flask-smorest with
  the same request and response schemas, the clock and actor, and the answer the real view gave for that case.
  No case is read, nothing is sealed, stored or audited.
- :class:`Costs`: on a node's engines (:func:`node_engines`), the CPU of the SQLite (or PostgreSQL client)
  calls themselves: the statements (between ``before_cursor_execute`` and ``after_cursor_execute``) and the
  commits (the dialect's ``do_commit``); and SQLAlchemy Core's ``Connection.execute`` around the statements. What
  the ORM session, Flask and our Python add is what is left.

Only the benchmark adds the route (:func:`register_floor`, after ``create_app``); no node serves it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from flask import Flask
from sqlalchemy import event

from node.api import Blueprint, documented, now_and_actor
from node.exchange.handovers.schemas import HandoverCreateSchema, HandoverOut

FLOOR_PREFIX = "/api/v1/bench-floor"


def floor_blueprint(answers: dict[str, Any]) -> Blueprint:
    """The floor route; ``answers`` maps a case id to what the real view answered for it (filled by the
    benchmark after its API stage)."""
    blp = Blueprint("bench_floor", __name__, url_prefix=FLOOR_PREFIX)

    @blp.route("/cases/<case_id>/handovers", methods=["POST"])
    @blp.arguments(HandoverCreateSchema)
    @blp.response(202, HandoverOut)
    @documented(blp, 404, 409)
    def floor(_data: dict[str, Any], case_id: str) -> Any:
        now_and_actor()
        return answers[case_id]

    return blp


def register_floor(app: Flask, answers: dict[str, Any]) -> None:
    """Add the floor route to a node app before its first request."""
    app.register_blueprint(floor_blueprint(answers))


def node_engines(app: Flask) -> list[sa.Engine]:
    """A node app's engines: the node's, and on SQLite the read-only ones its requests made (the API's and the
    inbox's readers, made by the first request that needed one)."""
    engines = [app.extensions["ccm"].engine]
    for name in ("ccm_reader", "ccm_exchange_reader"):
        held = app.extensions.get(name)
        if held is not None and held[1] is not None:
            engines.append(held[1].kw["bind"])
    return engines


@dataclass
class Costs:
    """CPU seconds spent in the database driver's statements and commits, while measuring."""

    statements: int = 0
    statement_seconds: float = 0.0
    #: SQLAlchemy Core's ``Connection.execute`` of those statements, the driver's part included (outermost
    #: calls only: the BEGIN our ``begin`` hook issues runs inside the first statement's)
    core_seconds: float = 0.0
    commits: int = 0
    commit_seconds: float = 0.0
    _started: list[float] = field(default_factory=list)
    _core_started: list[float] = field(default_factory=list)


@contextmanager
def driver_costs(*engines: sa.Engine) -> Iterator[Costs]:
    """Measure :class:`Costs` on ``engines`` (on SQLite, a node's writing and reading engines) for the
    ``with`` block."""
    costs = Costs()

    def before(*_args: Any) -> None:
        costs._started.append(time.process_time())

    def after(*_args: Any) -> None:
        costs.statement_seconds += time.process_time() - costs._started.pop()
        costs.statements += 1

    def before_core(*_args: Any) -> None:
        costs._core_started.append(time.process_time())

    def after_core(*_args: Any) -> None:
        started = costs._core_started.pop()
        if not costs._core_started:
            costs.core_seconds += time.process_time() - started

    def timed_commit(plain_commit: Any) -> Any:
        def do_commit(dbapi_connection: Any) -> None:
            started = time.process_time()
            try:
                plain_commit(dbapi_connection)
            finally:
                costs.commit_seconds += time.process_time() - started
                costs.commits += 1
        return do_commit

    for engine in engines:
        event.listen(engine, "before_cursor_execute", before)
        event.listen(engine, "after_cursor_execute", after)
        event.listen(engine, "before_execute", before_core)
        event.listen(engine, "after_execute", after_core)
        engine.dialect.do_commit = timed_commit(engine.dialect.do_commit)  # type: ignore[method-assign]
    try:
        yield costs
    finally:
        for engine in engines:
            del engine.dialect.do_commit  # back to the class's method
            event.remove(engine, "before_cursor_execute", before)
            event.remove(engine, "after_cursor_execute", after)
            event.remove(engine, "before_execute", before_core)
            event.remove(engine, "after_execute", after_core)


def floor_lines(api_ms: float, floor_ms: float, costs: Costs, count: int) -> list[str]:
    """Where the sending API's CPU per handover goes: the request floor, the driver's statements and commit,
    SQLAlchemy Core around the statements, and the rest (the ORM session, and the handover's own work)."""
    statements_ms = costs.statement_seconds / count * 1000
    commit_ms = costs.commit_seconds / count * 1000
    core_ms = max(0.0, costs.core_seconds / count * 1000 - statements_ms)
    rest = api_ms - floor_ms - statements_ms - commit_ms - core_ms
    return [
        f"-- where the sending API's time goes (CPU per handover, {count} more handovers with the driver measured: "
        f"{api_ms:.2f} ms; the instruments' own cost is in the rest)",
        f"  request floor     {floor_ms:6.2f} ms  token check, Flask, flask-smorest with the same schemas; no handover",
        f"  driver: commit    {commit_ms:6.2f} ms  {costs.commits / count:.1f} commit(s) of the handover's rows",
        f"  driver: queries   {statements_ms:6.2f} ms  {costs.statements / count:.1f} statements, in the driver only",
        f"  SQLAlchemy Core   {core_ms:6.2f} ms  Connection.execute around those statements, the driver's part aside",
        f"  the rest          {rest:6.2f} ms  the ORM session (transactions, entities), and the handover's own work "
        "(summarising, validating, signing, sealing, auditing, encrypting at rest)",
    ]


def inbox_lines(inbox_ms: float, bare_ms: float, inbox: Costs, bare: Costs, count: int) -> list[str]:
    """Where the inbox's CPU per handover above the bare inbox's goes: the driver's commit and statements, and
    SQLAlchemy Core, each as the inbox's minus the bare inbox's, and the rest."""
    def per(seconds: float) -> float:
        return seconds / count * 1000

    commit_ms = per(inbox.commit_seconds) - per(bare.commit_seconds)
    statements_ms = per(inbox.statement_seconds) - per(bare.statement_seconds)
    core_ms = (per(inbox.core_seconds) - per(inbox.statement_seconds)) - \
        (per(bare.core_seconds) - per(bare.statement_seconds))
    above = inbox_ms - bare_ms
    return [
        f"-- where the inbox's time above the bare inbox's goes (CPU per handover, {count} more handovers with the "
        f"driver measured: {inbox_ms:.2f} − {bare_ms:.2f} = {above:.2f} ms)",
        f"  driver: commit    {commit_ms:6.2f} ms  more rows and index pages in the commit",
        f"  driver: queries   {statements_ms:6.2f} ms  {(inbox.statements - bare.statements) / count:.1f} more "
        "statements, in the driver only",
        f"  SQLAlchemy Core   {core_ms:6.2f} ms  Connection.execute around them, the driver's part aside",
        f"  the rest          {above - commit_ms - statements_ms - core_ms:6.2f} ms  the ORM session, the lookups' "
        "objects, the applier, the audit entries, the receipt's row",
    ]
