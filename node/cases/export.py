"""The whole of a case in one document (``GET /cases/{id}/export``): for a subject access request or for
the organisation's own archive. Exporting needs ``case.export`` and is audited as an export."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import orm

from node.audit import record
from node.auth import Actor
from node.config import Stage

from .access import case_for
from .consent import case_consents, present_safeguards
from .models import Case, CasePlan, ChildSafeguards
from .progress import interventions, notes
from .sections import intake_sections, present_plan
from .services import household
from .stages import case_stages, present, titles_of
from .timeline import case_events


def export_case(session: orm.Session, actor: Actor, case_id: str, stages: Sequence[Stage],
                now: dt.datetime) -> dict[str, Any]:
    """Everything recorded on the case.

    Raises:
        Forbidden: the role may not export cases.
        NotFound: no such case visible to the actor.
    """
    case = case_for(session, actor, case_id, "case.export")
    document = case_document(session, case, stages, now)
    record(session, actor=actor, action="export", object_type="case", object_id=case.id, case_id=case.id,
           now=now, detail={"sections": sorted(k for k in document if k != "exported_at")})
    return document


def case_document(session: orm.Session, case: Case, stages: Sequence[Stage], now: dt.datetime) -> dict[str, Any]:
    """Everything recorded on a case, as one document (no access check, no audit: the caller's)."""
    titles = titles_of(stages)
    return {
        "exported_at": now,
        "case": case,
        "household": household(session, case.id),
        "intake": intake_sections(session, case.id),
        "plan": present_plan(session.get(CasePlan, case.id)),
        "stages": [present(s, titles) for s in case_stages(session, case.id)],
        "child_safeguards": present_safeguards(case, session.get(ChildSafeguards, case.id)),
        "consents": case_consents(session, case, now.date()),
        "interventions": interventions(session, case.id),
        "progress_notes": notes(session, case.id),
        "timeline": case_events(session, case.id),
    }
