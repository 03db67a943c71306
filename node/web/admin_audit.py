"""The node admin's audit log: entries newest first, filtered by actor, action, case reference and time, paged;
and "Verify the chain", which checks the whole hash chain (``node.audit.verify_chain``) and is itself audited.

The page shows each entry's own columns (sequence, time, actor, action, object, source address) and never a
case's data: a case reference typed in the filter is mapped to the case's id here, and only entries are shown.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from flask import Blueprint, current_app, render_template, request, url_for
from flask_babel import lazy_gettext as _l

from node.audit import ACTIONS
from node.audit_search import AuditFilters, search_audit, verify_recorded
from node.cases.access import find_case
from node.db import request_session

from .guard import actor, permitted

PERMISSION = "audit.verify"
_USERNAME = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_REFERENCE = re.compile(r"^[A-Za-z0-9-]{1,32}$")

#: a problem's kind, as the page says it
PROBLEMS = {
    "edited": _l("Entry %(seq)s was changed after it was written: its content no longer matches its hash."),
    "deleted": _l("Entries are missing from number %(seq)s on: they were deleted."),
    "reordered": _l("Entry %(seq)s does not link to the entry before it: entries were reordered or replaced."),
    "truncated": _l("Entries are missing at the end, from number %(seq)s on: they were deleted."),
}


def make_blueprint() -> Blueprint:
    blp = Blueprint("web_admin_audit", __name__)
    blp.add_url_rule("/admin/audit", endpoint="audit_log", view_func=audit_log, methods=["GET"])
    blp.add_url_rule("/admin/audit/verify", endpoint="verify", view_func=verify, methods=["POST"])
    return blp


def _day_start(value: str, zone: ZoneInfo) -> dt.datetime:
    return dt.datetime.combine(dt.date.fromisoformat(value), dt.time(), tzinfo=zone).astimezone(dt.UTC)


def read_filters(args: Any) -> tuple[dict[str, str], AuditFilters, dict[str, list[str]]]:
    """The filter form's values, the filters they mean, and field messages for what is not valid."""
    values = {key: args.get(key, "").strip() for key in ("actor", "action", "case", "from", "to")}
    errors: dict[str, list[str]] = {}
    zone = ZoneInfo(current_app.extensions["ccm"].config.timezone)
    if values["actor"] and not _USERNAME.fullmatch(values["actor"]):
        errors["actor"] = [str(_l("Enter a username as it is written, e.g. anna.lindqvist."))]
    if values["action"] and values["action"] not in ACTIONS:
        errors["action"] = [str(_l("Choose one of the actions."))]
    times: dict[str, dt.datetime] = {}
    for key in ("from", "to"):
        if values[key]:
            try:
                times[key] = _day_start(values[key], zone)
            except ValueError:
                errors[key] = [str(_l("Enter a date like 2026-12-31."))]
    if "from" in times and "to" in times and times["to"] < times["from"]:
        errors["to"] = [str(_l("The end date must not be before the start date."))]
    case_id = None
    if values["case"] and "case" not in errors:
        case = find_case(request_session(), values["case"]) if _REFERENCE.fullmatch(values["case"]) else None
        if case is None:
            errors["case"] = [str(_l("No case with this reference on this node."))]
        else:
            case_id = case.id
    filters = AuditFilters(actor=values["actor"].lower() or None, action=values["action"] or None, case_id=case_id,
                           since=times.get("from"), until=times["to"] + dt.timedelta(days=1) if "to" in times else None)
    return values, filters, errors


def _page_number(value: str | None) -> int:
    return int(value) if value and value.isdigit() and len(value) < 7 else 1


@permitted(PERMISSION)
def audit_log() -> Any:
    values, filters, errors = read_filters(request.args)
    db = request_session()
    found = None if errors else search_audit(db, filters, _page_number(request.args.get("page")))
    db.rollback()
    kept = {key: value for key, value in values.items() if value}

    def page_url(page: int) -> str:
        return url_for("web_admin_audit.audit_log") + "?" + urlencode({**kept, "page": page})

    return render_template("admin/audit_log.html", values=values, errors=errors, found=found,
                           actions=sorted(ACTIONS), page_url=page_url, filtered=bool(kept)), 422 if errors else 200


@permitted(PERMISSION)
def verify() -> Any:
    db = request_session()
    count, problems = verify_recorded(db, actor(), current_app.extensions["ccm"].clock.now())
    db.commit()
    described = [{"seq": p.seq, "kind": p.kind, "text": str(PROBLEMS.get(p.kind, PROBLEMS["edited"])) % {"seq": p.seq}}
                 for p in problems]
    return render_template("admin/audit_verify.html", count=count, problems=described)
