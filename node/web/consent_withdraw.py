"""Withdrawing a consent in the browser, wholly or in part (some categories, some partners), in two steps: the
form, then a confirmation that says what will happen (each holder of a copy is asked to erase it and must
confirm), then the withdrawal itself (``node.exchange.chain.withdrawal.withdraw``, as the API calls it).
Registered by :mod:`.consent` on the ``web_consent`` blueprint.
"""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask import current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from werkzeug.datastructures import MultiDict

from node.cases.access import case_for
from node.cases.consent import get_consent
from node.db import request_session
from node.errors import Conflict, ValidationFailed
from node.exchange.chain.known_withdrawals import withdrawals_for
from node.exchange.chain.schemas import ConsentWithdrawSchema
from node.exchange.chain.withdrawal import withdraw as withdraw_consent
from node.exchange.chain.withdrawal_preview import withdrawal_preview
from node.exchange.trust.keystore import identity_for_app
from node.exchange.trust.partners import list_partners

from . import consent_labels as labels
from .forms import form_errors, validated
from .guard import actor, permitted

#: where the scope's messages go on the form
_FIELDS = {"scope.categories": "categories", "scope.recipients": "recipients", "scope": "extent"}


def _data(form: MultiDict[str, str]) -> dict[str, Any]:
    """The form as the withdrawal's body: ``reason`` and, for a partial withdrawal, ``scope``."""
    data: dict[str, Any] = {}
    reason = form.get("reason", "").strip()
    if reason:
        data["reason"] = reason
    if form.get("extent") == "some":
        scope = {name: form.getlist(name) for name in ("categories", "recipients") if form.getlist(name)}
        data["scope"] = scope
    return data


def _errors(exc: Exception) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    for key, messages in form_errors(exc).items():
        errors.setdefault(_FIELDS.get(key, key), []).extend(messages)
    if "extent" in errors:
        errors["extent"] = [_("Choose the kinds of information or the partners to withdraw, or withdraw the "
                              "whole consent.")]
    if "reason" in errors:
        errors["reason"] = [_("Write the returnee's reason (it stays on this node).")]
    return errors


@permitted("consent.manage")
def withdraw(case_id: str, consent_id: str) -> Any:
    db = request_session()
    now = current_app.extensions["ccm"].clock.now()
    case = case_for(db, actor(), case_id, "consent.manage")
    consent = get_consent(db, actor(), case.id, consent_id, now)
    db.commit()
    errors: dict[str, list[str]] = {}
    values: dict[str, Any] = {"extent": "all"}
    chosen: dict[str, list[str]] = {"categories": [], "recipients": []}
    status = 200
    if request.method == "POST":
        values = request.form.to_dict()
        chosen = {name: request.form.getlist(name) for name in chosen}
        try:
            data = validated(ConsentWithdrawSchema(), _data(request.form))
            node = identity_for_app(current_app._get_current_object())  # type: ignore[attr-defined]
            if request.form.get("step") == "confirm":
                result = withdraw_consent(db, actor(), case.id, consent_id, data, keys=node.keys, now=now,
                                          boxes=node.boxes)
                db.commit()
                asked = len({r["holder"] for r in result["erasure_requests"]})
                flash(_("The withdrawal is recorded. %(count)s holders were asked to erase their copy; each "
                        "must confirm.", count=asked) if asked else
                      _("The withdrawal is recorded. No partner had received anything under this consent."),
                      "success")
                return redirect(url_for("web_consent.consents", case_id=case.id))
            preview = withdrawal_preview(db, actor(), case.id, consent_id, data, keys=node.keys, now=now,
                                         boxes=node.boxes)
            db.commit()
        except (ma.ValidationError, ValidationFailed) as exc:
            db.rollback()
            errors, status = _errors(exc), 422
        except Conflict as exc:
            db.rollback()
            errors, status = form_errors(exc), 409
        else:
            return render_template("consent/withdraw_confirm.html", case=case, consent=consent, preview=preview,
                                   values=values, chosen=chosen, labels=labels, names=_names())
    config = current_app.extensions["ccm"].config
    gone = withdrawn_categories(withdrawals_for(db, config.node_id, consent_id))
    return render_template("consent/withdraw.html", case=case, consent=consent, values=values, chosen=chosen,
                           errors=errors, labels=labels, names=_names(),
                           withdrawn_categories={consent["id"]: gone}), status


def withdrawn_categories(known: list[dict[str, Any]]) -> set[str]:
    """The categories withdrawn from every partner by earlier partial withdrawals (their bodies)."""
    return {c for w in known if w.get("scope") and "recipients" not in w["scope"]
            for c in w["scope"].get("categories", [])}


def _names() -> dict[str, str]:
    return {p.node_id: p.name for p in list_partners(request_session())}
