"""Working a case together: progress recorded here, and sent back to the origin when the case came from a
handover this node accepted.

``record_progress`` applies a progress report to the local case (a progress note, stage statuses, new or
changed interventions; meetings are kept with the update) and, for a case opened from an accepted handover,
queues a ``progress_update`` to the origin on the handover's thread, in the same transaction. A case that came
from no handover keeps the update locally. If the origin can receive nothing now (suspended or revoked), the
work is still recorded and the answer says it was not shared.

The origin keeps what it receives (``appliers.apply_progress``); :func:`case_updates` and
:func:`partner_stages` show both sides' view.
"""

from __future__ import annotations

import datetime as dt
import uuid
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm

from node.audit import record
from node.auth import Actor, require
from node.cases.access import case_for, case_record
from node.cases.models import Case, CaseStage, Intervention
from node.cases.progress import add_note, create_intervention
from node.cases.stages import change_stage
from node.cases.timeline import record_event
from node.concurrency import Expected
from node.config import NodeConfig
from node.errors import ValidationFailed
from node.exchange.delivery.outbox import enqueue
from node.exchange.handovers.models import Handover, PartnerStage, ProgressUpdate
from node.exchange.handovers.summary import intervention_item, text
from node.exchange.models import OutboundMessage, Partner
from node.exchange.trust.partners import PartnerStateError, require_sendable
from protocol import BoxCache, NodeKeys
from protocol.fields import KEY_RE
from protocol.times import format_time

NOTHING_TRAVELS = "nothing in this update can travel"
_INTERVENTION_FIELDS = ("kind", "status", "provider", "start_date", "end_date", "amount_cents", "currency",
                        "notes")


def _checked_stages(session: orm.Session, case: Case, changes: list[dict[str, Any]]) -> dict[str, CaseStage]:
    """The case's stages by key, once every change names a stage of the case, and each at most once."""
    stages = {s.stage_key: s for s in session.scalars(sa.select(CaseStage).where(CaseStage.case_id == case.id))}
    keys = [c["key"] for c in changes]
    for i, key in enumerate(keys):
        if key not in stages:
            raise ValidationFailed("Unknown stage.", {"stage_changes": {str(i): {"key": [
                f"Unknown stage key {key[:40]!r}."]}}})
        if keys.index(key) != i:
            raise ValidationFailed("Stage changed twice.", {"stage_changes": {str(i): {"key": [
                "Each stage may appear once."]}}})
    return stages


def _stage_changes(session: orm.Session, actor: Actor, case: Case, changes: list[dict[str, Any]],
                   now: dt.datetime) -> list[dict[str, Any]]:
    """Apply the stage changes (all or none); return them in the protocol's form."""
    if not changes:
        return []
    require(actor, "case.update")
    stages = _checked_stages(session, case, changes)
    reported = []
    for change in changes:
        stage = stages[change["key"]]
        change_stage(session, actor, case, stage, {"status": change["status"]}, Expected(stage.version), now)
        item = {"key": stage.stage_key, "status": change["status"], "at": format_time(now)}
        if change.get("note"):
            item["note"] = change["note"]
        reported.append(item)
    return reported


def _require_kind(index: int, values: dict[str, Any]) -> None:
    if "kind" not in values:
        raise ValidationFailed("Intervention without kind.", {"interventions": {str(index): {"kind": [
            "A new intervention needs its kind."]}}})


def _existing_intervention(session: orm.Session, case: Case, index: int, intervention_id: str) -> Intervention:
    existing = case_record(session, Intervention, intervention_id, case)
    if existing is None:
        raise ValidationFailed("No such intervention.", {"interventions": {str(index): {"id": [
            "No intervention with this id on this case."]}}})
    return existing


def _interventions(session: orm.Session, actor: Actor, case: Case, items: list[dict[str, Any]],
                   now: dt.datetime) -> list[Intervention]:
    """Create the new interventions and change the named ones."""
    done = []
    for i, item in enumerate(items):
        values = {k: v for k, v in item.items() if k != "id"}
        if "id" not in item:
            _require_kind(i, values)
            done.append(create_intervention(session, actor, case.id, {"status": "proposed", **values}, now))
            continue
        existing = _existing_intervention(session, case, i, item["id"])
        if "amount" in values:
            amount = values.pop("amount")
            values["amount_cents"] = None if amount is None else int(amount * 100)
        changed = sorted(k for k in _INTERVENTION_FIELDS if k in values and getattr(existing, k) != values[k])
        for name in changed:
            setattr(existing, name, values[name])
        if changed:
            existing.updated_at = now
            record_event(session, case, kind="intervention.updated", now=now, actor=actor,
                         object_type="intervention", object_id=existing.id,
                         detail={"kind": existing.kind, "fields": changed})
        done.append(existing)
    return done


def from_accepted_handover(session: orm.Session, case_id: str) -> Handover | None:
    """The accepted incoming handover a case was opened from, if any."""
    return session.scalar(sa.select(Handover).where(
        Handover.direction == "incoming", Handover.case_id == case_id, Handover.status == "accepted").limit(1))


