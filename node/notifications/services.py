"""A user's own notifications: the unread count (the menu's badge), the list, marking read, and the e-mail
preferences. Every function works on the signed-in user's own rows only; nothing here commits."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm

from node.accounts import User
from node.audit import record
from node.auth import Actor
from node.errors import NotFound, ValidationFailed
from node.exchange.models import Partner

from .models import Notification

#: The most notifications the list shows (newest first).
LIST_LIMIT = 100
#: The largest id the table's integer key holds (a larger one in an address names nothing).
MAX_ID = 2**31 - 1
#: A plausible address (the SMTP server decides the rest); no spaces, one @, a dot in the domain.
EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")


def unread_count(session: orm.Session, user_id: int) -> int:
    """How many unread notifications the user has: one indexed COUNT (``ix_notifications_user_read``)."""
    return session.scalar(sa.select(sa.func.count()).select_from(Notification).where(
        Notification.user_id == user_id, Notification.read_at.is_(None))) or 0


def list_notifications(session: orm.Session, actor: Actor, *, limit: int = LIST_LIMIT) -> list[dict[str, Any]]:
    """The actor's notifications, unread first, newest first within each, with the partner's name."""
    rows = session.scalars(sa.select(Notification).where(Notification.user_id == actor.user_id).order_by(
        Notification.read_at.is_not(None), Notification.created_at.desc(), Notification.id.desc()).limit(limit))
    items = list(rows)
    nodes = {n.partner_node for n in items if n.partner_node}
    names = {r.node_id: r.name for r in session.execute(
        sa.select(Partner.node_id, Partner.name).where(Partner.node_id.in_(nodes)))} if nodes else {}
    return [{"id": n.id, "kind": n.kind, "case_id": n.case_id, "case_reference": n.case_reference,
             "partner_node": n.partner_node, "partner_name": names.get(n.partner_node or ""),
             "created_at": n.created_at, "read": n.read_at is not None} for n in items]


def mark_read(session: orm.Session, actor: Actor, notification_id: int, now: dt.datetime) -> None:
    """Mark one of the actor's notifications read.

    Raises:
        NotFound: no such notification of the actor's (another user's is answered the same way).
    """
    if not 0 < notification_id <= MAX_ID:
        raise NotFound("No such notification.")
    row = session.scalar(sa.select(Notification).where(Notification.id == notification_id,
                                                       Notification.user_id == actor.user_id))
    if row is None:
        raise NotFound("No such notification.")
    if row.read_at is None:
        row.read_at = now
    session.flush()


def mark_all_read(session: orm.Session, actor: Actor, now: dt.datetime) -> int:
    """Mark every unread notification of the actor's read; returns how many."""
    result = session.execute(sa.update(Notification).where(
        Notification.user_id == actor.user_id, Notification.read_at.is_(None)).values(read_at=now)
        .execution_options(synchronize_session=False))
    return int(getattr(result, "rowcount", 0) or 0)


def email_preferences(session: orm.Session, actor: Actor) -> dict[str, Any]:
    user = session.get(User, actor.user_id)
    if user is None:
        raise NotFound("No such user.")
    return {"email": user.email or "", "notify_email": user.notify_email}


def set_email_preferences(session: orm.Session, actor: Actor, data: dict[str, Any], now: dt.datetime) -> None:
    """Set the actor's notification e-mail address (empty: none) and whether e-mails are wanted (audited,
    field names only).

    Raises:
        ValidationFailed: the address does not look like one.
    """
    email = str(data.get("email") or "").strip()
    wanted = bool(data.get("notify_email"))
    if email and (len(email) > 254 or not EMAIL_RE.match(email)):
        raise ValidationFailed("Invalid e-mail address.", {"email": ["Enter an e-mail address like name@example.org."]})
    user = session.get(User, actor.user_id)
    if user is None:
        raise NotFound("No such user.")
    changed = sorted(k for k, v in (("email", email or None), ("notify_email", wanted)) if getattr(user, k) != v)
    user.email, user.notify_email = email or None, wanted
    if changed:
        record(session, actor=actor, action="update", object_type="user", object_id=str(user.id), case_id=None,
               now=now, detail={"fields": changed})
    session.flush()
