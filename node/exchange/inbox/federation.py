"""The federation endpoints other nodes call: ``GET /federation/v1/card`` and ``POST /federation/v1/inbox``
(``POST /federation/v1/revocation`` is the keys room's: ``keys/views.py``).

No staff authentication here: a partner is authenticated by its signatures (``inbox.receive``). Every refusal
is a problem-details body carrying the protocol's error code and nothing else, with the HTTP status below; the
specific reason goes to the log (never the payload). A sender retries on 401, 408, 429 and 5xx and parks the
message on any other 4xx (``retry.classify``), so the statuses are chosen by whether trying again can help:

===  ===============================================================================================
400  malformed, non_canonical, unsupported_version (the bytes will never parse)
401  unknown_sender, unknown_key, bad_signature, header_mismatch, decryption_failed (the sender may not
     be known *yet*, or a key is being rotated; the intact bytes may pass later)
403  wrong_recipient, revoked_key, unknown_agreement, outside_consent, consent_invalid
409  replayed, broken_chain
413  oversized
422  expired, not_yet_valid, and a body that fails its schema (code malformed)
503  resync_pending: off the sender's chain while this node, restored from a backup, resyncs with it
===  ===============================================================================================

During a key rotation the inbox opens an envelope with the key pair it is sealed to (the current one, or the
previous one until the end of its overlap: ``NodeIdentity.keys_for_envelope``), and the receipt it answers
with is signed by every key the sender may hold for this node (``NodeIdentity.cosign_receipt``).
"""

from __future__ import annotations

import logging
import os
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, Flask, Response, current_app, json, request
from sqlalchemy import event, orm
from sqlalchemy.exc import IntegrityError
from werkzeug.exceptions import RequestEntityTooLarge

from node.db import request_session
from node.errors import problem
from node.exchange.inbox.receive import ResyncPending, receive
from node.exchange.trust.keystore import identity_for_app
from node.observability.instruments import count_inbox_refusal
from protocol import OversizedError, ProtocolError, SchemaError
from protocol.envelope import MAX_ENVELOPE_BYTES

log = logging.getLogger(__name__)

#: Seconds a sender is asked to wait while this node resyncs with it after a restore (node/exchange/resync).
RESYNC_RETRY_AFTER = 10

STATUS_BY_CODE = {
    "malformed": 400, "non_canonical": 400, "unsupported_version": 400,
    "unknown_sender": 401, "unknown_key": 401, "bad_signature": 401, "header_mismatch": 401,
    "decryption_failed": 401,
    "wrong_recipient": 403, "revoked_key": 403, "unknown_agreement": 403, "outside_consent": 403,
    "consent_invalid": 403,
    "replayed": 409, "broken_chain": 409,
    "oversized": 413,
    "expired": 422, "not_yet_valid": 422,
}
_TITLES = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 409: "Conflict",
           413: "Content Too Large", 422: "Unprocessable Content"}


def http_status(exc: ProtocolError) -> int:
    """The HTTP status the inbox answers a protocol error with."""
    if isinstance(exc, SchemaError):
        return 422
    return STATUS_BY_CODE.get(exc.code, 400)


def refusal(exc: ProtocolError) -> Response:
    count_inbox_refusal(exc.code)  # /metrics: ccm_inbox_refusals_total{code}
    status = http_status(exc)
    return problem(status, _TITLES.get(status, "Bad Request"), exc.code)


def card() -> Response:
    identity = identity_for_app(current_app)
    response = Response(json.dumps(identity.card.to_json()), mimetype="application/json")
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


def _reader(app: Flask) -> orm.Session | None:
    """On SQLite, a session for the inbox's lookups that does not take the write lock (every transaction of
    the node's engine starts with ``BEGIN IMMEDIATE``): the signature checks and the decryption then run
    while other workers write. None on PostgreSQL, whose reads never block writers."""
    engine: sa.Engine = app.extensions["ccm"].engine
    if engine.dialect.name != "sqlite":
        return None
    held = app.extensions.get("ccm_exchange_reader")
    if held is None or held[0] != os.getpid():  # made after gunicorn forked, once per worker
        busy = app.extensions["ccm"].config.database_busy_seconds
        reader_engine = sa.create_engine(engine.url, connect_args={"timeout": busy})

        @event.listens_for(reader_engine, "connect")
        def _read_only(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # each lookup reads the newest committed state
            dbapi_conn.execute("PRAGMA query_only=ON")

        held = (os.getpid(), orm.sessionmaker(bind=reader_engine))
        app.extensions["ccm_exchange_reader"] = held
    session: orm.Session = held[1]()
    return session


def inbox() -> Response:
    if request.content_length is not None and request.content_length > MAX_ENVELOPE_BYTES:
        return refusal(OversizedError())
    try:
        data = request.get_data(cache=False)
    except RequestEntityTooLarge:
        return refusal(OversizedError())
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    ctx = app.extensions["ccm"]
    identity = identity_for_app(app)
    session = request_session()
    reader = _reader(app)
    now = ctx.clock.now()

    keys = identity.keys_for_envelope(data, now)

    def attempt() -> Response:
        try:
            answer = receive(session, data=data, keys=keys, now=now, boxes=identity.boxes, reader=reader)
        finally:
            if reader is not None:
                reader.close()
        session.commit()
        return Response(identity.cosign_receipt(answer.receipt, now), status=200, mimetype="application/json")

    try:
        try:
            return attempt()
        except IntegrityError:
            # A concurrent request stored this message or this chain link first: the second look answers
            # with the original receipt (a retransmission) or broken_chain (a fork).
            session.rollback()
            return attempt()
    except ProtocolError as exc:
        session.rollback()
        log.info("inbox refused a message: %s (%s)", exc.code, exc.message)
        return refusal(exc)
    except ResyncPending:
        session.rollback()
        log.info("inbox deferred a message: its sender's chain comes back with the resync after the restore")
        return problem(503, "Service Unavailable", "resync_pending",
                       "This node was restored from a backup and is resyncing with the sender; try again.",
                       headers={"Retry-After": str(RESYNC_RETRY_AFTER)})


def make_blueprint() -> Blueprint:
    bp = Blueprint("federation", __name__, url_prefix="/federation/v1")
    bp.add_url_rule("/card", "card", card, methods=["GET"])
    bp.add_url_rule("/inbox", "inbox", inbox, methods=["POST"])
    return bp
