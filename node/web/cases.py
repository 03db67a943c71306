"""The case list (search, filters, pages), registering a case and changing it.

The list calls :func:`node.cases.search.search_cases` as ``GET /api/v1/cases`` does, with the query checked
by the API's :class:`~node.cases.schemas.SearchQuerySchema`; the partner filter is
:func:`node.exchange.worklist.partner_condition`. Registering and changing call the API's services with its
schemas. The case page, its print version and the export are in :mod:`.case_page`.
"""

from __future__ import annotations

import re
from typing import Any

import marshmallow as ma
from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from werkzeug.datastructures import MultiDict

from node.cases import search, services
from node.cases.assignees import assignable_users
from node.cases.models import Case
from node.cases.schemas import CaseCreateSchema, CasePatchSchema, SearchQuerySchema
from node.db import request_session
from node.errors import Conflict, ValidationFailed
from node.exchange.worklist import partner_choices, partner_condition

from . import case_page
from .case_labels import (
    CASE_STATUSES,
    config,
    country_options,
    form_version,
    now,
    options,
    stage_options,
    template_helpers,
    whole_numbers,
)
from .forms import form_errors as errors_of
from .forms import read_form, validated
from .guard import actor, permitted

PER_PAGE = 20
#: the list counts its matches up to this many (or to the end of the page asked for, if further): a search
#: matching most of 100,000 cases then says "more than 1,000" instead of counting them all on every page
COUNT_LIMIT = 1000
FILTERS = ("q", "stage", "status", "destination", "partner")
#: the fields of the returnee form that may be emptied (they become null); the others are required
NULLABLE = ("returnee.given_names_native", "returnee.family_name_native", "returnee.sex_or_gender",
            "returnee.nationality", "returnee.contact.phone", "returnee.contact.email", "returnee.contact.address",
            "returnee.contact.notes", "destination_locality", "destination_partner", "assigned_user_id", "team")
REQUIRED = ("returnee.given_names", "returnee.family_name", "returnee.date_of_birth", "destination_country")
_LANGUAGE_SPLIT = re.compile(r"[\s,;]+")


def make_blueprint() -> Blueprint:
    blp = Blueprint("web_cases", __name__)
    blp.context_processor(template_helpers)
    blp.add_url_rule("/cases", endpoint="case_list", view_func=case_list, methods=["GET"])
    blp.add_url_rule("/cases/new", endpoint="new_case", view_func=new_case, methods=["GET", "POST"])
    blp.add_url_rule("/cases/<case_id>", endpoint="case_page", view_func=case_page.case_page, methods=["GET"])
    blp.add_url_rule("/cases/<case_id>/edit", endpoint="edit_case", view_func=edit_case, methods=["GET", "POST"])
    blp.add_url_rule("/cases/<case_id>/print", endpoint="print_summary", view_func=case_page.print_summary,
                     methods=["GET"])
    blp.add_url_rule("/cases/<case_id>/export", endpoint="export", view_func=case_page.export, methods=["GET"])
    return blp


# --- the list ---------------------------------------------------------------------------------------------

@permitted("case.read")
def case_list() -> Any:
    values = {name: request.args.get(name, "").strip() for name in FILTERS}
    query = {name: value for name, value in values.items() if value and name != "partner"}
    if request.args.get("page"):
        query["page"] = request.args["page"]
    db = request_session()
    partners = partner_choices(db)
    errors: dict[str, list[str]] = {}
    result = None
    try:
        filters = SearchQuerySchema().load({**query, "per_page": PER_PAGE})
        extra, names = [], []
        if values["partner"]:
            if values["partner"] not in {node_id for node_id, _name in partners}:
                raise ValidationFailed("Unknown partner.", {"partner": ["Choose a partner from the list."]})
            extra, names = [partner_condition(values["partner"])], ["partner"]
        count_limit = max(COUNT_LIMIT, filters.get("page", 1) * PER_PAGE)
        result = search.search_cases(db, actor(), filters, stage_keys=config().stage_keys, now=now(),
                                     extra=extra, extra_names=names, count_limit=count_limit)
        db.commit()
    except (ma.ValidationError, ValidationFailed) as exc:
        db.rollback()
        errors = errors_of(exc)
    filtered = any(values.values())
    context = {"values": values, "errors": errors, "result": result, "filtered": filtered,
               "stages": dict(stage_options()), "statuses": CASE_STATUSES, "partners": partners,
               "countries": country_options(), "pages": _pages(result, values) if result else None}
    return render_template("cases/list.html", **context), 422 if errors else 200


