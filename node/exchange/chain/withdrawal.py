"""Consent withdrawal and handover revocation across the chain (SPEC.md 8.9, 8.10, 9.6).

At the origin, :func:`withdraw` records the returnee's withdrawal of a consent, wholly or in part (some
categories, some recipients), and :func:`revoke` takes back one handover sent in error. Either queues a
``consent_withdrawn`` in the case thread of every handover it concerns, in the same transaction (outbox), and
opens an :class:`ErasureRequest` per holder, which the holder's signed ``erasure_confirmed`` closes.

At a holder, the ``consent_withdrawn`` applier keeps the withdrawal (ids and scope, no personal data), erases
what it covers (``node.exchange.chain.erasure``), and answers ``erasure_confirmed`` listing the message ids and
content hashes of what it erased. A node that passed the case on passes the withdrawal on too
(``node.exchange.chain.forwarding``). At the origin, the ``erasure_confirmed`` applier records the confirmation; one
that answers no request (the holder's retention ended) is recorded as an erasure of its own.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm

from node.audit import record
from node.auth import Actor, require
from node.cases.access import case_for, case_record
from node.cases.consent import case_missing_safeguards, present_consent, withdraw_consent
from node.cases.models import Case, Consent
from node.cases.timeline import record_event
from node.errors import Conflict, NotFound, ValidationFailed
from node.exchange.chain.erasure import erase_categories, erase_handover
from node.exchange.chain.forwarding import relay_confirmation, relay_withdrawal
from node.exchange.chain.known_withdrawals import withdrawal_body
from node.exchange.chain.models import ConsentWithdrawal, CustodyNotice, ErasureRequest, Tombstone
from node.exchange.delivery.outbox import enqueue
from node.exchange.handovers.models import Handover
from node.exchange.handovers.status import visible_handover
from node.exchange.models import InboundMessage, OutboundMessage, Partner
from node.exchange.trust.partners import PartnerStateError
from protocol import BoxCache, MalformedError, NodeKeys, OpenedMessage
from protocol.messages import MAX_TOMBSTONE_ENTRIES
from protocol.times import format_time, parse_time

#: Outgoing handovers whose data a partner may still hold.
_HELD = ("pending", "accepted")


def _scope(data: dict[str, Any] | None, consent: Consent) -> dict[str, Any] | None:
    """The withdrawal's scope, checked against the consent; None for a full withdrawal."""
    if not data:
        return None
    errors: dict[str, list[str]] = {}
    scope: dict[str, Any] = {}
    for member, granted in (("categories", consent.categories), ("recipients", consent.recipients)):
        values = data.get(member)
        if values is None:
            continue
        outside = [v for v in values if v not in granted]
        if outside:
            errors[member] = [f"Not in the consent: {', '.join(outside)}. It grants {', '.join(granted)}."]
        scope[member] = sorted(set(values), key=list(granted).index) if not outside else list(values)
    if errors:
        raise ValidationFailed("Invalid withdrawal scope.", {f"scope.{k}": v for k, v in errors.items()})
    if set(scope.get("categories", [])) >= set(consent.categories) and "recipients" not in scope:
        return None  # every category: a full withdrawal
    return scope or None


def _withdrawn_at(data: dict[str, Any], consent: Consent, now: dt.datetime) -> dt.datetime:
    withdrawn_at: dt.datetime = data.get("withdrawn_at") or now
    if withdrawn_at > now or withdrawn_at < consent.given_at:
        raise ValidationFailed("Invalid withdrawal.", {"withdrawn_at": [
            "Must be between the time the consent was given and now."]})
    return withdrawn_at


def _concerned(session: orm.Session, case: Case, consent_id: str, scope: dict[str, Any] | None) -> list[Handover]:
    query = sa.select(Handover).where(Handover.direction == "outgoing", Handover.case_id == case.id,
                                      Handover.consent_id == consent_id, Handover.status.in_(_HELD))
    if scope is not None and "recipients" in scope:
        query = query.where(Handover.partner_node.in_(scope["recipients"]))
    return list(session.scalars(query.order_by(Handover.created_at, Handover.id)))


