"""The handover API under ``/api/v1``: thin views (parse → service → commit → dump), like the case API.

Sending and answering a handover writes the business record and the outgoing message in one transaction;
the delivery worker sends the message afterwards (``ccm-node deliver``).
"""

from __future__ import annotations

from typing import Any

from flask import current_app

from node.api import Blueprint, commit, documented, node_config, now_and_actor
from node.db import request_reader, request_session
from node.exchange.handovers import send as handovers
from node.exchange.handovers import status as handover_status
from node.exchange.handovers.decisions import accept_handover, decline_handover
from node.exchange.handovers.progress import case_updates, partner_stages, record_progress
from node.exchange.handovers.schemas import (
    AcceptOut,
    AcceptSchema,
    DeclineSchema,
    HandoverCreateSchema,
    HandoverDetailOut,
    HandoverListOut,
    HandoverListQuerySchema,
    HandoverOut,
    HandoverQuerySchema,
    PartnerStageListOut,
    PreviewOut,
    ProgressCreateSchema,
    ProgressListOut,
    ProgressOut,
)
from node.exchange.trust.keystore import NodeIdentity, identity_for_app


def identity() -> NodeIdentity:
    return identity_for_app(current_app._get_current_object())  # type: ignore[attr-defined]


def make_blueprint() -> Blueprint:
    """The ``/api/v1`` blueprint of handovers and progress."""
    blp = Blueprint("handovers", __name__, url_prefix="/api/v1",
                    description="Handovers to and from partner nodes, and progress on handed-over cases. "
                                "Outgoing handovers follow their case's visibility; incoming ones are the "
                                "node's intake queue for advisers.")
    _register_sending(blp)
    _register_receiving(blp)
    _register_progress(blp)
    return blp


def _register_sending(blp: Blueprint) -> None:
    @blp.route("/cases/<case_id>/handovers", methods=["POST"])
    @blp.arguments(HandoverCreateSchema)
    @blp.response(202, HandoverOut)
    @documented(blp, 404, 409)
    def send_handover(data: dict[str, Any], case_id: str) -> Any:
        """Hand the case's consented summary over to a partner (queued; the delivery worker sends it)"""
        now, actor = now_and_actor()
        node = identity()
        result = handovers.send_handover(request_session(), actor, case_id, data, keys=node.keys,
                                         config=node_config(), now=now, boxes=node.boxes,
                                         reader=request_reader())
        commit()
        return result

    @blp.route("/cases/<case_id>/handovers", methods=["GET"])
    @blp.response(200, HandoverListOut)
    @documented(blp, 404)
    def case_handovers(case_id: str) -> Any:
        """The case's handovers: queued, delivered, accepted or declined, with times"""
        now, actor = now_and_actor()
        items = handover_status.case_handovers(request_session(), actor, case_id, now)
        commit()
        return {"items": items}

    @blp.route("/cases/<case_id>/handovers/preview", methods=["GET"])
    @blp.arguments(HandoverQuerySchema, location="query")
    @blp.response(200, PreviewOut)
    @documented(blp, 404, 409)
    def preview_handover(query: dict[str, Any], case_id: str) -> Any:
        """Exactly what a handover would send (nothing is stored; audited as an export)"""
        now, actor = now_and_actor()
        result = handovers.preview_handover(request_session(), actor, case_id, query, keys=identity().keys,
                                            config=node_config(), now=now)
        commit()
        return result


def _register_receiving(blp: Blueprint) -> None:
    @blp.route("/handovers", methods=["GET"])
    @blp.arguments(HandoverListQuerySchema, location="query")
    @blp.response(200, HandoverListOut)
    @documented(blp)
    def list_handovers(query: dict[str, Any]) -> Any:
        """Incoming handovers (advisers) or the outgoing handovers of your cases, newest first"""
        now, actor = now_and_actor()
        items = handover_status.list_handovers(request_session(), actor, query["direction"], query.get("status"), now)
        commit()
        return {"items": items}

    @blp.route("/handovers/<handover_id>", methods=["GET"])
    @blp.response(200, HandoverDetailOut)
    @documented(blp, 404)
    def get_handover(handover_id: str) -> Any:
        """One handover; a pending incoming one with its summary and consent"""
        now, actor = now_and_actor()
        result = handover_status.get_handover(request_session(), actor, handover_id, now)
        commit()
        return result

    @blp.route("/handovers/<handover_id>/accept", methods=["POST"])
    @blp.arguments(AcceptSchema)
    @blp.response(201, AcceptOut)
    @documented(blp, 404, 409)
    def accept(data: dict[str, Any], handover_id: str) -> Any:
        """Accept an incoming handover: opens the local case and tells the sender"""
        now, actor = now_and_actor()
        node = identity()
        result = accept_handover(request_session(), actor, handover_id, data, keys=node.keys,
                                 config=node_config(), now=now, boxes=node.boxes)
        commit()
        return result

    @blp.route("/handovers/<handover_id>/decline", methods=["POST"])
    @blp.arguments(DeclineSchema)
    @blp.response(200, HandoverOut)
    @documented(blp, 404, 409)
    def decline(data: dict[str, Any], handover_id: str) -> Any:
        """Decline an incoming handover with a reason: erases the summary and tells the sender"""
        now, actor = now_and_actor()
        node = identity()
        result = decline_handover(request_session(), actor, handover_id, data, keys=node.keys, now=now,
                                  boxes=node.boxes)
        commit()
        return result


def _register_progress(blp: Blueprint) -> None:
    @blp.route("/cases/<case_id>/progress", methods=["POST"])
    @blp.arguments(ProgressCreateSchema)
    @blp.response(201, ProgressOut)
    @documented(blp, 404)
    def record(data: dict[str, Any], case_id: str) -> Any:
        """Record progress (note, stage changes, interventions, meetings); sent to the origin of a handed-over
        case"""
        now, actor = now_and_actor()
        node = identity()
        result = record_progress(request_session(), actor, case_id, data, keys=node.keys, now=now,
                                 boxes=node.boxes)
        commit()
        return result

    @blp.route("/cases/<case_id>/progress", methods=["GET"])
    @blp.response(200, ProgressListOut)
    @documented(blp, 404)
    def list_progress(case_id: str) -> Any:
        """Progress on the case: recorded here, sent to the origin, or received from the partner"""
        now, actor = now_and_actor()
        items = case_updates(request_session(), actor, case_id, now)
        commit()
        return {"items": items}

    @blp.route("/cases/<case_id>/partner-stages", methods=["GET"])
    @blp.response(200, PartnerStageListOut)
    @documented(blp, 404)
    def list_partner_stages(case_id: str) -> Any:
        """The stages as the partner working the case last reported them (signatures verified)"""
        now, actor = now_and_actor()
        items = partner_stages(request_session(), actor, case_id, node_config(), now)
        commit()
        return {"items": items}