def _pages(result: dict[str, Any], values: dict[str, str]) -> dict[str, Any]:
    """Where this page is among the results. With ``more`` (the count stopped at its limit) the number of pages
    is not known: the pager says "page N" and offers a next page."""
    page, per_page, total, more = result["page"], result["per_page"], result["total"], result["more"]
    kept: dict[str, Any] = {name: value for name, value in values.items() if value}
    last = max(1, (total + per_page - 1) // per_page)
    has_next = page < last or (more and len(result["items"]) == per_page)
    return {"first": (page - 1) * per_page + 1 if result["items"] else 0,
            "last": (page - 1) * per_page + len(result["items"]), "total": total, "more": more, "page": page,
            "pages": last, "several": more or last > 1,
            "first_url": url_for("web_cases.case_list", **kept),
            "previous": url_for("web_cases.case_list", **kept, page=page - 1) if page > 1 else None,
            "next": url_for("web_cases.case_list", **kept, page=page + 1) if has_next else None}


# --- registering and changing a case ----------------------------------------------------------------------

def _case_data(form: MultiDict[str, str], *, editing: bool) -> dict[str, Any]:
    """The form as the API's body: languages split into a list; when editing, an emptied optional field
    becomes null (cleared) and an emptied required one stays empty (refused by the schema)."""
    data = read_form(form, skip=("csrf_token", "version", "returnee.languages"))
    languages = [tag for tag in _LANGUAGE_SPLIT.split(form.get("returnee.languages", "")) if tag]
    if languages or (editing and "returnee.languages" in form):
        data.setdefault("returnee", {})["languages"] = languages
    if editing:
        for name in (*NULLABLE, *REQUIRED):
            if name in form and not form[name].strip():
                *parents, last = name.split(".")
                target = data
                for part in parents:
                    target = target.setdefault(part, {})
                target[last] = None if name in NULLABLE else ""
    return whole_numbers(data, "assigned_user_id")


def _case_form_context(values: dict[str, Any], errors: dict[str, list[str]], **more: Any) -> dict[str, Any]:
    db = request_session()
    return {"values": values, "errors": errors, "countries": country_options(), "partners": partner_choices(db),
            "statuses": options(CASE_STATUSES), **more}


@permitted("case.create")
def new_case() -> Any:
    errors: dict[str, list[str]] = {}
    values: dict[str, Any] = {}
    if request.method == "POST":
        values = request.form.to_dict()
        db = request_session()
        try:
            data = validated(CaseCreateSchema(), _case_data(request.form, editing=False))
            case = services.create_case(db, actor(), data, stages=config().stages, prefix=config().reference_prefix,
                                        now=now())
            db.commit()
        except (ma.ValidationError, ValidationFailed) as exc:
            db.rollback()
            errors = errors_of(exc)
        else:
            flash(_("Case %(ref)s registered.", ref=case.reference), "success")
            return redirect(url_for("web_cases.case_page", case_id=case.id))
    return render_template("cases/new.html", **_case_form_context(values, errors)), 422 if errors else 200


def case_values(case: Case) -> dict[str, Any]:
    """A case as the edit form's values."""
    values: dict[str, Any] = {f"returnee.{name}": getattr(case, name) for name in (
        "given_names", "family_name", "given_names_native", "family_name_native", "sex_or_gender", "nationality")}
    values.update({"returnee.date_of_birth": case.date_of_birth.isoformat(),
                   "returnee.languages": ", ".join(case.languages or []),
                   "returnee.contact.phone": case.phone, "returnee.contact.email": case.email,
                   "returnee.contact.address": case.address, "returnee.contact.notes": case.contact_notes,
                   "status": case.status, "destination_country": case.destination_country,
                   "destination_locality": case.destination_locality,
                   "destination_partner": case.destination_partner, "assigned_user_id": case.assigned_user_id,
                   "team": case.team, "version": case.version})
    return values


@permitted("case.update")
def edit_case(case_id: str) -> Any:
    db = request_session()
    errors: dict[str, list[str]] = {}
    saved = None
    status = 200
    case = services.get_case(db, actor(), case_id, now())
    values = case_values(case)
    if request.method == "POST":
        values = dict(request.form.to_dict())
        try:
            data = validated(CasePatchSchema(), _case_data(request.form, editing=True))
            case = services.update_case(db, actor(), case_id, data, form_version(request.form), now())
            db.commit()
        except (ma.ValidationError, ValidationFailed) as exc:
            db.rollback()
            errors, status = errors_of(exc), 422
        except Conflict:
            db.rollback()
            saved = services.get_case(db, actor(), case_id, now())
            db.commit()
            values["version"] = saved.version  # saving again applies what was typed over the saved version
            status = 409
        else:
            flash(_("Case %(ref)s saved.", ref=case.reference), "success")
            return redirect(url_for("web_cases.case_page", case_id=case.id))
    else:
        db.commit()
    people = assignable_users(db, actor())
    context = _case_form_context(values, errors, case=saved or case, saved=saved,
                                 assignees=[(p.user_id, f"{p.name} ({p.team})" if p.team else p.name) for p in people])
    return render_template("cases/edit.html", **context), status
