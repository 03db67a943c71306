"""Handovers: send a case's consented summary to a partner, preview it, and show handovers with their status.

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

An outgoing handover's status is ``queued`` until the partner's signed receipt is stored with its message
(``delivered``), then ``accepted`` or ``declined`` as the partner's adviser answers. The answer can arrive
before the delivery worker has recorded the receipt: the status follows the answer whatever the receipt.

Importing this module registers the appliers of received messages (``node.exchange.appliers``), which is how
``dispatch`` finds them.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm

from node.audit import record
from node.auth import Actor, can, require
from node.cases.access import case_for, case_record, visible_cases_filter
from node.cases.consent import consent_status, missing_safeguards
from node.cases.models import Case, ChildSafeguards, Consent
from node.cases.timeline import record_event
from node.config import NodeConfig
from node.errors import Conflict, Forbidden, NotFound, ValidationFailed
from protocol import (
    BoxCache,
    ConsentInvalidError,
    NodeKeys,
    OutsideConsentError,
    SchemaError,
    b64encode,
    minimise,
    sign_consent,
    validate_body,
)
from protocol.seal import SealedMessage

from . import appliers  # noqa: F401  (registers the appliers of received messages)
from .handover_models import Handover
from .models import OutboundMessage, Partner
from .outbox import seal_for, store
from .partners import PartnerNotFound, require_sendable
from .summary import case_summary, consent_record, protocol_case

#: How long a partner keeps a summary when no retention was agreed with it (``partner add --retention-days``).
DEFAULT_RETENTION_DAYS = 730
_DELIVERY_STATUS = {"queued": "queued", "sending": "queued", "delivered": "delivered", "parked": "parked",
                    "undeliverable": "undeliverable"}
#: The statuses of a pending outgoing handover, read from its message.
DELIVERY_STATUSES = ("queued", "delivered", "parked", "undeliverable")
#: Every status a handover is shown with.
STATUSES = ("pending", *DELIVERY_STATUSES, "accepted", "declined")


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


def _inactive(consent: Consent, status: str, missing: list[str]) -> ConsentNotActive:
    if status == "withdrawn":
        return ConsentNotActive("The consent was withdrawn: nothing can be handed over under it.")
    if status == "expired":
        return ConsentNotActive(f"The consent expired after {consent.valid_until.isoformat()}: record a new "
                                "consent with the returnee first.")
    return ConsentNotActive("The consent is not active yet: this child's case still lacks "
                            f"{', '.join(missing)} (record them in the child safeguards).")


def _partner(session: orm.Session, recipient: str) -> Partner:
    try:
        return require_sendable(session, recipient)
    except PartnerNotFound:
        raise UnknownRecipient("Unknown recipient.", {"recipient": [
            f"{recipient} is not a partner of this node: its administrator must add it first "
            "('ccm-node partner add')."]}) from None


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
    case = case_for(session, actor, case_id, "handover.send")
    consent = case_record(session, Consent, data["consent_id"], case)
    if consent is None:
        raise ValidationFailed("No such consent.", {"consent_id": ["No consent with this id on this case."]})
    safeguards = session.get(ChildSafeguards, case.id)
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
    partner = _partner(session, recipient)
    try:
        record_ = consent_record(case, consent, safeguards, origin=keys.node_id, language=language,
                                 best_interests_outcome=outcome if case.child_at_intake else None)
        signed = sign_consent(record_, keys.node_id, keys.signing_key, validated=True)
        from .withdrawal import withdrawals_for  # (imports this module)

        cut = minimise(case_summary(session, case, config.stages), signed, recipient, purpose, now=now,
                       withdrawals=withdrawals_for(session, keys.node_id, consent.id), validated=True)
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
    return Prepared(case, consent, partner, purpose, body, safeguards.version if safeguards else None)


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
            "categories": list(body["summary"]), "withheld": body["withheld"], "body": body}


def _partner_state(partner: Partner) -> tuple[Any, ...]:
    return partner.id, partner.status, partner.agreement_id, partner.card, partner.retention_days


def _still_valid(session: orm.Session, actor: Actor, prepared: Prepared) -> bool:
    """Whether what decided a handover prepared on a reader's snapshot still holds on the writing session:
    one query for the case's visibility to the actor, its version and status, the consent's withdrawal, the
    child safeguards' version and the partner's status, agreement, card and retention.
    """
    require(actor, "handover.send")
    row = session.execute(
        sa.select(Case.version, Case.status, Consent.withdrawn_at, ChildSafeguards.version, Partner.id,
                  Partner.status, Partner.agreement_id, Partner.card, Partner.retention_days)
        .select_from(Case)
        .join(Consent, sa.and_(Consent.id == prepared.consent.id, Consent.case_id == Case.id))
        .join(Partner, Partner.node_id == prepared.partner.node_id)
        .outerjoin(ChildSafeguards, ChildSafeguards.case_id == Case.id)
        .where(Case.id == prepared.case.id, visible_cases_filter(actor))
    ).first()
    return row is not None and tuple(row) == (
        prepared.case.version, prepared.case.status, prepared.consent.withdrawn_at, prepared.safeguards_version,
        *_partner_state(prepared.partner))


def _refuse_open_handover(session: orm.Session, prepared: Prepared) -> None:
    existing = session.scalar(sa.select(Handover).where(
        Handover.direction == "outgoing", Handover.case_id == prepared.case.id,
        Handover.partner_node == prepared.partner.node_id, Handover.status.in_(("pending", "accepted"))).limit(1))
    if existing is not None:
        raise Conflict(f"This case was handed over to {prepared.partner.node_id} already ({existing.status}); a "
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
    if reader is not None and not _still_valid(session, actor, prepared):
        # changed meanwhile: all again, under the lock
        prepared = prepare(session, actor, case_id, data, keys=keys, config=config, now=now)
        sealed = _sealed(prepared, thread, keys=keys, now=now, boxes=boxes)
    _refuse_open_handover(session, prepared)
    case, partner, body = prepared.case, prepared.partner, prepared.body
    message = store(session, sealed, partner, seq=1, prev=None, now=now, case_id=case.id)
    handover = Handover(
        id=str(uuid.uuid4()), direction="outgoing", status="pending", partner_id=partner.id,
        partner_node=partner.node_id, thread=thread, message_id=message.message_id, case_id=case.id,
        consent_id=prepared.consent.id, purpose=prepared.purpose, reference=case.reference,
        origin_case_id=case.id, categories=list(body["summary"]), withheld=list(body["withheld"]),
        body=None, consent=None, child=case.child_at_intake, destination_country=case.destination_country,
        retain_until=None, created_at=now, created_by=actor.user_id)
    session.add(handover)
    detail = {"handover_id": message.message_id, "recipient": partner.node_id,
              "consent_id": prepared.consent.id, "categories": handover.categories,
              "withheld": handover.withheld}
    record_event(session, case, kind="handover.sent", now=now, actor=actor, object_type="handover",
                 object_id=handover.id, detail=detail)
    record(session, actor=actor, action="create", object_type="handover", object_id=handover.id,
           case_id=case.id, now=now, detail=detail)
    return present(handover, message)


# --- reading ------------------------------------------------------------------------------------------------

def _message(session: orm.Session, handover: Handover) -> OutboundMessage | None:
    if handover.direction != "outgoing":
        return None
    return session.scalar(sa.select(OutboundMessage).where(OutboundMessage.message_id == handover.message_id))


def present(handover: Handover, message: OutboundMessage | None, *, partner_name: str | None = None,
            detail: bool = False) -> dict[str, Any]:
    """A handover as the API shows it: status, times, delivery and (``detail``, while pending) the summary."""
    status = handover.status
    delivery = None
    if message is not None:
        delivery = {"status": message.status, "attempts": message.attempts, "last_error": message.last_error,
                    "next_attempt_at": message.next_attempt_at if message.status == "queued" else None,
                    "delivered_at": message.delivered_at}
        if status == "pending":
            status = _DELIVERY_STATUS.get(message.status, message.status)
    result: dict[str, Any] = {
        "id": handover.id, "direction": handover.direction, "status": status,
        "partner": handover.partner_node, "partner_name": partner_name, "handover_id": handover.message_id,
        "thread": handover.thread, "case_id": handover.case_id, "reference": handover.reference,
        "consent_id": handover.consent_id, "purpose": handover.purpose, "child": handover.child,
        "destination_country": handover.destination_country, "categories": handover.categories,
        "withheld": handover.withheld, "created_at": handover.created_at,
        "delivered_at": message.delivered_at if message is not None else None,
        "accepted_at": handover.decided_at if handover.status == "accepted" else None,
        "declined_at": handover.decided_at if handover.status == "declined" else None,
        "reason_code": handover.reason_code, "reason": handover.reason,
        "local_reference": handover.local_reference, "answer": handover.answer, "delivery": delivery,
        "retain_until": handover.retain_until,
    }
    if detail and handover.body is not None:
        result.update({"summary": handover.body["summary"], "case": handover.body["case"],
                       "requested_support": handover.body["requested_support"],
                       "retention": handover.body["retention"], "consent": handover.consent})
    return result


def _names(session: orm.Session, node_ids: set[str]) -> dict[str, str]:
    if not node_ids:
        return {}
    rows = session.execute(sa.select(Partner.node_id, Partner.name).where(Partner.node_id.in_(node_ids)))
    return {row.node_id: row.name for row in rows}


def _present_all(session: orm.Session, handovers: list[Handover]) -> list[dict[str, Any]]:
    ids = [h.message_id for h in handovers if h.direction == "outgoing"]
    messages = {m.message_id: m for m in session.scalars(
        sa.select(OutboundMessage).where(OutboundMessage.message_id.in_(ids)))} if ids else {}
    names = _names(session, {h.partner_node for h in handovers})
    return [present(h, messages.get(h.message_id), partner_name=names.get(h.partner_node)) for h in handovers]


def case_handovers(session: orm.Session, actor: Actor, case_id: str, now: dt.datetime) -> list[dict[str, Any]]:
    """``GET /cases/{id}/handovers``: the case's handovers, oldest first (audited read)."""
    case = case_for(session, actor, case_id, "case.read")
    rows = list(session.scalars(sa.select(Handover).where(Handover.case_id == case.id)
                                .order_by(Handover.created_at, Handover.id)))
    record(session, actor=actor, action="read", object_type="handover", object_id=None, case_id=case.id,
           now=now, detail={"count": len(rows)})
    return _present_all(session, rows)


