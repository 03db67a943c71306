"""Handovers: send a case's consented summary to a partner, and preview it (``status.py``: how they are
shown; ``decisions.py``: accepting and declining one received).

Sending runs in the caller's transaction and writes nothing until every check has passed: the consent is
active (not withdrawn, not expired, a child's safeguards complete), names the recipient for the purpose, the
partner is active and has a data-sharing agreement; then the summary of what the case holds is built, the
consent record is signed with the node's key, the summary is minimised for that recipient and purpose
(``protocol.minimise``), and the sealed message is queued (``outbox.store``) with the handover record and
its timeline event: a transactional outbox. A preview runs the very same steps and stores nothing, so it shows
byte for byte the body that would leave the node (Ed25519 signatures are deterministic).

On SQLite, whose writers take turns, the view passes a read-only session on a snapshot (``db.request_reader``):
the reading, signing and sealing run there, outside the write lock; under the lock, what decided the handover
is read again (the case's visibility, version and status, the consent's withdrawal, the child safeguards, the
partner) and, if any of it changed, the whole preparation runs again under the lock. So nothing is sent under
a consent withdrawn or to a partner suspended before the handover was stored.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm

from node.audit import record
from node.auth import Actor, require
from node.cases.access import (
    VISIBLE_TEAM,
    VISIBLE_USER,
    is_record_id,
    visibility,
    visibility_params,
    visible_case_row,
)
from node.cases.consent import consent_status, missing_safeguards
from node.cases.models import Case, ChildSafeguards, Consent
from node.cases.timeline import record_event
from node.config import NodeConfig
from node.db import insert_now
from node.errors import Conflict, ValidationFailed
from node.exchange.delivery.outbox import seal_for, store
from node.exchange.handovers.case_rows import load_rows
from node.exchange.handovers.chain_hooks import chain
from node.exchange.handovers.models import Handover
from node.exchange.handovers.status import present
from node.exchange.handovers.summary import case_summary, consent_record, protocol_case
from node.exchange.handovers.summary_gaps import not_carried
from node.exchange.models import Partner
from node.exchange.trust.partners import PartnerNotFound, require_sendable
from protocol import (
    BoxCache,
    ConsentInvalidError,
    NodeKeys,
    OutsideConsentError,
    SchemaError,
    allowed_categories,
    b64encode,
    minimise,
    sign_consent,
    validate_body,
)
from protocol.seal import SealedMessage

#: How long a partner keeps a summary when no retention was agreed with it (``partner add --retention-days``).
DEFAULT_RETENTION_DAYS = 730


class ConsentNotActive(Conflict):
    code = "consent_inactive"


class OutsideConsent(ValidationFailed):
    code = "outside_consent"


class HandoverRefused(Conflict):
    code = "handover_refused"

    def __init__(self, detail: str, code: str) -> None:
        super().__init__(detail)
        self.code = code


class UnknownRecipient(ValidationFailed):
    code = "unknown_partner"


@dataclass(frozen=True)
class Prepared:
    """A handover ready to leave: the body exactly as it would be sealed, and what it was made from."""

    case: Case
    consent: Consent
    partner: Partner
    purpose: str
    body: dict[str, Any]
    safeguards_version: int | None = None  # of the child safeguards read, if the case has any
    #: values of the granted categories the summary does not carry as they are (``summary_gaps``)
    not_carried: list[dict[str, str]] = field(default_factory=list)


def _inactive(consent: Consent, status: str, missing: list[str]) -> ConsentNotActive:
    if status == "withdrawn":
        return ConsentNotActive("The consent was withdrawn: nothing can be handed over under it.")
    if status == "expired":
        return ConsentNotActive(f"The consent expired after {consent.valid_until.isoformat()}: record a new "
                                "consent with the returnee first.")
    return ConsentNotActive("The consent is not active yet: this child's case still lacks "
                            f"{', '.join(missing)} (record them in the child safeguards).")


def sendable_partner(session: orm.Session, recipient: str) -> Partner:
    """The partner a case may be sent to, or ``UnknownRecipient`` naming the field (a refusal a counsellor reads).

    Raises:
        UnknownRecipient: not a partner of this node.
        PartnerStateError: suspended, revoked, or without an agreement (``trust.partners.require_sendable``).
    """
    try:
        return require_sendable(session, recipient)
    except PartnerNotFound:
        raise UnknownRecipient("Unknown recipient.", {"recipient": [
            f"{recipient} is not a partner of this node: its administrator must add it first "
            "('ccm-node partner add')."]}) from None


#: The case, if visible, with the consent named (of this case) and its child safeguards, in one query.
_CASE_CONSENT_SAFEGUARDS = {with_team: (
    sa.select(Case, Consent, ChildSafeguards)
    .outerjoin(Consent, sa.and_(Consent.id == sa.bindparam("consent_id"), Consent.case_id == Case.id))
    .outerjoin(ChildSafeguards, ChildSafeguards.case_id == Case.id)
    .where(Case.id == sa.bindparam("case_id"), visibility(VISIBLE_USER, VISIBLE_TEAM if with_team else None)))
    for with_team in (False, True)}


def prepare(session: orm.Session, actor: Actor, case_id: str, data: dict[str, Any], *, keys: NodeKeys,
            config: NodeConfig, now: dt.datetime) -> Prepared:
    """Check everything a handover needs and build its body; writes nothing.

    Args:
        data: ``recipient``, ``consent_id``, optional ``purpose`` (default: the consent's),
            ``requested_support`` and, for a child's case, ``best_interests_outcome``.
        keys: this node's keys (the consent record is signed with them).
        config: the node's configuration (stage titles).
    Returns:
        The prepared handover.
    Raises:
        Forbidden, NotFound: the actor may not hand over this case.
        ValidationFailed: no such consent, recipient or purpose outside it, no language, a child's case
            without the confirmed best-interests outcome, or case data the protocol cannot carry.
        ConsentNotActive: the consent is withdrawn, expired or pending (child safeguards missing).
        HandoverRefused: the protocol's consent rules refuse it (``consent_invalid``/``outside_consent``).
        PartnerStateError: the partner is suspended, revoked or has no agreement.
    """
    require(actor, "handover.send")
    consent_id = data["consent_id"]  # a malformed id names no record (it matches no row)
    row = visible_case_row(session, actor, case_id, _CASE_CONSENT_SAFEGUARDS,
                           consent_id=consent_id if is_record_id(consent_id) else "")
    case: Case = row[0]
    consent: Consent | None = row[1]
    safeguards: ChildSafeguards | None = row[2]
    if consent is None:
        raise ValidationFailed("No such consent.", {"consent_id": ["No consent with this id on this case."]})
    missing = missing_safeguards(case, safeguards)
    status = consent_status(consent, missing, now.date())
    if status != "active":
        raise _inactive(consent, status, missing)
    recipient: str = data["recipient"]
    if recipient not in consent.recipients:
        raise OutsideConsent("Recipient outside the consent.", {"recipient": [
            f"The consent does not name {recipient}: the returnee agreed to share with "
            f"{', '.join(consent.recipients)} only."]})
    purpose: str = data.get("purpose") or consent.purpose
    if purpose != consent.purpose:
        raise OutsideConsent("Purpose outside the consent.", {"purpose": [
            f"The consent covers {consent.purpose} only."]})
    language = consent.language or next(iter(case.languages or []), None)
    if language is None:
        raise ValidationFailed("No language for the consent.", {"language": [
            "The consent records no language and the returnee has none: record the language the returnee "
            "was informed in (the returnee's languages) before handing over."]})
    outcome = data.get("best_interests_outcome")
    if case.child_at_intake and outcome is None:
        raise ValidationFailed("Best-interests outcome not confirmed.", {"best_interests_outcome": [
            "A child's case: confirm the outcome of the best-interests assessment recorded in the child "
            "safeguards (in_best_interests, not_in_best_interests or inconclusive)."]})
    partner = sendable_partner(session, recipient)
    try:
        record_ = consent_record(case, consent, safeguards, origin=keys.node_id, language=language,
                                 best_interests_outcome=outcome if case.child_at_intake else None)
        signed = sign_consent(record_, keys.node_id, keys.signing_key, validated=True)
        withdrawals = chain().withdrawals_for(session, keys.node_id, consent.id)
        granted = allowed_categories(signed, recipient, purpose, withdrawals)  # only those are read
        rows = load_rows(session, case, granted)  # read once for the summary and for what it does not carry
        cut = minimise(case_summary(session, case, config.stages, granted, rows), signed, recipient, purpose,
                       now=now, withdrawals=withdrawals, validated=True, copy_sections=False)  # built for it
        body = {"case": protocol_case(case), "consent": signed, "purpose": purpose, **cut,
                "requested_support": data.get("requested_support", []),
                "retention": {"days": partner.retention_days or DEFAULT_RETENTION_DAYS}}
        validate_body("handover", body)
    except ConsentInvalidError as exc:
        raise HandoverRefused(f"The consent does not allow this handover: {exc.message}.",
                              "consent_invalid") from None
    except OutsideConsentError as exc:
        raise OutsideConsent(f"Outside the consent: {exc.message}.") from None
    except SchemaError as exc:
        raise ValidationFailed("The case holds data a handover cannot carry.", exc.errors or None) from None
    gaps = not_carried(session, case, granted, rows)  # granted: a category may have nothing the summary can carry
    return Prepared(case, consent, partner, purpose, body, safeguards.version if safeguards else None, gaps)


def preview_handover(session: orm.Session, actor: Actor, case_id: str, data: dict[str, Any], *,
                     keys: NodeKeys, config: NodeConfig, now: dt.datetime) -> dict[str, Any]:
    """Exactly what a handover would send, without storing it (audited as an export).

    Raises:
        See :func:`prepare`.
    """
    prepared = prepare(session, actor, case_id, data, keys=keys, config=config, now=now)
    body = prepared.body
    record(session, actor=actor, action="export", object_type="handover_preview", object_id=prepared.consent.id,
           case_id=prepared.case.id, now=now,
           detail={"recipient": prepared.partner.node_id, "categories": sorted(body["summary"])})
    return {"recipient": prepared.partner.node_id, "purpose": prepared.purpose,
            "categories": list(body["summary"]), "withheld": body["withheld"],
            "not_carried": prepared.not_carried, "body": body}


def _partner_state(partner: Partner) -> tuple[Any, ...]:
    return partner.id, partner.status, partner.agreement_id, partner.card, partner.retention_days


_OPEN_HANDOVER = sa.select(Handover.status).where(
    Handover.direction == "outgoing", Handover.case_id == sa.bindparam("case_id"),
    Handover.partner_node == sa.bindparam("node_id"), Handover.status.in_(("pending", "accepted"))).limit(1)
#: What decided a handover, read again under the write lock, and the status of a handover of the case to the
#: partner that is pending or accepted, if any (built once, for actors without and with a team).
_STILL_VALID = {with_team: (
    sa.select(Case.version, Case.status, Consent.withdrawn_at, ChildSafeguards.version, Partner.id, Partner.status,
              Partner.agreement_id, Partner.card, Partner.retention_days, _OPEN_HANDOVER.scalar_subquery())
    .select_from(Case)
    .join(Consent, sa.and_(Consent.id == sa.bindparam("consent_id"), Consent.case_id == Case.id))
    .join(Partner, Partner.node_id == sa.bindparam("node_id"))
    .outerjoin(ChildSafeguards, ChildSafeguards.case_id == Case.id)
    .where(Case.id == sa.bindparam("case_id"), visibility(VISIBLE_USER, VISIBLE_TEAM if with_team else None)))
    for with_team in (False, True)}


def _still_valid(session: orm.Session, actor: Actor, prepared: Prepared) -> tuple[bool, str | None]:
    """Whether what decided a handover prepared on a reader's snapshot still holds on the writing session, and
    the status of an open handover of the case to the partner (None: none): one query for the case's
    visibility to the actor, its version and status, the consent's withdrawal, the child safeguards' version,
    the partner's status, agreement, card and retention, and the open handover.
    """
    require(actor, "handover.send")
    row = session.execute(_STILL_VALID[actor.team is not None], {
        "case_id": prepared.case.id, "consent_id": prepared.consent.id, "node_id": prepared.partner.node_id,
        **visibility_params(actor)}).first()
    if row is None:
        return False, None
    *decided, open_status = row
    return tuple(decided) == (prepared.case.version, prepared.case.status, prepared.consent.withdrawn_at,
                              prepared.safeguards_version, *_partner_state(prepared.partner)), open_status


def _refuse_open_handover(prepared: Prepared, open_status: str | None) -> None:
    if open_status is not None:
        raise Conflict(f"This case was handed over to {prepared.partner.node_id} already ({open_status}); a "
                       "new handover is possible once it is declined.")


def _sealed(prepared: Prepared, thread: str, *, keys: NodeKeys, now: dt.datetime,
            boxes: BoxCache | None) -> SealedMessage:
    # A new thread: sequence 1, no prev. prepare() validated the body.
    return seal_for(prepared.partner, keys=keys, msg_type="handover", body=prepared.body, thread=thread, now=now,
                    boxes=boxes, validated=True)


def send_handover(session: orm.Session, actor: Actor, case_id: str, data: dict[str, Any], *, keys: NodeKeys,
                  config: NodeConfig, now: dt.datetime, boxes: BoxCache | None = None,
                  reader: orm.Session | None = None) -> dict[str, Any]:
    """``POST /cases/{id}/handovers``: queue the handover, in the caller's transaction (no commit).

    Args:
        reader: (SQLite) a read-only session on a snapshot, where the handover is prepared and sealed before
            ``session`` takes the write lock; what decided it is then read again on ``session`` (see the
            module's docstring). Default: everything on ``session``.
    Returns:
        The handover as :func:`present` shows it (status ``queued``).
    Raises:
        Conflict: a handover of this case to this recipient is pending or accepted already.
        MessageRejected: the sealed message would be too large.
        See :func:`prepare` for the rest.
    """
    thread = b64encode(os.urandom(16))
    prepared = prepare(reader or session, actor, case_id, data, keys=keys, config=config, now=now)
    sealed = _sealed(prepared, thread, keys=keys, now=now, boxes=boxes)
    valid, open_status = _still_valid(session, actor, prepared) if reader is not None else (False, None)
    if reader is not None and not valid:
        # changed meanwhile: all again, under the lock
        prepared = prepare(session, actor, case_id, data, keys=keys, config=config, now=now)
        sealed = _sealed(prepared, thread, keys=keys, now=now, boxes=boxes)
    if not valid:  # prepared on this session: the open handover not looked for yet
        open_status = session.scalar(_OPEN_HANDOVER, {"case_id": prepared.case.id,
                                                      "node_id": prepared.partner.node_id})
    _refuse_open_handover(prepared, open_status)
    case, partner, body = prepared.case, prepared.partner, prepared.body
    message = store(session, sealed, partner, seq=1, prev=None, now=now, case_id=case.id)
    handover = Handover(
        id=str(uuid.uuid4()), direction="outgoing", status="pending", partner_id=partner.id,
        partner_node=partner.node_id, thread=thread, message_id=message.message_id, case_id=case.id,
        consent_id=prepared.consent.id, purpose=prepared.purpose, reference=case.reference,
        origin_case_id=case.id, categories=list(body["summary"]), withheld=list(body["withheld"]),
        not_carried=prepared.not_carried, body=None, consent=None, child=case.child_at_intake,
        destination_country=case.destination_country, retain_until=None, created_at=now, created_by=actor.user_id)
    insert_now(session, handover)
    detail = {"handover_id": message.message_id, "recipient": partner.node_id,
              "consent_id": prepared.consent.id, "categories": handover.categories,
              "withheld": handover.withheld}
    record_event(session, case, kind="handover.sent", now=now, actor=actor, object_type="handover",
                 object_id=handover.id, detail=detail)
    record(session, actor=actor, action="create", object_type="handover", object_id=handover.id,
           case_id=case.id, now=now, detail=detail)
    return present(handover, message)
