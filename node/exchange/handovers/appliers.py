"""What this node does with a verified message of the handover domain (registered with ``dispatch``).

Each applier runs in the inbox's transaction after ``open_envelope`` verified the envelope, and may refuse
with a protocol code; the inbox then stores nothing and answers the code.

- ``handover`` (at the receiver): the handover must open its case thread (SPEC.md 8.3); the consent is checked
  as SPEC.md 9.5 says (signed by the sender, for this case, active, a child's safeguards complete, naming this
  node for the purpose, nothing in the summary outside the grant); then it waits for an adviser.
- ``handover_accepted``, ``handover_declined``, ``progress_update`` (at the origin): ``handover_id`` must be the
  handover that opened the thread the message travels in, sent by this node to the message's sender. The
  handover's status, the case's timeline (marked with the partner and as verified) and the origin's view of
  the partner's stages follow. The status does not wait for the delivery receipt of the handover: an answer
  may overtake the worker's record of the receipt.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import nacl.signing
import sqlalchemy as sa
from sqlalchemy import orm
from sqlalchemy.orm.attributes import set_committed_value

from node.audit import record
from node.cases.models import Case
from node.cases.timeline import record_event
from node.db import insert_now
from node.exchange.handovers.chain_hooks import chain
from node.exchange.handovers.models import Handover, PartnerStage, ProgressUpdate
from node.exchange.models import InboundMessage, Partner
from node.exchange.trust.partner_keys import signing_key_for
from protocol import MalformedError, NodeKeys, OpenedMessage, b64decode, check_handover
from protocol.consent import is_child_case
from protocol.times import parse_time


def verify_key(partner: Partner) -> nacl.signing.VerifyKey:
    """The partner's Ed25519 key as its verified card gave it."""
    return nacl.signing.VerifyKey(b64decode(partner.signing_key, length=32))


def _retain_until(retention: dict[str, Any], now: dt.datetime) -> dt.date:
    if "retain_until" in retention:
        return dt.date.fromisoformat(retention["retain_until"])
    return (now + dt.timedelta(days=retention["days"])).date()


_IN_THREAD = sa.select(Handover.id).where(  # built once (every handover received asks)
    Handover.direction == "incoming", Handover.partner_node == sa.bindparam("partner_node"),
    Handover.thread == sa.bindparam("thread"))


def apply_handover(session: orm.Session, *, message: InboundMessage, opened: OpenedMessage, partner: Partner,
                   now: dt.datetime, keys: NodeKeys) -> None:
    """Check a received handover's thread and consent, and keep it for an adviser to accept or decline.

    Raises:
        MalformedError: the handover does not open its thread.
        BadSignatureError, OutsideConsentError, ConsentInvalidError: SPEC.md 9.5.
    """
    thread = opened.header.thread
    reused = session.scalar(_IN_THREAD, {"partner_node": partner.node_id, "thread": thread})
    if message.seq != 1 or reused is not None:
        raise MalformedError("a handover must open its case thread")
    body = opened.body
    # open_envelope validated the body against the handover schema (step 15): not again here.

    check_handover(body, keys.node_id, now, signing_key_for(session, partner, body["consent"]),
                   sender=partner.node_id, validated=True,
                   withdrawals=chain().withdrawals_for(session, partner.node_id, body["consent"]["consent_id"]))
    consent, summary = body["consent"], body["summary"]
    handover = Handover(
        id=str(uuid.uuid4()), direction="incoming", status="pending", partner_id=partner.id,
        partner_node=partner.node_id, thread=thread, message_id=opened.header.id, case_id=None,
        consent_id=consent["consent_id"], purpose=body["purpose"], reference=body["case"]["reference"],
        origin_case_id=body["case"]["origin_case_id"], categories=list(summary), withheld=list(body["withheld"]),
        body=body, consent=consent, child=is_child_case(consent, summary, now),
        destination_country=body["case"]["destination"]["country"],
        retain_until=_retain_until(body["retention"], now), created_at=now, created_by=None)
    insert_now(session, handover)  # not changed again in this transaction
    record(session, actor=None, action="create", object_type="handover", object_id=handover.id, case_id=None,
           now=now, detail={"from": partner.node_id, "handover_id": handover.message_id,
                            "categories": handover.categories})


def thread_handover(session: orm.Session, opened: OpenedMessage, partner: Partner) -> Handover:
    """The handover this node sent that opened the message's thread, which ``handover_id`` must name.

    Raises:
        MalformedError: no such handover (SPEC.md 8.3).
    """
    # Found by the id it names (the unique index on direction, partner, message id), then its thread checked.
    handover = session.scalar(sa.select(Handover).where(
        Handover.direction == "outgoing", Handover.partner_node == partner.node_id,
        Handover.message_id == opened.body["handover_id"]))
    if handover is None or handover.thread != opened.header.thread:
        raise MalformedError("handover_id is not the handover that opened this thread")
    return handover


def _answered(session: orm.Session, opened: OpenedMessage, partner: Partner, message: InboundMessage,
              status: str, at: str) -> tuple[Handover, Case | None]:
    handover = thread_handover(session, opened, partner)
    if handover.status == "revoked":  # the answer crossed our revocation: kept, the handover stays revoked
        handover.decided_at = parse_time(at)
        message.case_id = handover.case_id
        return handover, None
    if handover.status == status:
        # The same answer again: the partner was restored from a backup taken before it answered, and its adviser
        # answered again (node/exchange/resync). Kept; its details replace the first answer's, no new event.
        message.case_id = handover.case_id
        return handover, None
    if handover.status != "pending":
        raise MalformedError(f"the handover was {handover.status} already")
    handover.status = status
    handover.decided_at = parse_time(at)
    session.flush()
    message.case_id = handover.case_id
    case = session.get(Case, handover.case_id) if handover.case_id is not None else None
    return handover, case