def record_progress(session: orm.Session, actor: Actor, case_id: str, data: dict[str, Any], *, keys: NodeKeys,
                    now: dt.datetime, boxes: BoxCache | None = None) -> dict[str, Any]:
    """``POST /cases/{id}/progress``: record progress, and send it to the origin (no commit).

    Args:
        data: at least one of ``note``, ``stage_changes`` (``key``, ``status``, ``note``), ``interventions``
            (new ones without ``id``; changes to existing ones with it) and ``meetings`` (``at``, ``kind``,
            ``note``).
    Returns:
        The update as :func:`present_update` shows it, with ``shared_with``/``message_id`` when it was queued
        for the origin, or ``not_shared`` saying why not.
    Raises:
        Forbidden, NotFound: the actor may not write progress on this case (or change its stages).
        ValidationFailed: an unknown or repeated stage, an unknown intervention, a new one without kind.
    """
    case = case_for(session, actor, case_id, "progress.write")
    stage_changes = _stage_changes(session, actor, case, data.get("stage_changes", []), now)
    interventions = _interventions(session, actor, case, data.get("interventions", []), now)
    note = data.get("note")
    if note:
        add_note(session, actor, case.id, {"text": note}, now)
    meetings = _meetings(data)
    handover = from_accepted_handover(session, case.id)
    update = ProgressUpdate(
        id=str(uuid.uuid4()), case_id=case.id, direction="sent" if handover else "local",
        handover_id=handover.id if handover else None, partner_node=handover.partner_node if handover else None,
        update_id="", at=now, note=note, stage_changes=stage_changes,
        interventions=[intervention_item(i) for i in interventions], meetings=meetings, indicators=[],
        message_id=None, author_id=actor.user_id, created_at=now)
    update.update_id = update.id
    session.add(update)
    session.flush()
    result = {**present_update(update), "shared_with": None, "not_shared": None}
    if handover is not None:
        result.update(_share(session, update, handover, keys=keys, now=now, boxes=boxes))
    record_event(session, case, kind="progress.recorded", now=now, actor=actor, object_type="progress_update",
                 object_id=update.id, detail={
                     "stages": [{"key": c["key"], "status": c["status"]} for c in stage_changes],
                     "interventions": len(interventions), "meetings": len(meetings), "note": bool(note),
                     "shared_with": result.get("shared_with")})
    record(session, actor=actor, action="create", object_type="progress_update", object_id=update.id,
           case_id=case.id, now=now, detail={"shared_with": result.get("shared_with")})
    return result


def _share(session: orm.Session, update: ProgressUpdate, handover: Handover, *, keys: NodeKeys,
           now: dt.datetime, boxes: BoxCache | None) -> dict[str, Any]:
    body = _progress_body(handover, update.update_id, update.at, update.stage_changes, update.interventions,
                          update.meetings, update.note)
    if body is None:
        return {"shared_with": None, "not_shared": NOTHING_TRAVELS}
    try:
        message = enqueue(session, keys=keys, recipient=handover.partner_node, msg_type="progress_update",
                          body=body, thread=handover.thread, now=now, case_id=update.case_id, boxes=boxes)
    except PartnerStateError as exc:
        return {"shared_with": None, "not_shared": exc.detail}
    update.message_id = message.message_id
    return {"shared_with": handover.partner_node, "message_id": message.message_id}


def preview_progress(session: orm.Session, actor: Actor, case_id: str, data: dict[str, Any], *,
                     now: dt.datetime) -> dict[str, Any]:
    """What :func:`record_progress` would send to the origin for ``data``, built without storing, changing or
    sending anything (nothing is flushed, nothing audited).

    The same checks as :func:`record_progress` (the permission, unknown or repeated stages, unknown
    interventions, a new intervention without kind), so that a preview that shows no error records without one.
    A stale stage or intervention (changed between the preview and the sending) is found when it is recorded.

    Returns:
        ``{"origin", "origin_name", "body", "not_shared"}``: ``origin`` the node the update would be queued for
        (None for a case that came from no handover: nothing is sent anywhere), ``body`` the ``progress_update``
        body as it would be sealed except ``update_id`` (made when it is recorded; so are the ids of new
        interventions, left out here), or None when nothing would be sent, ``not_shared`` saying why not.
    Raises:
        Forbidden, NotFound: the actor may not write progress on this case (or change its stages).
        ValidationFailed: as :func:`record_progress`.
    """
    case = case_for(session, actor, case_id, "progress.write")
    changes = data.get("stage_changes", [])
    if changes:
        require(actor, "case.update")
        _checked_stages(session, case, changes)
    at = format_time(now)
    stage_changes = [{"key": c["key"], "status": c["status"], "at": at, **({"note": c["note"]} if c.get("note")
                                                                            else {})} for c in changes]
    interventions = []
    for i, item in enumerate(data.get("interventions", [])):
        values = {k: v for k, v in item.items() if k != "id"}
        if "amount" in values:
            amount = values.pop("amount")
            values["amount_cents"] = None if amount is None else int(amount * 100)
        if "id" in item:
            existing = _existing_intervention(session, case, i, item["id"])
            fields = {name: getattr(existing, name) for name in _INTERVENTION_FIELDS}
            shown = SimpleNamespace(**(fields | values), id=existing.id)
        else:
            _require_kind(i, values)
            shown = SimpleNamespace(**({name: None for name in _INTERVENTION_FIELDS} | {"status": "proposed"}
                                       | values), id="")
        interventions.append(intervention_item(shown))
    handover = from_accepted_handover(session, case.id)
    result: dict[str, Any] = {"origin": handover.partner_node if handover else None, "origin_name": None,
                              "body": None, "not_shared": None}
    if handover is None:
        return result
    body = _progress_body(handover, "", now, stage_changes, interventions, _meetings(data), data.get("note"))
    result["origin_name"] = session.scalar(sa.select(Partner.name).where(Partner.node_id == handover.partner_node))
    try:
        require_sendable(session, handover.partner_node)
    except PartnerStateError as exc:
        result["not_shared"] = exc.detail
    if body is None:
        result["not_shared"] = NOTHING_TRAVELS
    elif result["not_shared"] is None:
        result["body"] = {k: v for k, v in body.items() if k != "update_id"}
    return result


