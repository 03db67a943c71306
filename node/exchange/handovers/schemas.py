"""Request and response schemas of the handover API (validation and the OpenAPI document from one source).

Requests reject unknown fields and bound every string and list. The values that travel use the protocol's
vocabularies (purposes, support kinds, decline reasons, stage and intervention statuses, meeting kinds), so a
valid request builds a valid message.
"""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from node.cases.fields import Amount, CurrencyCode, NodeId, SaneDate, SaneDateTime, Text
from node.cases.models import INTERVENTION_KINDS, INTERVENTION_STATUSES, STAGE_STATUSES
from node.exchange.handovers.status import STATUSES
from protocol import PURPOSES
from protocol.messages import DECLINE_REASONS, MEETING_KINDS, SUPPORT_KINDS

BEST_INTERESTS = ("in_best_interests", "not_in_best_interests", "inconclusive")


def _one_of(choices: tuple[str, ...], **kwargs: Any) -> fields.String:
    return fields.String(validate=validate.OneOf(choices), **kwargs)


def _list(item: fields.Field[Any], maximum: int, **kwargs: Any) -> fields.List[Any]:
    return fields.List(item, validate=validate.Length(max=maximum), **kwargs)


class HandoverSupportSchema(Schema):
    kind = _one_of(SUPPORT_KINDS, required=True)
    note = Text(2000, multiline=True)


class HandoverQuerySchema(Schema):
    """What to hand over: the recipient and the consent that allows it."""

    recipient = NodeId(required=True, metadata={"description": "The partner node, e.g. ba.cldd-sarajevo"})
    consent_id = fields.String(required=True, validate=validate.Length(min=1, max=36),
                               metadata={"description": "An active consent of the case naming the recipient"})
    purpose = _one_of(PURPOSES, metadata={"description": "Default: the consent's purpose"})
    best_interests_outcome = _one_of(BEST_INTERESTS, metadata={
        "description": "A child's case only: the outcome of the best-interests assessment recorded in the child "
                       "safeguards, as the counsellor confirms it (only in_best_interests allows a transfer)"})


class HandoverCreateSchema(HandoverQuerySchema):
    requested_support = _list(fields.Nested(HandoverSupportSchema), 20,
                              metadata={"description": "What the recipient is asked to arrange"})


class NotCarriedOut(Schema):
    category = fields.String()
    field = fields.String(metadata={"description": "The value as entered, e.g. family.number_of_children"})
    reason = fields.String(metadata={"description": "Why the summary does not carry it as it is, in words"})


class DeliveryOut(Schema):
    status = fields.String(metadata={"description": "queued, sending, delivered, parked or undeliverable"})
    attempts = fields.Integer()
    last_error = fields.String(allow_none=True)
    next_attempt_at = fields.DateTime(allow_none=True)
    delivered_at = fields.DateTime(allow_none=True, metadata={"description": "When the signed receipt came"})


class HandoverOut(Schema):
    id = fields.String()
    direction = fields.String(metadata={"description": "outgoing or incoming"})
    status = fields.String(metadata={"description": ", ".join(STATUSES)})
    partner = fields.String(metadata={"description": "The recipient (outgoing) or sender (incoming) node id"})
    partner_name = fields.String(allow_none=True)
    handover_id = fields.String(metadata={"description": "The handover message id every later message cites"})
    thread = fields.String()
    case_id = fields.String(allow_none=True, metadata={
        "description": "The local case (incoming: once accepted)"})
    reference = fields.String(metadata={"description": "The sending node's case reference"})
    consent_id = fields.String()
    purpose = fields.String()
    child = fields.Boolean()
    destination_country = fields.String()
    categories = fields.List(fields.String(), metadata={"description": "The categories shared"})
    withheld = fields.List(fields.String(), metadata={"description": "The categories withheld by design"})
    not_carried = fields.List(fields.Nested(NotCarriedOut), metadata={
        "description": "Outgoing: values of the categories shared that the summary did not carry as they are"})
    created_at = fields.DateTime(metadata={"description": "Queued (outgoing) or received (incoming)"})
    delivered_at = fields.DateTime(allow_none=True)
    accepted_at = fields.DateTime(allow_none=True)
    declined_at = fields.DateTime(allow_none=True)
    reason_code = fields.String(allow_none=True)
    reason = fields.String(allow_none=True)
    local_reference = fields.String(allow_none=True, metadata={
        "description": "Outgoing: the partner's case reference; incoming: the case opened here"})
    answer = fields.Dict(allow_none=True, metadata={"description": "The adviser and first meeting named"})
    delivery = fields.Nested(DeliveryOut, allow_none=True)
    retain_until = fields.Date(allow_none=True, metadata={"description": "Incoming: erase the summary by then"})


class HandoverDetailOut(HandoverOut):
    case = fields.Dict(metadata={"description": "Incoming, pending: the sender's case (reference, destination)"})
    summary = fields.Dict(metadata={"description": "Incoming, pending: the consented summary"})
    requested_support = fields.List(fields.Dict())
    retention = fields.Dict()
    consent = fields.Dict(metadata={"description": "Incoming, pending: the signed consent record"})


