"""A node case as the protocol's case summary and consent record (SPEC.md 8.4.1 and 9.2).

:func:`case_summary` puts into each category of the summary what the case holds and nothing else: a section
the case has no data for is left out, and a value the protocol cannot carry (a phone number that is not
E.164, a milestone without a due date, a stage key outside the protocol's key form) is left out rather than
invented. Free texts are cut to the protocol's lengths. :func:`consent_record` maps a node consent to the
protocol's record: one grant per named recipient, the consent's ``valid_until`` day ending at 23:59:59 UTC,
and for a child's case the recorded safeguards (the guardian, the child's views, the best-interests
assessment whose outcome the counsellor confirms with the handover).

The reverse direction, a received summary as the data of a new local case, is :func:`case_data`.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Callable, Collection, Sequence
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm

from node.cases.models import (
    Case,
    CaseStage,
    ChildSafeguards,
    Consent,
    HouseholdMember,
    IntakeSection,
)
from node.config import Stage
from node.errors import ValidationFailed
from node.exchange.handovers.case_rows import CaseRows, load_rows
from protocol import make_consent_record
from protocol.fields import EMAIL_RE, KEY_RE, PHONE_RE
from protocol.times import format_time

NAME_MAX = 100
LINE_MAX = 200
NOTE_MAX = 2000
TEXT_MAX = 8000
_SPACE_RE = re.compile(r"\s+")
_PHONE_NOISE_RE = re.compile(r"[ ()./-]")
_HOUSEHOLD = {"spouse": "spouse_or_partner", "partner": "spouse_or_partner", "child": "child",
              "parent": "parent", "sibling": "sibling", "grandparent": "other_relative",
              "grandchild": "other_relative", "other_relative": "other_relative", "other": "other"}
_CASE_STATUS = {"open": "preparation", "handed_over": "preparation", "in_reintegration": "returned",
                "closed": "follow_up"}
_GUARDIAN_ROLES = (("appointed", "appointed_guardian"), ("god man", "appointed_guardian"),
                   ("legal", "legal_guardian"), ("social", "social_services"), ("parent", "parent"),
                   ("mother", "parent"), ("father", "parent"))
#: The namespace of the local ids given to interventions received with a non-UUID id (stable per sender).
INTERVENTION_NS = uuid.UUID("6f1d8c52-3a57-4a8e-9a43-2b1f0e7c5d10")


def line(value: str | None, limit: int = LINE_MAX) -> str | None:
    """One line of at most ``limit`` code points (whitespace runs become one space); None when empty."""
    if not value:
        return None
    text = _SPACE_RE.sub(" ", value).strip()
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text or None


def text(value: str | None, limit: int = TEXT_MAX) -> str | None:
    """A multi-line text of at most ``limit`` code points; None when empty."""
    if not value or not value.strip():
        return None
    body = value.strip()
    return body if len(body) <= limit else body[: limit - 1].rstrip() + "…"


def _compact(data: dict[str, Any]) -> dict[str, Any]:
    """Drop the members without a value (the protocol omits what it has no value for)."""
    return {k: v for k, v in data.items() if v not in (None, [], {}, "")}


def e164(phone: str | None) -> str | None:
    """``+46 70 123 45 67`` → ``+46701234567``; None when the number is not international."""
    if not phone:
        return None
    digits = _PHONE_NOISE_RE.sub("", phone)
    return digits if PHONE_RE.fullmatch(digits) else None


def _date(value: dt.date | None) -> str | None:
    return value.isoformat() if value is not None else None


def _identity(case: Case) -> dict[str, Any]:
    native = _compact({"given": line(case.given_names_native, NAME_MAX),
                       "family": line(case.family_name_native, NAME_MAX)})
    return _compact({
        "name_latin": _compact({"given": line(case.given_names, NAME_MAX),
                                "family": line(case.family_name, NAME_MAX)}),
        "name_native": native,
        "date_of_birth": _date(case.date_of_birth),
        "sex_or_gender": line(case.sex_or_gender, NAME_MAX),
        "nationalities": [case.nationality] if case.nationality else [],
        "languages": [{"tag": tag} for tag in dict.fromkeys(case.languages or [])][:20],
    })


def _contact(case: Case) -> dict[str, Any]:
    phone = e164(case.phone)
    email = case.email if case.email and EMAIL_RE.fullmatch(case.email) else None
    return _compact({"phones": [phone] if phone else [], "email": email, "address": text(case.address, 500),
                     "note": text(case.contact_notes, NOTE_MAX)})


def _family(session: orm.Session, case: Case, section: IntakeSection | None) -> dict[str, Any]:
    members = session.scalars(sa.select(HouseholdMember).where(HouseholdMember.case_id == case.id)
                              .order_by(HouseholdMember.created_at, HouseholdMember.id))
    household = [_compact({"relation": _HOUSEHOLD.get(m.relation, "other"),
                           "date_of_birth": _date(m.date_of_birth)}) | {"travelling": m.travelling}
                 for m in members][:30]
    data = (section.data or {}) if section else {}
    marital = data.get("marital_status")
    return _compact({"situation": text(section.text) if section else None,
                     "marital_status": marital if marital and marital != "other" else None,
                     "household": household})


def _plain(section: IntakeSection | None) -> dict[str, Any]:
    return _compact({"text": text(section.text) if section else None})


def _education(section: IntakeSection | None) -> dict[str, Any]:
    level = (section.data or {}).get("education_level") if section else None
    return _compact({"text": text(section.text) if section else None, "highest_level": level})


def _lines(values: Sequence[str] | None, limit: int) -> list[str]:
    return [v for v in (line(x) for x in values or []) if v][:limit]


def _work(work: IntakeSection | None, future: IntakeSection | None) -> dict[str, Any]:
    data = (work.data or {}) if work else {}
    wishes = text(future.text) if future else None
    if wishes is None and future is not None and (future.data or {}).get("occupations"):
        wishes = ", ".join(_lines(future.data["occupations"], 20))
    return _compact({"experience": text(work.text) if work else None,
                     "occupations": _lines(data.get("occupations"), 20),
                     "skills": _lines(data.get("skills"), 50), "wishes_work": wishes})


def _amount(cents: int | None) -> str | None:
    return None if cents is None else f"{Decimal(cents).scaleb(-2):.2f}"


def intervention_item(item: Any) -> dict[str, Any]:
    """A node intervention in the protocol's form (also used in ``progress_update``)."""
    amount = _amount(item.amount_cents) if item.currency else None
    return _compact({"id": item.id, "kind": item.kind, "provider": line(item.provider), "status": item.status,
                     "start": _date(item.start_date), "end": _date(item.end_date), "amount": amount,
                     "currency": item.currency if amount else None, "note": text(item.notes, NOTE_MAX)})


