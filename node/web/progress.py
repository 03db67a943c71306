"""Working a case: recording progress (a note, stage changes, interventions, a meeting) with a preview of
exactly what will flow back to the organisation that handed the case over, and the case's progress so far.

The form is read into the body of ``POST /api/v1/cases/{id}/progress`` and checked with the API's
``ProgressCreateSchema``. "Preview" calls :func:`~node.exchange.handovers.progress.preview_progress` (nothing is
stored or sent) and shows the message as the origin will receive it, with the form's values carried in hidden
fields so that what is sent is what was shown; "Record and send" calls ``record_progress`` like the API.
The interventions pages are in :mod:`node.web.interventions`.
"""

from __future__ import annotations

import re
from typing import Any

import marshmallow as ma
import sqlalchemy as sa
from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from node.cases.access import case_for
from node.cases.models import Case
from node.cases.progress import interventions as case_interventions
from node.cases.stages import case_stages, titles_of
from node.db import request_session
from node.errors import ValidationFailed
from node.exchange.handovers.progress import (
    case_updates,
    from_accepted_handover,
    preview_progress,
    record_progress,
    update_deliveries,
)
from node.exchange.handovers.schemas import ProgressCreateSchema
from node.exchange.models import Partner
from protocol.messages import MEETING_KINDS

from . import interventions as intervention_pages
from .forms import form_errors, read_form, validated
from .guard import actor, permitted
from .intake import clock_now, local_time_to_iso, node_identity
from .intake_summary import HELPERS, LABELS, options

_INDEXED = re.compile(r"^(stage_changes|interventions|meetings)\.(\d+)(\.|$)")


def make_blueprint() -> Blueprint:
    blp = Blueprint("web_progress", __name__)
    blp.add_url_rule("/cases/<case_id>/progress", endpoint="record", view_func=record, methods=["GET", "POST"])
    blp.add_url_rule("/cases/<case_id>/interventions", endpoint="interventions",
                     view_func=intervention_pages.interventions, methods=["GET", "POST"])
    blp.add_url_rule("/cases/<case_id>/interventions/<intervention_id>", endpoint="intervention",
                     view_func=intervention_pages.intervention, methods=["GET", "POST"])
    return blp


def _rows(data: dict[str, Any], name: str, keep: Any) -> list[int]:
    """Drop the list ``name``'s rows the user left empty; returns the form indexes of the rows kept."""
    items = data.get(name) or []
    if isinstance(items, dict):  # indexes with gaps stay a dict: order them
        items = [items[k] for k in sorted(items, key=int)]
    kept = [i for i, item in enumerate(items) if isinstance(item, dict) and keep(item)]
    if kept:
        data[name] = [items[i] for i in kept]
    else:
        data.pop(name, None)
    return kept


def progress_data(form: Any) -> tuple[dict[str, Any], dict[str, list[int]]]:
    """The API body from the progress form, without its empty rows, and each list's form indexes (to put the
    schema's messages back on the right row)."""
    data = read_form(form, skip=("csrf_token", "action"))
    kept = {
        "stage_changes": _rows(data, "stage_changes", lambda row: row.get("status") or row.get("note")),
        "interventions": _rows(data, "interventions", lambda row: set(row) - {"id"}),
        "meetings": _rows(data, "meetings", lambda row: bool(row)),
    }
    for meeting in data.get("meetings", []):
        if "at" in meeting:
            meeting["at"] = local_time_to_iso(meeting["at"])
    return data, kept


def on_form_rows(errors: dict[str, list[str]], kept: dict[str, list[int]]) -> dict[str, list[str]]:
    """Messages keyed by the body's list indexes, re-keyed by the form's."""
    moved: dict[str, list[str]] = {}
    for key, messages in errors.items():
        found = _INDEXED.match(key)
        if found and int(found.group(2)) < len(kept[found.group(1)]):
            index = kept[found.group(1)][int(found.group(2))]
            key = f"{found.group(1)}.{index}{key[found.end(2):]}"
        moved.setdefault(key, []).extend(messages)
    return moved


def _origin_name(node_id: str) -> str:
    name = request_session().scalar(sa.select(Partner.name).where(Partner.node_id == node_id))
    return name or node_id


def _page(case: Case, *, values: dict[str, Any], errors: dict[str, list[str]], preview: dict[str, Any] | None,
          status: int) -> Any:
    db = request_session()
    config = current_app.extensions["ccm"].config
    titles = titles_of(config.stages)
    stages = [{"key": s.stage_key, "title": titles.get(s.stage_key, s.stage_key), "status": s.status}
              for s in case_stages(db, case.id)]
    existing = case_interventions(db, case.id)
    updates = case_updates(db, actor(), case.id, clock_now())
    deliveries = update_deliveries(db, updates)
    handover = from_accepted_handover(db, case.id)
    origin = _origin_name(handover.partner_node) if handover is not None else None
    db.commit()
    return render_template(
        "progress/record.html", case=case, stages=stages, existing=existing, updates=updates,
        deliveries=deliveries, origin=origin, values=values, errors=errors, preview=preview,
        hidden=[(k, v) for k, v in request.form.items(multi=True) if k not in ("csrf_token", "action")],
        new_index=len(existing), status_options=options(LABELS["stage_statuses"]),
        kind_options=options(LABELS["kinds"]), intervention_status_options=options(LABELS["intervention_statuses"]),
        meeting_options=options(LABELS["meetings"], MEETING_KINDS), titles=titles, **HELPERS), status


@permitted("progress.write")
def record(case_id: str) -> Any:
    db = request_session()
    case = case_for(db, actor(), case_id, "progress.write")
    if request.method == "GET":
        return _page(case, values={}, errors={}, preview=None, status=200)
    values = request.form.to_dict()
    action = request.form.get("action", "preview")
    data, kept = progress_data(request.form)
    try:
        body = validated(ProgressCreateSchema(), data)
        if action == "send":
            node = node_identity()
            result = record_progress(db, actor(), case.id, body, keys=node.keys, now=clock_now(), boxes=node.boxes)
            db.commit()
        elif action == "preview":
            preview = preview_progress(db, actor(), case.id, body, now=clock_now())
            db.rollback()  # nothing to keep: the preview stores nothing
            return _page(case, values=values, errors={}, preview=preview, status=200)
        else:  # "change": back to the form, everything kept
            return _page(case, values=values, errors={}, preview=None, status=200)
    except (ma.ValidationError, ValidationFailed) as exc:
        db.rollback()
        return _page(case, values=values, errors=on_form_rows(form_errors(exc), kept), preview=None, status=422)
    if result.get("shared_with"):
        flash(_("Progress recorded and queued for %(origin)s.", origin=_origin_name(result["shared_with"])),
              "success")
    elif result.get("not_shared") and from_accepted_handover(db, case.id) is not None:
        flash(_("Progress recorded here, but not sent to the origin: %(why)s", why=_(result["not_shared"])),
              "warning")
    else:
        flash(_("Progress recorded. This case came from no handover: nothing is sent anywhere."), "success")
    return redirect(url_for("web_progress.record", case_id=case.id))
