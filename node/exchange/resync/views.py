"""``POST /federation/v1/resync``: a partner restored from a backup asks what passed between us since then.

200 with the signed answer page (``responder.answer_resync``; co-signed by our previous key during a rotation's
overlap, as receipts are); refusals are the inbox's problem answers with the
protocol's error code (``inbox.federation.refusal``: 401 ``unknown_sender`` / ``bad_signature``, 403
``wrong_recipient``, 413 ``oversized``, 422 ``expired`` / ``not_yet_valid`` / a body that fails its schema, 400
for bytes that are not such a request), the specific reason in the log only. Like the inbox, no staff
authentication: the request is authenticated by its signature.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, current_app, request

from node.db import request_session
from node.exchange.inbox.federation import refusal
from node.exchange.resync.responder import answer_resync
from node.exchange.trust.keystore import identity_for_app
from protocol import OversizedError, ProtocolError, canonical_bytes, sign_json
from protocol.resync import MAX_REQUEST_BYTES

log = logging.getLogger(__name__)


def resync() -> Response:
    if request.content_length is not None and request.content_length > MAX_REQUEST_BYTES:
        return refusal(OversizedError())
    data = request.stream.read(MAX_REQUEST_BYTES + 1)
    ctx = current_app.extensions["ccm"]
    session = request_session()
    identity, now = identity_for_app(current_app), ctx.clock.now()
    try:
        answered = answer_resync(session, data, keys=identity.keys, now=now)
        session.commit()
    except ProtocolError as exc:
        session.rollback()
        log.info("refused a resync request: %s (%s)", exc.code, exc.message)
        return refusal(exc)
    log.info("resync: %d message(s) queued again for %s, %d listed", answered.requeued,
             answered.answer["to"], answered.listed)
    answer = answered.answer
    for retired in identity.accepted_retired(now):  # a requester restored from before our rotation holds that card
        answer = sign_json(answer, retired.node_id, retired.signing_key)
    return Response(canonical_bytes(answer), status=200, mimetype="application/json")


def make_blueprint() -> Blueprint:
    """The ``/federation/v1/resync`` endpoint (a blueprint of its own beside ``inbox.federation``'s)."""
    bp = Blueprint("federation_resync", __name__, url_prefix="/federation/v1")
    bp.add_url_rule("/resync", "resync", resync, methods=["POST"])
    return bp