def stage_item(stage: CaseStage, titles: dict[str, str]) -> dict[str, Any] | None:
    """A node stage in the protocol's form; None when its key is outside the protocol's key form."""
    if not KEY_RE.fullmatch(stage.stage_key):
        return None
    completed = stage.completed_on
    if completed is not None and stage.started_on is not None and completed < stage.started_on:
        completed = None
    return _compact({"key": stage.stage_key, "title": line(titles.get(stage.stage_key, stage.stage_key)),
                     "status": stage.status, "responsible": stage.responsible,
                     "notes": text(stage.notes, NOTE_MAX), "started": _date(stage.started_on),
                     "completed": _date(completed)})


def _plan(rows: CaseRows, stages: Sequence[Stage]) -> dict[str, Any]:
    plan = rows.plan
    milestones = [{"title": line(m["title"]), "due": m["due_date"], "done": bool(m.get("done"))}
                  for m in (plan.milestones if plan else []) if m.get("due_date") and line(m.get("title"))]
    titles = {s.key: s.title for s in stages}
    stage_items = [item for item in (stage_item(s, titles) for s in rows.stages) if item is not None][:30]
    items = [intervention_item(i) for i in rows.interventions][:50]
    return _compact({"end_date": _date(plan.end_date) if plan else None, "milestones": milestones[:100],
                     "stages": stage_items, "interventions": items})


def case_summary(session: orm.Session, case: Case, stages: Sequence[Stage],
                 categories: Collection[str] | None = None, rows: CaseRows | None = None) -> dict[str, Any]:
    """The protocol summary of a case: every category the case holds data in (before minimisation).

    Args:
        session: the database session.
        case: the case.
        stages: the node's configured stages (for the stage titles).
        categories: build only these (and ``identity``, which the consent rules read for a child's age):
            the categories a consent grants, so that what will be cut is not read. Default: all.
        rows: the case's rows for those categories, if read already (``case_rows.load_rows``).
    Returns:
        ``{category: section}`` for the categories with data.
    """
    wanted = frozenset(categories) if categories is not None else None

    def want(category: str) -> bool:
        return wanted is None or category in wanted

    rows = rows or load_rows(session, case, categories)
    sections = rows.sections
    builders: dict[str, Callable[[], dict[str, Any]]] = {
        "identity": lambda: _identity(case),
        "contact": lambda: _contact(case),
        "family": lambda: _family(session, case, sections.get("family")),
        "health": lambda: _plain(sections.get("health")),
        "background": lambda: _plain(sections.get("background")),
        "education": lambda: _education(sections.get("education")),
        "work": lambda: _work(sections.get("work"), sections.get("future_work")),
        "wishes": lambda: _plain(sections.get("wishes")),
        "plan": lambda: _plan(rows, stages),
    }
    summary = {category: build() for category, build in builders.items()
               if category == "identity" or want(category)}
    return {category: section for category, section in summary.items() if section}


