"""Strict schemas for the body of every message type, and ``validate_body`` which applies them.

``open_envelope`` calls ``validate_body`` on the decrypted inner document's body; a sender should call it
before sealing. A body that passes comes back as plain JSON data equal to what went in (times and dates stay
strings, no defaults are filled in), so it can be canonicalised again byte for byte. The normative text is
SPEC.md section 8.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from types import MappingProxyType
from typing import Any

from marshmallow import ValidationError, fields, validate, validates_schema

from .errors import MalformedError, SchemaError
from .fastschema import Acceptor, fast_loader
from .fields import (
    COUNTRY_CODES,
    CURRENCY_CODES,
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
    content_hash,
    decimal,
    integer,
    key,
    message_id,
    node_id,
    opaque_id,
    signatures,
)
from .summary import (
    CATEGORIES,
    INTERVENTION_KINDS,
    PURPOSES,
    STAGE_STATUSES,
    ConsentedSummarySchema,
    InterventionSchema,
)
from .times import parse_time

MESSAGE_TYPES = frozenset({
    "handover", "receipt", "handover_accepted", "handover_declined", "progress_update", "consent_withdrawn",
    "erasure_confirmed", "case_closed", "forward", "key_rotated", "custody_notice",
})
SUPPORT_KINDS = (*INTERVENTION_KINDS, "reception", "coaching", "authority_contact")
DECLINE_REASONS = ("no_capacity", "outside_mandate", "insufficient_information", "consent_problem", "other")
CLOSE_OUTCOMES = ("plan_completed", "reintegrating_independently", "withdrew", "did_not_return",
                  "lost_contact", "transferred", "other")
INDICATOR_DIMENSIONS = ("economic", "social", "psychosocial")
MEETING_KINDS = ("in_person", "phone", "video", "home_visit", "group")
MAX_CHAIN_STEPS = 8
MAX_TOMBSTONE_ENTRIES = 1000
MAX_ROTATION_OVERLAP = timedelta(days=365)


def _nested(schema: type[StrictSchema], **kwargs: Any) -> fields.Nested:
    return fields.Nested(schema, **kwargs)


def _not_before(data: dict[str, Any], first: str, then: str) -> None:
    if first in data and then in data and parse_time(data[then]) < parse_time(data[first]):
        raise ValidationError(f"Must not be earlier than {first}.", field_name=then)


# --- handover -------------------------------------------------------------------------------------


class SupportRequestSchema(StrictSchema):
    kind = Enum(SUPPORT_KINDS, required=True)
    note = Text(NOTE_MAX)


class RetentionSchema(StrictSchema):
    retain_until = Date()
    days = integer(1, 3650)

    @validates_schema
    def _exactly_one(self, data: dict[str, Any], **kwargs: Any) -> None:
        if ("retain_until" in data) == ("days" in data):
            raise ValidationError("Give exactly one of retain_until and days.", field_name="_schema")


class HandoverSchema(ConsentedSummarySchema):
    requested_support = bounded_list(_nested(SupportRequestSchema), 20, required=True)
    retention = _nested(RetentionSchema, required=True)


# --- receipt, accept, decline ---------------------------------------------------------------------


class ReceiptSchema(StrictSchema):
    """The signed delivery receipt of SPEC.md section 7, verbatim (``protocol.receipts.make_receipt``)."""

    v = integer(1, 1, required=True)
    type = Enum(("delivery_receipt",), required=True)
    message_id = message_id(required=True)
    content_hash = content_hash(required=True)
    received_at = Time(required=True)
    from_ = node_id(data_key="from", attribute="from", required=True)
    to = node_id(required=True)
    signatures = signatures(required=True)


class AdviserSchema(StrictSchema):
    name = Line()
    office = Line()


class HandoverAcceptedSchema(StrictSchema):
    handover_id = message_id(required=True)
    accepted_at = Time(required=True)
    adviser = _nested(AdviserSchema)
    local_reference = Line(REFERENCE_MAX)
    first_meeting_at = Time()


class HandoverDeclinedSchema(StrictSchema):
    handover_id = message_id(required=True)
    declined_at = Time(required=True)
    reason = Text(NOTE_MAX, required=True)
    reason_code = Enum(DECLINE_REASONS, required=True)


# --- progress -------------------------------------------------------------------------------------


class StageChangeSchema(StrictSchema):
    key = key(required=True)
    status = Enum(STAGE_STATUSES, required=True)
    note = Text(NOTE_MAX)
    at = Time(required=True)


class MeetingSchema(StrictSchema):
    at = Time(required=True)
    kind = Enum(MEETING_KINDS, required=True)
    note = Text(NOTE_MAX)


class IndicatorSchema(StrictSchema):
    dimension = Enum(INDICATOR_DIMENSIONS, required=True)
    indicator = key(required=True)
    value = decimal(required=True)
    note = Text(NOTE_MAX)


class ProgressUpdateSchema(StrictSchema):
    handover_id = message_id(required=True)
    update_id = opaque_id(required=True)
    at = Time(required=True)
    stage_changes = bounded_list(_nested(StageChangeSchema), 30, minimum=1)
    interventions = bounded_list(_nested(InterventionSchema), 50, minimum=1)
    meetings = bounded_list(_nested(MeetingSchema), 50, minimum=1)
    note = Text()
    indicators = bounded_list(_nested(IndicatorSchema), 50, minimum=1)

    @validates_schema
    def _says_something(self, data: dict[str, Any], **kwargs: Any) -> None:
        if not {"stage_changes", "interventions", "meetings", "note", "indicators"} & set(data):
            raise ValidationError("An update needs stage changes, interventions, meetings, a note or "
                                  "indicators.", field_name="_schema")


# --- consent withdrawal and erasure ---------------------------------------------------------------


class ScopeSchema(StrictSchema):
    categories = bounded_list(Enum(CATEGORIES), len(CATEGORIES), minimum=1, unique=True)
    recipients = bounded_list(node_id(), 16, minimum=1, unique=True)

    @validates_schema
    def _not_empty(self, data: dict[str, Any], **kwargs: Any) -> None:
        if not data:
            raise ValidationError("Omit scope for a full withdrawal instead of sending it empty.",
                                  field_name="_schema")


class ConsentWithdrawnSchema(StrictSchema):
    consent_id = opaque_id(required=True)
    withdrawn_at = Time(required=True)
    scope = _nested(ScopeSchema)
    reason = Text(NOTE_MAX)
    revocation = Bool(required=True)
    handover_id = message_id()


class TombstoneSchema(StrictSchema):
    message_ids = bounded_list(message_id(), MAX_TOMBSTONE_ENTRIES, unique=True, required=True)
    content_hashes = bounded_list(content_hash(), MAX_TOMBSTONE_ENTRIES, unique=True, required=True)


class ErasureConfirmedSchema(StrictSchema):
    consent_id = opaque_id(required=True)
    erased_at = Time(required=True)
    scope = _nested(ScopeSchema)
    tombstone = _nested(TombstoneSchema, required=True)
    holder = node_id()


# --- closing, forwarding, keys --------------------------------------------------------------------


class OutcomeSchema(StrictSchema):
    code = Enum(CLOSE_OUTCOMES, required=True)
    text = Text(NOTE_MAX)


class CaseClosedSchema(StrictSchema):
    handover_id = message_id(required=True)
    closed_at = Time(required=True)
    outcome = _nested(OutcomeSchema, required=True)


class CustodyStepSchema(StrictSchema):
    holder = node_id(required=True)
    from_ = node_id(data_key="from", attribute="from", required=True)
    at = Time(required=True)
    message_hash = content_hash(required=True)
    signatures = signatures(required=True)


def _loose_object(max_members: int, **kwargs: Any) -> fields.Dict:
    return fields.Dict(keys=fields.String(validate=validate.Length(1, 64)),
                       validate=validate.Length(1, max_members), **kwargs)


class ForwardSchema(StrictSchema):
    original_handover = _nested(ConsentedSummarySchema, required=True)
    forwarded_to = node_id(required=True)
    chain = bounded_list(_nested(CustodyStepSchema), MAX_CHAIN_STEPS, minimum=1, required=True)
    reason = Text(NOTE_MAX)
    cards = bounded_list(_loose_object(32), MAX_CHAIN_STEPS)


class CustodyNoticeSchema(StrictSchema):
    handover_id = message_id(required=True)
    forwarded_to = node_id(required=True)
    forwarded_at = Time(required=True)
    forward_id = message_id(required=True)
    message_hash = content_hash(required=True)
    purpose = Enum(PURPOSES, required=True)
    categories = bounded_list(Enum(CATEGORIES), len(CATEGORIES), unique=True, required=True)
    reason = Text(NOTE_MAX)
    card = _loose_object(32)


class KeyRotatedSchema(StrictSchema):
    new_card = _loose_object(32, required=True)
    effective_at = Time(required=True)
    overlap_until = Time(required=True)

    @validates_schema
    def _window(self, data: dict[str, Any], **kwargs: Any) -> None:
        _not_before(data, "effective_at", "overlap_until")
        if parse_time(data["overlap_until"]) - parse_time(data["effective_at"]) > MAX_ROTATION_OVERLAP:
            raise ValidationError("The overlap may last at most 365 days.", field_name="overlap_until")


#: Every message type's body schema (the reference the fast acceptors are made from and checked against).
BODY_SCHEMAS: Mapping[str, StrictSchema] = MappingProxyType({
    "handover": HandoverSchema(),
    "receipt": ReceiptSchema(),
    "handover_accepted": HandoverAcceptedSchema(),
    "handover_declined": HandoverDeclinedSchema(),
    "progress_update": ProgressUpdateSchema(),
    "consent_withdrawn": ConsentWithdrawnSchema(),
    "erasure_confirmed": ErasureConfirmedSchema(),
    "case_closed": CaseClosedSchema(),
    "forward": ForwardSchema(),
    "key_rotated": KeyRotatedSchema(),
    "custody_notice": CustodyNoticeSchema(),
})
#: Their ``load`` with a fast acceptor made from each in front (``protocol.fastschema``): a body the acceptor
#: accepts is valid and loads to what the schema returns; any other the schema decides, and words the errors.
_LOADERS: Mapping[str, Acceptor] = MappingProxyType({
    msg_type: fast_loader(schema) for msg_type, schema in BODY_SCHEMAS.items()})


def validate_body(msg_type: str, body: object) -> dict[str, Any]:
    """Validate a message body against the strict schema of its type.

    Args:
        msg_type: one of ``MESSAGE_TYPES``.
        body: the parsed JSON body (from ``strict_loads``).
    Returns:
        The validated body as plain JSON data, equal to ``body``.
    Raises:
        MalformedError: ``msg_type`` is not a known message type.
        SchemaError: the body does not match; ``errors`` names the failing fields.

    A body of the usual shape is recognised by the type's fast acceptor (``protocol.fastschema``, made from the
    schema); the schema itself (marshmallow) runs on any other, so it alone refuses a body and words why.
    """
    schema = BODY_SCHEMAS.get(msg_type) if isinstance(msg_type, str) else None
    if schema is None:
        raise MalformedError("unknown message type")
    try:
        loaded: dict[str, Any] = _LOADERS[msg_type](body)
    except ValidationError as exc:
        messages = exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages}
        raise SchemaError(f"{msg_type} body does not match its schema", errors=messages) from None
    return loaded


def _enums_of(schema: Any, path: str, found: dict[str, tuple[str, ...]]) -> None:
    for name, field in schema.fields.items():
        _enums_of_field(field, f"{path}.{name}", found)


def _enums_of_field(field: Any, path: str, found: dict[str, tuple[str, ...]]) -> None:
    if isinstance(field, Enum):
        found[path] = tuple(field.choices)
    elif isinstance(field, fields.Nested):
        _enums_of(field.schema, path, found)
    elif isinstance(field, fields.List):
        _enums_of_field(field.inner, f"{path}[]", found)


def enumerations() -> dict[str, tuple[str, ...]]:
    """Every closed value set of the protocol, by name (SPEC.md 8.2; ``vectors/value_sets.json`` lists them).

    ``Country`` (sorted), ``Currency`` (sorted), ``MessageType`` (sorted), and for every ``Enum`` field of every
    body schema ``<type>.<path>`` (``[]`` marks a list member) with its values in the schema's order.
    """
    found: dict[str, tuple[str, ...]] = {
        "Country": tuple(sorted(COUNTRY_CODES)), "Currency": tuple(sorted(CURRENCY_CODES)),
        "MessageType": tuple(sorted(MESSAGE_TYPES)),
    }
    for msg_type in sorted(BODY_SCHEMAS):
        _enums_of(BODY_SCHEMAS[msg_type], msg_type, found)
    return found
