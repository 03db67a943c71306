"""Signing in to the web interface: passwords, throttling, browser sessions and the second factor (TOTP).

Throttling counts failed logins in a sliding window, per account and per address, in the database (so every
gunicorn worker sees the same count): more than :data:`ACCOUNT_LIMIT` failures for one username, or
:data:`ADDRESS_LIMIT` from one address, in :data:`WINDOW` refuse further tries until the window has passed,
even with the right password. A success clears the account's failures.

A session is a random token in the browser's signed cookie and its SHA-256 in ``web_sessions``; it ends on
sign-out, or when unused for the configured idle minutes. An account with TOTP enrolled (and every admin, who
must enrol) gets a session that allows only the second step until a valid code is given; a code's time step is
remembered and never accepted twice.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import pyotp
import segno
import sqlalchemy as sa
from sqlalchemy import orm

from node.accounts import User, check_password
from node.audit import record
from node.auth import Actor

from .models import LoginFailure, WebSession

WINDOW = timedelta(minutes=15)
ACCOUNT_LIMIT = 5
ADDRESS_LIMIT = 20
#: last_seen_at is written at most this often (a page view does not always pay a write)
SEEN_RESOLUTION = timedelta(seconds=60)
TOTP_ISSUER = "CCM Exchange"


class LoginRefused(Exception):
    """The login was refused. ``throttled`` tells a wrong password from too many tries; ``retry_after`` is in
    seconds. The page says the same thing for an unknown user and a wrong password."""

    def __init__(self, throttled: bool = False, retry_after: int = 0) -> None:
        super().__init__("throttled" if throttled else "invalid")
        self.throttled = throttled
        self.retry_after = retry_after


@dataclass(frozen=True)
class SignedIn:
    """A presented session that is valid: its row and its user."""

    session: WebSession
    user: User

    @property
    def second_factor_due(self) -> bool:
        return self.session.second_factor_due


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


def _retry_after(session: orm.Session, column: sa.ColumnElement[str], value: str, limit: int,
                 now: datetime) -> int:
    since = now - WINDOW
    times = list(session.scalars(sa.select(LoginFailure.at).where(column == value, LoginFailure.at > since)
                                 .order_by(LoginFailure.at.desc()).limit(limit)))
    if len(times) < limit:
        return 0
    return max(1, int((times[-1] + WINDOW - now).total_seconds()) + 1)


def throttled_for(session: orm.Session, username: str, address: str, now: datetime) -> int:
    """Seconds until ``username`` from ``address`` may try again (0: now)."""
    return max(_retry_after(session, LoginFailure.username, username[:64], ACCOUNT_LIMIT, now),
               _retry_after(session, LoginFailure.address, address[:64], ADDRESS_LIMIT, now))


def authenticate(session: orm.Session, username: str, password: str, address: str, now: datetime) -> User:
    """The active user whose password this is.

    Raises:
        LoginRefused: too many recent failures (``throttled``), or unknown user, wrong password or a disabled
            account (one answer for all three). A failure is recorded in the caller's transaction.
    """
    username = username.strip().lower()[:64]
    address = (address or "unknown")[:64]
    wait = throttled_for(session, username, address, now)
    if wait:
        raise LoginRefused(throttled=True, retry_after=wait)
    user = session.scalar(sa.select(User).where(User.username == username))
    if user is None:
        check_password(User(password_hash=None, active=False), password)  # the same time as a real check
    if user is None or not check_password(user, password):
        session.add(LoginFailure(username=username, address=address, at=now))
        session.execute(sa.delete(LoginFailure).where(LoginFailure.at <= now - WINDOW))
        record(session, actor=None, action="login_failed", object_type="user", object_id=None, case_id=None,
               now=now, detail={"address": address})
        raise LoginRefused()
    session.execute(sa.delete(LoginFailure).where(LoginFailure.username == username))
    return user


def needs_second_factor(user: User) -> bool:
    return user.totp_secret is not None


def must_enrol(user: User) -> bool:
    """Whether the user must set up TOTP before anything else (admins always; others when required)."""
    return user.totp_secret is None and (user.role == "admin" or user.totp_required)


def start_session(session: orm.Session, user: User, now: datetime, address: str | None) -> str:
    """Open a browser session for ``user``; returns the token for the cookie (stored only as its hash)."""
    token = secrets.token_urlsafe(32)
    session.add(WebSession(token_hash=_digest(token), user_id=user.id, created_at=now, last_seen_at=now,
                           second_factor_due=needs_second_factor(user)))
    actor = Actor(user.id, user.username, user.role, user.team, address)
    record(session, actor=actor, action="login", object_type="user", object_id=str(user.id), case_id=None,
           now=now, detail={"second_factor_due": needs_second_factor(user)})
    return token


def load_session(session: orm.Session, token: str, now: datetime, idle: timedelta) -> SignedIn | None:
    """The signed-in session behind a cookie's token, or None (unknown, idle too long, user disabled).

    An idle session is deleted; ``last_seen_at`` is refreshed at most once a minute (in the caller's
    transaction: commit it).
    """
    if not token or len(token) > 100:
        return None
    row = session.execute(sa.select(WebSession, User).join(User, User.id == WebSession.user_id)
                          .where(WebSession.token_hash == _digest(token))).first()
    if row is None or not hmac.compare_digest(row.WebSession.token_hash, _digest(token)):
        return None
    web_session, user = row.WebSession, row.User
    if now - web_session.last_seen_at > idle or not user.active:
        session.delete(web_session)
        return None
    if now - web_session.last_seen_at >= SEEN_RESOLUTION:
        web_session.last_seen_at = now
    return SignedIn(web_session, user)


def end_session(session: orm.Session, token: str) -> None:
    session.execute(sa.delete(WebSession).where(WebSession.token_hash == _digest(token)))


def end_user_sessions(session: orm.Session, user_id: int, keep: WebSession | None = None) -> None:
    """End every browser session of a user (after a password change: all but the one making it)."""
    query = sa.delete(WebSession).where(WebSession.user_id == user_id)
    if keep is not None:
        query = query.where(WebSession.id != keep.id)
    session.execute(query)


# -- the second factor ------------------------------------------------------------------------------------

def new_totp_secret() -> str:
    return pyotp.random_base32()


def totp_qr_svg(user: User, secret: str, node_name: str) -> str:
    """The enrolment QR code as inline SVG markup (no image request, no script)."""
    uri = pyotp.TOTP(secret).provisioning_uri(name=f"{user.username} ({node_name})", issuer_name=TOTP_ISSUER)
    svg: str = segno.make(uri, error="m").svg_inline(scale=4, title="", dark="#000", light="#fff")
    return svg


def totp_step(secret: str, code: str, now: datetime) -> int | None:
    """The time step ``code`` is valid for (this one, the one before or after), or None."""
    code = "".join(code.split())
    if not (code.isdigit() and len(code) == 6):
        return None
    totp = pyotp.TOTP(secret)
    step = totp.timecode(now)
    for candidate in (step, step - 1, step + 1):
        if hmac.compare_digest(totp.generate_otp(candidate), code):
            return candidate
    return None


def check_second_factor(user: User, code: str, now: datetime) -> bool:
    """Whether ``code`` is a valid, unused TOTP code of the user; a valid one is marked used."""
    if user.totp_secret is None:
        return False
    step = totp_step(user.totp_secret, code, now)
    if step is None or (user.totp_last_step is not None and step <= user.totp_last_step):
        return False
    user.totp_last_step = step
    return True


def enrol_second_factor(user: User, secret: str, code: str, now: datetime) -> bool:
    """Turn TOTP on with ``secret`` once the user shows a valid code from it."""
    step = totp_step(secret, code, now)
    if step is None:
        return False
    user.totp_secret = secret
    user.totp_last_step = step
    return True


def passed_second_factor(web_session: WebSession) -> None:
    web_session.second_factor_due = False
