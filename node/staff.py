"""The node admin's changes to staff accounts: add, change role and team, disable and enable, reset a password,
require TOTP, revoke a user's API token; and the staff list. The web pages (``node.web.admin_staff``) and
``ccm-node user ...`` call these.

Every change is audited (object ids and field names only). Two rules keep the node manageable: an admin cannot
disable their own account, and the last active admin can neither be disabled nor given another role.
A refusal is a :class:`StaffError` naming the form field it is about and a stable ``code``.

Ending a user's browser sessions (after a disable or a password reset) is the web layer's part
(``node.web.login.end_user_sessions``, in the same transaction); a disabled account's sessions are refused
anyway when next presented.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm

from .accounts import (
    MIN_PASSWORD_LENGTH,
    ROLES,
    USERNAME_RE,
    AccountError,
    ApiToken,
    User,
    create_user,
    revoke_token,
    set_password,
)
from .audit import AuditEntry, record
from .auth import Actor

#: a generated password: 16 characters of base64url (96 bits)
GENERATED_BYTES = 12


class StaffError(AccountError):
    """A staff change was refused: ``field`` is the form field (or ``_form``), ``code`` says why."""

    def __init__(self, field: str, code: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.code = code


@dataclass(frozen=True)
class StaffRow:
    """One line of the staff list (no password hash, no TOTP secret)."""

    id: int
    username: str
    display_name: str
    role: str
    team: str | None
    active: bool
    totp_enrolled: bool
    totp_required: bool
    last_login: datetime | None


def list_staff(session: orm.Session) -> list[StaffRow]:
    """Every account, by username, with its last sign-in as the audit log records it (None if never)."""
    logins = {row.object_id: row.last for row in session.execute(
        sa.select(AuditEntry.object_id, sa.func.max(AuditEntry.at).label("last"))
        .where(AuditEntry.action == "login", AuditEntry.object_type == "user")
        .group_by(AuditEntry.object_id))}
    return [StaffRow(u.id, u.username, u.display_name, u.role, u.team, u.active, u.totp_secret is not None,
                     u.totp_required or u.role == "admin", logins.get(str(u.id)))
            for u in session.scalars(sa.select(User).order_by(User.username))]


def get_user(session: orm.Session, user_id: int) -> User:
    user = session.get(User, user_id) if 0 < user_id < 2**31 else None
    if user is None:
        raise StaffError("_form", "no_such_user", f"no such user {user_id}")
    return user


def generated_password() -> str:
    return secrets.token_urlsafe(GENERATED_BYTES)


def _audit(session: orm.Session, actor: Actor | None, action: str, object_type: str, object_id: str,
           now: datetime, detail: dict[str, Any]) -> None:
    record(session, actor=actor, action=action, object_type=object_type, object_id=object_id, case_id=None,
           now=now, detail=detail if actor is not None else {"via": "cli", **detail})


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise StaffError("password", "password_short",
                         f"password too short: at least {MIN_PASSWORD_LENGTH} characters")


def add_staff(session: orm.Session, actor: Actor | None, *, username: str, role: str, now: datetime,
              display_name: str | None = None, team: str | None = None, password: str | None = None,
              generate: bool = False, totp_required: bool = False) -> tuple[User, str | None]:
    """Add a staff account (audited).

    Args:
        password: the initial password; with ``generate`` and no password one is made (and returned once).
    Returns:
        The user, and the generated password (None when none was generated).
    Raises:
        StaffError: username malformed or taken, unknown role, password too short.
    """
    if not USERNAME_RE.fullmatch(username):
        raise StaffError("username", "username_invalid", f"invalid username {username!r}: use 2-63 of a-z 0-9 . _ -,"
                         " starting with a letter or digit")
    if session.scalar(sa.select(User.id).where(User.username == username)) is not None:
        raise StaffError("username", "username_taken", f"user {username!r} already exists")
    if role not in ROLES:
        raise StaffError("role", "role_unknown", f"invalid role {role!r}: choose one of {', '.join(ROLES)}")
    made = None
    if password is None and generate:
        password = made = generated_password()
    if password is not None:
        _check_password(password)
    user = create_user(session, username=username, role=role, now=now, display_name=display_name, team=team,
                       password=password)
    user.totp_required = totp_required
    _audit(session, actor, "create", "user", str(user.id), now,
           {"role": role, "totp_required": totp_required} if actor is not None else {})
    return user, made


def _active_admins(session: orm.Session) -> list[int]:
    """Ids of the active admins, locked for the transaction (PostgreSQL) so two admins cannot race."""
    return list(session.scalars(sa.select(User.id).where(User.role == "admin", User.active.is_(True))
                                .order_by(User.id).with_for_update()))


def _refuse_losing_last_admin(session: orm.Session, user: User, field: str) -> None:
    if user.role == "admin" and user.active and _active_admins(session) == [user.id]:
        raise StaffError(field, "last_admin", "the node's last active admin cannot be removed")


def change_role_team(session: orm.Session, actor: Actor, user_id: int, *, role: str, team: str | None,
                     now: datetime) -> User:
    """Give a user another role and/or team (audited with the fields changed).

    Raises:
        StaffError: unknown role, or the last active admin would lose the role.
    """
    user = get_user(session, user_id)
    if role not in ROLES:
        raise StaffError("role", "role_unknown", f"invalid role {role!r}: choose one of {', '.join(ROLES)}")
    if team is not None and len(team) > 64:
        raise StaffError("team", "team_long", "team name too long: at most 64 characters")
    if role != user.role:
        _refuse_losing_last_admin(session, user, "role")
    changed = [name for name, old, new in (("role", user.role, role), ("team", user.team, team)) if old != new]
    user.role, user.team = role, team
    if changed:
        _audit(session, actor, "update", "user", str(user.id), now, {"fields": changed})
    return user


def set_active(session: orm.Session, actor: Actor | None, user_id: int, active: bool, now: datetime) -> User:
    """Disable or enable an account (its API tokens and sessions stop working while disabled; audited).

    Raises:
        StaffError: the admin's own account, or the last active admin.
    """
    user = get_user(session, user_id)
    if not active:
        if actor is not None and actor.user_id == user.id:
            raise StaffError("_form", "self_disable", "you cannot disable your own account")
        _refuse_losing_last_admin(session, user, "_form")
    if user.active != active:
        user.active = active
        _audit(session, actor, "enable" if active else "disable", "user", str(user.id), now, {"active": active})
    return user


def reset_password(session: orm.Session, actor: Actor, user_id: int, password: str | None,
                   now: datetime) -> str | None:
    """Set a new password (typed by the admin, or generated when ``password`` is None; audited).

    Returns:
        The generated password, to be shown once, or None when the admin typed one.
    Raises:
        StaffError: the typed password is too short.
    """
    user = get_user(session, user_id)
    made = None if password is not None else generated_password()
    new = password if password is not None else made
    assert new is not None
    _check_password(new)
    set_password(user, new)
    _audit(session, actor, "update", "user", str(user.id), now, {"fields": ["password"]})
    return made


def require_totp(session: orm.Session, actor: Actor, user_id: int, required: bool, now: datetime) -> User:
    """Require (or stop requiring) that the user sets up TOTP before using the web interface (audited)."""
    user = get_user(session, user_id)
    if user.totp_required != required:
        user.totp_required = required
        _audit(session, actor, "update", "user", str(user.id), now, {"totp_required": required})
    return user


def user_tokens(session: orm.Session, user_id: int) -> tuple[User, list[ApiToken]]:
    """A user and their API tokens, newest first (the secret hashes stay in the database)."""
    user = get_user(session, user_id)
    tokens = list(session.scalars(sa.select(ApiToken).where(ApiToken.user_id == user.id)
                                  .order_by(ApiToken.id.desc())))
    return user, tokens


def revoke_user_token(session: orm.Session, actor: Actor | None, token_id: int, now: datetime,
                      user_id: int | None = None) -> ApiToken:
    """Revoke an API token (of ``user_id``, when given; audited).

    Raises:
        StaffError: no such token (of that user).
    """
    found = session.get(ApiToken, token_id) if 0 < token_id < 2**63 else None
    if found is None or (user_id is not None and found.user_id != user_id):
        raise StaffError("_form", "no_such_token", f"no such token {token_id}")
    token = revoke_token(session, token_id, now)
    _audit(session, actor, "revoke" if actor is not None else "update", "api_token", str(token.id), now,
           {"user_id": token.user_id} if actor is not None else {"revoked": True})
    return token
