"""The intake in sections (household and family, health, background, education, work experience, wishes, work
after return), each its own form saved on its own, and the household members (list, add, change, remove).

Each save calls the API's service (:func:`node.cases.sections.write_intake_section`,
:func:`node.cases.services.add_member` / ``update_member`` / ``remove_member``) with the API's schema and the
version the page was rendered from; a stale version re-renders the form with what was typed and the saved
version side by side (409).
"""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from werkzeug.datastructures import MultiDict

from node.cases import services
from node.cases.models import INTAKE_SECTIONS, HouseholdMember
from node.cases.schemas import HouseholdMemberSchema, HouseholdPatchSchema, IntakeSectionSchema
from node.cases.sections import SECTION_FIELDS, get_intake_section, list_intake, write_intake_section
from node.db import request_session
from node.errors import Conflict, NotFound, ValidationFailed

from .case_labels import (
    EDUCATION_LEVELS,
    MARITAL_STATUSES,
    RELATIONS,
    SECTION_TITLES,
    form_version,
    now,
    options,
    template_helpers,
    whole_numbers,
)
from .case_page import filled
from .forms import form_errors, read_form, validated
from .guard import actor, permitted

LIST_FIELDS = ("occupations", "skills")
MEMBER_FIELDS = ("relation", "given_names", "family_name", "date_of_birth")


def make_blueprint() -> Blueprint:
    blp = Blueprint("web_intake_sections", __name__)
    blp.context_processor(template_helpers)
    blp.add_url_rule("/cases/<case_id>/intake/<section>", endpoint="section", view_func=section,
                     methods=["GET", "POST"])
    blp.add_url_rule("/cases/<case_id>/household", endpoint="household", view_func=household,
                     methods=["GET", "POST"])
    return blp


# --- intake sections --------------------------------------------------------------------------------------

def section_data(name: str, form: MultiDict[str, str]) -> dict[str, Any]:
    """The section's form as the API's body: lists one item a line, whole numbers as numbers."""
    data = read_form(form, skip=("csrf_token", "version", "then", *LIST_FIELDS))
    for field in LIST_FIELDS:
        if field in SECTION_FIELDS[name]:
            data[field] = [line.strip() for line in form.get(field, "").splitlines() if line.strip()]
    return whole_numbers(data, "number_of_children", "education_level")


def section_values(stored: dict[str, Any]) -> dict[str, Any]:
    """A stored section as the form's values."""
    values = {key: value for key, value in stored.items() if key not in LIST_FIELDS}
    values.update({field: "\n".join(stored[field]) for field in LIST_FIELDS if field in stored})
    return values


@permitted("case.read")
def section(case_id: str, section: str) -> Any:
    if section not in INTAKE_SECTIONS:
        raise NotFound("No such intake section.")
    db = request_session()
    case = services.get_case(db, actor(), case_id, now())
    stored = get_intake_section(db, actor(), case_id, section, now())
    errors: dict[str, list[str]] = {}
    saved = None
    status = 200
    values = section_values(stored)
    if request.method == "POST":
        values = request.form.to_dict()
        try:
            data = validated(IntakeSectionSchema(), section_data(section, request.form))
            write_intake_section(db, actor(), case_id, section, data, form_version(request.form), now())
            db.commit()
        except (ma.ValidationError, ValidationFailed) as exc:
            db.rollback()
            errors, status = form_errors(exc), 422
        except Conflict:
            db.rollback()
            saved = get_intake_section(db, actor(), case_id, section, now())
            values["version"] = saved["version"]
            status = 409
        else:
            flash(_("%(section)s saved.", section=SECTION_TITLES[section]), "success")
            position = INTAKE_SECTIONS.index(section)
            if request.form.get("then") == "next" and position + 1 < len(INTAKE_SECTIONS):
                return redirect(url_for(".section", case_id=case_id, section=INTAKE_SECTIONS[position + 1]))
            return redirect(url_for("web_cases.case_page", case_id=case_id) + "#intake-title")
    sections = [{"section": s["section"], "filled": filled(s)} for s in list_intake(db, actor(), case_id, now())]
    db.commit()
    position = INTAKE_SECTIONS.index(section)
    context = {"case": case, "section": section, "fields": SECTION_FIELDS[section], "values": values,
               "errors": errors, "saved": section_values(saved) if saved else None, "sections": sections,
               "next_section": INTAKE_SECTIONS[position + 1] if position + 1 < len(INTAKE_SECTIONS) else None,
               "marital_options": options(MARITAL_STATUSES), "education_options": options(EDUCATION_LEVELS)}
    return render_template("cases/intake_section.html", **context), status


# --- household members ------------------------------------------------------------------------------------

def member_data(form: MultiDict[str, str], *, editing: bool) -> dict[str, Any]:
    data = read_form(form, skip=("csrf_token", "version", "action", "member_id"), flags=("travelling",))
    if editing:
        for name in ("given_names", "family_name", "date_of_birth"):
            if name in form and not form[name].strip():
                data[name] = None
    return data


def member_values(member: HouseholdMember) -> dict[str, Any]:
    return {"relation": member.relation, "given_names": member.given_names, "family_name": member.family_name,
            "date_of_birth": member.date_of_birth.isoformat() if member.date_of_birth else None,
            "travelling": member.travelling, "version": member.version, "member_id": member.id}


@permitted("case.read")
def household(case_id: str) -> Any:
    db = request_session()
    who = actor()
    case = services.get_case(db, who, case_id, now())
    errors: dict[str, list[str]] = {}
    status = 200
    action = request.form.get("action", "")
    editing = request.args.get("member") or (request.form.get("member_id") if action == "update" else None)
    values: dict[str, Any] = {}
    saved = None
    if request.method == "POST":
        values = dict(request.form.to_dict())
        member_id = request.form.get("member_id", "")
        try:
            if action == "add":
                services.add_member(db, who, case_id, validated(HouseholdMemberSchema(),
                                                                member_data(request.form, editing=False)), now())
                message = _("Household member added.")
            elif action == "update":
                services.update_member(db, who, case_id, member_id, validated(
                    HouseholdPatchSchema(), member_data(request.form, editing=True)), form_version(request.form),
                    now())
                message = _("Household member changed.")
            elif action == "remove":
                services.remove_member(db, who, case_id, member_id, form_version(request.form), now())
                message = _("Household member removed.")
            else:
                raise ValidationFailed("Unknown action.", {"_form": ["Use the buttons on the page."]})
            db.commit()
        except (ma.ValidationError, ValidationFailed) as exc:
            db.rollback()
            errors, status = form_errors(exc), 422
        except Conflict:
            db.rollback()
            status = 409
            saved = _fresh_member(db, case_id, member_id)
            if saved is not None and action == "update":
                values["version"] = saved.version
        else:
            flash(message, "success")
            return redirect(url_for(".household", case_id=case_id))
    members = services.list_household(db, who, case_id, now())
    db.commit()
    current = next((m for m in members if m.id == editing), None)
    if editing and current is None and request.method == "GET":
        raise NotFound("No such household member.")
    if current is not None and request.method == "GET":
        values = member_values(current)
    context = {"case": case, "members": members, "values": values, "errors": errors, "editing": current,
               "action": action, "saved": saved, "relation_options": options(RELATIONS)}
    return render_template("cases/household.html", **context), status


def _fresh_member(db: Any, case_id: str, member_id: str) -> HouseholdMember | None:
    members = services.list_household(db, actor(), case_id, now())
    db.commit()
    return next((m for m in members if m.id == member_id), None)
