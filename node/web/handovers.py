"""Handing a case over in the browser: choose the partner and the consent, preview exactly what will leave the
node, confirm, and follow the handover's status.

The preview and the sending call ``node.exchange.handovers.send`` exactly as the JSON API does; every refusal
(a consent not active, a partner outside it or suspended, a child's case without its safeguards) comes back to
the choosing page with the reason in words (409 or 422), never as an error page.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import marshmallow as ma
from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from werkzeug.datastructures import MultiDict

from node.cases.access import case_for
from node.cases.consent import case_consents, case_missing_safeguards
from node.cases.models import Case
from node.db import request_reader, request_session
from node.errors import Conflict, ValidationFailed
from node.exchange.chain.schemas import RevokeSchema
from node.exchange.chain.withdrawal import revoke
from node.exchange.handovers.schemas import (
    BEST_INTERESTS,
    HandoverCreateSchema,
    HandoverQuerySchema,
    HandoverSupportSchema,
)
from node.exchange.handovers.send import preview_handover, send_handover
from node.exchange.handovers.status import get_handover
from node.exchange.trust.keystore import identity_for_app
from node.exchange.trust.partners import list_partners

from . import consent_labels as labels
from .forms import FORM, form_errors, validated
from .guard import actor, permitted
from .intake_summary import SUPPORT_KINDS

#: the form's names for the API's fields
_FIELDS = {"recipient": "partner", "consent_id": "consent"}


def make_blueprint() -> Blueprint:
    blp = Blueprint("web_handovers", __name__)
    blp.add_url_rule("/cases/<case_id>/handover", endpoint="choose", view_func=choose, methods=["GET"])
    blp.add_url_rule("/cases/<case_id>/handover/preview", endpoint="preview", view_func=preview, methods=["GET"])
    blp.add_url_rule("/cases/<case_id>/handover/send", endpoint="send", view_func=send, methods=["POST"])
    blp.add_url_rule("/handovers/<handover_id>", endpoint="status", view_func=status, methods=["GET"])
    blp.add_url_rule("/handovers/<handover_id>/revoke", endpoint="revoke", view_func=revoke_page,
                     methods=["GET", "POST"])
    return blp


def _now() -> dt.datetime:
    now: dt.datetime = current_app.extensions["ccm"].clock.now()
    return now


def _identity() -> Any:
    return identity_for_app(current_app._get_current_object())  # type: ignore[attr-defined]


def _data(form: MultiDict[str, str]) -> dict[str, Any]:
    """The query or form as the API's body (``recipient``, ``consent_id``, a child's ``best_interests_outcome``)."""
    data = {"recipient": form.get("partner", "").strip(), "consent_id": form.get("consent", "").strip()}
    if form.get("best_interests_outcome"):
        data["best_interests_outcome"] = form["best_interests_outcome"]
    return data


def _support(form: MultiDict[str, str]) -> list[dict[str, Any]]:
    """What the partner is asked to arrange: the kinds ticked (``support``), each with its optional note
    (``support_note.<kind>``), validated as the API validates ``requested_support``."""
    asked = []
    for kind in dict.fromkeys(form.getlist("support")):  # each kind once, in the order ticked
        item = {"kind": kind}
        note = form.get(f"support_note.{kind}", "").strip()
        if note:
            item["note"] = note
        asked.append(item)
    try:
        loaded: list[dict[str, Any]] = HandoverSupportSchema(many=True).load(asked)
    except ma.ValidationError as exc:
        raise ValidationFailed("The support asked for is not valid.",
                               {"support": [_("Choose the kinds of support from the list; a note has at most 2,000 "
                                              "characters.")]}) from exc
    return loaded

def _support_values(form: MultiDict[str, str]) -> dict[str, Any]:
    """The support part of the form as typed, to show it again."""
    return {"support": form.getlist("support"),
            **{key: value for key, value in form.items() if key.startswith("support_note.")}}


def _refusal(exc: Exception, case: Case, chosen: dict[str, Any]) -> dict[str, list[str]]:
    """The refusal keyed by the form's fields, in words; a child's missing safeguards said as such."""
    errors: dict[str, list[str]] = {}
    for key, messages in form_errors(exc).items():
        errors.setdefault(_FIELDS.get(key, key), []).extend(messages)
    if not chosen.get("recipient"):
        errors["partner"] = [_("Choose the partner organisation to hand the case over to.")]
    if not chosen.get("consent_id"):
        errors["consent"] = [_("Choose the consent that allows this handover.")]
    if "best_interests_outcome" in errors:
        errors["best_interests_outcome"] = [_("This is a child's case: confirm the outcome of the best-interests "
                                              "assessment recorded in the safeguards.")]
    if getattr(exc, "code", None) == "consent_inactive" and case.child_at_intake \
            and case_missing_safeguards(request_session(), case):
        errors[FORM] = [_("This is a child's case: record the guardian, the child's views and the best-interests "
                          "assessment before it can be handed over.")]
    return errors


def _choose_page(case: Case, values: dict[str, Any], errors: dict[str, list[str]], status: int) -> Any:
    db = request_session()
    consents = case_consents(db, case, _now().date())
    usable = [c for c in consents if c["status"] == "active"]
    partners = [p for p in list_partners(db) if p.status == "active"]
    return render_template("handovers/choose.html", case=case, consents=usable, all_consents=consents,
                           partners=partners, names={p.node_id: p.name for p in list_partners(db)},
                           missing=case_missing_safeguards(db, case), values=values, errors=errors,
                           labels=labels, outcomes=BEST_INTERESTS, support_kinds=SUPPORT_KINDS), status


@permitted("handover.send")
def choose(case_id: str) -> Any:
    db = request_session()
    case = case_for(db, actor(), case_id, "handover.send")
    values = {**request.args.to_dict(), **_support_values(request.args)}
    active = [c for c in case_consents(db, case, _now().date()) if c["status"] == "active"]
    if len(active) == 1 and not values.get("consent"):  # the only choice, chosen
        values["consent"] = active[0]["id"]
        if len(active[0]["recipients"]) == 1 and not values.get("partner"):
            values["partner"] = active[0]["recipients"][0]
    return _choose_page(case, values, {}, 200)


@permitted("handover.send")
def preview(case_id: str) -> Any:
    db = request_session()
    case = case_for(db, actor(), case_id, "handover.send")
    chosen = _data(request.args)
    config = current_app.extensions["ccm"].config
    try:
        support = _support(request.args)
        data = validated(HandoverQuerySchema(), {k: v for k, v in chosen.items() if v})
        result = preview_handover(db, actor(), case.id, data, keys=_identity().keys, config=config, now=_now())
        db.commit()
    except (ma.ValidationError, ValidationFailed, Conflict) as exc:
        db.rollback()
        errors = _refusal(exc, case, chosen)
        values = {**request.args.to_dict(), **_support_values(request.args)}
        return _choose_page(case, values, errors, 409 if isinstance(exc, Conflict) else 422)
    partner_name = next((p.name for p in list_partners(db) if p.node_id == result["recipient"]), None)
    return render_template("handovers/preview.html", case=case, result=result, chosen=chosen, support=support,
                           support_kinds=SUPPORT_KINDS, summary=result["body"]["summary"],
                           partner_name=partner_name, labels=labels)


@permitted("handover.send")
def send(case_id: str) -> Any:
    db = request_session()
    case = case_for(db, actor(), case_id, "handover.send")
    chosen = _data(request.form)
    config = current_app.extensions["ccm"].config
    node = _identity()
    try:
        data = validated(HandoverCreateSchema(), {k: v for k, v in chosen.items() if v})
        data["requested_support"] = _support(request.form)
        result = send_handover(db, actor(), case.id, data, keys=node.keys, config=config, now=_now(),
                               boxes=node.boxes, reader=request_reader())
        db.commit()
    except (ma.ValidationError, ValidationFailed, Conflict) as exc:
        db.rollback()
        errors = _refusal(exc, case, chosen)
        values = {"partner": chosen["recipient"], "consent": chosen["consent_id"],
                  "best_interests_outcome": chosen.get("best_interests_outcome"), **_support_values(request.form)}
        return _choose_page(case, values, errors, 409 if isinstance(exc, Conflict) else 422)
    flash(_("The case summary is queued for %(partner)s. It leaves as soon as the partner can be reached.",
            partner=result["partner"]), "success")
    return redirect(url_for("web_handovers.status", handover_id=result["id"]))


def status(handover_id: str) -> Any:
    db = request_session()
    result = get_handover(db, actor(), handover_id, _now())
    db.commit()
    if result["direction"] == "incoming":
        return redirect(url_for("web_intake.handover", handover_id=handover_id))
    return render_template("handovers/status.html", handover=result, labels=labels)


#: a handover's shown status from which the sender may still take it back (the partner holds it, or will)
REVOCABLE = ("queued", "sending", "delivered", "parked", "undeliverable", "pending", "accepted")


@permitted("handover.send")
def revoke_page(handover_id: str) -> Any:
    """Take back a handover sent in error: the partner erases it and confirms, as on a withdrawal."""
    db = request_session()
    handover = get_handover(db, actor(), handover_id, _now())
    if handover["direction"] != "outgoing":
        return redirect(url_for("web_intake.handover", handover_id=handover_id))
    values: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    status_code = 200
    if request.method == "POST" and handover["status"] in REVOCABLE:
        values = {"reason": request.form.get("reason", "")}
        node = _identity()
        try:
            data = validated(RevokeSchema(), {"reason": values["reason"]})
            revoke(db, actor(), handover_id, data, keys=node.keys, now=_now(), boxes=node.boxes)
            db.commit()
        except (ma.ValidationError, ValidationFailed, Conflict) as exc:
            db.rollback()
            errors = form_errors(exc)
            if "reason" in errors and not values["reason"].strip():
                errors["reason"] = [_("Say why the handover is taken back (the partner reads it; no personal "
                                      "data).")]
            status_code = 409 if isinstance(exc, Conflict) else 422
        else:
            flash(_("The handover is taken back. %(partner)s is asked to erase it and to confirm.",
                    partner=handover["partner_name"] or handover["partner"]), "success")
            return redirect(url_for("web_handovers.status", handover_id=handover_id))
    db.commit()
    return render_template("handovers/revoke.html", handover=handover, values=values, errors=errors,
                           revocable=handover["status"] in REVOCABLE, labels=labels), status_code