def list_handovers(session: orm.Session, actor: Actor, direction: str, status: str | None,
                   now: dt.datetime, limit: int = 200) -> list[dict[str, Any]]:
    """``GET /handovers``: incoming handovers (the node's intake queue, for those who may accept them) or the
    outgoing handovers of the cases the actor may see; newest first.

    Raises:
        Forbidden: incoming, without ``handover.accept``; outgoing, without ``case.read``.
    """
    query = sa.select(Handover).where(Handover.direction == direction)
    if direction == "incoming":
        require(actor, "handover.accept")
    else:
        require(actor, "case.read")
        query = query.join(Case, Case.id == Handover.case_id).where(visible_cases_filter(actor))
    if status is not None:
        query = query.where(Handover.status == ("pending" if status in DELIVERY_STATUSES else status))
    rows = list(session.scalars(query.order_by(Handover.created_at.desc(), Handover.id).limit(limit)))
    items = _present_all(session, rows)
    if status in DELIVERY_STATUSES:
        items = [item for item in items if item["status"] == status]
    record(session, actor=actor, action="read", object_type="handover_list", object_id=None, case_id=None,
           now=now, detail={"direction": direction, "count": len(items)})
    return items


def visible_handover(session: orm.Session, actor: Actor, handover_id: str) -> Handover:
    """A handover the actor may see: incoming ones for those who may accept them, outgoing ones with their
    case. Anything else answers like a handover that does not exist.

    Raises:
        NotFound: no such handover visible to the actor.
    """
    handover = session.get(Handover, handover_id) if len(handover_id) <= 36 else None
    if handover is not None and handover.direction == "incoming" and can(actor.role, "handover.accept"):
        return handover
    if handover is not None and handover.direction == "outgoing" and handover.case_id is not None:
        try:
            case_for(session, actor, handover.case_id, "case.read")
        except (Forbidden, NotFound):
            pass
        else:
            return handover
    raise NotFound("No such handover.")


def get_handover(session: orm.Session, actor: Actor, handover_id: str, now: dt.datetime) -> dict[str, Any]:
    """``GET /handovers/{id}``: one handover; a pending incoming one with its summary (audited read)."""
    handover = visible_handover(session, actor, handover_id)
    record(session, actor=actor, action="read", object_type="handover", object_id=handover.id,
           case_id=handover.case_id, now=now)
    return present(handover, _message(session, handover),
                   partner_name=_names(session, {handover.partner_node}).get(handover.partner_node), detail=True)
