"""Consent records and the safeguards of a child's case.

A consent says which categories of data may go to which partner organisations, for what purpose, until when,
how it was given, in which language and with which interpreter. It is never edited; a withdrawal is recorded
on it once, with time and reason. Its status is computed, never stored:

- ``withdrawn`` once withdrawn;
- ``expired`` after its ``valid_until`` day;
- ``pending`` while the case is a child's case (under 18 when it was opened) whose safeguards are incomplete:
  the guardian's identity and consent, the child's own views, and a best-interests assessment outcome must
  all be recorded before any consent to share can become active (``pending_reasons`` says which are missing);
- ``active`` otherwise.

A consent recorded while safeguards are missing becomes active by itself once they are complete.

A consent is refused when it is recorded, not at the handover that would use it, if none of its recipients is a
partner of this node (it names each of them), or if neither it nor the returnee has a language (the language
the returnee was informed in travels with the consent). Besides a partner, a consent may name nodes this node
does not know: nodes a partner may forward the case to (SPEC.md 9.8), checked along the chain. The partners
live in the exchange, above the cases: which node ids are partners is asked through
:func:`install_partner_check`, which ``node.exchange.wiring.wire()`` calls.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm

from node.audit import record
from node.auth import Actor
from node.concurrency import Expected, check_version, flush_versioned
from node.errors import Conflict, NotFound, ValidationFailed

from .access import case_for, case_record
from .models import Case, ChildSafeguards, Consent
from .sections import flush_created
from .timeline import record_event

#: ``(session, node_ids) -> the ones that are not partners of this node``.
PartnerCheck = Callable[[orm.Session, Sequence[str]], list[str]]
_partner_check: list[PartnerCheck] = []


def install_partner_check(check: PartnerCheck) -> None:
    """Install how consent learns which node ids are partners (``node.exchange.wiring.wire()``)."""
    _partner_check[:] = [check]


def _unknown_recipients(session: orm.Session, recipients: Sequence[str]) -> list[str]:
    if not _partner_check:  # deny by default: never a consent naming nodes nobody checked
        raise RuntimeError("consent cannot check its recipients: node.exchange.wiring.wire() was not called")
    return _partner_check[0](session, recipients)


#: Names of the safeguards a child's case needs, in the order they are usually recorded.
SAFEGUARDS = ("guardian_identity", "guardian_consent", "child_views", "best_interests_assessment")


def missing_safeguards(case: Case, safeguards: ChildSafeguards | None) -> list[str]:
    """What a child's case still lacks before consent can become active (empty for an adult's case)."""
    if not case.child_at_intake:
        return []
    if safeguards is None:
        return list(SAFEGUARDS)
    present = {
        "guardian_identity": bool(safeguards.guardian_name and safeguards.guardian_relation),
        "guardian_consent": safeguards.guardian_consent_at is not None,
        "child_views": bool(safeguards.child_views),
        "best_interests_assessment": bool(safeguards.best_interests_outcome and safeguards.assessed_at
                                          and safeguards.assessed_by),
    }
    return [name for name in SAFEGUARDS if not present[name]]


def consent_status(consent: Consent, missing: list[str], today: dt.date) -> str:
    if consent.withdrawn_at is not None:
        return "withdrawn"
    if consent.valid_until < today:
        return "expired"
    if missing:
        return "pending"
    return "active"


def present_consent(consent: Consent, missing: list[str], today: dt.date) -> dict[str, Any]:
    status = consent_status(consent, missing, today)
    data = {name: getattr(consent, name) for name in (
        "id", "case_id", "recipients", "categories", "purpose", "method", "valid_until", "language",
        "interpreter", "given_at", "recorded_by", "created_at", "withdrawn_at", "withdrawal_reason")}
    data["status"] = status
    data["pending_reasons"] = missing if status == "pending" else []
    return data


def case_consents(session: orm.Session, case: Case, today: dt.date) -> list[dict[str, Any]]:
    """Every consent of the case with its computed status, oldest first."""
    missing = case_missing_safeguards(session, case)
    rows = session.scalars(sa.select(Consent).where(Consent.case_id == case.id)
                           .order_by(Consent.created_at, Consent.id))
    return [present_consent(c, missing, today) for c in rows]


def active_consents(session: orm.Session, case: Case, now: dt.datetime) -> list[dict[str, Any]]:
    """The consents of ``case`` that are active now (what a handover may rely on)."""
    return [c for c in case_consents(session, case, now.date()) if c["status"] == "active"]


def case_missing_safeguards(session: orm.Session, case: Case) -> list[str]:
    return missing_safeguards(case, session.get(ChildSafeguards, case.id))


def _unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))


def list_consents(session: orm.Session, actor: Actor, case_id: str, now: dt.datetime) -> list[dict[str, Any]]:
    """The case's consents (audited read)."""
    case = case_for(session, actor, case_id, "case.read")
    record(session, actor=actor, action="read", object_type="consent", object_id=None, case_id=case.id,
           now=now)
    return case_consents(session, case, now.date())