def protocol_case(case: Case) -> dict[str, Any]:
    """The handover's ``case`` member."""
    return {"reference": case.reference, "origin_case_id": case.id,
            "destination": _compact({"country": case.destination_country,
                                     "locality": line(case.destination_locality)}),
            "status": _CASE_STATUS.get(case.status, "preparation")}


def _end_of_day(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(23, 59, 59), tzinfo=dt.UTC)


def guardian_role(relation: str | None) -> str:
    """The protocol's guardian role for the free-text relation a counsellor recorded."""
    lowered = (relation or "").lower()
    return next((role for word, role in _GUARDIAN_ROLES if word in lowered), "other")


def _child(safeguards: ChildSafeguards | None, language: str, outcome: str | None) -> dict[str, Any]:
    """The child safeguards of a consent record (what is missing is left out; the check then refuses)."""
    if safeguards is None:
        return {}
    child: dict[str, Any] = {}
    if safeguards.guardian_name and safeguards.guardian_relation:
        child["guardian"] = _compact({
            "name": line(safeguards.guardian_name), "role": guardian_role(safeguards.guardian_relation),
            "consented_at": safeguards.guardian_consent_at}) | {"identity_verified": True}
    if safeguards.child_views:
        views = safeguards.child_views.strip()
        if len(views) > NOTE_MAX:
            raise ValidationFailed("The child's views are too long to travel.", {"child_safeguards": {
                "child_views": [f"A handover carries at most {NOTE_MAX} characters of the child's views: "
                                "record a shorter summary in the child safeguards."]}})
        child["views"] = {"recorded_at": safeguards.updated_at, "summary": views, "language": language}
    if safeguards.assessed_at and safeguards.assessed_by and outcome is not None:
        child["best_interests"] = {"assessed_at": safeguards.assessed_at,
                                   "assessed_by": line(safeguards.assessed_by), "outcome": outcome}
    return child


def _times_as_text(data: dict[str, Any]) -> dict[str, Any]:
    return {k: (format_time(v) if isinstance(v, dt.datetime) else _times_as_text(v) if isinstance(v, dict)
                else v) for k, v in data.items()}


def consent_record(case: Case, consent: Consent, safeguards: ChildSafeguards | None, *, origin: str,
                   language: str, best_interests_outcome: str | None) -> dict[str, Any]:
    """The protocol consent record (unsigned) for a node consent.

    Args:
        case: the consent's case.
        consent: the node's consent.
        safeguards: the case's child safeguards, if any.
        origin: this node's id.
        language: the language the returnee was informed in.
        best_interests_outcome: for a child's case, the outcome the counsellor confirms.
    Returns:
        The record, as ``protocol.make_consent_record`` builds it.
    Raises:
        ValidationFailed: more recipients than a record can carry, or the child's views too long.
        SchemaError: a value the protocol cannot carry.
    """
    if len(consent.recipients) > 16:
        raise ValidationFailed("Too many recipients.", {"consent_id": [
            "A consent travels with at most 16 recipients: record a consent naming fewer."]})
    grants = [{"recipient": r, "purposes": [consent.purpose], "categories": list(consent.categories)}
              for r in consent.recipients]
    child = _child(safeguards, language, best_interests_outcome) if case.child_at_intake else None
    return make_consent_record(
        consent_id=consent.id, origin=origin, case_id=case.id, given_at=consent.given_at,
        valid_until=_end_of_day(consent.valid_until), method=consent.method, language=language,
        subject={"child": case.child_at_intake, "date_of_birth": case.date_of_birth.isoformat()},
        grants=grants, child=_times_as_text(child) if child else None)


# --- a received summary as a new local case ------------------------------------------------------------

_MARITAL = {"single", "married", "partnership", "separated", "divorced", "widowed"}


