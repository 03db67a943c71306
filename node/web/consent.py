"""The consent pages of a case, for counsellors: the case's consents with the erasure state per holder, recording
a consent, and the safeguards of a child's case (withdrawing a consent: :mod:`.consent_withdraw`).

Thin views over the JSON API's services (``node.cases.consent``, ``node.exchange.chain``): the same schema
validates the form, the same service decides, and its refusals are shown next to the fields, in words.
"""

from __future__ import annotations

import datetime as dt
from datetime import timedelta
from typing import Any

import marshmallow as ma
from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from werkzeug.datastructures import MultiDict

from node.auth import can, require
from node.cases.access import case_for
from node.cases.consent import case_missing_safeguards, create_consent, get_safeguards, list_consents, write_safeguards
from node.cases.schemas import ConsentCreateSchema, SafeguardsWriteSchema
from node.concurrency import expected_from
from node.db import request_session
from node.errors import Conflict, ValidationFailed
from node.exchange.chain.disclosures import case_disclosures
from node.exchange.chain.known_withdrawals import withdrawals_for
from node.exchange.trust.partners import list_partners
from protocol.times import parse_time

from . import consent_labels as labels
from .consent_withdraw import withdraw, withdrawn_categories
from .forms import form_errors, read_form, validated
from .guard import actor, permitted

_LISTS = ("categories", "recipients")
_SAFEGUARD_TIMES = ("guardian_consent_at", "assessed_at")


def make_blueprint() -> Blueprint:
    blp = Blueprint("web_consent", __name__)
    blp.add_url_rule("/cases/<case_id>/consents", endpoint="consents", view_func=consents, methods=["GET"])
    blp.add_url_rule("/cases/<case_id>/consents/new", endpoint="new_consent", view_func=new_consent,
                     methods=["GET", "POST"])
    blp.add_url_rule("/cases/<case_id>/safeguards", endpoint="safeguards", view_func=safeguards,
                     methods=["GET", "POST"])
    blp.add_url_rule("/cases/<case_id>/consents/<consent_id>/withdraw", endpoint="withdraw", view_func=withdraw,
                     methods=["GET", "POST"])
    return blp


def _now() -> dt.datetime:
    now: dt.datetime = current_app.extensions["ccm"].clock.now()
    return now


def _config() -> Any:
    return current_app.extensions["ccm"].config


def partner_names() -> dict[str, str]:
    return {p.node_id: p.name for p in list_partners(request_session())}


# --- the list ------------------------------------------------------------------------------------------------

def consents(case_id: str) -> Any:
    db = request_session()
    now, config = _now(), _config()
    items = list_consents(db, actor(), case_id, now)
    case = case_for(db, actor(), case_id, "case.read")
    missing = case_missing_safeguards(db, case)
    disclosures = case_disclosures(db, actor(), case.id, now, timedelta(hours=config.erasure_confirm_hours))
    withdrawals = {item["id"]: [{**w, "withdrawn_at": parse_time(w["withdrawn_at"])}
                                for w in withdrawals_for(db, config.node_id, item["id"])] for item in items}
    db.commit()
    withdrawn = {consent_id: withdrawn_categories(known) for consent_id, known in withdrawals.items()}
    holders: dict[str, list[dict[str, Any]]] = {}
    for disclosure in disclosures:
        holders.setdefault(disclosure["consent_id"], []).append(disclosure)
    return render_template("consent/list.html", case=case, consents=list(reversed(items)), holders=holders,
                           withdrawals=withdrawals, withdrawn_categories=withdrawn, missing=missing,
                           names=partner_names(), labels=labels, confirm_hours=config.erasure_confirm_hours)


# --- recording a consent -------------------------------------------------------------------------------------

#: the consent form's fields in their order on the page (the error summary follows it)
_CONSENT_FIELDS = ("categories", "recipients", "purpose", "method", "valid_until", "language", "interpreter",
                   "given_at")


def _consent_errors(exc: Exception, form: MultiDict[str, str]) -> dict[str, list[str]]:
    """The refusal keyed by the form's fields, in the page's order; an empty choice said in words."""
    errors: dict[str, list[str]] = {}
    for key, messages in form_errors(exc).items():
        errors.setdefault(key.split(".")[0] if key.startswith("recipients.") else key, []).extend(messages)
    empty = {
        "categories": _("Choose at least one kind of information the returnee agreed to share."),
        "recipients": _("Choose at least one partner organisation the returnee agreed to share with."),
        "purpose": _("Choose what the information may be used for."),
        "method": _("Choose how the returnee gave the consent."),
        "valid_until": _("Enter the last day the consent may be used."),
    }
    for name, message in empty.items():
        if name in errors and not any(v.strip() for v in form.getlist(name)):
            errors[name] = [message]
    order = {name: i for i, name in enumerate(_CONSENT_FIELDS)}
    return dict(sorted(errors.items(), key=lambda item: order.get(item[0], len(order))))


