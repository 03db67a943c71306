"""Staff accounts and personal API tokens.

Passwords are hashed with argon2id (argon2-cffi). An API token is ``ccm_<id>_<secret>``: the id finds the row,
the secret is compared in constant time against its stored SHA-256 (a token is 256 bits of randomness, so a
fast hash is enough; argon2 is for human passwords). Tokens expire and can be revoked.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import orm
from sqlalchemy.orm import Mapped, mapped_column

from .at_rest.types import EncryptedText
from .db import Base, UTCDateTime

ROLES = ("admin", "counsellor", "adviser", "coordinator")
USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,62}$")
MIN_PASSWORD_LENGTH = 12
TOKEN_PREFIX = "ccm_"  # noqa: S105 - a prefix, not a secret

_hasher = PasswordHasher()


class AccountError(Exception):
    """A staff-account operation was refused; the message says why (one line, no secrets)."""


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(sa.String(64), unique=True)
    display_name: Mapped[str] = mapped_column(sa.String(200))
    role: Mapped[str] = mapped_column(sa.String(20))
    team: Mapped[str | None] = mapped_column(sa.String(64))
    language: Mapped[str | None] = mapped_column(sa.String(16))
    password_hash: Mapped[str | None] = mapped_column(sa.String(200))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: base32 TOTP secret once the user has enrolled an authenticator app (None: no second factor); encrypted at
    #: rest with the data key (node/at_rest, migration 0014)
    totp_secret: Mapped[str | None] = mapped_column(EncryptedText("users.totp_secret", 64))
    #: the last TOTP time step accepted: a code is never accepted twice
    totp_last_step: Mapped[int | None] = mapped_column(sa.BigInteger)
    #: the user must enrol TOTP before using the web interface (always so for admins)
    totp_required: Mapped[bool] = mapped_column(default=False)
    #: where notification e-mails go (None: none are sent), and whether the user wants them (node.notifications)
    email: Mapped[str | None] = mapped_column(sa.String(254))
    notify_email: Mapped[bool] = mapped_column(default=True, server_default=sa.true())


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    secret_hash: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    user: Mapped[User] = orm.relationship()


def create_user(session: orm.Session, *, username: str, role: str, now: datetime, display_name: str | None = None,
                team: str | None = None, password: str | None = None, language: str | None = None) -> User:
    """Add a staff account.

    Raises:
        AccountError: bad username or role, taken username, or a password shorter than 12 characters.
    """
    if not USERNAME_RE.fullmatch(username):
        raise AccountError(f"invalid username {username!r}: use 2-63 of a-z 0-9 . _ -, starting with a letter or digit")
    if role not in ROLES:
        raise AccountError(f"invalid role {role!r}: choose one of {', '.join(ROLES)}")
    if session.scalar(sa.select(User.id).where(User.username == username)) is not None:
        raise AccountError(f"user {username!r} already exists")
    user = User(username=username, display_name=display_name or username, role=role, team=team,
                language=language, created_at=now, active=True)
    if password is not None:
        set_password(user, password)
    session.add(user)
    session.flush()
    return user


def set_password(user: User, password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"password too short: at least {MIN_PASSWORD_LENGTH} characters")
    user.password_hash = _hasher.hash(password)


def check_password(user: User, password: str) -> bool:
    """True when ``password`` matches; rehashes transparently when argon2 parameters changed."""
    if not user.password_hash or not user.active:
        _hasher.hash(password)  # spend the same time whether or not the account exists
        return False
    try:
        _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    return True


def find_user(session: orm.Session, username: str) -> User:
    user = session.scalar(sa.select(User).where(User.username == username))
    if user is None:
        raise AccountError(f"no such user {username!r}")
    return user


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def create_token(session: orm.Session, user: User, *, now: datetime, days: int, name: str = "api") -> str:
    """Issue a personal API token; the plain token is returned once and never stored.

    Raises:
        AccountError: the account is disabled, or ``days`` is outside 1..366.
    """
    if not user.active:
        raise AccountError(f"user {user.username!r} is disabled")
    if not 1 <= days <= 366:
        raise AccountError("token lifetime must be 1 to 366 days")
    secret = secrets.token_urlsafe(32)
    token = ApiToken(user_id=user.id, name=name[:100], secret_hash=_digest(secret), created_at=now,
                     expires_at=now + timedelta(days=days))
    session.add(token)
    session.flush()
    return f"{TOKEN_PREFIX}{token.id}_{secret}"


#: ``last_used_at`` is written at most this often per token: a request does not pay a write for it.
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class TokenUse:
    """An authenticated token: who its user is, and whether its ``last_used_at`` is due to be written."""

    user_id: int
    username: str
    role: str
    team: str | None
    token_id: int
    stale: bool


def authenticate_token(session: orm.Session, presented: str, now: datetime) -> User | None:
    """The active user a presented bearer token belongs to, or None (malformed, unknown, expired, revoked).

    Records the use (``last_used_at``) on ``session``, whatever its age; see :func:`check_token` for the
    read-only check a request makes.
    """
    use = check_token(session, presented, now)
    if use is None:
        return None
    mark_used(session, use.token_id, now)
    return session.get(User, use.user_id)


def mark_used(session: orm.Session, token_id: int, now: datetime) -> None:
    """Set a token's ``last_used_at`` (one UPDATE, in the caller's transaction)."""
    table = cast(sa.Table, ApiToken.__table__)
    session.execute(sa.update(table).where(table.c.id == token_id).values(last_used_at=now))


#: The columns a request's token check reads, of the token and its user, in one query built once (columns, not
#: entities: every API request runs it, and loading two mapped objects cost more than the query).
_TOKEN_AND_USER = (sa.select(ApiToken.secret_hash, ApiToken.expires_at, ApiToken.revoked_at, ApiToken.last_used_at,
                             User.id, User.username, User.role, User.team, User.active)
                   .join(User, User.id == ApiToken.user_id)
                   .where(ApiToken.id == sa.bindparam("token_id")))


def check_token(session: orm.Session, presented: str, now: datetime) -> TokenUse | None:
    """Like :func:`authenticate_token`, without writing: the token's user and whether its ``last_used_at``
    is older than :data:`LAST_USED_RESOLUTION` (so the caller writes it at most once a minute).
    """
    if not presented.startswith(TOKEN_PREFIX):
        return None
    token_id, sep, secret = presented[len(TOKEN_PREFIX):].partition("_")
    if not sep or not token_id.isdigit() or len(token_id) > 12 or not secret or len(secret) > 100:
        return None
    try:
        digest = _digest(secret)
    except UnicodeEncodeError:
        return None
    row = session.execute(_TOKEN_AND_USER, {"token_id": int(token_id)}).first()  # one query for both
    if row is None or not hmac.compare_digest(row.secret_hash, digest):
        return None
    _hash, expires_at, revoked_at, last_used_at, user_id, username, role, team, active = row
    if revoked_at is not None or expires_at <= now or not active:
        return None
    stale = last_used_at is None or now - last_used_at >= LAST_USED_RESOLUTION
    return TokenUse(user_id, username, role, team, int(token_id), stale)


def revoke_token(session: orm.Session, token_id: int, now: datetime) -> ApiToken:
    token = session.get(ApiToken, token_id) if 0 < token_id < 2**63 else None
    if token is None:
        raise AccountError(f"no such token {token_id}")
    if token.revoked_at is None:
        token.revoked_at = now
    return token


def list_tokens(session: orm.Session, user: User) -> list[ApiToken]:
    return list(session.scalars(sa.select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.id)))
