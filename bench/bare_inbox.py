"""A bare inbox, the baseline of ``bench/handover_bench.py``: verify + decrypt, one INSERT, a signed receipt.

    python -m bench.bare_inbox --keys-dir DATA_DIR --sender-card CARD.json --database-url URL --port P

(run from the repository root). It makes the same protocol calls as the node's inbox (``protocol.open_envelope``
with the receiver's keys and a shared-key cache, ``protocol.make_receipt``), uses the node's database settings
(``node.db.make_engine``: the same SQLite pragmas and ``BEGIN IMMEDIATE``, or psycopg 3 on PostgreSQL) and the
gunicorn settings of ``ccm-node serve`` (the node's buffering worker class, preloaded app, a fresh pool after
fork), and does nothing else: the directory holds the one sender's card, the history has seen nothing and knows no
chain head (the first message of a thread passes, as every handover is), and each message is one row of one table.
The table is created at start and holds no constraint but its primary key, so the same messages can be posted
again.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import Flask, Response, request
from gunicorn.app.base import BaseApplication

from node.clock import Clock, SystemClock
from node.db import make_engine
from node.exchange.trust.keystore import key_path
from node.serve import GUNICORN_DEFAULTS
from protocol import (
    BoxCache,
    NodeKeys,
    OversizedError,
    ProtocolError,
    canonical_bytes,
    make_receipt,
    open_envelope,
)
from protocol.cards import card_from_bytes
from protocol.envelope import MAX_ENVELOPE_BYTES
from protocol.seal import PartnerView
from protocol.times import format_time

METADATA = sa.MetaData()
BARE_INBOX = sa.Table(
    "bare_inbox", METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("sender", sa.String(255), nullable=False),
    sa.Column("message_id", sa.String(64), nullable=False),
    sa.Column("type", sa.String(40), nullable=False),
    sa.Column("thread", sa.String(64), nullable=False),
    sa.Column("message_hash", sa.String(64), nullable=False),
    sa.Column("inner", sa.LargeBinary, nullable=False),
    sa.Column("receipt", sa.Text, nullable=False),
    sa.Column("received_at", sa.String(40), nullable=False),
)


class OneSender:
    """A directory that knows one partner."""

    def __init__(self, view: PartnerView) -> None:
        self._view = view

    def partner(self, node_id: str) -> PartnerView | None:
        return self._view if node_id == self._view.node_id else None


class NoHistory:
    """A history that has seen nothing: no replays, no chain heads."""

    def seen(self, sender: str, message_id: str) -> bool:
        return False

    def chain_head(self, sender: str, thread: str) -> str | None:
        return None


def make_app(*, keys: NodeKeys, sender_card: bytes, engine: sa.Engine, clock: Clock | None = None) -> Flask:
    """The bare inbox app.

    Args:
        keys: the receiver's keys.
        sender_card: the one sender's card (JSON bytes).
        engine: where the messages go (the table must exist).
        clock: the time source (default: the system clock).
    Returns:
        A Flask app answering ``POST /federation/v1/inbox`` (and ``GET /health``).
    """
    directory = OneSender(PartnerView.from_cards([card_from_bytes(sender_card)]))
    history = NoHistory()
    boxes = BoxCache()
    clock = clock or SystemClock()
    app = Flask(__name__)
    app.extensions["bare_engine"] = engine

    @app.post("/federation/v1/inbox")
    def inbox() -> Response:
        data = request.get_data(cache=False)
        now = clock.now()
        try:
            if len(data) > MAX_ENVELOPE_BYTES:
                raise OversizedError("envelope too large")
            opened = open_envelope(data, keys=keys, directory=directory, history=history, now=now,
                                   boxes=boxes)
        except ProtocolError as exc:
            return Response(json.dumps({"code": exc.code}), status=400, mimetype="application/problem+json")
        receipt = canonical_bytes(make_receipt(keys, opened, now))
        header = opened.header
        with engine.begin() as conn:
            conn.execute(BARE_INBOX.insert(), {
                "sender": header.sender, "message_id": header.id, "type": header.type,
                "thread": header.thread,
                "message_hash": opened.message_hash, "inner": opened.inner_bytes,
                "receipt": receipt.decode("utf-8"), "received_at": format_time(now)})
        return Response(receipt, status=200, mimetype="application/json")

    @app.get("/health")
    def health() -> Response:
        return Response(b"ok", mimetype="text/plain")

    return app


def _post_fork(_server: Any, worker: Any) -> None:
    app = getattr(worker, "wsgi", None)
    engine = getattr(app, "extensions", {}).get("bare_engine") if app is not None else None
    if engine is not None:
        engine.dispose(close=False)


class BareApplication(BaseApplication):  # type: ignore[misc]
    def __init__(self, app: Flask, options: dict[str, Any]) -> None:
        self.application = app
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            if key in self.cfg.settings and value is not None:
                self.cfg.set(key, value)

    def load(self) -> Flask:
        return self.application


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys-dir", type=Path, required=True, help="the receiving node's data directory")
    parser.add_argument("--sender-card", type=Path, required=True, help="the sender's card (JSON file)")
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    engine = make_engine(args.database_url)
    METADATA.create_all(engine)
    app = make_app(keys=NodeKeys.load(key_path(args.keys_dir)), sender_card=args.sender_card.read_bytes(),
                   engine=engine)
    engine.dispose()
    options = {**GUNICORN_DEFAULTS, "bind": f"{args.host}:{args.port}", "workers": args.workers,
               "post_fork": _post_fork, "proc_name": "ccm-bare-inbox"}
    BareApplication(app, options).run()


if __name__ == "__main__":
    main()
