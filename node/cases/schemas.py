"""The case API's request and response schemas: one source of truth for validation and the OpenAPI document.

Request schemas reject unknown fields (marshmallow's default ``RAISE``), bound every string and list, and
check codes against real code lists. Checks that need the clock or the node's configuration (a date of birth
in the future, an unknown stage key) are made by the services, which answer with the same 422 shape.
Response schemas are in :mod:`node.cases.outputs`.
"""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from .fields import (
    Amount,
    CountryCode,
    CurrencyCode,
    Int,
    LanguageTag,
    NodeId,
    Phone,
    QueryBool,
    SaneDate,
    SaneDateTime,
    StrictBool,
    Text,
)
from .models import (
    CONSENT_CATEGORIES,
    CONSENT_METHODS,
    CONSENT_PURPOSES,
    HOUSEHOLD_RELATIONS,
    INTAKE_SECTIONS,
    INTERVENTION_KINDS,
    INTERVENTION_STATUSES,
    MARITAL_STATUSES,
    RESPONSIBLE_SIDES,
    STAGE_STATUSES,
    STATUSES,
)

MAX_LONG_TEXT = 20_000


def _one_of(choices: tuple[str, ...], **kwargs: Any) -> fields.String:
    return fields.String(validate=validate.OneOf(choices), **kwargs)


def _version(**kwargs: Any) -> fields.Integer:
    return Int(0, 2**31 - 1, metadata={"description": "The version you read; or send If-Match instead"},
               **kwargs)


def _check_dates(data: dict[str, Any], start: str, end: str) -> None:
    first, last = data.get(start), data.get(end)
    if first is not None and last is not None and last < first:
        raise ValidationError(f"Must not be before {start}.", end)


# --- the case and the returnee ---------------------------------------------------------------------------

class ContactSchema(Schema):
    phone = Phone(allow_none=True)
    email = fields.Email(allow_none=True, validate=validate.Length(max=254))
    address = Text(500, multiline=True, allow_none=True)
    notes = Text(1000, multiline=True, allow_none=True)


class ReturneeSchema(Schema):
    given_names = Text(200, min_length=1, required=True)
    family_name = Text(200, min_length=1, required=True)
    given_names_native = Text(200, allow_none=True, metadata={"description": "In the person's own script"})
    family_name_native = Text(200, allow_none=True)
    date_of_birth = SaneDate(required=True)
    sex_or_gender = Text(100, allow_none=True, metadata={"description": "As the person states it"})
    nationality = CountryCode(allow_none=True)
    languages = fields.List(LanguageTag(), validate=validate.Length(max=20))
    contact = fields.Nested(ContactSchema)


class ReturneePatchSchema(ReturneeSchema):
    given_names = Text(200, min_length=1)
    family_name = Text(200, min_length=1)
    date_of_birth = SaneDate()


class HouseholdMemberSchema(Schema):
    relation = _one_of(HOUSEHOLD_RELATIONS, required=True)
    given_names = Text(200, allow_none=True)
    family_name = Text(200, allow_none=True)
    date_of_birth = SaneDate(allow_none=True)
    travelling = StrictBool(load_default=False)


class HouseholdPatchSchema(Schema):
    relation = _one_of(HOUSEHOLD_RELATIONS)
    given_names = Text(200, allow_none=True)
    family_name = Text(200, allow_none=True)
    date_of_birth = SaneDate(allow_none=True)
    travelling = StrictBool()
    version = _version()


class IntakeSectionSchema(Schema):
    """One intake section: free text plus the structured fields that section has (family: marital_status,
    number_of_children; education: education_level; work and future_work: occupations, skills)."""

    text = Text(MAX_LONG_TEXT, multiline=True, allow_none=True)
    marital_status = _one_of(MARITAL_STATUSES, allow_none=True)
    number_of_children = Int(0, 30, allow_none=True)
    education_level = Int(0, 8, allow_none=True, metadata={"description": "Highest level, ISCED 2011 (0-8)"})
    occupations = fields.List(Text(200, min_length=1), validate=validate.Length(max=30))
    skills = fields.List(Text(200, min_length=1), validate=validate.Length(max=50))


class IntakeSectionWriteSchema(IntakeSectionSchema):
    version = _version()


IntakeSchema = Schema.from_dict(
    {section: fields.Nested(IntakeSectionSchema) for section in INTAKE_SECTIONS}, name="IntakeSchema")


class MilestoneSchema(Schema):
    title = Text(300, min_length=1, required=True)
    due_date = SaneDate(allow_none=True)
    done = StrictBool(load_default=False)


class PlanSchema(Schema):
    end_date = SaneDate(allow_none=True)
    milestones = fields.List(fields.Nested(MilestoneSchema), validate=validate.Length(max=100),
                             load_default=list)


class PlanWriteSchema(PlanSchema):
    version = _version()


class CaseCreateSchema(Schema):
    returnee = fields.Nested(ReturneeSchema, required=True)
    destination_country = CountryCode(required=True)
    destination_locality = Text(200, allow_none=True)
    destination_partner = NodeId(allow_none=True, metadata={"description": "Node id of the expected partner"})
    assigned_user_id = Int(1, 2**31 - 1, allow_none=True,
                           metadata={"description": "Defaults to the member of staff creating the case"})
    team = Text(64, min_length=1, allow_none=True, metadata={"description": "Defaults to the creator's team"})
    household = fields.List(fields.Nested(HouseholdMemberSchema), validate=validate.Length(max=30))
    intake = fields.Nested(IntakeSchema)
    plan = fields.Nested(PlanSchema)


