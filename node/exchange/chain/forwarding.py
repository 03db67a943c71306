"""Forwarding a received case to a further partner, with its chain of custody (SPEC.md 8.12, 8.14, 9.8).

A node B that accepted a case from A may pass it on to C only where A's consent names C (for the purpose):
:func:`forward_case` takes the summary exactly as B received it (the sender-signed document B keeps), cuts it
down to C's grant (``protocol.minimise``, with the withdrawals B knows), adds B's signed custody step to the
chain it received, and queues the ``forward`` with A's signed consent, in one transaction with the outgoing
handover row (``kind = "forward"``) and a ``custody_notice`` to A (relayed up the chain to the origin).

C checks the forward (``protocol.check_forward``: chain, every signature, consent) and keeps it for an adviser,
like a handover. What comes back from C travels up the chain, each hop attesting it with its own signature:
progress (:func:`relay_progress`), erasure confirmations (:func:`relay_confirmation`) and custody notices of
further forwards. A withdrawal travels down (:func:`relay_withdrawal`).
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from typing import Any

import nacl.signing
import sqlalchemy as sa
from sqlalchemy import orm

from node.audit import record
from node.auth import Actor
from node.cases.access import case_for
from node.cases.timeline import record_event
from node.errors import Conflict
from node.exchange.chain.known_withdrawals import withdrawals_for
from node.exchange.chain.models import CustodyNotice, ErasureRequest
from node.exchange.delivery.outbox import enqueue
from node.exchange.handovers.appliers import verify_key
from node.exchange.handovers.models import Handover
from node.exchange.handovers.send import DEFAULT_RETENTION_DAYS, HandoverRefused, OutsideConsent, sendable_partner
from node.exchange.handovers.status import present
from node.exchange.models import InboundMessage, Partner
from node.exchange.trust.partner_keys import signing_key_for
from node.exchange.trust.partners import PartnerStateError, partner_card
from protocol import (
    BoxCache,
    ConsentInvalidError,
    MalformedError,
    NodeCard,
    NodeKeys,
    OpenedMessage,
    OutsideConsentError,
    b64encode,
    check_forward,
    minimise,
    strict_loads,
    verify_card,
)
from protocol.custody import make_custody_step
from protocol.times import format_time, parse_time

_HELD = ("pending", "accepted")


def received_handover(session: orm.Session, case_id: str) -> Handover | None:
    """The accepted incoming handover (or forward) a local case was opened from."""
    return session.scalar(sa.select(Handover).where(
        Handover.direction == "incoming", Handover.case_id == case_id, Handover.status == "accepted").limit(1))


def _received_message(session: orm.Session, handover: Handover) -> InboundMessage | None:
    return session.scalar(sa.select(InboundMessage).where(
        InboundMessage.sender == handover.partner_node, InboundMessage.message_id == handover.message_id))


def original_part(session: orm.Session, handover: Handover) -> tuple[dict[str, Any], str]:
    """The case part of a received handover or forward, as its sender signed it, and that message's hash.

    Raises:
        Conflict: the received document was erased (a partial withdrawal): the case cannot be forwarded.
    """
    message = _received_message(session, handover)
    if message is None or message.inner is None:
        raise Conflict("The summary this case was received with has been erased (consent partly withdrawn): it "
                       "cannot be forwarded.")
    body = strict_loads(message.inner)["body"]
    part = body if handover.kind == "handover" else body["original_handover"]
    keep = ("case", "consent", "purpose", "summary", "withheld")
    return {k: part[k] for k in keep}, message.message_hash


def _cards(session: orm.Session, upstream: Handover, chain: list[dict[str, Any]], origin: str,
           recipient: str) -> list[dict[str, Any]]:
    """The cards of the origin and the holders on the chain, for a recipient that may not know them."""
    known: dict[str, dict[str, Any]] = {c["node_id"]: c for c in (upstream.custody or {}).get("cards", [])}
    sender = session.scalar(sa.select(Partner).where(Partner.node_id == upstream.partner_node))
    if sender is not None:
        known[sender.node_id] = partner_card(sender).to_json()
    wanted = [origin, *(step["holder"] for step in chain)]
    return [known[n] for n in dict.fromkeys(wanted) if n in known and n != recipient]


def forward_case(session: orm.Session, actor: Actor, case_id: str, data: dict[str, Any], *, keys: NodeKeys,
                 now: dt.datetime, boxes: BoxCache | None = None) -> dict[str, Any]:
    """``POST /cases/{id}/forwards``: pass a received case on to a further partner (no commit).

    Args:
        data: ``recipient`` (node id) and optional ``reason``.
    Returns:
        The outgoing forward as the handover API shows it (status ``queued``).
    Raises:
        Forbidden, NotFound: the actor may not send this case.
        Conflict: the case was not received from a partner, its summary was erased, it is forwarded to that
            recipient already, or the recipient is on its chain already.
        OutsideConsent: the consent does not name the recipient for the purpose.
        HandoverRefused: the consent no longer allows it (withdrawn, expired).
        UnknownRecipient, PartnerStateError: the recipient is not an active partner with an agreement.
    """
    case = case_for(session, actor, case_id, "handover.send")
    upstream = received_handover(session, case.id)
    if upstream is None or upstream.consent is None:
        raise Conflict("This case was not received from a partner: hand it over instead (POST /handovers).")
    recipient: str = data["recipient"]
    part, received_hash = original_part(session, upstream)
    consent = part["consent"]
    origin = consent["origin"]
    prior: list[dict[str, Any]] = list((upstream.custody or {}).get("chain", []))
    if recipient in {origin, keys.node_id, *(step["holder"] for step in prior)}:
        raise Conflict(f"{recipient} is on this case's chain of custody already: a case never goes back.")
    try:
        cut = minimise(part["summary"], consent, recipient, part["purpose"], now=now,
                       withdrawals=withdrawals_for(session, origin, consent["consent_id"]))
    except OutsideConsentError as exc:
        raise OutsideConsent("Recipient outside the consent.", {"recipient": [
            f"The returnee's consent does not allow forwarding to {recipient}: {exc.message}."]}) from None
    except ConsentInvalidError as exc:
        raise HandoverRefused(f"The consent does not allow forwarding: {exc.message}.", "consent_invalid") from None
    partner = sendable_partner(session, recipient)
    existing = session.scalar(sa.select(Handover.status).where(
        Handover.direction == "outgoing", Handover.case_id == case.id, Handover.partner_node == recipient,
        Handover.status.in_(_HELD)).limit(1))
    if existing is not None:
        raise Conflict(f"This case was passed to {recipient} already ({existing}).")
    step = make_custody_step(keys.node_id, upstream.partner_node, upstream.created_at, received_hash,
                             keys.signing_key)
    chain = [*prior, step]
    body: dict[str, Any] = {"original_handover": {**part, **cut}, "forwarded_to": recipient, "chain": chain,
                            "cards": _cards(session, upstream, chain, origin, recipient)}
    if data.get("reason"):
        body["reason"] = data["reason"]
    thread = b64encode(os.urandom(16))
    message = enqueue(session, keys=keys, recipient=recipient, msg_type="forward", body=body, thread=thread,
                      now=now, case_id=case.id, boxes=boxes, actor=actor)
    forward = Handover(
        id=str(uuid.uuid4()), direction="outgoing", kind="forward", status="pending", partner_id=partner.id,
        partner_node=recipient, thread=thread, message_id=message.message_id, case_id=case.id,
        consent_id=consent["consent_id"], purpose=part["purpose"], reference=part["case"]["reference"],
        origin_case_id=part["case"]["origin_case_id"], categories=list(cut["summary"]), withheld=cut["withheld"],
        body=None, consent=None, child=upstream.child, destination_country=upstream.destination_country,
        origin_node=origin, upstream_id=upstream.id, created_at=now, created_by=actor.user_id)
    session.add(forward)
    session.flush()
    notice = {"handover_id": upstream.message_id, "forwarded_to": recipient, "forwarded_at": format_time(now),
              "forward_id": message.message_id, "message_hash": message.message_hash, "purpose": part["purpose"],
              "categories": forward.categories, "card": partner_card(partner).to_json()}
    if data.get("reason"):
        notice["reason"] = data["reason"]
    _send_up(session, upstream, "custody_notice", notice, keys=keys, now=now)
    detail = {"handover_id": message.message_id, "recipient": recipient, "from_handover": upstream.message_id,
              "categories": forward.categories}
    record_event(session, case, kind="handover.forwarded", now=now, actor=actor, object_type="handover",
                 object_id=forward.id, detail=detail)
    record(session, actor=actor, action="create", object_type="handover", object_id=forward.id, case_id=case.id,
           now=now, detail=detail)
    return present(forward, message, partner_name=partner.name)


def _send_up(session: orm.Session, upstream: Handover, msg_type: str, body: dict[str, Any], *, keys: NodeKeys,
             now: dt.datetime) -> bool:
    """Queue a message to the node a case came from, in its thread; False if that node is not sendable now."""
    try:
        with session.begin_nested():
            enqueue(session, keys=keys, recipient=upstream.partner_node, msg_type=msg_type, body=body,
                    thread=upstream.thread, now=now, case_id=upstream.case_id)
    except PartnerStateError:
        return False
    return True


# --- at the recipient of a forward --------------------------------------------------------------------------

def _vouched_keys(session: orm.Session, body: dict[str, Any], sender: Partner,
                  now: dt.datetime) -> dict[str, nacl.signing.VerifyKey]:
    """Verify keys for the chain: our own partners' as we trust them, others from the cards the sender vouches
    for (each must be a valid self-signed card)."""
    keys: dict[str, nacl.signing.VerifyKey] = {}
    for doc in body.get("cards", []):
        card = NodeCard.from_json(doc)
        verify_card(card, now)
        keys[card.node_id] = card.verify_key
    partners = {p.node_id: p for p in session.scalars(sa.select(Partner).where(Partner.status == "active"))}
    partners[sender.node_id] = sender
    keys.update({node: verify_key(p) for node, p in partners.items()})
    # a partner's key for each document it signed: its current key, or the generation that signed it before
    # a rotation (the origin signed the consent, each holder its custody step)
    consent = body["original_handover"]["consent"]
    signed = [(consent["origin"], consent), *((step["holder"], step) for step in body.get("chain", []))]
    for node, doc in signed:
        if node in partners:
            keys[node] = signing_key_for(session, partners[node], doc)
    return keys


def recheck(session: orm.Session, handover: Handover, partner: Partner, keys: NodeKeys, now: dt.datetime) -> None:
    """Check a waiting forward again (at acceptance): the consent may have expired or been withdrawn meanwhile.

    Raises:
        ProtocolError: as ``check_forward``.
    """
    body, custody = handover.body or {}, handover.custody or {}
    forward = {"original_handover": {k: body[k] for k in ("case", "consent", "purpose", "summary", "withheld")},
               "forwarded_to": keys.node_id, "chain": custody.get("chain", []), "cards": custody.get("cards", [])}
    consent = body["consent"]
    check_forward(forward, keys.node_id, partner.node_id, now, _vouched_keys(session, forward, partner, now),
                  withdrawals=withdrawals_for(session, consent["origin"], consent["consent_id"]))


def apply_forward(session: orm.Session, *, message: InboundMessage, opened: OpenedMessage, partner: Partner,
                  now: dt.datetime, keys: NodeKeys) -> None:
    """A case forwarded to us: check the chain and the consent, keep it for an adviser.

    Raises:
        MalformedError: the forward does not open its thread.
        WrongRecipientError, ChainError, UnknownKeyError, BadSignatureError, OutsideConsentError,
        ConsentInvalidError: SPEC.md 9.8.
    """
    thread = opened.header.thread
    reused = session.scalar(sa.select(Handover.id).where(
        Handover.direction == "incoming", Handover.partner_node == partner.node_id, Handover.thread == thread))
    if message.seq != 1 or reused is not None:
        raise MalformedError("a forward must open its case thread")
    body = opened.body
    part = body["original_handover"]
    consent = part["consent"]
    verify_keys = _vouched_keys(session, body, partner, now)
    check_forward(body, keys.node_id, partner.node_id, now, verify_keys,
                  withdrawals=withdrawals_for(session, consent["origin"], consent["consent_id"]))
    from protocol.consent import is_child_case

    days = partner.retention_days or DEFAULT_RETENTION_DAYS
    handover = Handover(
        id=str(uuid.uuid4()), direction="incoming", kind="forward", status="pending", partner_id=partner.id,
        partner_node=partner.node_id, thread=thread, message_id=opened.header.id, case_id=None,
        consent_id=consent["consent_id"], purpose=part["purpose"], reference=part["case"]["reference"],
        origin_case_id=part["case"]["origin_case_id"], categories=list(part["summary"]),
        withheld=list(part["withheld"]),
        body={**part, "requested_support": [], "retention": {"days": days}}, consent=consent,
        child=is_child_case(consent, part["summary"], now), destination_country=part["case"]["destination"]["country"],
        retain_until=(now + dt.timedelta(days=days)).date(), origin_node=consent["origin"],
        custody={"chain": body["chain"], "cards": body.get("cards", [])}, created_at=now, created_by=None)
    session.add(handover)
    session.flush()
    record(session, actor=None, action="create", object_type="handover", object_id=handover.id, case_id=None,
           now=now, detail={"from": partner.node_id, "origin": consent["origin"], "forward": True,
                            "handover_id": handover.message_id, "categories": handover.categories})


# --- up and down the chain ----------------------------------------------------------------------------------

def _outgoing_in_thread(session: orm.Session, partner: Partner, thread: str) -> Handover | None:
    return session.scalar(sa.select(Handover).where(
        Handover.direction == "outgoing", Handover.partner_node == partner.node_id, Handover.thread == thread))


def _upstream_of(session: orm.Session, handover: Handover) -> Handover | None:
    if handover.kind != "forward" or handover.upstream_id is None:
        return None
    return session.get(Handover, handover.upstream_id)


def apply_custody_notice(session: orm.Session, *, message: InboundMessage, opened: OpenedMessage,
                         partner: Partner, now: dt.datetime, keys: NodeKeys) -> None:
    """A node we handed a case to (or forwarded it to) passed it on: record who holds it now, and pass the notice
    on towards the origin.

    Raises:
        MalformedError: not in the thread of a handover this node sent to the sender.
    """
    body = opened.body
    handover = _outgoing_in_thread(session, partner, opened.header.thread)
    if handover is None or handover.message_id != body["handover_id"]:
        raise MalformedError("handover_id is not the handover that opened this thread")
    session.add(CustodyNotice(
        id=str(uuid.uuid4()), handover_id=handover.id, forwarded_by=partner.node_id, holder=body["forwarded_to"],
        forwarded_at=parse_time(body["forwarded_at"]), forward_id=body["forward_id"],
        message_hash=body["message_hash"], purpose=body["purpose"], categories=list(body["categories"]),
        card=None if "card" not in body else _card_text(body["card"]), sender=partner.node_id,
        message_id=opened.header.id, received_at=now))
    message.case_id = handover.case_id
    upstream = _upstream_of(session, handover)
    if upstream is not None:
        _send_up(session, upstream, "custody_notice", {**body, "handover_id": upstream.message_id}, keys=keys,
                 now=now)


def _card_text(doc: dict[str, Any]) -> str:
    from protocol import canonical_bytes

    return canonical_bytes(doc).decode("utf-8")


def relay_withdrawal(session: orm.Session, received: Handover, body: dict[str, Any], *, withdrawal_id: str,
                     keys: NodeKeys, now: dt.datetime) -> list[ErasureRequest]:
    """Pass a withdrawal of a case we received on to every node we forwarded it to (and ask them to erase)."""
    forwards = session.scalars(sa.select(Handover).where(
        Handover.direction == "outgoing", Handover.kind == "forward", Handover.upstream_id == received.id,
        Handover.status.in_(_HELD)))
    requests = []
    for forward in forwards:
        scope = body.get("scope") or {}
        if forward.partner_node not in scope.get("recipients", [forward.partner_node]):
            continue
        request = ErasureRequest(id=str(uuid.uuid4()), handover_id=forward.id, withdrawal_id=withdrawal_id,
                                 case_id=forward.case_id, consent_id=forward.consent_id,
                                 partner_node=forward.partner_node, holder=forward.partner_node,
                                 cause="revocation" if body["revocation"] else "withdrawal",
                                 scope=body.get("scope"), requested_at=now)
        try:
            with session.begin_nested():
                sent = enqueue(session, keys=keys, recipient=forward.partner_node, msg_type="consent_withdrawn",
                               body={**body, "handover_id": forward.message_id}, thread=forward.thread, now=now)
            request.message_id = sent.message_id
        except PartnerStateError:
            request.message_id = None
        session.add(request)
        requests.append(request)
    return requests


def relay_confirmation(session: orm.Session, handover: Handover, body: dict[str, Any], holder: str, *,
                       keys: NodeKeys, now: dt.datetime) -> None:
    """Pass an erasure confirmation from a node we forwarded a case to on towards the origin."""
    upstream = _upstream_of(session, handover)
    if upstream is not None:
        _send_up(session, upstream, "erasure_confirmed", {**body, "holder": holder}, keys=keys, now=now)


def relay_progress(session: orm.Session, handover: Handover, body: dict[str, Any], sender: str, *,
                   keys: NodeKeys, now: dt.datetime) -> None:
    """Pass progress reported by a node we forwarded a case to on towards the origin (attested by this node)."""
    upstream = _upstream_of(session, handover)
    if upstream is not None and upstream.status == "accepted":
        relayed = {**body, "handover_id": upstream.message_id, "update_id": f"{sender}:{body['update_id']}"[:128]}
        _send_up(session, upstream, "progress_update", relayed, keys=keys, now=now)
