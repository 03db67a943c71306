"""Words for the case pages: the translated names of statuses, sections, relations and timeline events, the
country names in the page's language, and the small form helpers the case, intake and plan pages share.

Stored values stay codes (``in_progress``, ``IQ``); only their display goes through here, so the four
catalogues translate each word once.
"""

from __future__ import annotations

from typing import Any

import flask_babel
from flask import current_app
from flask_babel import lazy_gettext as _l

from node.cases.codes import COUNTRY_CODES
from node.concurrency import Expected, expected_from

CASE_STATUSES = {"open": _l("Open"), "handed_over": _l("Handed over"), "in_reintegration": _l("In reintegration"),
                 "closed": _l("Closed")}
STAGE_STATUSES = {"not_started": _l("Not started"), "in_progress": _l("In progress"), "done": _l("Done"),
                  "not_applicable": _l("Not applicable")}
#: the badge (colour) of each stage status; the word is always shown with it
STAGE_BADGES = {"not_started": "", "in_progress": "badge--info", "done": "badge--ok", "not_applicable": ""}
RESPONSIBLE = {"origin": _l("Sending organisation"), "destination": _l("Receiving organisation"),
               "returnee": _l("The returnee"), "shared": _l("Shared")}
SECTION_TITLES = {"family": _l("Household and family"), "health": _l("Health"), "background": _l("Background"),
                  "education": _l("Education"), "work": _l("Work experience"),
                  "wishes": _l("Thoughts and wishes for the future"), "future_work": _l("Work after return")}
MARITAL_STATUSES = {"single": _l("Single"), "married": _l("Married"), "partnership": _l("Registered partnership"),
                    "separated": _l("Separated"), "divorced": _l("Divorced"), "widowed": _l("Widowed"),
                    "other": _l("Other")}
RELATIONS = {"spouse": _l("Spouse"), "partner": _l("Partner"), "child": _l("Child"), "parent": _l("Parent"),
             "sibling": _l("Brother or sister"), "grandparent": _l("Grandparent"), "grandchild": _l("Grandchild"),
             "other_relative": _l("Other relative"), "other": _l("Other")}
EDUCATION_LEVELS = {0: _l("Early childhood education"), 1: _l("Primary education"),
                    2: _l("Lower secondary education"), 3: _l("Upper secondary education"),
                    4: _l("Post-secondary non-tertiary education"), 5: _l("Short-cycle tertiary education"),
                    6: _l("Bachelor's or equivalent"), 7: _l("Master's or equivalent"),
                    8: _l("Doctoral or equivalent")}
HANDOVER_STATUSES = {"pending": _l("Waiting"), "queued": _l("Queued for delivery"), "delivered": _l("Delivered"),
                     "parked": _l("Delivery paused"), "undeliverable": _l("Could not be delivered"),
                     "accepted": _l("Accepted"), "declined": _l("Declined"), "revoked": _l("Revoked")}
HANDOVER_BADGES = {"accepted": "badge--ok", "declined": "badge--bad", "undeliverable": "badge--bad",
                   "parked": "badge--warn", "delivered": "badge--info", "revoked": "badge--warn"}
EVENTS = {
    "case.created": _l("Case registered"), "case.updated": _l("Case details changed"),
    "case.status_changed": _l("Case status changed"), "case.closed": _l("Case closed"),
    "intake.updated": _l("Intake section saved"), "plan.updated": _l("Plan changed"),
    "stage.updated": _l("Stage updated"), "household.added": _l("Household member added"),
    "household.updated": _l("Household member changed"), "household.removed": _l("Household member removed"),
    "consent.given": _l("Consent recorded"), "consent.withdrawn": _l("Consent withdrawn"),
    "consent.withdrawn_partially": _l("Consent partly withdrawn"), "safeguards.updated": _l("Child safeguards saved"),
    "intervention.added": _l("Intervention added"), "intervention.updated": _l("Intervention changed"),
    "note.added": _l("Progress note added"), "progress.recorded": _l("Progress recorded"),
    "handover.sent": _l("Handed over to a partner"), "handover.received": _l("Handover received"),
    "handover.accepted": _l("Handover accepted"), "handover.declined": _l("Handover declined"),
    "handover.revoked": _l("Handover revoked"), "handover.forwarded": _l("Case passed on to a further partner"),
    "partner.progress": _l("Progress received from the partner"),
    "partner.case_closed": _l("The partner closed the case"),
    "partner.erasure_confirmed": _l("The partner confirmed erasure"),
}


def country_name(code: str | None) -> str:
    """The country's name in the page's language (the code itself when the language has no name for it)."""
    if not code:
        return ""
    locale = flask_babel.get_locale()
    return str(locale.territories.get(code, code)) if locale is not None else code


def country_options() -> list[tuple[str, str]]:
    """Every country as ``(code, name)``, ordered by name in the page's language."""
    return sorted(((code, country_name(code)) for code in COUNTRY_CODES), key=lambda pair: pair[1].casefold())


def options(labels: dict[Any, Any]) -> list[tuple[Any, str]]:
    return [(key, str(label)) for key, label in labels.items()]


def stage_options() -> list[tuple[str, str]]:
    return [(s.key, s.title) for s in current_app.extensions["ccm"].config.stages]


def whole_numbers(data: dict[str, Any], *paths: str) -> dict[str, Any]:
    """Form fields holding a whole number as ``int`` (the API's schemas take JSON integers only); anything
    else is left as typed, for the schema to refuse with its message."""
    for path in paths:
        *parents, last = path.split(".")
        target: Any = data
        for part in parents:
            target = target.get(part) if isinstance(target, dict) else None
        if isinstance(target, dict) and isinstance(target.get(last), str) and target[last].isdigit():
            target[last] = int(target[last])
    return data


def form_version(form: Any) -> Expected:
    """The version the edited page was rendered from (its hidden ``version`` field); a missing or mangled one
    never matches, so the edit is refused as stale rather than applied blindly."""
    value = form.get("version", "")
    return expected_from(None, int(value) if value.isdigit() and len(value) < 10 else -1)


def now() -> Any:
    return current_app.extensions["ccm"].clock.now()


def config() -> Any:
    return current_app.extensions["ccm"].config


def template_helpers() -> dict[str, Any]:
    """The labels and helpers every case, intake and plan template may use (a context processor of their
    blueprints)."""
    return {"case_statuses": CASE_STATUSES, "stage_statuses": STAGE_STATUSES, "stage_badges": STAGE_BADGES,
            "responsible": RESPONSIBLE, "section_titles": SECTION_TITLES, "marital": MARITAL_STATUSES,
            "relations": RELATIONS, "education_levels": EDUCATION_LEVELS, "handover_statuses": HANDOVER_STATUSES,
            "handover_badges": HANDOVER_BADGES, "event_labels": EVENTS, "country_name": country_name,
            "stage_titles": dict(stage_options())}
