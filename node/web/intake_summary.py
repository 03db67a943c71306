"""Words for the codes an adviser reads (categories, reasons, statuses, kinds), and a received handover's
summary and consent arranged as the sections of the intake page.

The codes come from the protocol and the case model; what a code means is said here once, in the page's
language, for the intake and progress pages. A code with no words here is shown as it is.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask_babel import lazy_gettext as _l

CATEGORIES = {"identity": _l("Identity"), "contact": _l("Contact details"), "family": _l("Family and household"),
              "health": _l("Health"), "background": _l("Background"), "education": _l("Education"),
              "work": _l("Work"), "wishes": _l("Wishes for the future"), "plan": _l("Plan")}
PURPOSES = {"return_preparation": _l("Preparing the return"), "reintegration_support": _l("Reintegration support"),
            "follow_up": _l("Follow-up")}
DECLINE_REASONS = {"no_capacity": _l("No capacity to take the case"),
                   "outside_mandate": _l("Outside our mandate"),
                   "insufficient_information": _l("Not enough information to work the case"),
                   "consent_problem": _l("A problem with the consent"), "other": _l("Another reason")}
MARITAL = {"single": _l("Single"), "married": _l("Married"), "partnership": _l("Partnership"),
           "separated": _l("Separated"), "divorced": _l("Divorced"), "widowed": _l("Widowed"),
           "not_stated": _l("Not stated")}
RELATIONS = {"spouse_or_partner": _l("Spouse or partner"), "child": _l("Child"), "parent": _l("Parent"),
             "sibling": _l("Sibling"), "other_relative": _l("Other relative"), "other": _l("Other")}
HEALTH_NEEDS = {"medication": _l("Medication"), "treatment": _l("Treatment"), "mental_health": _l("Mental health"),
                "disability": _l("Disability"), "pregnancy": _l("Pregnancy"),
                "assistive_device": _l("Assistive device"), "other": _l("Other")}
STAGE_STATUSES = {"not_started": _l("Not started"), "in_progress": _l("In progress"), "done": _l("Done"),
                  "not_applicable": _l("Not applicable")}
INTERVENTION_KINDS = {"education": _l("Education"), "business_course": _l("Business course"), "job": _l("Job"),
                      "housing": _l("Housing"), "documents": _l("Documents"), "health": _l("Health"),
                      "financial_support": _l("Financial support"), "other": _l("Other")}
INTERVENTION_STATUSES = {"proposed": _l("Proposed"), "planned": _l("Planned"), "in_progress": _l("In progress"),
                         "completed": _l("Completed"), "cancelled": _l("Cancelled")}
MEETING_KINDS = {"in_person": _l("In person"), "phone": _l("Phone"), "video": _l("Video"),
                 "home_visit": _l("Home visit"), "group": _l("Group meeting")}
CONSENT_METHODS = {"written_signature": _l("Written signature"), "digital_signature": _l("Digital signature"),
                   "oral_witnessed": _l("Oral, witnessed")}
GUARDIAN_ROLES = {"appointed_guardian": _l("Appointed guardian"), "legal_guardian": _l("Legal guardian"),
                  "social_services": _l("Social services"), "parent": _l("Parent"), "other": _l("Other")}
BEST_INTERESTS = {"in_best_interests": _l("In the child's best interests"),
                  "not_in_best_interests": _l("Not in the child's best interests"),
                  "inconclusive": _l("Inconclusive")}
HANDOVER_STATUSES = {"pending": _l("Waiting for a decision"), "accepted": _l("Accepted"),
                     "declined": _l("Declined"), "erased": _l("Erased"), "revoked": _l("Taken back by the sender")}
DELIVERY = {"queued": _l("Queued: waiting to be delivered"), "sending": _l("Being sent"),
            "delivered": _l("Delivered"), "parked": _l("Held back: the partner cannot receive it now"),
            "undeliverable": _l("Could not be delivered")}
RESPONSIBLE = {"origin": _l("The sending organisation"), "destination": _l("The receiving organisation"),
               "returnee": _l("The returnee"), "shared": _l("Shared")}
SUPPORT_KINDS = {**INTERVENTION_KINDS, "reception": _l("Reception on arrival"), "coaching": _l("Coaching"),
                 "authority_contact": _l("Contact with authorities")}

#: everything above, by name, for the templates (``labels.kinds[code]``)
LABELS: dict[str, dict[str, Any]] = {
    "categories": CATEGORIES, "purposes": PURPOSES, "decline_reasons": DECLINE_REASONS, "marital": MARITAL,
    "relations": RELATIONS, "health_needs": HEALTH_NEEDS, "stage_statuses": STAGE_STATUSES,
    "kinds": INTERVENTION_KINDS, "intervention_statuses": INTERVENTION_STATUSES, "meetings": MEETING_KINDS,
    "methods": CONSENT_METHODS, "guardians": GUARDIAN_ROLES, "best_interests": BEST_INTERESTS,
    "handover_statuses": HANDOVER_STATUSES, "delivery": DELIVERY, "responsible": RESPONSIBLE,
    "support": SUPPORT_KINDS,
}


def word(table: dict[str, Any], code: str | None) -> str:
    """The words for ``code`` (the code itself when there are none)."""
    if code is None:
        return ""
    return str(table.get(code, code))


def options(table: dict[str, Any], codes: tuple[str, ...] | None = None) -> list[tuple[str, str]]:
    """``(code, words)`` pairs for a select, in the order of ``codes`` (default: the table's order)."""
    return [(code, word(table, code)) for code in (codes if codes is not None else tuple(table))]


def consent_for(consent: dict[str, Any] | None, own_node: str) -> dict[str, Any]:
    """What the signed consent record allows this node: its grant, validity, method and the child's safeguards.

    Returns:
        ``{"categories", "purposes", "given_at", "valid_until", "method", "language", "child", "signed_by"}``.
    """
    consent = consent or {}
    grant = next((g for g in consent.get("grants", []) if g.get("recipient") == own_node), {})
    return {"categories": grant.get("categories", []), "purposes": grant.get("purposes", []),
            "given_at": consent.get("given_at"), "valid_until": consent.get("valid_until"),
            "method": consent.get("method"), "language": consent.get("language"),
            "child": consent.get("child") or {}, "subject_child": bool(consent.get("subject", {}).get("child")),
            "signed_by": consent.get("origin")}


def returnee_name(summary: dict[str, Any]) -> str:
    """The returnee's name as the summary gives it (Latin script), or an empty string."""
    latin = summary.get("identity", {}).get("name_latin", {})
    return " ".join(part for part in (latin.get("given"), latin.get("family")) if part)


def day(value: str | None) -> dt.date | None:
    """A protocol date (``YYYY-MM-DD``) as a date for the ``date`` filter; None when absent or not a date."""
    try:
        return dt.date.fromisoformat(value) if value else None
    except ValueError:
        return None


def moment(value: str | dt.datetime | None) -> dt.datetime | None:
    """A protocol time (``...Z``) as an aware datetime for the ``datetime`` filter."""
    if isinstance(value, dt.datetime) or value is None:
        return value
    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


#: the helpers the intake and progress templates use
HELPERS = {"labels": LABELS, "day": day, "moment": moment}
