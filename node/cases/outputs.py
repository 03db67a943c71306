"""Response schemas of the case API (what the OpenAPI document shows for each answer).

They dump the services' ORM objects (or the small dicts the services build for computed views such as a
consent's status), so a view is parse → service → dump.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from marshmallow import Schema, fields, pre_dump

from .fields import Amount
from .models import Case, Intervention


class ContactOut(Schema):
    phone = fields.String(allow_none=True)
    email = fields.String(allow_none=True)
    address = fields.String(allow_none=True)
    notes = fields.String(allow_none=True)


class ReturneeOut(Schema):
    given_names = fields.String()
    family_name = fields.String()
    given_names_native = fields.String(allow_none=True)
    family_name_native = fields.String(allow_none=True)
    date_of_birth = fields.Date()
    sex_or_gender = fields.String(allow_none=True)
    nationality = fields.String(allow_none=True)
    languages = fields.List(fields.String())
    contact = fields.Nested(ContactOut)


def returnee_dict(case: Case) -> dict[str, Any]:
    return {
        "given_names": case.given_names, "family_name": case.family_name,
        "given_names_native": case.given_names_native, "family_name_native": case.family_name_native,
        "date_of_birth": case.date_of_birth, "sex_or_gender": case.sex_or_gender,
        "nationality": case.nationality, "languages": list(case.languages or []),
        "contact": {"phone": case.phone, "email": case.email, "address": case.address,
                    "notes": case.contact_notes},
    }


class CaseOut(Schema):
    id = fields.String()
    reference = fields.String(metadata={"description": "Human-readable, e.g. GI-2026-0042"})
    status = fields.String()
    current_stage = fields.String(allow_none=True,
                                  metadata={"description": "The stage being worked on (null: all done)"})
    child = fields.Boolean(metadata={"description": "Under 18 when the case was opened"})
    assigned_user_id = fields.Integer(allow_none=True)
    team = fields.String(allow_none=True)
    returnee = fields.Nested(ReturneeOut)
    destination_country = fields.String()
    destination_locality = fields.String(allow_none=True)
    destination_partner = fields.String(allow_none=True)
    created_at = fields.DateTime()
    updated_at = fields.DateTime()
    version = fields.Integer()

    @pre_dump
    def _flatten(self, case: Case, **_kwargs: Any) -> dict[str, Any]:
        return {
            "id": case.id, "reference": case.reference, "status": case.status,
            "current_stage": case.current_stage, "child": case.child_at_intake,
            "assigned_user_id": case.assigned_user_id, "team": case.team, "returnee": returnee_dict(case),
            "destination_country": case.destination_country,
            "destination_locality": case.destination_locality,
            "destination_partner": case.destination_partner,
            "created_at": case.created_at, "updated_at": case.updated_at, "version": case.version,
        }


class CaseSummaryOut(Schema):
    id = fields.String()
    reference = fields.String()
    status = fields.String()
    current_stage = fields.String(allow_none=True)
    child = fields.Boolean(attribute="child_at_intake")
    given_names = fields.String()
    family_name = fields.String()
    given_names_native = fields.String(allow_none=True)
    family_name_native = fields.String(allow_none=True)
    date_of_birth = fields.Date()
    destination_country = fields.String()
    assigned_user_id = fields.Integer(allow_none=True)
    team = fields.String(allow_none=True)
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class CasePageOut(Schema):
    items = fields.List(fields.Nested(CaseSummaryOut))
    page = fields.Integer()
    per_page = fields.Integer()
    total = fields.Integer()


class HouseholdMemberOut(Schema):
    id = fields.String()
    relation = fields.String()
    given_names = fields.String(allow_none=True)
    family_name = fields.String(allow_none=True)
    date_of_birth = fields.Date(allow_none=True)
    travelling = fields.Boolean()
    created_at = fields.DateTime()
    updated_at = fields.DateTime()
    version = fields.Integer()


class HouseholdListOut(Schema):
    items = fields.List(fields.Nested(HouseholdMemberOut))


class IntakeSectionOut(Schema):
    section = fields.String()
    text = fields.String(allow_none=True)
    marital_status = fields.String(allow_none=True)
    number_of_children = fields.Integer(allow_none=True)
    education_level = fields.Integer(allow_none=True)
    occupations = fields.List(fields.String())
    skills = fields.List(fields.String())
    updated_at = fields.DateTime(allow_none=True)
    version = fields.Integer(metadata={"description": "0 until the section is first written"})


class IntakeListOut(Schema):
    items = fields.List(fields.Nested(IntakeSectionOut))


class MilestoneOut(Schema):
    title = fields.String()
    due_date = fields.Date(allow_none=True)
    done = fields.Boolean()


class PlanOut(Schema):
    end_date = fields.Date(allow_none=True)
    milestones = fields.List(fields.Nested(MilestoneOut))
    updated_at = fields.DateTime(allow_none=True)
    version = fields.Integer(metadata={"description": "0 until the plan is first written"})


class StageOut(Schema):
    key = fields.String(attribute="stage_key")
    title = fields.String()
    position = fields.Integer()
    status = fields.String()
    responsible = fields.String()
    notes = fields.String(allow_none=True)
    started_on = fields.Date(allow_none=True)
    completed_on = fields.Date(allow_none=True)
    due_on = fields.Date(allow_none=True)
    updated_at = fields.DateTime()
    version = fields.Integer()


class StageListOut(Schema):
    items = fields.List(fields.Nested(StageOut))


class GuardianOut(Schema):
    name = fields.String()
    relation = fields.String()
    organisation = fields.String(allow_none=True)
    contact = fields.String(allow_none=True)


class SafeguardsOut(Schema):
    child = fields.Boolean(metadata={"description": "Whether the case is a child's case"})
    guardian = fields.Nested(GuardianOut, allow_none=True)
    guardian_consent_at = fields.DateTime(allow_none=True)
    child_views = fields.String(allow_none=True)
    best_interests_outcome = fields.String(allow_none=True)
    assessed_at = fields.DateTime(allow_none=True)
    assessed_by = fields.String(allow_none=True)
    missing = fields.List(fields.String(), metadata={
        "description": "Requirements still missing before a child's consent can become active"})
    updated_at = fields.DateTime(allow_none=True)
    version = fields.Integer(metadata={"description": "0 until first written"})


class ConsentOut(Schema):
    id = fields.String()
    case_id = fields.String()
    status = fields.String(metadata={"description": "pending, active, expired or withdrawn"})
    pending_reasons = fields.List(fields.String(), metadata={
        "description": "Why a consent is pending: the child safeguards still missing"})
    recipients = fields.List(fields.String())
    categories = fields.List(fields.String())
    purpose = fields.String()
    method = fields.String()
    valid_until = fields.Date()
    language = fields.String(allow_none=True)
    interpreter = fields.String(allow_none=True)
    given_at = fields.DateTime()
    recorded_by = fields.Integer(allow_none=True)
    created_at = fields.DateTime()
    withdrawn_at = fields.DateTime(allow_none=True)
    withdrawal_reason = fields.String(allow_none=True)


class ConsentListOut(Schema):
    items = fields.List(fields.Nested(ConsentOut))


class InterventionOut(Schema):
    id = fields.String()
    kind = fields.String()
    provider = fields.String(allow_none=True)
    status = fields.String()
    start_date = fields.Date(allow_none=True)
    end_date = fields.Date(allow_none=True)
    amount = Amount(allow_none=True)
    currency = fields.String(allow_none=True)
    notes = fields.String(allow_none=True)
    author_id = fields.Integer(allow_none=True)
    author = fields.String(allow_none=True, metadata={"description": "Username of the author"})
    created_at = fields.DateTime()
    updated_at = fields.DateTime()
    version = fields.Integer()

    @pre_dump
    def _amount(self, item: Intervention, **_kwargs: Any) -> dict[str, Any]:
        data = {name: getattr(item, name) for name in (
            "id", "kind", "provider", "status", "start_date", "end_date", "currency", "notes", "author_id",
            "created_at", "updated_at", "version")}
        data["amount"] = None if item.amount_cents is None else Decimal(item.amount_cents).scaleb(-2)
        data["author"] = item.author.username if item.author is not None else None
        return data


class InterventionListOut(Schema):
    items = fields.List(fields.Nested(InterventionOut))


class StageChangeOut(Schema):
    stage = fields.String()
    status = fields.String()
    previous_status = fields.String()


class ProgressNoteOut(Schema):
    id = fields.String()
    text = fields.String()
    stage_changes = fields.List(fields.Nested(StageChangeOut), allow_none=True)
    author_id = fields.Integer(allow_none=True)
    author = fields.Function(lambda note: note.author.username if note.author is not None else None,
                             allow_none=True)
    created_at = fields.DateTime()


class ProgressNoteListOut(Schema):
    items = fields.List(fields.Nested(ProgressNoteOut))


class TimelineEventOut(Schema):
    id = fields.Integer()
    occurred_at = fields.DateTime()
    kind = fields.String(metadata={"description": "e.g. case.created, stage.updated, consent.given"})
    source = fields.String(metadata={"description": "'local' or the partner node id it came from"})
    verified = fields.Boolean()
    actor_id = fields.Integer(allow_none=True)
    actor = fields.Function(lambda event: event.actor.username if event.actor is not None else None,
                            allow_none=True)
    object_type = fields.String(allow_none=True)
    object_id = fields.String(allow_none=True)
    detail = fields.Dict(allow_none=True, metadata={"description": "Ids, field names and statuses only"})


class TimelineOut(Schema):
    case_id = fields.String()
    items = fields.List(fields.Nested(TimelineEventOut))


class CaseExportOut(Schema):
    exported_at = fields.DateTime()
    case = fields.Nested(CaseOut)
    household = fields.List(fields.Nested(HouseholdMemberOut))
    intake = fields.List(fields.Nested(IntakeSectionOut))
    plan = fields.Nested(PlanOut)
    stages = fields.List(fields.Nested(StageOut))
    child_safeguards = fields.Nested(SafeguardsOut)
    consents = fields.List(fields.Nested(ConsentOut))
    interventions = fields.List(fields.Nested(InterventionOut))
    progress_notes = fields.List(fields.Nested(ProgressNoteOut))
    timeline = fields.List(fields.Nested(TimelineEventOut))


class ReportSummaryOut(Schema):
    generated_at = fields.DateTime()
    total = fields.Integer()
    children = fields.Integer(metadata={"description": "Cases of people under 18 when the case was opened"})
    adults = fields.Integer()
    by_status = fields.Dict(keys=fields.String(), values=fields.Integer())
    by_current_stage = fields.Dict(keys=fields.String(), values=fields.Integer(),
                                   metadata={"description": "Open work by stage; 'none' when all are done"})
    by_stage_status = fields.Dict(keys=fields.String(), values=fields.Dict(keys=fields.String(),
                                                                           values=fields.Integer()))
    by_destination = fields.Dict(keys=fields.String(), values=fields.Integer())
