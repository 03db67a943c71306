"""The adviser's intake queue: incoming handovers waiting for a decision, one received summary to read, and
accepting it (a local case is opened) or declining it with a reason.

The views call the handover API's services (``status.list_handovers``, ``status.get_handover``,
``decisions.accept_handover``, ``decisions.decline_handover``) with the API's schemas. A handover decided
already answers 409 with a page saying who decided and when, never a bare error.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any
from zoneinfo import ZoneInfo

import marshmallow as ma
from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from node.db import request_session
from node.errors import Conflict, NotFound, ValidationFailed
from node.exchange.handovers.decisions import accept_handover, decline_handover
from node.exchange.handovers.schemas import AcceptSchema, DeclineSchema
from node.exchange.handovers.status import get_handover, list_handovers
from node.exchange.trust.keystore import NodeIdentity, identity_for_app
from protocol.messages import DECLINE_REASONS

from .forms import form_errors, read_form, validated
from .guard import actor, permitted
from .intake_summary import HELPERS, LABELS, consent_for, options, returnee_name

#: how many decided handovers the queue shows under the pending ones
RECENT = 20
_LOCAL_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?$")


def make_blueprint() -> Blueprint:
    blp = Blueprint("web_intake", __name__)
    blp.add_url_rule("/intake", endpoint="queue", view_func=queue, methods=["GET"])
    blp.add_url_rule("/intake/<handover_id>", endpoint="handover", view_func=handover, methods=["GET"])
    blp.add_url_rule("/intake/<handover_id>/accept", endpoint="accept", view_func=accept, methods=["POST"])
    blp.add_url_rule("/intake/<handover_id>/decline", endpoint="decline", view_func=decline,
                     methods=["GET", "POST"])
    return blp


def clock_now() -> dt.datetime:
    now: dt.datetime = current_app.extensions["ccm"].clock.now()
    return now


def node_identity() -> NodeIdentity:
    return identity_for_app(current_app._get_current_object())  # type: ignore[attr-defined]


def local_time_to_iso(value: str | None) -> str | None:
    """A ``datetime-local`` input (the node's own time zone, no offset) as an ISO time with its offset."""
    if not value or not _LOCAL_TIME.match(value.strip()):
        return value
    zone = ZoneInfo(current_app.extensions["ccm"].config.timezone)
    return dt.datetime.fromisoformat(value.strip()).replace(tzinfo=zone).isoformat()


@permitted("handover.accept")
def queue() -> Any:
    db = request_session()
    items = list_handovers(db, actor(), "incoming", None, clock_now())
    db.commit()
    pending = sorted((i for i in items if i["status"] == "pending"), key=lambda i: (i["created_at"], i["id"]))
    decided = [i for i in items if i["status"] in ("accepted", "declined")][:RECENT]
    return render_template("intake/queue.html", pending=pending, decided=decided, **HELPERS)


def _incoming(handover_id: str) -> dict[str, Any]:
    """The incoming handover as the API shows it (audited read); 404 for anything else."""
    db = request_session()
    detail = get_handover(db, actor(), handover_id, clock_now())
    db.commit()
    if detail["direction"] != "incoming":
        raise NotFound("No such handover.")
    return detail


def _decided(detail: dict[str, Any], status: int) -> Any:
    return render_template("intake/decided.html", handover=detail, **HELPERS), status


def _summary_page(detail: dict[str, Any], *, values: dict[str, Any] | None = None,
                  errors: dict[str, list[str]] | None = None, status: int = 200) -> Any:
    own = current_app.extensions["ccm"].config.node_id
    return render_template("intake/handover.html", handover=detail, summary=detail.get("summary") or {},
                           case=detail.get("case") or {}, consent=consent_for(detail.get("consent"), own),
                           name=returnee_name(detail.get("summary") or {}), **HELPERS,
                           values=values or {}, errors=errors or {}), status


@permitted("handover.accept")
def handover(handover_id: str) -> Any:
    detail = _incoming(handover_id)
    if detail["status"] != "pending" or detail.get("summary") is None:
        return _decided(detail, 200)
    return _summary_page(detail)


@permitted("handover.accept")
def accept(handover_id: str) -> Any:
    values = request.form.to_dict()
    data = read_form(request.form)
    if "first_meeting_at" in data:
        data["first_meeting_at"] = local_time_to_iso(data["first_meeting_at"])
    db = request_session()
    node = node_identity()
    try:
        result = accept_handover(db, actor(), handover_id, validated(AcceptSchema(), data), keys=node.keys,
                                 config=current_app.extensions["ccm"].config, now=clock_now(), boxes=node.boxes)
        db.commit()
    except (ma.ValidationError, ValidationFailed) as exc:
        db.rollback()
        return _summary_page(_incoming(handover_id), values=values, errors=form_errors(exc), status=422)
    except Conflict as exc:  # decided meanwhile, the consent lapsed, the sender cannot be told...
        db.rollback()
        detail = _incoming(handover_id)
        if detail["status"] != "pending" or detail.get("summary") is None:
            return _decided(detail, 409)
        return _summary_page(detail, values=values, errors=form_errors(exc), status=409)
    flash(_("Handover accepted: case %(ref)s is open. The sender is being told.", ref=result["reference"]),
          "success")
    return redirect(url_for("web_cases.case_page", case_id=result["case_id"]))


@permitted("handover.accept")
def decline(handover_id: str) -> Any:
    detail = _incoming(handover_id)
    if detail["status"] != "pending" or detail.get("summary") is None:
        return _decided(detail, 409)
    values: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        values = request.form.to_dict()
        db = request_session()
        node = node_identity()
        try:
            decline_handover(db, actor(), handover_id, validated(DeclineSchema(), read_form(request.form)),
                             keys=node.keys, now=clock_now(), boxes=node.boxes)
            db.commit()
        except (ma.ValidationError, ValidationFailed) as exc:
            db.rollback()
            errors = form_errors(exc)
        except Conflict:
            db.rollback()
            return _decided(_incoming(handover_id), 409)
        else:
            flash(_("Handover %(ref)s from %(sender)s declined. The sender is being told why, and the summary "
                    "was erased here.", ref=detail["reference"], sender=detail["partner_name"] or detail["partner"]),
                  "success")
            return redirect(url_for("web_intake.queue"))
    return render_template("intake/decline.html", handover=detail, name=returnee_name(detail.get("summary") or {}),
                           reasons=options(LABELS["decline_reasons"], DECLINE_REASONS), values=values,
                           errors=errors, **HELPERS), 422 if errors else 200