@permitted("consent.manage")
def new_consent(case_id: str) -> Any:
    db = request_session()
    case = case_for(db, actor(), case_id, "consent.manage")
    errors: dict[str, list[str]] = {}
    values: dict[str, Any] = {}
    chosen: dict[str, list[str]] = {name: [] for name in _LISTS}
    if request.method == "POST":
        values = request.form.to_dict()
        chosen = {name: request.form.getlist(name) for name in _LISTS}
        data = read_form(request.form, lists=_LISTS)
        if "given_at" in data:  # a consent given earlier (on paper, say): the node's local time
            data["given_at"] = labels.local_to_utc(data["given_at"], _config().timezone)
        try:
            result = create_consent(db, actor(), case.id, validated(ConsentCreateSchema(), data), _now())
            db.commit()
        except (ma.ValidationError, ValidationFailed) as exc:
            db.rollback()
            errors = _consent_errors(exc, request.form)
        else:
            if result["status"] == "pending":
                flash(_("The consent is recorded, but it is not active yet: this is a child's case and its "
                        "safeguards are not complete."), "warning")
            else:
                flash(_("The consent is recorded."), "success")
            return redirect(url_for("web_consent.consents", case_id=case.id))
    return render_template("consent/new.html", case=case, values=values, errors=errors, chosen=chosen,
                           partners=list_partners(db), labels=labels,
                           missing=case_missing_safeguards(db, case)), 422 if errors else 200


# --- a child's safeguards ------------------------------------------------------------------------------------

def _safeguard_values(record: dict[str, Any], timezone: str) -> dict[str, Any]:
    """The saved safeguards as the form's values."""
    guardian = record.get("guardian") or {}
    values: dict[str, Any] = {f"guardian.{name}": guardian.get(name) for name in
                              ("name", "relation", "organisation", "contact")}
    values.update({name: record.get(name) for name in ("child_views", "best_interests_outcome", "assessed_by")})
    values.update({name: labels.utc_to_local(record.get(name), timezone) for name in _SAFEGUARD_TIMES})
    values["version"] = record["version"]
    return values


def _safeguards_data(form: MultiDict[str, str], timezone: str) -> dict[str, Any]:
    data = read_form(form)
    for name in _SAFEGUARD_TIMES:
        if name in data:
            data[name] = labels.local_to_utc(data[name], timezone)
    if str(data.get("version", "")).isdigit():
        data["version"] = int(data["version"])  # the schema takes a number, as JSON sends it
    return data


def safeguards(case_id: str) -> Any:
    db = request_session()
    config = _config()
    status = 200
    errors: dict[str, list[str]] = {}
    saved: dict[str, Any] | None = None
    if request.method == "POST":
        require(actor(), "consent.manage")
        values: dict[str, Any] = request.form.to_dict()
        try:
            data = validated(SafeguardsWriteSchema(), _safeguards_data(request.form, config.timezone))
            version = data.pop("version", None)
            result = write_safeguards(db, actor(), case_id, data, expected_from(None, version), _now())
            db.commit()
        except (ma.ValidationError, ValidationFailed) as exc:
            db.rollback()
            errors, status = form_errors(exc), 422
        except Conflict:
            db.rollback()
            saved = get_safeguards(db, actor(), case_id, _now())
            db.commit()
            errors, status = {}, 409
        else:
            if result["child"] and not result["missing"]:
                flash(_("The safeguards are complete: the child's consents are active and the case can be "
                        "handed over."), "success")
            else:
                flash(_("The safeguards are saved."), "success")
            return redirect(url_for("web_consent.consents", case_id=case_id))
        record = get_safeguards(db, actor(), case_id, _now()) if saved is None else saved
        db.commit()
        if saved is not None:
            values["version"] = saved["version"]  # sending again overwrites, knowingly
    else:
        record = get_safeguards(db, actor(), case_id, _now())
        db.commit()
        values = _safeguard_values(record, config.timezone)
    case = case_for(db, actor(), case_id, "case.read")
    return render_template("consent/safeguards.html", case=case, record=record, values=values, errors=errors,
                           conflict=saved is not None, saved=_safeguard_values(saved, config.timezone) if saved
                           else None, labels=labels, can_edit=_can_manage()), status


def _can_manage() -> bool:
    return can(actor().role, "consent.manage")
