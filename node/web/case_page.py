"""The case page (overview, 8-stage tracker, plan timeline, intake, household, handovers, partner progress,
case timeline), its printable summary, and the subject-access export as a download.

Every part is read with the service the JSON API uses for it (each an audited read, as through the API);
the page only arranges them. :func:`plan_points` turns the plan into the points of the visual timeline.
"""

from __future__ import annotations

import datetime as dt
import json
from datetime import timedelta
from typing import Any

import flask_babel
from flask import Response, render_template
from flask_babel import gettext as _

from node.cases import services
from node.cases.sections import get_plan, list_intake
from node.cases.stages import list_stages
from node.cases.timeline import get_timeline
from node.db import request_session
from node.exchange.chain.schemas import SubjectExportOut
from node.exchange.chain.subject_access import subject_export
from node.exchange.handovers.progress import case_updates
from node.exchange.handovers.status import case_handovers
from node.exchange.worklist import partner_choices

from .case_labels import config, now
from .guard import actor, permitted

#: the case page shows the newest events; the print summary shows them all
PAGE_EVENTS = 30



def filled(section: dict[str, Any]) -> bool:
    """Whether anything is written in an intake section."""
    return any(value not in (None, "", []) for key, value in section.items()
               if key not in ("section", "updated_at", "version"))


def plan_points(start: dt.date, plan: dict[str, Any], today: dt.date, rtl: bool) -> dict[str, Any]:
    """The plan as points on a line from its first to its last date: the start (the case's opening), each
    dated milestone, the return date and today, in date order, each with its place (``x``, 0-1000 across the
    drawing, mirrored for right-to-left pages) and state. Milestones without a date are listed apart."""
    points: list[dict[str, Any]] = [{"kind": "start", "date": start, "title": _("Case opened")}]
    for item in plan["milestones"]:
        if item.get("due_date"):
            state = "done" if item.get("done") else ("overdue" if item["due_date"] < today else "open")
            points.append({"kind": "milestone", "date": item["due_date"], "title": item["title"], "state": state})
    if plan.get("end_date"):
        points.append({"kind": "return", "date": plan["end_date"], "title": _("Return date")})
    points.append({"kind": "today", "date": today, "title": _("Today")})
    order = {"start": 0, "milestone": 1, "today": 2, "return": 3}
    points.sort(key=lambda p: (p["date"], order[p["kind"]]))
    first, last = points[0]["date"], points[-1]["date"]
    span = max((last - first).days, 1)
    for point in points:
        share = (point["date"] - first).days / span
        place = 40 + round(share * 920)
        point["x"] = 1000 - place if rtl else place
    undated = [item for item in plan["milestones"] if not item.get("due_date")]
    return {"points": points, "undated": undated, "first": first, "last": last}


def _gather(case_id: str, *, all_events: bool = False) -> dict[str, Any]:
    db = request_session()
    who, when = actor(), now()
    case = services.get_case(db, who, case_id, when)
    stages = list_stages(db, who, case_id, config().stages, when)
    plan = get_plan(db, who, case_id, when)
    intake = list_intake(db, who, case_id, when)
    household = services.list_household(db, who, case_id, when)
    handovers = case_handovers(db, who, case_id, when)
    updates = case_updates(db, who, case_id, when)
    events = get_timeline(db, who, case_id, when)["items"]
    partners = dict(partner_choices(db))
    db.commit()
    events.reverse()  # newest first
    locale = flask_babel.get_locale()
    rtl = locale is not None and locale.text_direction == "rtl"
    done = sum(1 for s in stages if s["status"] in ("done", "not_applicable"))
    return {"case": case, "stages": stages, "stages_done": done, "plan": plan,
            "timeline": plan_points(case.created_at.date(), plan, when.date(), rtl),
            "intake": [{**s, "filled": filled(s)} for s in intake], "household": household,
            "handovers": handovers, "updates": updates,
            "events": events if all_events else events[:PAGE_EVENTS], "event_count": len(events),
            "partners": partners, "today": when.date()}


@permitted("case.read")
def case_page(case_id: str) -> Any:
    return render_template("cases/page.html", **_gather(case_id))


@permitted("case.read")
def print_summary(case_id: str) -> Any:
    return render_template("cases/print.html", **_gather(case_id, all_events=True))


@permitted("case.export")
def export(case_id: str) -> Response:
    """The subject-access export (as ``GET /api/v1/cases/{id}/export`` answers it) as a JSON file."""
    db = request_session()
    document = subject_export(db, actor(), case_id, config().stages, now(),
                              timedelta(hours=config().erasure_confirm_hours))
    db.commit()
    body = json.dumps(SubjectExportOut().dump(document), ensure_ascii=False, indent=2, sort_keys=True)
    filename = f"{document['case'].reference}-subject-access-export.json"
    return Response(body, mimetype="application/json",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})
