"""Which cases a member of staff may see: the ones assigned to them or to their team. The one place it is
decided. A case outside that is answered exactly like a case that does not exist (404), so that ids cannot
be probed.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import orm

from node.auth import Actor, require
from node.db import Base, by_key
from node.errors import NotFound

from .models import Case

R = TypeVar("R", bound=Base)


def visibility(user: Any, team: Any | None) -> sa.ColumnElement[bool]:
    """The rule: the cases assigned to ``user`` or to ``team`` (values, or bind parameters for a statement
    built once; ``team`` None: the actor has no team)."""
    condition: sa.ColumnElement[bool] = Case.assigned_user_id == user
    if team is not None:
        condition = sa.or_(condition, Case.team == team)
    return condition


def visible_cases_filter(actor: Actor) -> sa.ColumnElement[bool]:
    """The SQL condition selecting the cases ``actor`` may see."""
    return visibility(actor.user_id, actor.team)


def visibility_params(actor: Actor) -> dict[str, Any]:
    """The values of the bind parameters ``visible_user`` and ``visible_team`` of a statement built once
    with :func:`visibility` (``visibility(VISIBLE_USER, VISIBLE_TEAM if actor.team else None)``)."""
    return {"visible_user": actor.user_id, "visible_team": actor.team}


VISIBLE_USER: sa.BindParameter[Any] = sa.bindparam("visible_user")
VISIBLE_TEAM: sa.BindParameter[Any] = sa.bindparam("visible_team")
#: A visible case by id, built once for actors without a team (False) and with one (True).
_VISIBLE_CASE = {with_team: sa.select(Case).where(Case.id == sa.bindparam("case_id"),
                                                  visibility(VISIBLE_USER, VISIBLE_TEAM if with_team else None))
                 for with_team in (False, True)}


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
    case: Case = visible_case_row(session, actor, case_id, _VISIBLE_CASE)[0]
    return case


def visible_case_row(session: orm.Session, actor: Actor, case_id: str,
                     statements: Mapping[bool, sa.Executable], **params: Any) -> sa.Row[*tuple[Any, ...]]:
    """The row of a statement built once that reads a case, if ``actor`` may see it, with other rows of it in
    the same query (outer joins): ``statements[actor.team is not None]`` selects where ``Case.id ==
    :case_id`` and :func:`visibility` ``(VISIBLE_USER, VISIBLE_TEAM if with_team else None)``.

    Raises:
        NotFound: no such case, or not visible to the actor.
    """
    if not _well_formed(case_id):
        raise NotFound("No such case.")
    row = session.execute(statements[actor.team is not None],
                          {"case_id": case_id, **visibility_params(actor), **params}).first()
    if row is None:
        raise NotFound("No such case.")
    return row


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
    record = by_key(session, model, record_id)
    return record if record is not None and getattr(record, "case_id", None) == case.id else None