def _day(value: str | None) -> dt.date | None:
    return dt.date.fromisoformat(value) if value else None


def _joined(*parts: str | None) -> str | None:
    kept = [p for p in parts if p]
    return "\n\n".join(kept) if kept else None


def _returnee(summary: dict[str, Any], born: dt.date) -> dict[str, Any]:
    identity = summary.get("identity", {})
    latin, native = identity.get("name_latin", {}), identity.get("name_native", {})
    contact = summary.get("contact", {})
    return {
        "given_names": latin.get("given", ""), "family_name": latin.get("family", ""),
        "given_names_native": native.get("given"), "family_name_native": native.get("family"),
        "date_of_birth": born, "sex_or_gender": identity.get("sex_or_gender"),
        "nationality": (identity.get("nationalities") or [None])[0],
        "languages": [s["tag"] for s in identity.get("languages", []) if len(s["tag"]) <= 35],
        "contact": {"phone": (contact.get("phones") or [None])[0], "email": contact.get("email"),
                    "address": contact.get("address"), "notes": line(contact.get("note"), 1000)},
    }


def _household(summary: dict[str, Any]) -> list[dict[str, Any]]:
    family = summary.get("family", {})
    spouse = "spouse" if family.get("marital_status") == "married" else "partner"
    relations = {"spouse_or_partner": spouse}
    return [{"relation": relations.get(m["relation"], m["relation"]),
             "date_of_birth": _day(m.get("date_of_birth")), "travelling": m["travelling"]}
            for m in family.get("household", [])]


def _intake(summary: dict[str, Any]) -> dict[str, dict[str, Any]]:
    family, health = summary.get("family", {}), summary.get("health", {})
    background, education = summary.get("background", {}), summary.get("education", {})
    work, wishes = summary.get("work", {}), summary.get("wishes", {})
    needs = "\n".join(f"- {n['kind']}" + (f": {n['note']}" if n.get("note") else "")
                      for n in health.get("needs", []))
    origin = background.get("origin_locality")
    years = background.get("years_abroad")
    intake = {
        "family": {"text": family.get("situation"),
                   "marital_status": family.get("marital_status") if family.get("marital_status") in _MARITAL
                   else None},
        "health": {"text": _joined(health.get("text"), needs or None)},
        "background": {"text": _joined(background.get("text"), f"From: {origin}" if origin else None,
                                       f"Years abroad: {years}" if years is not None else None)},
        "education": {"text": _joined(education.get("text"), ", ".join(education.get("fields_of_study", []))
                                      or None), "education_level": education.get("highest_level")},
        "work": {"text": work.get("experience"), "occupations": work.get("occupations", []),
                 "skills": work.get("skills", [])},
        "future_work": {"text": work.get("wishes_work")},
        "wishes": {"text": wishes.get("text")},
    }
    return {name: data for name, data in intake.items() if any(v not in (None, []) for v in data.values())}


def intervention_id(sender: str, remote_id: str) -> str:
    """The local id of an intervention received with ``remote_id``: the same id when it is a UUID (so that
    progress reported back names it as the sender knows it), else a stable UUID derived from it."""
    try:
        if str(uuid.UUID(remote_id)) == remote_id:
            return remote_id
    except ValueError:
        pass
    return str(uuid.uuid5(INTERVENTION_NS, f"{sender}/{remote_id}"))


def case_data(body: dict[str, Any], consent: dict[str, Any]) -> tuple[dict[str, Any], dt.date | None]:
    """The data of a new local case (as ``node.cases.services.create_case`` takes it) from a handover body.

    Args:
        body: the handover's ``case``, ``summary`` (and the rest) as received.
        consent: the signed consent record that came with it.
    Returns:
        ``(data, date_of_birth)``; the date of birth is None when neither the summary nor the consent has it.
    """
    summary = body["summary"]
    born = _day(summary.get("identity", {}).get("date_of_birth") or consent["subject"].get("date_of_birth"))
    plan = summary.get("plan", {})
    data: dict[str, Any] = {
        "returnee": _returnee(summary, born) if born else {},
        "destination_country": body["case"]["destination"]["country"],
        "destination_locality": body["case"]["destination"].get("locality"),
        "household": _household(summary),
        "intake": _intake(summary),
    }
    if plan.get("end_date") or plan.get("milestones"):
        data["plan"] = {"end_date": _day(plan.get("end_date")),
                        "milestones": [{"title": m["title"], "due_date": _day(m["due"]), "done": m["done"]}
                                       for m in plan.get("milestones", [])]}
    return data, born

