"""The node admin's view of the audit log: entries newest first, filtered and paged, and a recorded check of the
hash chain.

The log holds no personal data (``node.audit``: ids, actions, field names, counts); the list shows only the
entry's own columns and never joins to a case. A case is filtered by its id: the caller maps a reference typed
by the admin to the id (``node.cases.access.find_case``) without showing the case.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy import orm

from .audit import AuditEntry, AuditProblem, record, verify_chain
from .auth import Actor

PER_PAGE = 50
MAX_PAGE = 100_000


@dataclass(frozen=True)
class AuditFilters:
    """What to look for; None means any."""

    actor: str | None = None
    action: str | None = None
    case_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True)
class AuditRow:
    seq: int
    at: datetime
    actor_username: str | None
    actor_role: str | None
    action: str
    object_type: str
    object_id: str | None
    remote_addr: str | None
    about_case: bool


@dataclass(frozen=True)
class AuditPage:
    rows: list[AuditRow]
    page: int
    more: bool


def search_audit(session: orm.Session, filters: AuditFilters, page: int = 1,
                 per_page: int = PER_PAGE) -> AuditPage:
    """One page of matching entries, newest first (``more``: a next page exists). Reads only."""
    page = min(max(page, 1), MAX_PAGE)
    query = sa.select(AuditEntry.seq, AuditEntry.at, AuditEntry.actor_username, AuditEntry.actor_role,
                      AuditEntry.action, AuditEntry.object_type, AuditEntry.object_id, AuditEntry.remote_addr,
                      AuditEntry.case_id.is_not(None))
    if filters.actor:
        query = query.where(AuditEntry.actor_username == filters.actor)
    if filters.action:
        query = query.where(AuditEntry.action == filters.action)
    if filters.case_id:
        query = query.where(AuditEntry.case_id == filters.case_id)
    if filters.since:
        query = query.where(AuditEntry.at >= filters.since)
    if filters.until:
        query = query.where(AuditEntry.at < filters.until)
    found = session.execute(query.order_by(AuditEntry.seq.desc()).offset((page - 1) * per_page)
                            .limit(per_page + 1)).all()
    rows = [AuditRow(*row) for row in found[:per_page]]
    return AuditPage(rows, page, len(found) > per_page)


def verify_recorded(session: orm.Session, actor: Actor | None, now: datetime) -> tuple[int, list[AuditProblem]]:
    """:func:`node.audit.verify_chain`, and the check itself written to the log (in the caller's transaction).

    Returns:
        (entries checked, problems found; empty when the chain is intact).
    """
    count, problems = verify_chain(session)
    record(session, actor=actor, action="verify", object_type="audit_log", object_id=None, case_id=None, now=now,
           detail={"entries": count, "problems": len(problems),
                   "first_problem": problems[0].seq if problems else None})
    return count, problems