def _ask_erasure(session: orm.Session, handover: Handover, withdrawal: ConsentWithdrawal, body: dict[str, Any], *,
                 keys: NodeKeys, now: dt.datetime, boxes: BoxCache | None, actor: Actor | None) -> ErasureRequest:
    request = ErasureRequest(id=str(uuid.uuid4()), handover_id=handover.id, withdrawal_id=withdrawal.id,
                             case_id=handover.case_id, consent_id=handover.consent_id,
                             partner_node=handover.partner_node, holder=handover.partner_node,
                             cause="revocation" if withdrawal.revocation else "withdrawal",
                             scope=withdrawal.scope, requested_at=now)
    try:
        message = enqueue(session, keys=keys, recipient=handover.partner_node, msg_type="consent_withdrawn",
                          body={**body, "handover_id": handover.message_id}, thread=handover.thread, now=now,
                          case_id=handover.case_id, boxes=boxes, actor=actor)
    except PartnerStateError:
        message = None  # suspended or revoked partner: the request stays open and is flagged as overdue
    request.message_id = message.message_id if message is not None else None
    session.add(request)
    onward = session.scalars(sa.select(CustodyNotice.holder).where(CustodyNotice.handover_id == handover.id)
                             .distinct())
    for holder in onward:  # the partner passes the withdrawal on to them and relays their confirmations
        session.add(ErasureRequest(id=str(uuid.uuid4()), handover_id=handover.id, withdrawal_id=withdrawal.id,
                                   case_id=handover.case_id, consent_id=handover.consent_id,
                                   partner_node=handover.partner_node, holder=holder, cause=request.cause,
                                   scope=withdrawal.scope, requested_at=now, message_id=request.message_id))
    return request


def present_request(request: ErasureRequest) -> dict[str, Any]:
    tombstone = request.tombstone or {}
    return {"id": request.id, "handover_id": request.handover_id, "partner": request.partner_node,
            "holder": request.holder, "cause": request.cause, "scope": request.scope,
            "requested_at": request.requested_at, "message_id": request.message_id,
            "sent": request.message_id is not None or request.requested_at is None,
            "confirmed": request.confirmed_at is not None, "confirmed_at": request.confirmed_at,
            "erased_at": request.erased_at, "erased_messages": len(tombstone.get("message_ids", []))}


def withdraw(session: orm.Session, actor: Actor, case_id: str, consent_id: str, data: dict[str, Any], *,
             keys: NodeKeys, now: dt.datetime, boxes: BoxCache | None = None) -> dict[str, Any]:
    """``POST /cases/{id}/consents/{cid}/withdraw``: record the withdrawal and ask every holder to erase (no
    commit).

    Args:
        data: ``reason`` (stays here), optional ``withdrawn_at`` and ``scope`` (``categories`` and/or
            ``recipients``; absent: the whole consent).
    Returns:
        The consent as ``GET`` shows it, with ``withdrawal`` and the ``erasure_requests`` it opened.
    Raises:
        Forbidden, NotFound: the actor may not manage this case's consent.
        Conflict: the consent was withdrawn in full already.
        ValidationFailed: a scope outside the consent, or ``withdrawn_at`` out of range.
    """
    case = case_for(session, actor, case_id, "consent.manage")
    consent = case_record(session, Consent, consent_id, case)
    if consent is None:
        raise NotFound("No such consent.")
    if consent.withdrawn_at is not None:
        raise Conflict("This consent has already been withdrawn.")
    scope = _scope(data.get("scope"), consent)
    withdrawn_at = _withdrawn_at(data, consent, now)
    if scope is None:
        withdraw_consent(session, actor, case.id, consent.id, {**data, "withdrawn_at": withdrawn_at}, now)
    else:
        record_event(session, case, kind="consent.withdrawn_partially", now=now, actor=actor, object_type="consent",
                     object_id=consent.id, detail={"consent_id": consent.id, **scope})
        record(session, actor=actor, action="withdraw", object_type="consent", object_id=consent.id,
               case_id=case.id, now=now, detail=dict(scope))
    withdrawal = ConsentWithdrawal(id=str(uuid.uuid4()), origin=keys.node_id, consent_id=consent.id,
                                   case_id=case.id, scope=scope, revocation=False, handover_id=None,
                                   withdrawn_at=withdrawn_at, recorded_at=now, recorded_by=actor.user_id)
    session.add(withdrawal)
    session.flush()
    body = withdrawal_body(consent.id, withdrawn_at, scope, revocation=False)
    requests = [_ask_erasure(session, h, withdrawal, body, keys=keys, now=now, boxes=boxes, actor=actor)
                for h in _concerned(session, case, consent.id, scope)]
    session.flush()
    result = present_consent(consent, case_missing_safeguards(session, case), now.date())
    result["withdrawal"] = present_withdrawal(withdrawal)
    result["erasure_requests"] = [present_request(r) for r in requests]
    return result


def present_withdrawal(withdrawal: ConsentWithdrawal) -> dict[str, Any]:
    return {"id": withdrawal.id, "consent_id": withdrawal.consent_id, "scope": withdrawal.scope,
            "revocation": withdrawal.revocation, "withdrawn_at": withdrawal.withdrawn_at,
            "recorded_at": withdrawal.recorded_at}


