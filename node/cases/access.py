"""Which cases a member of staff may see: the ones assigned to them or to their team. The one place it is
decided. A case outside that is answered exactly like a case that does not exist (404), so that ids cannot
be probed.
"""

from __future__ import annotations

import re
import uuid
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy import orm

from node.auth import Actor, require
from node.errors import NotFound

from .models import Case

R = TypeVar("R")


def visible_cases_filter(actor: Actor) -> sa.ColumnElement[bool]:
    """The SQL condition selecting the cases ``actor`` may see."""
    condition: sa.ColumnElement[bool] = Case.assigned_user_id == actor.user_id
    if actor.team is not None:
        condition = sa.or_(condition, Case.team == actor.team)
    return condition


#: What a record's id can look like: this node's UUIDs, and the protocol's opaque ids of received records.
_RECORD_ID_RE = re.compile(r"[A-Za-z0-9._:-]{1,36}")


def is_record_id(value: str) -> bool:
    """Whether ``value`` can be a record's id at all (anything else, e.g. with a NUL that PostgreSQL refuses in
    a query, names no record and is not looked up)."""
    return _RECORD_ID_RE.fullmatch(value) is not None


def _well_formed(case_id: str) -> bool:
    try:
        return str(uuid.UUID(case_id)) == case_id
    except (ValueError, TypeError, AttributeError):
        return False


def find_case(session: orm.Session, ref: str) -> Case | None:
    """A case by its id or its reference (e.g. ``GI-2026-0042``), without an access check: for the node's
    administrator at the console, who holds the database anyway."""
    case = session.get(Case, ref) if is_record_id(ref) else None
    return case or session.scalar(sa.select(Case).where(Case.reference == ref.strip().upper()))


def get_visible_case(session: orm.Session, actor: Actor, case_id: str) -> Case:
    """The case, if ``actor`` may see it.

    Raises:
        NotFound: no such case, or not visible to the actor.
    """
    if not _well_formed(case_id):
        raise NotFound("No such case.")
    case = session.scalar(sa.select(Case).where(Case.id == case_id, visible_cases_filter(actor)))
    if case is None:
        raise NotFound("No such case.")
    return case


def case_for(session: orm.Session, actor: Actor, case_id: str, permission: str) -> Case:
    """Check the role matrix for ``permission``, then visibility.

    Raises:
        Forbidden: the actor's role does not allow ``permission`` (403).
        NotFound: the case does not exist or is not visible (404).
    """
    require(actor, permission)
    return get_visible_case(session, actor, case_id)


def case_record(session: orm.Session, model: type[R], record_id: str, case: Case) -> R | None:
    """A record of ``case`` (a consent, an intervention, a household member) by its id, or None when the id
    names no record of this case."""
    if not is_record_id(record_id):
        return None
    record = session.get(model, record_id)
    return record if record is not None and getattr(record, "case_id", None) == case.id else None
