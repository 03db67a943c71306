"""The web interface's own tables: signed-in browser sessions and failed logins.

A browser holds only a random session token (in Flask's signed cookie); the row here holds its SHA-256, the
user, and when it was last used. Signing out deletes the row, so a copied cookie is worthless afterwards; a
session idle longer than the configured minutes is deleted when next presented.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from node.db import Base, UTCDateTime


class WebSession(Base):
    __tablename__ = "web_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: the password was right, the second factor (TOTP) is still to come: nothing but that step is allowed
    second_factor_due: Mapped[bool] = mapped_column(default=False)


class LoginFailure(Base):
    """One failed login, kept for the throttling window (per account and per address)."""

    __tablename__ = "login_failures"
    __table_args__ = (sa.Index("ix_login_failures_username_at", "username", "at"),
                      sa.Index("ix_login_failures_address_at", "address", "at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(sa.String(64))
    address: Mapped[str] = mapped_column(sa.String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
