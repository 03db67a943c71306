"""The chain of custody of a case, verified on this node (``GET /cases/{id}/custody``, ``ccm-node custody show``).

A case's custody is a list of *links*, one per hop: which node held it, from whom, when, by which message (its
chain-link hash), and the evidence for that hop, each checked again now:

- hops before this node, when the case came by ``forward``: the custody steps the forward carried, each signed
  by the node that received the case in that hop (``protocol.custody``: from the consent's origin, each step
  continuing from the previous holder, no node twice, times in order, every signature good);
- the hop to this node: the message this node received (its stored content must still hash to the chain link);
- hops from this node: each handover or forward it sent, proven by the partner's signed delivery receipt;
- hops beyond its partners: the custody notices its partners sent (attested by their signatures on receipt).

A forged, reordered or missing link is reported with the link it concerns; the whole is ``verified`` only if
every link is.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import nacl.signing
import sqlalchemy as sa
from sqlalchemy import orm

from node.audit import record
from node.auth import Actor
from node.cases.access import case_for
from node.exchange.chain.models import CustodyNotice
from node.exchange.handovers.appliers import verify_key
from node.exchange.handovers.models import Handover
from node.exchange.models import InboundMessage, OutboundMessage, Partner
from node.exchange.trust.partner_keys import signing_key_for, verify_stored_receipt
from protocol import NodeCard, ProtocolError, verify_card
from protocol.chain import message_hash
from protocol.custody import CLOCK_SKEW
from protocol.signing import verify_signed_json
from protocol.times import parse_time


def _link(holder: str, sender: str, at: dt.datetime | None, digest: str | None, evidence: str,
          problem: str | None = None, signed_by: str | None = None) -> dict[str, Any]:
    return {"holder": holder, "from": sender, "at": at, "message_hash": digest, "evidence": evidence,
            "signed_by": signed_by, "verified": problem is None, "problem": problem}


def _keys(session: orm.Session, handover: Handover, now: dt.datetime) -> dict[str, nacl.signing.VerifyKey]:
    keys: dict[str, nacl.signing.VerifyKey] = {}
    for doc in (handover.custody or {}).get("cards", []):
        try:
            card = NodeCard.from_json(doc)
            verify_card(card, now)
        except ProtocolError:
            continue
        keys[card.node_id] = card.verify_key
    keys.update({p.node_id: verify_key(p) for p in session.scalars(sa.select(Partner))})
    return keys


def _steps(session: orm.Session, handover: Handover, now: dt.datetime) -> list[dict[str, Any]]:
    """The custody steps a received forward carried, each checked (SPEC.md 9.8 step 2 and 3)."""
    chain = (handover.custody or {}).get("chain", [])
    keys = _keys(session, handover, now)
    partners = {p.node_id: p for p in session.scalars(sa.select(Partner))}
    origin = handover.origin_node or handover.partner_node
    expected, visited, previous = origin, {origin}, None
    links = []
    for index, step in enumerate(chain):
        problem = None
        at = parse_time(step["at"])
        if step["from"] != expected:
            problem = f"link {index} does not continue from {expected}: a link is missing or out of order"
        elif step["holder"] in visited:
            problem = f"link {index} revisits {step['holder']}: the chain is out of order"
        elif previous is not None and at < previous:
            problem = f"link {index} is earlier than the link before it: the chain is out of order"
        elif at > now + CLOCK_SKEW:
            problem = f"link {index} lies in the future"
        else:
            partner = partners.get(step["holder"])
            key = signing_key_for(session, partner, step) if partner is not None else keys.get(step["holder"])
            try:
                if key is None:
                    raise ProtocolError(f"no key for {step['holder']}")
                verify_signed_json(step, step["holder"], key)
            except ProtocolError:
                problem = f"link {index}: the signature of {step['holder']} does not verify (forged or altered)"
        links.append(_link(step["holder"], step["from"], at, step["message_hash"], "custody step",
                           problem, signed_by=step["holder"]))
        expected, previous = step["holder"], at
        visited.add(step["holder"])
    if expected != handover.partner_node:
        links.append(_link(handover.partner_node, expected, None, None, "custody step",
                           f"no link shows how {handover.partner_node} received the case from {expected}: "
                           "a link is missing"))
    return links


def _received(session: orm.Session, handover: Handover, own: str) -> dict[str, Any]:
    message = session.scalar(sa.select(InboundMessage).where(
        InboundMessage.sender == handover.partner_node, InboundMessage.message_id == handover.message_id))
    if message is None:
        return _link(own, handover.partner_node, handover.created_at, None, "received message",
                     "the message that brought the case here is missing")
    problem = None
    evidence = "received message (content erased: hash kept)"
    if message.inner is not None:
        evidence = "received message, signed by the sender"
        if message_hash(message.inner) != message.message_hash:
            problem = "the stored message no longer matches its chain-link hash (altered)"
    return _link(own, handover.partner_node, message.received_at, message.message_hash, evidence, problem,
                 signed_by=handover.partner_node)


def _sent(session: orm.Session, handover: Handover, own: str) -> dict[str, Any]:
    message = session.scalar(sa.select(OutboundMessage).where(OutboundMessage.message_id == handover.message_id))
    partner = session.get(Partner, handover.partner_id)
    if message is None or partner is None:
        return _link(handover.partner_node, own, handover.created_at, None, "delivery receipt",
                     "the message that carried the case is missing")
    if message.receipt is None:
        return _link(handover.partner_node, own, handover.created_at, message.message_hash,
                     f"not delivered yet ({message.status})", signed_by=None)
    problem = None
    try:
        verify_stored_receipt(session, message)  # with the partner's key history: valid across rotations
    except ProtocolError as exc:
        problem = f"the delivery receipt of {handover.partner_node} does not verify ({exc.code})"
    return _link(handover.partner_node, own, message.delivered_at, message.message_hash,
                 "delivery receipt signed by the recipient", problem, signed_by=handover.partner_node)


def custody_of(session: orm.Session, case_id: str, own: str, now: dt.datetime) -> dict[str, Any]:
    """The chain of custody of a local case as this node can prove it (no access check)."""
    received = session.scalars(sa.select(Handover).where(
        Handover.direction == "incoming", Handover.case_id == case_id).order_by(Handover.created_at)).all()
    links: list[dict[str, Any]] = []
    origin = own
    for handover in received:
        origin = handover.origin_node or handover.partner_node
        if handover.kind == "forward":
            links.extend(_steps(session, handover, now))
        links.append(_received(session, handover, own))
    sent = session.scalars(sa.select(Handover).where(
        Handover.direction == "outgoing", Handover.case_id == case_id).order_by(Handover.created_at)).all()
    for handover in sent:
        link = _sent(session, handover, own)
        link["status"] = handover.status
        links.append(link)
        notices = session.scalars(sa.select(CustodyNotice).where(CustodyNotice.handover_id == handover.id)
                                  .order_by(CustodyNotice.forwarded_at))
        for notice in notices:
            links.append(_link(notice.holder, notice.forwarded_by, notice.forwarded_at, notice.message_hash,
                               f"custody notice from {notice.sender}", signed_by=notice.sender))
    problems = [link["problem"] for link in links if link["problem"]]
    return {"case_id": case_id, "node": own, "origin": origin, "links": links, "verified": not problems,
            "problems": problems}


def case_custody(session: orm.Session, actor: Actor, case_id: str, own: str, now: dt.datetime) -> dict[str, Any]:
    """``GET /cases/{id}/custody`` (audited read).

    Raises:
        Forbidden, NotFound: the actor may not read the case.
    """
    case = case_for(session, actor, case_id, "case.read")
    result = custody_of(session, case.id, own, now)
    record(session, actor=actor, action="read", object_type="custody", object_id=None, case_id=case.id, now=now,
           detail={"links": len(result["links"]), "verified": result["verified"]})
    return result