def revoke(session: orm.Session, actor: Actor, handover_id: str, data: dict[str, Any], *, keys: NodeKeys,
           now: dt.datetime, boxes: BoxCache | None = None) -> dict[str, Any]:
    """``POST /handovers/{id}/revoke``: take back a handover sent in error (no commit).

    The partner erases it exactly as on a withdrawal and confirms. The consent itself stays as it is.

    Args:
        data: ``reason`` (sent to the partner: say why, without personal data).
    Returns:
        ``{"handover_id", "status": "revoked", "erasure_request"}``.
    Raises:
        Forbidden, NotFound: not an outgoing handover the actor may send.
        Conflict: the handover was declined (the partner erased it then) or revoked already.
    """
    require(actor, "handover.send")
    handover = visible_handover(session, actor, handover_id)
    session.refresh(handover, with_for_update=True)  # the partner's answer may be landing at this moment
    if handover.direction != "outgoing":
        raise Conflict("Only a handover this node sent can be revoked; an incoming one is declined.")
    if handover.status not in _HELD:
        raise Conflict(f"This handover was {handover.status}: the partner holds nothing of it to erase.")
    handover.status = "revoked"
    withdrawal = ConsentWithdrawal(id=str(uuid.uuid4()), origin=keys.node_id, consent_id=handover.consent_id,
                                   case_id=handover.case_id, scope={"recipients": [handover.partner_node]},
                                   revocation=True, handover_id=handover.id, withdrawn_at=now, recorded_at=now,
                                   recorded_by=actor.user_id)
    session.add(withdrawal)
    session.flush()
    body = withdrawal_body(handover.consent_id, now, withdrawal.scope, revocation=True, reason=data.get("reason"))
    request = _ask_erasure(session, handover, withdrawal, body, keys=keys, now=now, boxes=boxes, actor=actor)
    case = session.get(Case, handover.case_id) if handover.case_id is not None else None
    if case is not None:
        record_event(session, case, kind="handover.revoked", now=now, actor=actor, object_type="handover",
                     object_id=handover.id, detail={"handover_id": handover.message_id,
                                                    "partner": handover.partner_node})
    record(session, actor=actor, action="withdraw", object_type="handover", object_id=handover.id,
           case_id=handover.case_id, now=now, detail={"revocation": True, "partner": handover.partner_node})
    session.flush()
    return {"handover_id": handover.id, "status": "revoked", "erasure_request": present_request(request)}


# --- at a holder ----------------------------------------------------------------------------------------------

def incoming_in_thread(session: orm.Session, partner: Partner, thread: str) -> Handover | None:
    """The handover (or forward) received from ``partner`` that opened ``thread``."""
    return session.scalar(sa.select(Handover).where(
        Handover.direction == "incoming", Handover.partner_node == partner.node_id, Handover.thread == thread))


def confirm_erasure(session: orm.Session, handover: Handover, tombstone: Tombstone | None, body: dict[str, Any], *,
             keys: NodeKeys, now: dt.datetime) -> OutboundMessage:
    ids = tombstone.message_ids[-MAX_TOMBSTONE_ENTRIES:] if tombstone is not None else []
    hashes = tombstone.content_hashes[-MAX_TOMBSTONE_ENTRIES:] if tombstone is not None else []
    answer: dict[str, Any] = {"consent_id": body["consent_id"], "erased_at": format_time(now),
                              "tombstone": {"message_ids": ids, "content_hashes": hashes}}
    if "scope" in body:
        answer["scope"] = body["scope"]
    message = enqueue(session, keys=keys, recipient=handover.partner_node, msg_type="erasure_confirmed",
                      body=answer, thread=handover.thread, now=now)
    if tombstone is not None:
        tombstone.confirmation_message_id = message.message_id
    return message


def erase_as_asked(session: orm.Session, handover: Handover, scope: dict[str, Any] | None, *, own_node: str,
                   cause: str, now: dt.datetime, withdrawal_id: str | None) -> Tombstone | None:
    """Erase what a withdrawal (or revocation) with ``scope`` covers of a received case; None if nothing."""
    scope = scope or {}
    if own_node not in scope.get("recipients", [own_node]) or handover.status in ("erased", "declined"):
        return None
    if "categories" in scope:
        return erase_categories(session, handover, scope["categories"], cause=cause, now=now,
                                withdrawal_id=withdrawal_id)
    return erase_handover(session, handover, cause=cause, now=now, withdrawal_id=withdrawal_id)