def _event(session: orm.Session, case: Case | None, kind: str, handover: Handover, partner: Partner,
           now: dt.datetime, *, object_type: str = "handover", object_id: str | None = None,
           **detail: Any) -> None:
    if case is None:  # the case was erased here meanwhile: the answer is kept on the handover only
        return
    record_event(session, case, kind=kind, now=now, actor=None, object_type=object_type,
                 object_id=object_id or handover.id,
                 detail={"handover_id": handover.message_id, "partner": partner.node_id,
                         "partner_name": partner.name, **detail},
                 source=partner.node_id, verified=True)


def apply_accepted(session: orm.Session, *, message: InboundMessage, opened: OpenedMessage, partner: Partner,
                   now: dt.datetime, keys: NodeKeys) -> None:
    """The partner's adviser accepted our handover: status, answer, the case handed over, timeline."""
    body = opened.body
    handover, case = _answered(session, opened, partner, message, "accepted", body["accepted_at"])
    handover.local_reference = body.get("local_reference")
    answer: dict[str, Any] = {k: body[k] for k in ("adviser", "first_meeting_at") if k in body}
    handover.answer = answer or None
    detail: dict[str, Any] = {"local_reference": handover.local_reference}
    if case is not None and case.status == "open":
        session.execute(sa.update(Case).where(Case.id == case.id).values(status="handed_over")
                        .execution_options(synchronize_session=False))
        set_committed_value(case, "status", "handed_over")
        detail["status"] = {"from": "open", "to": "handed_over"}
    _event(session, case, "handover.accepted", handover, partner, now, **detail)


def apply_declined(session: orm.Session, *, message: InboundMessage, opened: OpenedMessage, partner: Partner,
                   now: dt.datetime, keys: NodeKeys) -> None:
    """The partner's adviser declined our handover: status, reason, timeline."""
    body = opened.body
    handover, case = _answered(session, opened, partner, message, "declined", body["declined_at"])
    handover.reason_code, handover.reason = body["reason_code"], body["reason"]
    _event(session, case, "handover.declined", handover, partner, now, reason_code=body["reason_code"])


def _partner_stage(session: orm.Session, case_id: str, partner: Partner, change: dict[str, Any],
                   message_id: str, now: dt.datetime) -> None:
    at = parse_time(change["at"])
    row = session.get(PartnerStage, (case_id, partner.node_id, change["key"]))
    if row is None:
        session.add(PartnerStage(case_id=case_id, partner_node=partner.node_id, stage_key=change["key"],
                                 status=change["status"], note=change.get("note"), changed_at=at,
                                 received_at=now, message_id=message_id))
    elif at >= row.changed_at:
        row.status, row.note, row.changed_at = change["status"], change.get("note"), at
        row.received_at, row.message_id = now, message_id


def apply_progress(session: orm.Session, *, message: InboundMessage, opened: OpenedMessage, partner: Partner,
                   now: dt.datetime, keys: NodeKeys) -> None:
    """Progress from the partner working our case: kept with the case, on its timeline and in the partner's
    stages. A repeated ``update_id`` replaces the earlier version of that update.

    Raises:
        MalformedError: not in the thread of a handover this node sent to the sender and that it accepted.
    """
    handover = thread_handover(session, opened, partner)
    if handover.status != "accepted":
        raise MalformedError("progress on a handover that was not accepted")
    message.case_id = handover.case_id
    case = session.get(Case, handover.case_id) if handover.case_id is not None else None
    if case is None:
        return
    body = opened.body
    values = {"at": parse_time(body["at"]), "note": body.get("note"),
              "stage_changes": body.get("stage_changes", []), "interventions": body.get("interventions", []),
              "meetings": body.get("meetings", []), "indicators": body.get("indicators", []),
              "message_id": opened.header.id}
    update = session.scalar(sa.select(ProgressUpdate).where(
        ProgressUpdate.case_id == case.id, ProgressUpdate.direction == "received",
        ProgressUpdate.partner_node == partner.node_id, ProgressUpdate.update_id == body["update_id"]))
    if update is None:
        update = ProgressUpdate(id=str(uuid.uuid4()), case_id=case.id, direction="received",
                                handover_id=handover.id, partner_node=partner.node_id,
                                update_id=body["update_id"], author_id=None, created_at=now, **values)
        session.add(update)
    else:
        for name, value in values.items():
            setattr(update, name, value)
    session.flush()
    for change in values["stage_changes"]:
        _partner_stage(session, case.id, partner, change, opened.header.id, now)
    _event(session, case, "partner.progress", handover, partner, now, object_type="progress_update",
           object_id=update.id, update_id=body["update_id"],
           stages=[{"key": c["key"], "status": c["status"]} for c in values["stage_changes"]],
           interventions=[{"id": i["id"], "status": i["status"]} for i in values["interventions"]],
           meetings=len(values["meetings"]), note="note" in body)
    if handover.kind == "forward":  # the case came to us from a partner: the progress goes on towards the origin
        chain().relay_progress(session, handover, body, partner.node_id, keys=keys, now=now)
