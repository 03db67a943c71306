"""The individual plan (return date and milestones, shown as a timeline on the case page) and one stage of the
case (advance it with a note).

Saving calls :func:`node.cases.sections.write_plan` and :func:`node.cases.stages.update_stage`, as the API's
``PUT /cases/{id}/plan`` and ``PATCH /cases/{id}/stages/{key}`` do, with their schemas and the version the
page was rendered from. Milestones are repeated rows (the saved ones plus :data:`EMPTY_ROWS` empty ones): an
empty row is left out, so no JavaScript is needed to add one.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import marshmallow as ma
from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from werkzeug.datastructures import MultiDict

from node.cases import services
from node.cases.schemas import PlanSchema, StagePatchSchema
from node.cases.sections import get_plan, write_plan
from node.cases.stages import get_stage, list_stages, update_stage
from node.db import request_session
from node.errors import Conflict, NotFound, ValidationFailed

from .case_labels import RESPONSIBLE, STAGE_STATUSES, config, form_version, now, options, template_helpers
from .forms import form_errors, read_form, validated
from .guard import actor, permitted

EMPTY_ROWS = 3
MAX_ROWS = 100
_ROW = re.compile(r"milestones\.(\d{1,3})\.(title|due_date|done)")


def make_blueprint() -> Blueprint:
    blp = Blueprint("web_plan", __name__)
    blp.context_processor(template_helpers)
    blp.add_url_rule("/cases/<case_id>/plan", endpoint="plan", view_func=plan, methods=["GET", "POST"])
    blp.add_url_rule("/cases/<case_id>/stages/<key>", endpoint="stage", view_func=stage, methods=["GET", "POST"])
    return blp


# --- the plan ---------------------------------------------------------------------------------------------

def milestone_rows(form: MultiDict[str, str]) -> list[dict[str, Any]]:
    """The milestone rows of the form in order, without the empty ones (as typed: strings, done a flag)."""
    rows: dict[int, dict[str, Any]] = {}
    for key in form:
        match = _ROW.fullmatch(key)
        if match:
            row = rows.setdefault(int(match.group(1)), {})
            row[match.group(2)] = True if match.group(2) == "done" else form[key].strip()
    kept = [rows[i] for i in sorted(rows) if rows[i].get("title") or rows[i].get("due_date")]
    return kept[:MAX_ROWS + 1]  # one over the limit, for the schema to refuse


def plan_data(form: MultiDict[str, str], rows: list[dict[str, Any]]) -> dict[str, Any]:
    data = read_form(form, skip=("csrf_token", "version", *(k for k in form if k.startswith("milestones."))))
    data["milestones"] = [{"title": row.get("title", ""), **({"due_date": row["due_date"]} if row.get("due_date")
                                                             else {}), "done": bool(row.get("done"))}
                          for row in rows]
    return data


def plan_values(end_date: Any, rows: list[dict[str, Any]], version: int) -> dict[str, Any]:
    """The plan form's values: the rows renumbered from 0 (so that an error on ``milestones.1.title`` is
    shown on the second row shown), then the empty rows."""
    values: dict[str, Any] = {"end_date": end_date, "version": version, "rows": len(rows) + EMPTY_ROWS}
    for i, row in enumerate(rows):
        due = row.get("due_date")
        values.update({f"milestones.{i}.title": row.get("title", ""),
                       f"milestones.{i}.due_date": due.isoformat() if isinstance(due, dt.date) else due,
                       f"milestones.{i}.done": bool(row.get("done"))})
    return values


@permitted("case.read")
def plan(case_id: str) -> Any:
    db = request_session()
    case = services.get_case(db, actor(), case_id, now())
    stored = get_plan(db, actor(), case_id, now())
    errors: dict[str, list[str]] = {}
    saved = None
    status = 200
    end = stored["end_date"].isoformat() if stored["end_date"] else None
    values = plan_values(end, stored["milestones"], stored["version"])
    if request.method == "POST":
        rows = milestone_rows(request.form)
        values = plan_values(request.form.get("end_date", ""), rows, 0)
        values["version"] = request.form.get("version", "")
        try:
            data = validated(PlanSchema(), plan_data(request.form, rows))
            write_plan(db, actor(), case_id, data, form_version(request.form), now())
            db.commit()
        except (ma.ValidationError, ValidationFailed) as exc:
            db.rollback()
            errors, status = form_errors(exc), 422
        except Conflict:
            db.rollback()
            saved = get_plan(db, actor(), case_id, now())
            values["version"] = saved["version"]
            status = 409
        else:
            flash(_("The plan is saved."), "success")
            return redirect(url_for("web_cases.case_page", case_id=case_id) + "#plan-title")
    db.commit()
    return render_template("plan/plan.html", case=case, values=values, errors=errors, saved=saved), status


# --- a stage ----------------------------------------------------------------------------------------------

def stage_values(item: dict[str, Any]) -> dict[str, Any]:
    return {"status": item["status"], "responsible": item["responsible"], "notes": item["notes"],
            "started_on": item["started_on"].isoformat() if item["started_on"] else None,
            "completed_on": item["completed_on"].isoformat() if item["completed_on"] else None,
            "version": item["version"]}


def stage_data(form: MultiDict[str, str]) -> dict[str, Any]:
    data = read_form(form, skip=("csrf_token", "version"))
    for name in ("notes", "started_on", "completed_on"):
        if name in form and not form[name].strip():
            data[name] = None
    return data


@permitted("case.read")
def stage(case_id: str, key: str) -> Any:
    if key not in config().stage_keys:
        raise NotFound("No such stage.")
    db = request_session()
    stages = config().stages
    case = services.get_case(db, actor(), case_id, now())
    current = get_stage(db, actor(), case_id, key, stages, now())
    errors: dict[str, list[str]] = {}
    saved = None
    status = 200
    values = stage_values(current)
    if request.method == "POST":
        values = request.form.to_dict()
        try:
            data = validated(StagePatchSchema(), stage_data(request.form))
            update_stage(db, actor(), case_id, key, data, form_version(request.form), stages, now())
            db.commit()
        except (ma.ValidationError, ValidationFailed) as exc:
            db.rollback()
            errors, status = form_errors(exc), 422
        except Conflict:
            db.rollback()
            saved = get_stage(db, actor(), case_id, key, stages, now())
            values["version"] = saved["version"]
            status = 409
        else:
            flash(_("Stage “%(stage)s” saved.", stage=current["title"]), "success")
            return redirect(url_for("web_cases.case_page", case_id=case_id) + "#stages-title")
    all_stages = list_stages(db, actor(), case_id, stages, now())
    db.commit()
    position = config().stage_keys.index(key)
    context = {"case": case, "stage": saved or current, "values": values, "errors": errors, "saved": saved,
               "stages": all_stages, "position": position + 1, "count": len(stages),
               "status_options": options(STAGE_STATUSES), "responsible_options": options(RESPONSIBLE)}
    return render_template("plan/stage.html", **context), status
