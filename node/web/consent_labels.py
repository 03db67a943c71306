"""Words for the codes the consent and handover pages show: categories, purposes, methods, statuses, the
best-interests outcomes, the fields of a case summary, and the date-time fields' conversion from the form.

The codes are the protocol's (they travel with every handover); a counsellor reads the words, in their language.
A code without a label here is shown as it is.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from flask_babel import lazy_gettext as _l

from . import intake_summary

CATEGORIES = {
    "identity": _l("Identity (names, date of birth, nationality)"),
    "contact": _l("Contact details"),
    "family": _l("Family and household"),
    "health": _l("Health"),
    "background": _l("Background"),
    "education": _l("Education"),
    "work": _l("Work experience and future work"),
    "wishes": _l("Thoughts and wishes for the future"),
    "plan": _l("Individual plan and stages"),
}
PURPOSES = {
    "return_preparation": _l("Preparing the return"),
    "reintegration_support": _l("Reintegration support after return"),
    "follow_up": _l("Follow-up"),
}
METHODS = {
    "written_signature": _l("Written, signed on paper"),
    "digital_signature": _l("Signed digitally"),
    "oral_witnessed": _l("Oral, with a witness"),
}
CONSENT_STATUSES = {
    "active": _l("Active"),
    "pending": _l("Not active yet"),
    "expired": _l("Expired"),
    "withdrawn": _l("Withdrawn"),
}
CONSENT_BADGES = {"active": "ok", "pending": "warn", "expired": "bad", "withdrawn": "bad"}
HANDOVER_STATUSES = {
    "queued": _l("Queued: waiting to be delivered"),
    "delivered": _l("Delivered: waiting for the partner's answer"),
    "parked": _l("Delivery paused: the partner could not be reached for a long time"),
    "undeliverable": _l("Could not be delivered"),
    "accepted": _l("Accepted by the partner"),
    "declined": _l("Declined by the partner"),
    "revoked": _l("Taken back (revoked)"),
    "erased": _l("Erased by the partner"),
    "pending": _l("Waiting for the partner's answer"),
}
HANDOVER_BADGES = {"queued": "info", "delivered": "info", "accepted": "ok", "declined": "bad", "parked": "warn",
                   "undeliverable": "bad", "revoked": "warn", "erased": "warn", "pending": "info"}
DECLINE_REASONS = intake_summary.DECLINE_REASONS  # a partner's reasons, in the words the adviser chose them by
BEST_INTERESTS = {
    "in_best_interests": _l("The return is in the child's best interests"),
    "not_in_best_interests": _l("The return is not in the child's best interests"),
    "inconclusive": _l("The assessment was inconclusive"),
}
SAFEGUARDS = {
    "guardian_identity": _l("the guardian's name and relation to the child"),
    "guardian_consent": _l("when the guardian gave consent"),
    "child_views": _l("the child's own views"),
    "best_interests_assessment": _l("the best-interests assessment (outcome, when and by whom)"),
}
#: the summary's field names, in words (a field not listed is shown with its name made readable)
SUMMARY_FIELDS = {
    "name_latin": _l("Name (Latin letters)"), "name_native": _l("Name (own script)"), "given": _l("Given names"),
    "family": _l("Family name"), "date_of_birth": _l("Date of birth"), "sex_or_gender": _l("Sex or gender"),
    "nationalities": _l("Nationalities"), "languages": _l("Languages"), "tag": _l("Language"),
    "phones": _l("Phone numbers"), "email": _l("Email"), "address": _l("Address"), "text": _l("Notes"),
    "situation": _l("Situation"), "marital_status": _l("Marital status"), "household": _l("Household"),
    "relation": _l("Relation"), "travelling": _l("Travelling too"), "education_level": _l("Education level"),
    "highest_level": _l("Highest level"), "experience": _l("Experience"), "occupations": _l("Occupations"),
    "skills": _l("Skills"), "wishes_work": _l("Would like to work with"), "end": _l("End date"),
    "end_date": _l("End date"), "milestones": _l("Milestones"), "title": _l("Title"), "due": _l("Due"),
    "due_date": _l("Due date"), "done": _l("Done"), "stages": _l("Stages"), "status": _l("Status"),
    "start": _l("Start"), "interventions": _l("Interventions"), "kind": _l("Kind"), "provider": _l("Provider"),
    "amount": _l("Amount"), "currency": _l("Currency"), "note": _l("Note"), "other": _l("Other"),
}


def label(table: dict[str, Any], code: str | None) -> Any:
    """The words for ``code`` in ``table``, or the code itself."""
    if code is None:
        return ""
    return table.get(code, code)


def field_label(name: str) -> Any:
    return SUMMARY_FIELDS.get(name) or name.replace("_", " ").capitalize()


def local_to_utc(value: str | None, timezone: str) -> str | None:
    """A ``datetime-local`` input's value (the node's time zone) as an ISO time with offset; other text is
    passed on as it is, for the schema to refuse in words."""
    if not value:
        return None
    try:
        naive = dt.datetime.fromisoformat(value)
    except ValueError:
        return value
    if naive.tzinfo is not None:
        return value
    return naive.replace(tzinfo=ZoneInfo(timezone)).isoformat()


def utc_to_local(value: dt.datetime | None, timezone: str) -> str:
    """A stored time as a ``datetime-local`` input's value, in the node's time zone."""
    if value is None:
        return ""
    return value.astimezone(ZoneInfo(timezone)).strftime("%Y-%m-%dT%H:%M")
