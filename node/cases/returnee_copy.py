"""The returnee's own copy of their case: what the counsellor prints for them, in their language.

It holds what concerns the returnee and what they agreed to, not the staff's working notes: their names (both
scripts), the reference, the destination, the plan (return date, milestones, the activities planned with them),
the stages with their status, the organisation and counsellor to contact, and each consent they gave (what,
to whom, why, until when). Intake texts, household members, notes, amounts and the timeline stay out.

It is read with the same unaudited readers as the subject-access export (:mod:`.export`) and audited once, as
an export of the case: a copy of personal data leaves the system on paper.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import orm

from node.accounts import User
from node.audit import record
from node.auth import Actor
from node.config import Stage

from .access import case_for
from .consent import case_consents
from .models import CasePlan
from .progress import interventions
from .sections import present_plan
from .stages import case_stages, present, titles_of

#: what the copy holds (the audit entry names these, never their content)
SECTIONS = ("returnee", "destination", "plan", "activities", "stages", "contact", "consents")


def copy_language(case_languages: Iterable[str] | None, supported: Sequence[str], fallback: str) -> str:
    """The language the copy is printed in unless the counsellor chooses another: the first of the returnee's
    languages the interface speaks, else ``fallback`` (the counsellor's own language).

    Args:
        case_languages: the case's ``languages`` (codes such as ``ar``, ``bs``, ``sv-SE``), in order.
        supported: the interface's languages.
        fallback: used when none of the returnee's languages is supported.
    """
    for code in case_languages or ():
        base = str(code).strip().lower().replace("_", "-").split("-")[0]
        if base in supported:
            return base
    return fallback


def returnee_copy(session: orm.Session, actor: Actor, case_id: str, stages: Sequence[Stage], now: dt.datetime,
                  *, partner_names: Mapping[str, str]) -> dict[str, Any]:
    """The content of the returnee's copy of their case (audited as an export).

    Args:
        stages: the node's configured stages (for their titles).
        partner_names: partner node id -> organisation name (a consent's recipients are shown by name).
    Returns:
        ``case`` (the Case), ``plan`` (end date, milestones), ``activities``, ``stages``, ``counsellor`` (the
        assigned counsellor's display name or None), ``consents`` and ``printed_on``.
    Raises:
        Forbidden: the role may not read cases.
        NotFound: no such case visible to the actor.
    """
    case = case_for(session, actor, case_id, "case.read")
    titles = titles_of(stages)
    document = {
        "case": case,
        "plan": present_plan(session.get(CasePlan, case.id)),
        "activities": [_activity(item) for item in interventions(session, case.id)],
        "stages": [present(stage, titles) for stage in case_stages(session, case.id)],
        "counsellor": _counsellor(session, case.assigned_user_id),
        "consents": [_consent(item, partner_names) for item in case_consents(session, case, now.date())],
        "printed_on": now.date(),
    }
    record(session, actor=actor, action="export", object_type="case", object_id=case.id, case_id=case.id,
           now=now, detail={"document": "returnee_copy", "sections": list(SECTIONS)})
    return document


def _activity(item: Any) -> dict[str, Any]:
    """An intervention as the returnee sees it: what, with whom, when, how far (no amounts, no notes)."""
    return {"kind": item.kind, "provider": item.provider, "status": item.status, "start_date": item.start_date,
            "end_date": item.end_date}


def _counsellor(session: orm.Session, user_id: int | None) -> str | None:
    user = session.get(User, user_id) if user_id is not None else None
    return user.display_name if user is not None and user.display_name else None


def _consent(item: dict[str, Any], partner_names: Mapping[str, str]) -> dict[str, Any]:
    return {"status": item["status"], "categories": list(item["categories"]),
            "recipients": [partner_names.get(node_id, node_id) for node_id in item["recipients"]],
            "purpose": item["purpose"], "valid_until": item["valid_until"], "given_at": item["given_at"],
            "withdrawn_at": item["withdrawn_at"]}