def _meetings(data: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"at": format_time(m["at"]), "kind": m["kind"], **({"note": m["note"]} if m.get("note") else {})}
            for m in data.get("meetings", [])]


def _progress_body(handover: Handover, update_id: str, at: dt.datetime, stage_changes: list[dict[str, Any]],
                   interventions: list[dict[str, Any]], meetings: list[dict[str, Any]],
                   note: str | None) -> dict[str, Any] | None:
    """The ``progress_update`` body for the origin; None when nothing in the update can travel."""
    body: dict[str, Any] = {"handover_id": handover.message_id, "update_id": update_id, "at": format_time(at)}
    changes = [c for c in stage_changes if KEY_RE.fullmatch(c["key"])]
    for name, value in (("stage_changes", changes), ("interventions", interventions[:50]),
                        ("meetings", meetings[:50]), ("note", text(note))):
        if value:
            body[name] = value
    return body if len(body) > 3 else None


def present_update(update: ProgressUpdate, partner_name: str | None = None) -> dict[str, Any]:
    return {"id": update.id, "direction": update.direction, "partner": update.partner_node,
            "partner_name": partner_name, "update_id": update.update_id, "at": update.at, "note": update.note,
            "stage_changes": update.stage_changes, "interventions": update.interventions,
            "meetings": update.meetings, "indicators": update.indicators, "message_id": update.message_id,
            "verified": update.direction == "received", "created_at": update.created_at}


def _partner_names(session: orm.Session) -> dict[str, str]:
    return {row.node_id: row.name for row in session.execute(sa.select(Partner.node_id, Partner.name))}


def case_updates(session: orm.Session, actor: Actor, case_id: str, now: dt.datetime) -> list[dict[str, Any]]:
    """``GET /cases/{id}/progress``: the case's progress updates, sent, local and received (audited read)."""
    case = case_for(session, actor, case_id, "case.read")
    rows = session.scalars(sa.select(ProgressUpdate).where(ProgressUpdate.case_id == case.id)
                           .order_by(ProgressUpdate.at, ProgressUpdate.created_at, ProgressUpdate.id))
    names = _partner_names(session)
    items = [present_update(u, names.get(u.partner_node or "")) for u in rows]
    record(session, actor=actor, action="read", object_type="progress_update", object_id=None, case_id=case.id,
           now=now, detail={"count": len(items)})
    return items


def partner_stages(session: orm.Session, actor: Actor, case_id: str, config: NodeConfig,
                   now: dt.datetime) -> list[dict[str, Any]]:
    """``GET /cases/{id}/partner-stages``: the stages as the partner working the case last reported them."""
    case = case_for(session, actor, case_id, "case.read")
    titles = {s.key: s.title for s in config.stages}
    order = {s.key: i for i, s in enumerate(config.stages)}
    names = _partner_names(session)
    rows = sorted(session.scalars(sa.select(PartnerStage).where(PartnerStage.case_id == case.id)),
                  key=lambda r: (r.partner_node, order.get(r.stage_key, len(order)), r.stage_key))
    record(session, actor=actor, action="read", object_type="partner_stage", object_id=None, case_id=case.id,
           now=now)
    return [{"partner": r.partner_node, "partner_name": names.get(r.partner_node), "key": r.stage_key,
             "title": titles.get(r.stage_key), "status": r.status, "note": r.note, "changed_at": r.changed_at,
             "received_at": r.received_at, "verified": True} for r in rows]


def update_deliveries(session: orm.Session, updates: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """How far the messages of sent updates (as :func:`case_updates` shows them) got: ``{message_id: {"status":
    queued | sending | delivered | parked | undeliverable, "delivered_at", "attempts"}}``."""
    ids = [u["message_id"] for u in updates if u.get("message_id")]
    if not ids:
        return {}
    rows = session.scalars(sa.select(OutboundMessage).where(OutboundMessage.message_id.in_(ids)))
    return {m.message_id: {"status": m.status, "delivered_at": m.delivered_at, "attempts": m.attempts}
            for m in rows}
