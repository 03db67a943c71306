"""An adviser's decision on an incoming handover: accept it (a local case is opened from the summary) or
decline it (the summary is erased). Either way the sender is told, in the same transaction (outbox).

Accepting re-checks the consent at that moment (it may have expired while the handover waited), opens the
case with the returnee, household, intake sections, plan, stages and interventions of the summary, assigns it
to the accepting adviser and their team, links it to the sender's case and thread, and queues
``handover_accepted``. Declining keeps the envelope metadata and the reason, erases the summary and the
consent record (SPEC.md 8.7), and queues ``handover_declined``. Two advisers deciding at once cannot both win:
the handover row is versioned, and the loser's transaction changes nothing.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm
from sqlalchemy.orm.exc import StaleDataError

from node.accounts import User
from node.audit import record
from node.auth import Actor, require
from node.cases.models import Case, CaseStage, Intervention
from node.cases.services import create_case
from node.cases.stages import refresh_current_stage
from node.cases.timeline import record_event
from node.config import NodeConfig
from node.errors import Conflict
from node.exchange.delivery.outbox import enqueue
from node.exchange.handovers.chain_hooks import chain
from node.exchange.handovers.models import Handover
from node.exchange.handovers.send import HandoverRefused
from node.exchange.handovers.status import present, visible_handover
from node.exchange.handovers.summary import case_data, intervention_id, line
from node.exchange.models import InboundMessage, OutboundMessage, Partner
from node.exchange.trust.partner_keys import signing_key_for
from protocol import BoxCache, NodeKeys, ProtocolError, check_handover
from protocol.times import format_time

_RECEIVED_STATUS = {"returned": "in_reintegration", "follow_up": "in_reintegration"}


def _pending(session: orm.Session, actor: Actor, handover_id: str) -> Handover:
    require(actor, "handover.accept")
    handover = visible_handover(session, actor, handover_id)
    if handover.direction != "incoming":
        raise Conflict("Only a handover received from a partner can be accepted or declined.")
    if handover.status != "pending" or handover.body is None:
        raise Conflict(f"This handover was {handover.status} already.")
    return handover


def _decide(session: orm.Session, handover: Handover, status: str, actor: Actor, now: dt.datetime) -> None:
    """Take the decision first, so that a concurrent decision fails before any work is done."""
    handover.status, handover.decided_at, handover.decided_by = status, now, actor.user_id
    try:
        session.flush()
    except StaleDataError:
        raise Conflict("Another adviser decided on this handover at the same time.") from None


def _thread_messages(handover: Handover) -> sa.Update:
    return sa.update(InboundMessage).where(InboundMessage.sender == handover.partner_node,
                                          InboundMessage.thread == handover.thread)


def _apply_stages(session: orm.Session, case: Case, stages: list[dict[str, Any]], actor: Actor,
                  now: dt.datetime) -> list[str]:
    """Set the local stages the summary reports on (keys this node does not configure are skipped)."""
    rows = {s.stage_key: s for s in session.scalars(sa.select(CaseStage).where(CaseStage.case_id == case.id))}
    applied = []
    for item in stages:
        row = rows.get(item["key"])
        if row is None:
            continue
        row.status, row.responsible, row.notes = item["status"], item["responsible"], item.get("notes")
        row.started_on = dt.date.fromisoformat(item["started"]) if "started" in item else None
        row.completed_on = dt.date.fromisoformat(item["completed"]) if "completed" in item else None
        row.updated_at, row.updated_by = now, actor.user_id
        applied.append(item["key"])
    if applied:
        refresh_current_stage(session, case)
    return applied


def _add_interventions(session: orm.Session, case: Case, items: list[dict[str, Any]], sender: str,
                       actor: Actor, now: dt.datetime) -> int:
    author = session.get(User, actor.user_id)
    for item in items:
        local_id = intervention_id(sender, item["id"])
        if session.get(Intervention, local_id) is not None:
            local_id = str(uuid.uuid4())
        amount = int(Decimal(item["amount"]) * 100) if "amount" in item else None
        session.add(Intervention(
            id=local_id, case_id=case.id, kind=item["kind"], provider=item.get("provider"),
            status=item["status"], start_date=dt.date.fromisoformat(item["start"]) if "start" in item else None,
            end_date=dt.date.fromisoformat(item["end"]) if "end" in item else None, amount_cents=amount,
            currency=item.get("currency"), notes=item.get("note"), author=author, created_at=now,
            updated_at=now))
    return len(items)


def accept_handover(session: orm.Session, actor: Actor, handover_id: str, data: dict[str, Any], *,
                    keys: NodeKeys, config: NodeConfig, now: dt.datetime,
                    boxes: BoxCache | None = None) -> dict[str, Any]:
    """``POST /handovers/{id}/accept``: open the local case and tell the sender (no commit).

    Args:
        data: optional ``first_meeting_at`` (aware datetime) and ``office``.
    Returns:
        ``{"case_id", "reference", "handover"}``.
    Raises:
        Forbidden: the role may not accept handovers.
        NotFound: no such incoming handover.
        Conflict: decided already (or at the same moment), or the summary lacks the returnee's identity.
        HandoverRefused: the consent no longer allows it (e.g. expired meanwhile): decline it instead.
        PartnerStateError: the sender is suspended or revoked, so it cannot be told.
    """
    handover = _pending(session, actor, handover_id)
    body, consent = dict(handover.body or {}), handover.consent or {}
    partner = session.get(Partner, handover.partner_id)
    if partner is None:
        raise Conflict("The sender is no longer a partner of this node.")
    try:
        if handover.kind == "forward":
            chain().recheck_forward(session, handover, partner, keys, now)
        else:
            check_handover(body, keys.node_id, now, signing_key_for(session, partner, body["consent"]),
                           sender=partner.node_id)
    except ProtocolError as exc:
        raise HandoverRefused(f"The consent no longer allows this handover ({exc.code}): decline it "
                              "(consent_problem).", exc.code) from None
    data_, born = case_data(body, consent)
    identity = body["summary"].get("identity")
    if identity is None or born is None:
        raise Conflict("The handover does not carry the returnee's identity and date of birth, so no case can "
                       "be opened: decline it (insufficient_information) and ask the sender.")
    _decide(session, handover, "accepted", actor, now)
    case = create_case(session, actor, data_, stages=config.stages, prefix=config.reference_prefix, now=now)
    status = _RECEIVED_STATUS.get(body["case"]["status"])
    if status is not None:
        case.status = status
    plan = body["summary"].get("plan", {})
    stages = _apply_stages(session, case, plan.get("stages", []), actor, now)
    count = _add_interventions(session, case, plan.get("interventions", []), partner.node_id, actor, now)
    handover.case_id, handover.local_reference = case.id, case.reference
    handover.body = None  # the summary lives on in the case
    session.flush()
    session.execute(_thread_messages(handover).values(case_id=case.id))
    detail = {"handover_id": handover.message_id, "partner": partner.node_id, "partner_name": partner.name,
              "origin_reference": handover.reference, "stages": stages, "interventions": count}
    record_event(session, case, kind="handover.received", now=now, actor=None, object_type="handover",
                 object_id=handover.id, detail={"handover_id": handover.message_id, "partner": partner.node_id,
                                                "partner_name": partner.name, "received_at": format_time(
                                                    handover.created_at)},
                 source=partner.node_id, verified=True)
    record_event(session, case, kind="handover.accepted", now=now, actor=actor, object_type="handover",
                 object_id=handover.id, detail=detail)
    user = session.get(User, actor.user_id)
    adviser = {"name": line(user.display_name if user else actor.username),
               "office": line(data.get("office") or config.name)}
    answer: dict[str, Any] = {"handover_id": handover.message_id, "accepted_at": format_time(now),
                              "adviser": {k: v for k, v in adviser.items() if v}, "local_reference": case.reference}
    if data.get("first_meeting_at") is not None:
        answer["first_meeting_at"] = format_time(data["first_meeting_at"])
    message = enqueue(session, keys=keys, recipient=partner.node_id, msg_type="handover_accepted", body=answer,
                      thread=handover.thread, now=now, case_id=case.id, boxes=boxes)
    record(session, actor=actor, action="update", object_type="handover", object_id=handover.id,
           case_id=case.id, now=now, detail={"status": "accepted", "message_id": message.message_id})
    return {"case_id": case.id, "reference": case.reference,
            "handover": present(handover, None, partner_name=partner.name)}


def decline_handover(session: orm.Session, actor: Actor, handover_id: str, data: dict[str, Any], *,
                     keys: NodeKeys, now: dt.datetime, boxes: BoxCache | None = None) -> dict[str, Any]:
    """``POST /handovers/{id}/decline``: erase the summary and tell the sender why (no commit).

    Args:
        data: ``reason`` (text) and ``reason_code`` (the protocol's codes).
    Raises:
        Forbidden, NotFound, Conflict, PartnerStateError: as :func:`accept_handover`.
    """
    handover = _pending(session, actor, handover_id)
    _decide(session, handover, "declined", actor, now)
    handover.reason_code, handover.reason = data["reason_code"], data["reason"]
    handover.body = handover.consent = None
    session.flush()
    session.execute(_thread_messages(handover).where(InboundMessage.message_id == handover.message_id)
                    .values(inner=None))
    answer = {"handover_id": handover.message_id, "declined_at": format_time(now), "reason": data["reason"],
              "reason_code": data["reason_code"]}
    message: OutboundMessage = enqueue(session, keys=keys, recipient=handover.partner_node,
                                       msg_type="handover_declined", body=answer, thread=handover.thread,
                                       now=now, boxes=boxes)
    record(session, actor=actor, action="update", object_type="handover", object_id=handover.id, case_id=None,
           now=now, detail={"status": "declined", "reason_code": data["reason_code"],
                            "message_id": message.message_id})
    partner = session.get(Partner, handover.partner_id)
    return present(handover, None, partner_name=partner.name if partner else None)
