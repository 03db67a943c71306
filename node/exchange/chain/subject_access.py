"""The subject-access export: everything this node holds about a returnee's case, with the disclosure record
(``GET /cases/{id}/export``, ``ccm-node case export``).

It is the case document of ``node.cases.export`` (returnee, household, intake, plan, stages, safeguards,
consents, interventions, notes, timeline) plus what the exchange knows: every disclosure of the case (what went
to whom, when, under which consent, erasure confirmed or not), where the case came from if it was received
(the sending node, when, under which consent, the categories received), and the consent withdrawals recorded.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm

from node.audit import record
from node.auth import Actor
from node.cases.access import find_case
from node.cases.export import case_document, export_case
from node.config import Stage
from node.errors import NotFound
from node.exchange.chain.disclosures import disclosures_of
from node.exchange.chain.models import ConsentWithdrawal
from node.exchange.chain.withdrawal import present_withdrawal
from node.exchange.handovers.models import Handover


def received_from(session: orm.Session, case_id: str) -> list[dict[str, Any]]:
    """Where a received case came from: one item per incoming handover (or forward) it was opened from."""
    rows = session.scalars(sa.select(Handover).where(Handover.direction == "incoming", Handover.case_id == case_id)
                           .order_by(Handover.created_at))
    return [{"handover_id": h.id, "message_id": h.message_id, "kind": h.kind, "sender": h.partner_node,
             "origin": h.origin_node or h.partner_node, "received_at": h.created_at, "accepted_at": h.decided_at,
             "consent_id": h.consent_id, "purpose": h.purpose, "categories": h.categories,
             "retain_until": h.retain_until} for h in rows]


def subject_export(session: orm.Session, actor: Actor | None, case_id: str, stages: Sequence[Stage],
                   now: dt.datetime, confirm_within: dt.timedelta) -> dict[str, Any]:
    """The whole case with its disclosure record (audited as an export).

    Args:
        actor: the member of staff asking; None for the node's administrator at the console
            (``ccm-node case export``), who holds the database anyway: no role check then.
    Raises:
        Forbidden, NotFound: the actor may not export the case; NotFound: no such case (console).
    """
    if actor is not None:
        document = export_case(session, actor, case_id, stages, now)
        case = document["case"]
    else:
        case = find_case(session, case_id)
        if case is None:
            raise NotFound(f"No case {case_id} on this node.")
        document = case_document(session, case, stages, now)
        record(session, actor=None, action="export", object_type="case", object_id=case.id, case_id=case.id,
               now=now, detail={"via": "cli", "subject_access": True})
    withdrawals = session.scalars(sa.select(ConsentWithdrawal).where(ConsentWithdrawal.case_id == case.id)
                                  .order_by(ConsentWithdrawal.recorded_at))
    document["disclosures"] = disclosures_of(session, case.id, now, confirm_within)
    document["received_from"] = received_from(session, case.id)
    document["withdrawals"] = [present_withdrawal(w) for w in withdrawals]
    return document
