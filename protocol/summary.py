"""Schemas of the consented case summary and of the consent record that travels with it.

A summary is an object whose members are *categories* (``CATEGORIES``); the consent record grants categories
per recipient and purpose, and ``protocol.consent`` cuts a summary down to what a grant allows. Every section
is strict: an unknown member anywhere is an error, never carried along, so nothing can ride outside its
category. See SPEC.md sections 8 and 9.
"""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError, fields, validates_schema

from .fields import (
    NAME_MAX,
    NOTE_MAX,
    REFERENCE_MAX,
    Bool,
    Date,
    Enum,
    Line,
    StrictSchema,
    Text,
    Time,
    bounded_list,
    country,
    currency,
    decimal,
    email,
    integer,
    key,
    language,
    node_id,
    opaque_id,
    phone,
    signatures,
)

CATEGORIES = ("identity", "contact", "family", "health", "background", "education", "work", "wishes", "plan")
PURPOSES = ("return_preparation", "reintegration_support", "follow_up")
INTERVENTION_KINDS = ("education", "business_course", "job", "housing", "documents", "health",
                      "financial_support", "other")
INTERVENTION_STATUSES = ("proposed", "planned", "in_progress", "completed", "cancelled")
STAGE_STATUSES = ("not_started", "in_progress", "done", "not_applicable")
STAGE_RESPONSIBLE = ("origin", "destination", "returnee", "shared")
CONSENT_VERSION = 1


def _nested(schema: type[StrictSchema], **kwargs: Any) -> fields.Nested:
    return fields.Nested(schema, **kwargs)


def _ordered(data: dict[str, Any], first: str, then: str, message: str) -> None:
    if first in data and then in data and data[then] < data[first]:
        raise ValidationError(message, field_name=then)


class NameSchema(StrictSchema):
    given = Line(NAME_MAX)
    family = Line(NAME_MAX)
    lang = language()

    @validates_schema
    def _some_name(self, data: dict[str, Any], **kwargs: Any) -> None:
        if "given" not in data and "family" not in data:
            raise ValidationError("A name needs a given or a family name.", field_name="_schema")


class LanguageSkillSchema(StrictSchema):
    tag = language(required=True)
    proficiency = Enum(("native", "fluent", "working", "basic"))


class DocumentSchema(StrictSchema):
    kind = Enum(("passport", "national_id", "birth_certificate", "driving_licence", "residence_permit",
                 "other"), required=True)
    country = country(required=True)
    status = Enum(("held", "expired", "lost", "applied_for", "none"), required=True)


class IdentitySchema(StrictSchema):
    name_latin = _nested(NameSchema, required=True)
    name_native = _nested(NameSchema)
    date_of_birth = Date()
    sex_or_gender = Line(NAME_MAX)
    nationalities = bounded_list(country(), 5, unique=True)
    languages = bounded_list(_nested(LanguageSkillSchema), 20)
    documents = bounded_list(_nested(DocumentSchema), 10)


class ContactSchema(StrictSchema):
    phones = bounded_list(phone(), 5, minimum=1, unique=True)
    email = email()
    address = Text(500)
    preferred_language = language()
    preferred_channel = Enum(("phone", "sms", "email", "messaging_app", "in_person"))
    note = Text(NOTE_MAX)


class HouseholdMemberSchema(StrictSchema):
    relation = Enum(("spouse_or_partner", "child", "parent", "sibling", "other_relative", "other"),
                    required=True)
    date_of_birth = Date()
    travelling = Bool(required=True)


class FamilySchema(StrictSchema):
    situation = Text()
    marital_status = Enum(("single", "married", "partnership", "separated", "divorced", "widowed",
                           "not_stated"))
    household = bounded_list(_nested(HouseholdMemberSchema), 30)


class HealthNeedSchema(StrictSchema):
    kind = Enum(("medication", "treatment", "mental_health", "disability", "pregnancy", "assistive_device",
                 "other"), required=True)
    note = Text(NOTE_MAX)


class HealthSchema(StrictSchema):
    text = Text()
    needs = bounded_list(_nested(HealthNeedSchema), 20)


class BackgroundSchema(StrictSchema):
    text = Text()
    origin_locality = Line()
    years_abroad = integer(0, 100)


class EducationSchema(StrictSchema):
    text = Text()
    highest_level = integer(0, 8)  # ISCED 2011 level
    fields_of_study = bounded_list(Line(), 20)


class WorkSchema(StrictSchema):
    experience = Text()
    occupations = bounded_list(Line(), 20)
    skills = bounded_list(Line(), 50)
    wishes_work = Text()


class WishesSchema(StrictSchema):
    text = Text(required=True)


class MilestoneSchema(StrictSchema):
    title = Line(required=True)
    due = Date(required=True)
    done = Bool(required=True)


class StageSchema(StrictSchema):
    key = key(required=True)
    title = Line(required=True)
    status = Enum(STAGE_STATUSES, required=True)
    responsible = Enum(STAGE_RESPONSIBLE, required=True)
    notes = Text(NOTE_MAX)
    started = Date()
    completed = Date()

    @validates_schema
    def _dates(self, data: dict[str, Any], **kwargs: Any) -> None:
        _ordered(data, "started", "completed", "Completed before it started.")


