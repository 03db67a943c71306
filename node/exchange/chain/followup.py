"""The node admin's follow-up of erasures and retention (``ccm-node erasures``, ``ccm-node retention run`` and the
admin's web page call these).

- :func:`unconfirmed_erasures`: the erasure requests partners have not confirmed, oldest first, each with its
  case reference, partner and whether it is overdue (not confirmed within ``erasure_confirm_hours``); overdue
  ones are flagged on first listing (``disclosures.flag_overdue``, audited). No personal data: ids, references,
  partner ids and times.
- :func:`run_retention_recorded`: :func:`~node.exchange.chain.retention.run_retention`, and the run itself
  written to the audit log (its counts), so the admin can see the last runs.
- :func:`retention_runs`: the last runs as the audit log tells them: runs recorded as such, and the worker's
  erasures (``delete`` of a ``handover`` with cause ``retention``) grouped by the run's time.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy import orm

from node.audit import AuditEntry, record
from node.auth import Actor
from node.cases.models import Case
from node.exchange.chain.disclosures import flag_overdue, is_overdue, open_requests
from node.exchange.chain.retention import RetentionRun, run_retention
from node.exchange.models import Partner
from protocol import NodeKeys

RUN_OBJECT = "retention_run"


@dataclass(frozen=True)
class ErasureRow:
    id: str
    requested_at: dt.datetime | None
    holder: str
    holder_name: str | None
    partner_node: str
    cause: str
    case_id: str | None
    case_reference: str | None
    overdue: bool
    sent: bool
    flagged_at: dt.datetime | None


@dataclass(frozen=True)
class ErasureFollowUp:
    rows: list[ErasureRow]
    newly_flagged: int


def unconfirmed_erasures(session: orm.Session, now: dt.datetime, confirm_within: dt.timedelta, *,
                         overdue_only: bool = False) -> ErasureFollowUp:
    """The open erasure requests (flushes the flags; the caller commits)."""
    newly = flag_overdue(session, now, confirm_within)
    requests = open_requests(session, now, confirm_within, overdue_only=overdue_only)
    case_ids = {r.case_id for r in requests if r.case_id}
    references: dict[str, str] = {}
    if case_ids:
        references = {row.id: row.reference for row in session.execute(
            sa.select(Case.id, Case.reference).where(Case.id.in_(case_ids)))}
    names = {row.node_id: row.name for row in session.execute(sa.select(Partner.node_id, Partner.name))}
    rows = [ErasureRow(r.id, r.requested_at, r.holder, names.get(r.holder), r.partner_node, r.cause, r.case_id,
                       references.get(r.case_id) if r.case_id else None, is_overdue(r, now, confirm_within),
                       r.message_id is not None, r.flagged_at)
            for r in requests]
    return ErasureFollowUp(rows, len(newly))


def run_retention_recorded(sessionmaker: orm.sessionmaker[orm.Session], actor: Actor | None, *, keys: NodeKeys,
                           now: dt.datetime, limit: int = 500) -> RetentionRun:
    """Run retention now and audit the run (``delete`` of a ``retention_run``, with its counts)."""
    run = run_retention(sessionmaker, keys=keys, now=now, limit=limit)
    with sessionmaker() as session:
        record(session, actor=actor, action="delete", object_type=RUN_OBJECT, object_id=None, case_id=None,
               now=now, detail={"erased": len(run.erased), "not_told": len(run.not_told),
                                **({} if actor is not None else {"via": "cli"})})
        session.commit()
    return run


@dataclass(frozen=True)
class RetentionRunRow:
    at: dt.datetime
    erased: int
    not_told: int | None
    by: str | None


def retention_runs(session: orm.Session, limit: int = 10) -> list[RetentionRunRow]:
    """The last retention runs, newest first (from the audit log; reads only)."""
    runs: dict[dt.datetime, RetentionRunRow] = {}
    for at, username, detail in session.execute(
            sa.select(AuditEntry.at, AuditEntry.actor_username, AuditEntry.detail)
            .where(AuditEntry.action == "delete", AuditEntry.object_type == RUN_OBJECT)
            .order_by(AuditEntry.seq.desc()).limit(limit)):
        counts = json.loads(detail or "{}")
        runs[at] = RetentionRunRow(at, int(counts.get("erased", 0)), int(counts.get("not_told", 0)),
                                   username or ("cli" if counts.get("via") == "cli" else None))
    for at, erased in session.execute(
            sa.select(AuditEntry.at, sa.func.count())
            .where(AuditEntry.action == "delete", AuditEntry.object_type == "handover",
                   AuditEntry.detail.like('%"cause":"retention"%'))
            .group_by(AuditEntry.at).order_by(AuditEntry.at.desc()).limit(limit)):
        if at not in runs:
            runs[at] = RetentionRunRow(at, int(erased), None, None)
    return sorted(runs.values(), key=lambda run: run.at, reverse=True)[:limit]
