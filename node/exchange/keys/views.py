"""``POST /federation/v1/revocation``: a partner's signed revocation statements (``revocation.accept_revocations``).

200 with the key ids newly revoked; 404 ``unknown_sender`` for a node that is not a partner (nothing stored); 401
``unknown_key`` / ``bad_signature`` for a statement not signed by a key this node trusts; 400 for a body that is not
such a batch and 413 for one over 64 KiB, as the inbox answers them.

Like the inbox, no staff authentication: a statement is authenticated by its signatures. Refusals are the
inbox's problem answers (``inbox.federation.refusal``), with the specific reason in the log only.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, current_app, json, request
from sqlalchemy.exc import IntegrityError

from node.db import request_session
from node.errors import problem
from node.exchange.inbox.federation import refusal
from node.exchange.keys.revocation import accept_revocations
from protocol import OversizedError, ProtocolError
from protocol.cards import MAX_REVOCATION_BATCH_BYTES as MAX_REVOCATION_BYTES

log = logging.getLogger(__name__)


def revocation() -> Response:
    if request.content_length is not None and request.content_length > MAX_REVOCATION_BYTES:
        return refusal(OversizedError())
    data = request.stream.read(MAX_REVOCATION_BYTES + 1)
    ctx = current_app.extensions["ccm"]
    session = request_session()

    def attempt() -> Response:
        result = accept_revocations(session, data, now=ctx.clock.now(), source="federation")
        session.commit()
        return Response(json.dumps({"revoked": result.revoked, "known": result.known}), status=200,
                        mimetype="application/json")

    try:
        try:
            return attempt()
        except IntegrityError:  # the same statement recorded by a concurrent request: known the second time
            session.rollback()
            return attempt()
    except ProtocolError as exc:
        session.rollback()
        log.info("refused a revocation: %s (%s)", exc.code, exc.message)
        if exc.code == "unknown_sender":
            return problem(404, "Not Found", exc.code)
        return refusal(exc)


def make_blueprint() -> Blueprint:
    """The ``/federation/v1/revocation`` endpoint (a blueprint of its own beside ``inbox.federation``'s)."""
    bp = Blueprint("federation_keys", __name__, url_prefix="/federation/v1")
    bp.add_url_rule("/revocation", "revocation", revocation, methods=["POST"])
    return bp