class InterventionSchema(StrictSchema):
    id = opaque_id(required=True)
    kind = Enum(INTERVENTION_KINDS, required=True)
    provider = Line()
    status = Enum(INTERVENTION_STATUSES, required=True)
    start = Date()
    end = Date()
    amount = decimal()
    currency = currency()
    note = Text(NOTE_MAX)

    @validates_schema
    def _consistent(self, data: dict[str, Any], **kwargs: Any) -> None:
        _ordered(data, "start", "end", "Ends before it starts.")
        if ("amount" in data) != ("currency" in data):
            raise ValidationError("An amount needs its currency and a currency its amount.",
                                  field_name="currency")
        if data.get("amount", "").startswith("-"):
            raise ValidationError("Amounts are not negative.", field_name="amount")


def _unique_by(items: list[dict[str, Any]], member: str, field_name: str) -> None:
    values = [item[member] for item in items]
    if len(values) != len(set(values)):
        raise ValidationError(f"Each {member} may appear once.", field_name=field_name)


class PlanSchema(StrictSchema):
    end_date = Date()
    milestones = bounded_list(_nested(MilestoneSchema), 100)
    stages = bounded_list(_nested(StageSchema), 30)
    interventions = bounded_list(_nested(InterventionSchema), 50)

    @validates_schema
    def _unique_keys(self, data: dict[str, Any], **kwargs: Any) -> None:
        _unique_by(data.get("stages", []), "key", "stages")
        _unique_by(data.get("interventions", []), "id", "interventions")


class SummarySchema(StrictSchema):
    """The case summary: one optional section per category."""

    identity = _nested(IdentitySchema)
    contact = _nested(ContactSchema)
    family = _nested(FamilySchema)
    health = _nested(HealthSchema)
    background = _nested(BackgroundSchema)
    education = _nested(EducationSchema)
    work = _nested(WorkSchema)
    wishes = _nested(WishesSchema)
    plan = _nested(PlanSchema)


# --- the consent record ---------------------------------------------------------------------------


class GrantSchema(StrictSchema):
    recipient = node_id(required=True)
    purposes = bounded_list(Enum(PURPOSES), len(PURPOSES), minimum=1, unique=True, required=True)
    categories = bounded_list(Enum(CATEGORIES), len(CATEGORIES), minimum=1, unique=True, required=True)


class SubjectSchema(StrictSchema):
    child = Bool(required=True)
    date_of_birth = Date()


class GuardianSchema(StrictSchema):
    name = Line(required=True)
    role = Enum(("parent", "legal_guardian", "appointed_guardian", "social_services", "other"), required=True)
    identity_verified = Bool(required=True)
    consented_at = Time()


class ChildViewsSchema(StrictSchema):
    recorded_at = Time(required=True)
    summary = Text(NOTE_MAX, required=True)
    language = language(required=True)


class BestInterestsSchema(StrictSchema):
    assessed_at = Time(required=True)
    assessed_by = Line(required=True)
    outcome = Enum(("in_best_interests", "not_in_best_interests", "inconclusive"), required=True)
    reference = Line(REFERENCE_MAX)


class ChildSafeguardsSchema(StrictSchema):
    guardian = _nested(GuardianSchema)
    views = _nested(ChildViewsSchema)
    best_interests = _nested(BestInterestsSchema)


class ConsentRecordSchema(StrictSchema):
    """A consent record as recorded by the originating node (``signatures`` optional here)."""

    v = integer(CONSENT_VERSION, CONSENT_VERSION, required=True)
    consent_id = opaque_id(required=True)
    origin = node_id(required=True)
    case_id = opaque_id(required=True)
    given_at = Time(required=True)
    valid_until = Time(required=True)
    method = Enum(("written_signature", "digital_signature", "oral_witnessed"), required=True)
    language = language(required=True)
    subject = _nested(SubjectSchema, required=True)
    grants = bounded_list(_nested(GrantSchema), 16, minimum=1, required=True)
    child = _nested(ChildSafeguardsSchema)
    withdrawn_at = Time()
    signatures = signatures()

    @validates_schema
    def _consistent(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data["valid_until"] <= data["given_at"]:
            raise ValidationError("Must be later than given_at.", field_name="valid_until")
        _unique_by(data["grants"], "recipient", "grants")


class SignedConsentRecordSchema(ConsentRecordSchema):
    """A consent record as it travels: signed by its origin node."""

    signatures = signatures(required=True)


class DestinationSchema(StrictSchema):
    country = country(required=True)
    locality = Line()


class CaseSchema(StrictSchema):
    reference = Line(REFERENCE_MAX, required=True)
    origin_case_id = opaque_id(required=True)
    destination = _nested(DestinationSchema, required=True)
    status = Enum(("preparation", "travel_booked", "returned", "follow_up"), required=True)


class ConsentedSummarySchema(StrictSchema):
    """What a consent covers on the wire: the case, its signed consent, the purpose and the summary."""

    case = _nested(CaseSchema, required=True)
    consent = _nested(SignedConsentRecordSchema, required=True)
    purpose = Enum(PURPOSES, required=True)
    summary = _nested(SummarySchema, required=True)
    withheld = bounded_list(Enum(CATEGORIES), len(CATEGORIES), unique=True, required=True)

    @validates_schema
    def _disjoint(self, data: dict[str, Any], **kwargs: Any) -> None:
        if set(data["summary"]) & set(data["withheld"]):
            raise ValidationError("A category cannot be both in the summary and withheld.",
                                  field_name="withheld")
