"""The consent-across-the-chain API under ``/api/v1``: withdraw a consent (wholly or in part), revoke a handover,
forward a received case, read a case's disclosure record and chain of custody, export it for the returnee,
close it with its outcome. Thin views: parse → service → commit → dump."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from node.api import Blueprint, commit, documented, node_config, now_and_actor
from node.db import request_session
from node.exchange.chain.custody import case_custody
from node.exchange.chain.disclosures import case_disclosures
from node.exchange.chain.forwarding import forward_case
from node.exchange.chain.schemas import (
    CloseOut,
    CloseSchema,
    ConsentWithdrawnOut,
    ConsentWithdrawSchema,
    CustodyOut,
    DisclosureListOut,
    ForwardCreateSchema,
    RevokeOut,
    RevokeSchema,
    SubjectExportOut,
)
from node.exchange.chain.subject_access import subject_export
from node.exchange.chain.withdrawal import revoke, withdraw
from node.exchange.handovers.closing import close_case
from node.exchange.handovers.schemas import HandoverOut
from node.exchange.handovers.views import identity


def make_blueprint() -> Blueprint:
    """The ``/api/v1`` blueprint of withdrawal, revocation, disclosures and closing."""
    blp = Blueprint("consent_chain", __name__, url_prefix="/api/v1",
                    description="The returnee's consent across the chain: withdrawal and erasure confirmed by "
                                "every holder, revocation of a handover, the disclosure record, closing.")

    @blp.route("/cases/<case_id>/consents/<consent_id>/withdraw", methods=["POST"])
    @blp.arguments(ConsentWithdrawSchema)
    @blp.response(200, ConsentWithdrawnOut)
    @documented(blp, 404, 409)
    def withdraw_consent(data: dict[str, Any], case_id: str, consent_id: str) -> Any:
        """Withdraw a consent, wholly or in part; every partner that received data under it is asked to erase"""
        now, actor = now_and_actor()
        node = identity()
        result = withdraw(request_session(), actor, case_id, consent_id, data, keys=node.keys, now=now,
                          boxes=node.boxes)
        commit()
        return result

    @blp.route("/handovers/<handover_id>/revoke", methods=["POST"])
    @blp.arguments(RevokeSchema)
    @blp.response(200, RevokeOut)
    @documented(blp, 404, 409)
    def revoke_handover(data: dict[str, Any], handover_id: str) -> Any:
        """Revoke a handover sent in error: the partner erases it and confirms"""
        now, actor = now_and_actor()
        node = identity()
        result = revoke(request_session(), actor, handover_id, data, keys=node.keys, now=now, boxes=node.boxes)
        commit()
        return result

    @blp.route("/cases/<case_id>/disclosures", methods=["GET"])
    @blp.response(200, DisclosureListOut)
    @documented(blp, 404)
    def disclosures(case_id: str) -> Any:
        """What of the case went to whom, when, under which consent, and whether erasure is confirmed"""
        now, actor = now_and_actor()
        items = case_disclosures(request_session(), actor, case_id, now,
                                 timedelta(hours=node_config().erasure_confirm_hours))
        commit()
        return {"items": items}

    @blp.route("/cases/<case_id>/export", methods=["GET"])
    @blp.response(200, SubjectExportOut)
    @documented(blp, 404)
    def export(case_id: str) -> Any:
        """Everything this node holds on the case, with the disclosure record (subject access; audited)"""
        now, actor = now_and_actor()
        config = node_config()
        result = subject_export(request_session(), actor, case_id, config.stages, now,
                                timedelta(hours=config.erasure_confirm_hours))
        commit()
        return result

    @blp.route("/cases/<case_id>/forwards", methods=["POST"])
    @blp.arguments(ForwardCreateSchema)
    @blp.response(202, HandoverOut)
    @documented(blp, 404, 409)
    def forward(data: dict[str, Any], case_id: str) -> Any:
        """Pass a received case on to a further partner named in the consent, with its chain of custody"""
        now, actor = now_and_actor()
        node = identity()
        result = forward_case(request_session(), actor, case_id, data, keys=node.keys, now=now, boxes=node.boxes)
        commit()
        return result

    @blp.route("/cases/<case_id>/custody", methods=["GET"])
    @blp.response(200, CustodyOut)
    @documented(blp, 404)
    def custody(case_id: str) -> Any:
        """The case's chain of custody (which node held it, from whom, when, the evidence), verified here"""
        now, actor = now_and_actor()
        result = case_custody(request_session(), actor, case_id, node_config().node_id, now)
        commit()
        return result

    @blp.route("/cases/<case_id>/close", methods=["POST"])
    @blp.arguments(CloseSchema)
    @blp.response(200, CloseOut)
    @documented(blp, 404, 409)
    def close(data: dict[str, Any], case_id: str) -> Any:
        """Close the case with its outcome; every partner it is shared with is told"""
        now, actor = now_and_actor()
        node = identity()
        result = close_case(request_session(), actor, case_id, data, keys=node.keys, now=now, boxes=node.boxes)
        commit()
        return result

    return blp