class CasePatchSchema(Schema):
    status = _one_of(STATUSES)
    returnee = fields.Nested(ReturneePatchSchema)
    destination_country = CountryCode()
    destination_locality = Text(200, allow_none=True)
    destination_partner = NodeId(allow_none=True)
    assigned_user_id = Int(1, 2**31 - 1, allow_none=True)
    team = Text(64, min_length=1, allow_none=True)
    version = _version()


class SearchQuerySchema(Schema):
    q = Text(100, metadata={"description": "Name (any part, any script, accents ignored) or a reference"})
    reference = Text(32)
    status = _one_of(STATUSES)
    stage = Text(40, metadata={"description": "A configured stage key: cases currently in that stage, or "
                                              "with stage_status, cases whose stage has that status"})
    stage_status = _one_of(STAGE_STATUSES)
    destination = CountryCode()
    child = QueryBool(metadata={"description": "Only children's cases (true) or adults' (false)"})
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=100_000))
    per_page = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))

    @validates_schema
    def _stage_status_needs_stage(self, data: dict[str, Any], **_kwargs: Any) -> None:
        if "stage_status" in data and "stage" not in data:
            raise ValidationError("Give 'stage' together with 'stage_status'.", "stage_status")


# --- stages, child safeguards and consent -----------------------------------------------------------------

class StagePatchSchema(Schema):
    status = _one_of(STAGE_STATUSES)
    responsible = _one_of(RESPONSIBLE_SIDES)
    notes = Text(5000, multiline=True, allow_none=True)
    started_on = SaneDate(allow_none=True)
    completed_on = SaneDate(allow_none=True)
    due_on = SaneDate(allow_none=True, metadata={"description": "When the stage should be done by; null clears it"})
    version = _version()

    @validates_schema
    def _order(self, data: dict[str, Any], **_kwargs: Any) -> None:
        _check_dates(data, "started_on", "completed_on")


class GuardianSchema(Schema):
    name = Text(200, min_length=1, required=True)
    relation = Text(100, min_length=1, required=True,
                    metadata={"description": "e.g. parent, appointed guardian (god man), social services"})
    organisation = Text(200, allow_none=True)
    contact = Text(500, allow_none=True)


class SafeguardsWriteSchema(Schema):
    guardian = fields.Nested(GuardianSchema, allow_none=True)
    guardian_consent_at = SaneDateTime(allow_none=True)
    child_views = Text(MAX_LONG_TEXT, multiline=True, allow_none=True,
                       metadata={"description": "The child's own views, as heard and recorded"})
    best_interests_outcome = Text(5000, multiline=True, allow_none=True)
    assessed_at = SaneDateTime(allow_none=True)
    assessed_by = Text(200, allow_none=True)
    version = _version()


class ConsentCreateSchema(Schema):
    recipients = fields.List(NodeId(), required=True, validate=validate.Length(min=1, max=20),
                             metadata={"description": "Node ids of the organisations that may receive it"})
    categories = fields.List(_one_of(CONSENT_CATEGORIES), required=True,
                             validate=validate.Length(min=1, max=len(CONSENT_CATEGORIES)))
    purpose = _one_of(CONSENT_PURPOSES, required=True,
                      metadata={"description": "return_preparation, reintegration_support or follow_up"})
    method = _one_of(CONSENT_METHODS, required=True)
    valid_until = SaneDate(required=True)
    language = LanguageTag(allow_none=True, metadata={"description": "Language the consent was given in"})
    interpreter = Text(200, allow_none=True, metadata={"description": "Interpreter's name; null: none"})
    given_at = SaneDateTime(metadata={"description": "Defaults to now"})


# --- interventions and progress notes ---------------------------------------------------------------------

class _InterventionFields(Schema):
    provider = Text(200, allow_none=True)
    start_date = SaneDate(allow_none=True)
    end_date = SaneDate(allow_none=True)
    amount = Amount(allow_none=True)
    currency = CurrencyCode(allow_none=True)
    notes = Text(MAX_LONG_TEXT, multiline=True, allow_none=True)

    @validates_schema
    def _consistent(self, data: dict[str, Any], **_kwargs: Any) -> None:
        _check_dates(data, "start_date", "end_date")
        if data.get("amount") is not None and "currency" in data and data["currency"] is None:
            raise ValidationError("Give the currency of the amount.", "currency")


class InterventionCreateSchema(_InterventionFields):
    kind = _one_of(INTERVENTION_KINDS, required=True)
    status = _one_of(INTERVENTION_STATUSES, load_default="proposed")

    @validates_schema
    def _amount_has_currency(self, data: dict[str, Any], **_kwargs: Any) -> None:
        if data.get("amount") is not None and data.get("currency") is None:
            raise ValidationError("Give the currency of the amount.", "currency")


class InterventionPatchSchema(_InterventionFields):
    kind = _one_of(INTERVENTION_KINDS)
    status = _one_of(INTERVENTION_STATUSES)
    version = _version()


class StageChangeSchema(Schema):
    stage = Text(40, min_length=1, required=True)
    status = _one_of(STAGE_STATUSES, required=True)
    version = _version(required=True)


class ProgressNoteCreateSchema(Schema):
    text = Text(MAX_LONG_TEXT, min_length=1, multiline=True, required=True)
    stage_changes = fields.List(fields.Nested(StageChangeSchema), validate=validate.Length(max=20),
                                metadata={"description": "Stage status changes made with this note"})