def apply_withdrawn(session: orm.Session, *, message: InboundMessage, opened: OpenedMessage, partner: Partner,
                    now: dt.datetime, keys: NodeKeys) -> None:
    """A withdrawal (or revocation) from the node we received a case from: keep it, erase, confirm.

    Raises:
        MalformedError: not in the thread of a handover received from the sender under that consent.
    """
    body = opened.body
    handover = incoming_in_thread(session, partner, opened.header.thread)
    if handover is None or body.get("handover_id", handover.message_id) != handover.message_id:
        raise MalformedError("a withdrawal must travel in the thread of the handover it concerns")
    if body["consent_id"] != handover.consent_id:
        raise MalformedError("the withdrawal names another consent than the handover's")
    withdrawal = ConsentWithdrawal(
        id=str(uuid.uuid4()), origin=handover.origin_node or partner.node_id, consent_id=body["consent_id"],
        case_id=handover.case_id, scope=body.get("scope"), revocation=body["revocation"], handover_id=handover.id,
        withdrawn_at=parse_time(body["withdrawn_at"]), recorded_at=now, sender=partner.node_id,
        message_id=opened.header.id)
    session.add(withdrawal)
    message.case_id = handover.case_id
    session.flush()
    cause = "revocation" if body["revocation"] else "withdrawal"
    tombstone = erase_as_asked(session, handover, body.get("scope"), own_node=keys.node_id, cause=cause, now=now,
                               withdrawal_id=withdrawal.id)
    relay_withdrawal(session, handover, body, withdrawal_id=withdrawal.id, keys=keys, now=now)
    if tombstone is None:  # nothing (more) held here: the message's own text goes, the answer names it
        session.execute(sa.update(InboundMessage).where(InboundMessage.id == message.id).values(inner=None)
                        .execution_options(synchronize_session=False))
    confirm_erasure(session, handover, tombstone, body, keys=keys, now=now)


def apply_erasure_confirmed(session: orm.Session, *, message: InboundMessage, opened: OpenedMessage,
                            partner: Partner, now: dt.datetime, keys: NodeKeys) -> None:
    """A holder confirms an erasure: close the request it answers, or record the holder's own (retention).

    Raises:
        MalformedError: not in the thread of a handover this node sent to the sender, or another consent.
    """
    body = opened.body
    handover = session.scalar(sa.select(Handover).where(
        Handover.direction == "outgoing", Handover.partner_node == partner.node_id,
        Handover.thread == opened.header.thread))
    if handover is None:
        raise MalformedError("an erasure confirmation must travel in the thread of a handover sent to its sender")
    if body["consent_id"] != handover.consent_id:
        raise MalformedError("the confirmation names another consent than the handover's")
    holder = body.get("holder", partner.node_id)
    request = session.scalar(sa.select(ErasureRequest).where(
        ErasureRequest.handover_id == handover.id, ErasureRequest.holder == holder,
        ErasureRequest.confirmed_at.is_(None), ErasureRequest.requested_at.is_not(None))
        .order_by(ErasureRequest.requested_at, ErasureRequest.id).limit(1))
    if request is None and not body["tombstone"]["message_ids"] and session.scalar(sa.select(ErasureRequest.id).where(
            ErasureRequest.handover_id == handover.id, ErasureRequest.holder == holder,
            ErasureRequest.confirmed_at.is_not(None)).limit(1)) is not None:
        # Nothing erased by it and nothing asked: a holder restored from a backup received our withdrawal again
        # (node/exchange/resync) and answered it again. Kept with the case; the request stays answered once.
        message.case_id = handover.case_id
        return
    if request is None:
        request = ErasureRequest(id=str(uuid.uuid4()), handover_id=handover.id, case_id=handover.case_id,
                                 consent_id=handover.consent_id, partner_node=partner.node_id,
                                 holder=holder, cause="retention", scope=body.get("scope"))
        session.add(request)
    request.confirmed_at, request.erased_at = now, parse_time(body["erased_at"])
    request.confirmation_message_id, request.tombstone = opened.header.id, body["tombstone"]
    message.case_id = handover.case_id
    session.flush()
    case = session.get(Case, handover.case_id) if handover.case_id is not None else None
    if case is not None:
        record_event(session, case, kind="partner.erasure_confirmed", now=now, actor=None,
                     object_type="erasure_request", object_id=request.id,
                     detail={"handover_id": handover.message_id, "partner": partner.node_id,
                             "partner_name": partner.name, "holder": holder, "cause": request.cause,
                             "scope": request.scope, "messages": len(body["tombstone"]["message_ids"])},
                     source=partner.node_id, verified=True)
    relay_confirmation(session, handover, body, holder, keys=keys, now=now)
