"""Request and response schemas of the consent-across-the-chain API: withdrawal, revocation, disclosures and
closing (validation and the OpenAPI document from one source). Requests reject unknown fields and bound every
string and list; the vocabularies are the protocol's (categories, outcomes), so a valid request builds a valid
message."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from node.cases.fields import NodeId, SaneDateTime, Text
from node.cases.outputs import CaseExportOut, ConsentOut
from protocol import CATEGORIES
from protocol.messages import CLOSE_OUTCOMES


class WithdrawalScopeSchema(Schema):
    categories = fields.List(fields.String(validate=validate.OneOf(CATEGORIES)),
                             validate=validate.Length(min=1, max=len(CATEGORIES)),
                             metadata={"description": "Withdraw these categories only (default: all)"})
    recipients = fields.List(NodeId(), validate=validate.Length(min=1, max=16),
                             metadata={"description": "From these recipients only (default: all)"})

    @validates_schema
    def _not_empty(self, data: dict[str, Any], **kwargs: Any) -> None:
        if not data:
            raise ValidationError("Name categories and/or recipients, or leave scope out to withdraw the whole "
                                  "consent.", field_name="_schema")


class ConsentWithdrawSchema(Schema):
    reason = Text(1000, min_length=1, multiline=True, required=True,
                  metadata={"description": "The returnee's reason; it stays on this node"})
    withdrawn_at = SaneDateTime(metadata={"description": "Defaults to now"})
    scope = fields.Nested(WithdrawalScopeSchema, metadata={
        "description": "A partial withdrawal; absent: the whole consent"})


class WithdrawalOut(Schema):
    id = fields.String()
    consent_id = fields.String()
    scope = fields.Dict(allow_none=True)
    revocation = fields.Boolean()
    withdrawn_at = fields.DateTime()
    recorded_at = fields.DateTime()


class ErasureRequestOut(Schema):
    id = fields.String()
    handover_id = fields.String()
    partner = fields.String(metadata={"description": "The partner the request went to"})
    holder = fields.String(metadata={"description": "The node whose copy it concerns"})
    cause = fields.String(metadata={"description": "withdrawal, revocation or retention"})
    scope = fields.Dict(allow_none=True)
    requested_at = fields.DateTime(allow_none=True, metadata={"description": "None: reported by the holder"})
    message_id = fields.String(allow_none=True)
    sent = fields.Boolean(metadata={"description": "False when the partner could not be sent to (suspended)"})
    confirmed = fields.Boolean()
    confirmed_at = fields.DateTime(allow_none=True)
    erased_at = fields.DateTime(allow_none=True, metadata={"description": "As the holder's signed answer says"})
    erased_messages = fields.Integer()
    overdue = fields.Boolean()


class ConsentWithdrawnOut(ConsentOut):
    withdrawal = fields.Nested(WithdrawalOut)
    erasure_requests = fields.List(fields.Nested(ErasureRequestOut))


class RevokeSchema(Schema):
    reason = Text(2000, min_length=1, multiline=True, required=True,
                  metadata={"description": "Sent to the partner: say why, without personal data"})


class RevokeOut(Schema):
    handover_id = fields.String()
    status = fields.String()
    erasure_request = fields.Nested(ErasureRequestOut)


class OnwardOut(Schema):
    holder = fields.String(metadata={"description": "The node the partner passed the case on to"})
    forwarded_by = fields.String()
    forwarded_at = fields.DateTime()
    purpose = fields.String()
    categories = fields.List(fields.String())


class DisclosureOut(Schema):
    handover_id = fields.String()
    message_id = fields.String()
    kind = fields.String(metadata={"description": "handover or forward"})
    recipient = fields.String()
    recipient_name = fields.String(allow_none=True)
    sent_at = fields.DateTime()
    delivered_at = fields.DateTime(allow_none=True, metadata={"description": "When the signed receipt came"})
    consent_id = fields.String()
    purpose = fields.String()
    categories = fields.List(fields.String())
    withheld = fields.List(fields.String())
    status = fields.String()
    erasure = fields.String(metadata={"description": "none, requested, overdue or confirmed"})
    erasure_requests = fields.List(fields.Nested(ErasureRequestOut), metadata={
        "description": "One per holder: the recipient, and every node it passed the case on to"})
    onward = fields.List(fields.Nested(OnwardOut), metadata={"description": "Further holders (forwarding)"})


class DisclosureListOut(Schema):
    items = fields.List(fields.Nested(DisclosureOut))


class OutcomeSchema(Schema):
    code = fields.String(required=True, validate=validate.OneOf(CLOSE_OUTCOMES))
    text = Text(2000, min_length=1, multiline=True)


class CloseSchema(Schema):
    outcome = fields.Nested(OutcomeSchema, required=True)


class CloseOut(Schema):
    case_id = fields.String()
    status = fields.String()
    outcome = fields.Dict()
    notified = fields.List(fields.String(), metadata={"description": "Partners told with case_closed"})
    not_notified = fields.List(fields.String(), metadata={"description": "Partners that cannot be sent to now"})


class ReceivedFromOut(Schema):
    handover_id = fields.String()
    message_id = fields.String()
    kind = fields.String()
    sender = fields.String()
    origin = fields.String()
    received_at = fields.DateTime()
    accepted_at = fields.DateTime(allow_none=True)
    consent_id = fields.String()
    purpose = fields.String()
    categories = fields.List(fields.String())
    retain_until = fields.Date(allow_none=True)


class SubjectExportOut(CaseExportOut):
    disclosures = fields.List(fields.Nested(DisclosureOut), metadata={
        "description": "What of the case went to whom, when, under which consent, and whether erased"})
    received_from = fields.List(fields.Nested(ReceivedFromOut), metadata={
        "description": "A received case: the node it came from, when, under which consent"})
    withdrawals = fields.List(fields.Nested(WithdrawalOut))


class ForwardCreateSchema(Schema):
    recipient = NodeId(required=True, metadata={"description": "The further partner, named in the consent"})
    reason = Text(2000, min_length=1, multiline=True, metadata={"description": "Sent with the case"})


class CustodyLinkOut(Schema):
    holder = fields.String(metadata={"description": "The node that received the case in this hop"})
    from_ = fields.String(data_key="from", attribute="from", metadata={"description": "The node it came from"})
    at = fields.DateTime(allow_none=True)
    message_hash = fields.String(allow_none=True, metadata={"description": "The chain-link hash of the message"})
    evidence = fields.String(metadata={"description": "What proves the hop"})
    signed_by = fields.String(allow_none=True)
    verified = fields.Boolean()
    problem = fields.String(allow_none=True, metadata={"description": "Why the link does not verify"})
    status = fields.String(metadata={"description": "Hops from this node: the handover's status"})


class CustodyOut(Schema):
    case_id = fields.String()
    node = fields.String(metadata={"description": "This node"})
    origin = fields.String(metadata={"description": "The node whose consent the case travels under"})
    links = fields.List(fields.Nested(CustodyLinkOut))
    verified = fields.Boolean()
    problems = fields.List(fields.String())
