"""Who a case can be assigned to: the active counsellors and advisers of the node (the same rule
:func:`node.cases.services.update_case` checks), for the assignment choice of the case form."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy import orm

from node.accounts import User
from node.auth import Actor, require

ASSIGNABLE_ROLES = ("counsellor", "adviser")


@dataclass(frozen=True)
class Assignee:
    user_id: int
    name: str
    role: str
    team: str | None


def assignable_users(session: orm.Session, actor: Actor) -> list[Assignee]:
    """The active counsellors and advisers, by name (the actor's own team first).

    Raises:
        Forbidden: the role may not change cases.
    """
    require(actor, "case.update")
    rows = session.execute(sa.select(User.id, User.display_name, User.username, User.role, User.team)
                           .where(User.active.is_(True), User.role.in_(ASSIGNABLE_ROLES)))
    people = [Assignee(row.id, row.display_name or row.username, row.role, row.team) for row in rows]
    return sorted(people, key=lambda a: (a.team != actor.team, a.name.casefold(), a.user_id))