def _consent(session: orm.Session, case: Case, consent_id: str) -> Consent:
    consent = case_record(session, Consent, consent_id, case)
    if consent is None:
        raise NotFound("No such consent.")
    return consent


def get_consent(session: orm.Session, actor: Actor, case_id: str, consent_id: str,
                now: dt.datetime) -> dict[str, Any]:
    """One consent (audited read).

    Raises:
        NotFound: no such consent on a case visible to the actor.
    """
    case = case_for(session, actor, case_id, "case.read")
    consent = _consent(session, case, consent_id)
    record(session, actor=actor, action="read", object_type="consent", object_id=consent.id, case_id=case.id,
           now=now)
    return present_consent(consent, case_missing_safeguards(session, case), now.date())


def create_consent(session: orm.Session, actor: Actor, case_id: str, data: dict[str, Any],
                   now: dt.datetime) -> dict[str, Any]:
    """``POST /cases/{id}/consents``: record a consent as given.

    Raises:
        Forbidden: the role may not manage consent.
        ValidationFailed: ``valid_until`` already past, ``given_at`` in the future, a recipient that is not a
            partner of this node among the recipients, or no language (neither the consent's nor the returnee's).
    """
    case = case_for(session, actor, case_id, "consent.manage")
    given_at = data.get("given_at") or now
    errors: dict[str, Any] = {}
    if data["valid_until"] < now.date():
        errors["valid_until"] = ["Must not be in the past."]
    if given_at > now:
        errors["given_at"] = ["Must not be in the future."]
    recipients = _unique(data["recipients"])
    unknown = set(_unknown_recipients(session, recipients))
    if unknown and len(unknown) == len(recipients):  # no partner: no handover could ever use it
        errors["recipients"] = {str(i): [f"{node_id} is not a partner of this node: its administrator must add it "
                                         "first ('ccm-node partner add'), or name a partner."]
                                for i, node_id in enumerate(data["recipients"]) if node_id in unknown}
    if not data.get("language") and not case.languages:
        errors["language"] = ["Record the language the returnee was informed in: the returnee has no language "
                              "on record, and the consent travels with it."]
    if errors:
        raise ValidationFailed("Invalid consent.", errors)
    consent = Consent(id=str(uuid.uuid4()), case_id=case.id, categories=_unique(data["categories"]),
                      recipients=_unique(data["recipients"]), purpose=data["purpose"], method=data["method"],
                      valid_until=data["valid_until"], language=data.get("language"),
                      interpreter=data.get("interpreter"), given_at=given_at, recorded_by=actor.user_id,
                      created_at=now)
    session.add(consent)
    session.flush()
    result = present_consent(consent, case_missing_safeguards(session, case), now.date())
    detail = {"consent_id": consent.id, "categories": consent.categories, "recipients": consent.recipients,
              "status": result["status"]}
    record_event(session, case, kind="consent.given", now=now, actor=actor, object_type="consent",
                 object_id=consent.id, detail=detail)
    record(session, actor=actor, action="create", object_type="consent", object_id=consent.id,
           case_id=case.id, now=now, detail={"status": result["status"]})
    return result


def withdraw_consent(session: orm.Session, actor: Actor, case_id: str, consent_id: str, data: dict[str, Any],
                     now: dt.datetime) -> dict[str, Any]:
    """``POST /cases/{id}/consents/{cid}/withdraw``: record the withdrawal (time and reason).

    Raises:
        NotFound: no such consent.
        Conflict: already withdrawn.
        ValidationFailed: ``withdrawn_at`` in the future or before the consent was given.
    """
    case = case_for(session, actor, case_id, "consent.manage")
    consent = _consent(session, case, consent_id)
    if consent.withdrawn_at is not None:
        raise Conflict("This consent has already been withdrawn.")
    withdrawn_at = data.get("withdrawn_at") or now
    if withdrawn_at > now or withdrawn_at < consent.given_at:
        raise ValidationFailed("Invalid withdrawal.", {"withdrawn_at": [
            "Must be between the time the consent was given and now."]})
    consent.withdrawn_at, consent.withdrawal_reason, consent.withdrawn_by = withdrawn_at, data["reason"], \
        actor.user_id
    session.flush()
    record_event(session, case, kind="consent.withdrawn", now=now, actor=actor, object_type="consent",
                 object_id=consent.id, detail={"consent_id": consent.id, "recipients": consent.recipients})
    record(session, actor=actor, action="withdraw", object_type="consent", object_id=consent.id,
           case_id=case.id, now=now)
    return present_consent(consent, case_missing_safeguards(session, case), now.date())