class HandoverListOut(Schema):
    items = fields.List(fields.Nested(HandoverOut))


class HandoverListQuerySchema(Schema):
    direction = _one_of(("incoming", "outgoing"), load_default="incoming")
    status = _one_of(STATUSES)


class PreviewOut(Schema):
    recipient = fields.String()
    purpose = fields.String()
    categories = fields.List(fields.String(), metadata={"description": "What would be shared"})
    withheld = fields.List(fields.String(), metadata={"description": "The categories the consent does not grant"})
    not_carried = fields.List(fields.Nested(NotCarriedOut), metadata={
        "description": "Values of the granted categories the summary cannot carry as they are, with the reason"})
    body = fields.Dict(metadata={"description": "The handover body exactly as it would be sealed"})


class AcceptSchema(Schema):
    first_meeting_at = SaneDateTime(metadata={"description": "The first meeting booked with the returnee"})
    office = Text(200, min_length=1, metadata={"description": "Default: this node's name"})


class AcceptOut(Schema):
    case_id = fields.String(metadata={"description": "The case opened here"})
    reference = fields.String()
    handover = fields.Nested(HandoverOut)


class DeclineSchema(Schema):
    reason = Text(2000, min_length=1, multiline=True, required=True)
    reason_code = _one_of(DECLINE_REASONS, required=True)


class ProgressStageChangeSchema(Schema):
    key = Text(40, min_length=1, required=True)
    status = _one_of(STAGE_STATUSES, required=True)
    note = Text(2000, multiline=True)


class ProgressInterventionSchema(Schema):
    id = fields.String(validate=validate.Length(min=1, max=36),
                       metadata={"description": "An existing intervention to change; omit for a new one"})
    kind = _one_of(INTERVENTION_KINDS)
    status = _one_of(INTERVENTION_STATUSES)
    provider = Text(200, allow_none=True)
    start_date = SaneDate(allow_none=True)
    end_date = SaneDate(allow_none=True)
    amount = Amount(allow_none=True)
    currency = CurrencyCode(allow_none=True)
    notes = Text(2000, multiline=True, allow_none=True)

    @validates_schema
    def _consistent(self, data: dict[str, Any], **_kwargs: Any) -> None:
        start, end = data.get("start_date"), data.get("end_date")
        if start is not None and end is not None and end < start:
            raise ValidationError("Must not be before start_date.", "end_date")
        if data.get("amount") is not None and data.get("currency") is None:
            raise ValidationError("Give the currency of the amount.", "currency")


class ProgressMeetingSchema(Schema):
    at = SaneDateTime(required=True)
    kind = _one_of(MEETING_KINDS, required=True)
    note = Text(2000, multiline=True)


class ProgressCreateSchema(Schema):
    note = Text(8000, min_length=1, multiline=True, metadata={"description": "How the work goes"})
    stage_changes = _list(fields.Nested(ProgressStageChangeSchema), 30)
    interventions = _list(fields.Nested(ProgressInterventionSchema), 50)
    meetings = _list(fields.Nested(ProgressMeetingSchema), 50)

    @validates_schema
    def _says_something(self, data: dict[str, Any], **_kwargs: Any) -> None:
        if not any(data.get(name) for name in ("note", "stage_changes", "interventions", "meetings")):
            raise ValidationError("Give a note, stage changes, interventions or meetings.", "note")


class ProgressOut(Schema):
    id = fields.String()
    direction = fields.String(metadata={"description": "sent (to the origin), local, or received (from the "
                                                       "partner working the case)"})
    partner = fields.String(allow_none=True)
    partner_name = fields.String(allow_none=True)
    update_id = fields.String()
    at = fields.DateTime()
    note = fields.String(allow_none=True)
    stage_changes = fields.List(fields.Dict())
    interventions = fields.List(fields.Dict())
    meetings = fields.List(fields.Dict())
    indicators = fields.List(fields.Dict())
    message_id = fields.String(allow_none=True)
    verified = fields.Boolean(metadata={"description": "Received with a verified signature"})
    created_at = fields.DateTime()
    shared_with = fields.String(allow_none=True, metadata={"description": "The origin node it was queued for"})
    not_shared = fields.String(allow_none=True, metadata={"description": "Why it was not sent to the origin"})


class ProgressListOut(Schema):
    items = fields.List(fields.Nested(ProgressOut))


class PartnerStageOut(Schema):
    partner = fields.String()
    partner_name = fields.String(allow_none=True)
    key = fields.String()
    title = fields.String(allow_none=True)
    status = fields.String()
    note = fields.String(allow_none=True)
    changed_at = fields.DateTime()
    received_at = fields.DateTime()
    verified = fields.Boolean()


class PartnerStageListOut(Schema):
    items = fields.List(fields.Nested(PartnerStageOut))
