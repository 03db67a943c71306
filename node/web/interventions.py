"""A case's interventions in the browser: the list with a form to add one, and one intervention to change.

Registered by :mod:`node.web.progress` (endpoints ``web_progress.interventions`` and
``web_progress.intervention``). The views call ``node.cases.progress`` with the API's schemas
(``InterventionCreateSchema``, ``InterventionPatchSchema``). The change form carries the version it was read
at; a stale one answers 409 showing the saved intervention beside what was typed, so that nothing is lost.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import marshmallow as ma
from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from node.cases import progress
from node.cases.access import case_for
from node.cases.models import INTERVENTION_KINDS, INTERVENTION_STATUSES, Case, Intervention
from node.cases.schemas import InterventionCreateSchema, InterventionPatchSchema
from node.concurrency import expected_from
from node.db import request_session
from node.errors import Conflict, ValidationFailed

from .forms import form_errors, read_form, validated
from .guard import actor, permitted
from .intake import clock_now
from .intake_summary import HELPERS, LABELS, options, word

#: the fields a change form may empty (sent as null, so that emptying a field clears it)
CLEARABLE = ("provider", "start_date", "end_date", "amount", "currency", "notes")


def form_values(item: Intervention) -> dict[str, Any]:
    """An intervention as the form's values."""
    amount = None if item.amount_cents is None else f"{Decimal(item.amount_cents).scaleb(-2):.2f}"
    return {"kind": item.kind, "status": item.status, "provider": item.provider,
            "start_date": item.start_date.isoformat() if item.start_date else None,
            "end_date": item.end_date.isoformat() if item.end_date else None, "amount": amount,
            "currency": item.currency, "notes": item.notes, "version": str(item.version)}


def _choices() -> dict[str, Any]:
    return {"kind_options": options(LABELS["kinds"], INTERVENTION_KINDS),
            "status_options": options(LABELS["intervention_statuses"], INTERVENTION_STATUSES), **HELPERS}


def _list_page(case: Case, values: dict[str, Any], errors: dict[str, list[str]], status: int) -> Any:
    db = request_session()
    items = progress.list_interventions(db, actor(), case.id, clock_now())
    shown = [{"item": i, "amount": form_values(i)["amount"]} for i in items]
    db.commit()
    return render_template("progress/interventions.html", case=case, items=shown, values=values, errors=errors,
                           **_choices()), status


@permitted("case.read")
def interventions(case_id: str) -> Any:
    db = request_session()
    case = case_for(db, actor(), case_id, "case.read")
    if request.method == "GET":
        return _list_page(case, {"status": "proposed"}, {}, 200)
    values = request.form.to_dict()
    try:
        item = progress.create_intervention(db, actor(), case.id,
                                            validated(InterventionCreateSchema(), read_form(request.form)),
                                            clock_now())
        db.commit()
    except (ma.ValidationError, ValidationFailed) as exc:
        db.rollback()
        return _list_page(case, values, form_errors(exc), 422)
    flash(_("Intervention added: %(kind)s.", kind=word(LABELS["kinds"], item.kind)), "success")
    return redirect(url_for("web_progress.interventions", case_id=case.id))


def _change_data(form: Any) -> dict[str, Any]:
    data = read_form(form)
    for name in CLEARABLE:
        if name in form and name not in data:
            data[name] = None
    if str(data.get("version", "")).isdigit():  # the API's field takes a JSON number
        data["version"] = int(data["version"])
    return data


@permitted("case.read")
def intervention(case_id: str, intervention_id: str) -> Any:
    db = request_session()
    case = case_for(db, actor(), case_id, "case.read")
    item = progress.get_intervention(db, actor(), case.id, intervention_id, clock_now())
    db.commit()
    if request.method == "GET":
        return _edit_page(case, item, form_values(item), {}, None, 200)
    values = request.form.to_dict()
    try:
        data = validated(InterventionPatchSchema(), _change_data(request.form))
        expected = expected_from(None, data.pop("version", None))
        changed = progress.update_intervention(db, actor(), case.id, item.id, data, expected, clock_now())
        db.commit()
    except (ma.ValidationError, ValidationFailed) as exc:
        db.rollback()
        return _edit_page(case, item, values, form_errors(exc), None, 422)
    except Conflict:
        db.rollback()
        saved = progress.get_intervention(db, actor(), case.id, intervention_id, clock_now())
        db.commit()
        values["version"] = str(saved.version)  # sending again applies what was typed over the saved version
        return _edit_page(case, saved, values, {}, form_values(saved), 409)
    flash(_("Intervention saved: %(kind)s.", kind=word(LABELS["kinds"], changed.kind)), "success")
    return redirect(url_for("web_progress.interventions", case_id=case.id))


def _edit_page(case: Case, item: Intervention, values: dict[str, Any], errors: dict[str, list[str]],
               saved: dict[str, Any] | None, status: int) -> Any:
    return render_template("progress/intervention.html", case=case, item=item, values=values, errors=errors,
                           saved=saved, **_choices()), status