# --- child safeguards -------------------------------------------------------------------------------------

_GUARDIAN_FIELDS = ("name", "relation", "organisation", "contact")
_OTHER_FIELDS = ("guardian_consent_at", "child_views", "best_interests_outcome", "assessed_at", "assessed_by")
_SAFEGUARD_FIELDS = (*(f"guardian_{name}" for name in _GUARDIAN_FIELDS), *_OTHER_FIELDS)


def present_safeguards(case: Case, row: ChildSafeguards | None) -> dict[str, Any]:
    data: dict[str, Any] = {name: getattr(row, name) if row else None for name in _SAFEGUARD_FIELDS}
    guardian = None
    if data["guardian_name"]:
        guardian = {"name": data["guardian_name"], "relation": data["guardian_relation"],
                    "organisation": data["guardian_organisation"], "contact": data["guardian_contact"]}
    return {"child": case.child_at_intake, "guardian": guardian,
            **{k: v for k, v in data.items() if not k.startswith("guardian_") or k == "guardian_consent_at"},
            "missing": missing_safeguards(case, row), "updated_at": row.updated_at if row else None,
            "version": row.version if row else 0}


def get_safeguards(session: orm.Session, actor: Actor, case_id: str, now: dt.datetime) -> dict[str, Any]:
    """The child safeguards of the case (audited read; version 0 when none are recorded yet)."""
    case = case_for(session, actor, case_id, "case.read")
    record(session, actor=actor, action="read", object_type="child_safeguards", object_id=None,
           case_id=case.id, now=now)
    return present_safeguards(case, session.get(ChildSafeguards, case.id))


def _safeguard_values(data: dict[str, Any]) -> dict[str, Any]:
    guardian = data.get("guardian") or {}
    return {**{f"guardian_{name}": guardian.get(name) for name in _GUARDIAN_FIELDS},
            **{name: data.get(name) for name in _OTHER_FIELDS}}


def write_safeguards(session: orm.Session, actor: Actor, case_id: str, data: dict[str, Any],
                     expected: Expected, now: dt.datetime) -> dict[str, Any]:
    """``PUT /cases/{id}/child-safeguards``: replace the record (fields left out become empty).

    Raises:
        Forbidden: the role may not manage consent.
        ValidationFailed: a time in the future.
        VersionConflict | Conflict: ``expected`` is stale.
    """
    case = case_for(session, actor, case_id, "consent.manage")
    row = session.get(ChildSafeguards, case.id)
    check_version(row.version if row else 0, expected, "child safeguards")
    values = _safeguard_values(data)
    future = [name for name in ("guardian_consent_at", "assessed_at") if values[name] and values[name] > now]
    if future:
        raise ValidationFailed("Invalid safeguards.", {name: ["Must not be in the future."]
                                                       for name in future})
    before = missing_safeguards(case, row)
    if row is None:
        row = ChildSafeguards(case_id=case.id, updated_at=now, updated_by=actor.user_id, **values)
        changed = sorted(name for name, value in values.items() if value is not None)
        session.add(row)
        flush_created(session, expected, "child safeguards")
    else:
        changed = sorted(name for name, value in values.items() if getattr(row, name) != value)
        if not changed:
            return present_safeguards(case, row)
        for name in changed:
            setattr(row, name, values[name])
        row.updated_at, row.updated_by = now, actor.user_id
        flush_versioned(session, expected, "child safeguards")
    after = missing_safeguards(case, row)
    record_event(session, case, kind="safeguards.updated", now=now, actor=actor,
                 object_type="child_safeguards", object_id=None, detail={"fields": changed, "missing": after,
                                         "complete": case.child_at_intake and not after and bool(before)})
    record(session, actor=actor, action="update", object_type="child_safeguards", object_id=None,
           case_id=case.id, now=now, detail={"fields": changed})
    return present_safeguards(case, row)
