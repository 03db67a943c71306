"""The notifications table: one row per (user, kind, subject), written by the sweep (``sweep.py``).

A row says *what happened* (``kind``), to which case (``case_id``, and ``case_reference`` kept as it was, so
the row still reads after the case is gone) or which partner (``partner_node``), and is about one subject: the
handover, progress update, erasure request or partner outage that caused it (``subject_key``). The unique
``(user_id, kind, subject_key)`` makes the sweep idempotent. ``read_at`` is set when the user marks it read,
``emailed_at`` once the e-mail went out (or was not due: the user opted out or has no address when the row was
made). No row holds personal data: ids, a case reference, a partner's node id, times.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from node.db import Base, UTCDateTime

#: What a notification can be about, in the order the list page explains them.
KINDS = ("handover_accepted", "handover_declined", "progress_received", "erasure_confirmed", "erasure_overdue",
         "partner_unreachable")


class Notification(Base):
    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(sa.String(32))
    case_id: Mapped[str | None] = mapped_column(sa.String(36), sa.ForeignKey("cases.id", ondelete="SET NULL"))
    case_reference: Mapped[str | None] = mapped_column(sa.String(64))
    partner_node: Mapped[str | None] = mapped_column(sa.String(80))
    subject_key: Mapped[str] = mapped_column(sa.String(160))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    read_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    emailed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (
        sa.UniqueConstraint("user_id", "kind", "subject_key", name="uq_notifications_subject"),
        # the badge's count of unread rows and the list page, newest first
        sa.Index("ix_notifications_user_read", "user_id", "read_at", "created_at"),
        # the mailer's pending rows
        sa.Index("ix_notifications_emailed", "emailed_at", "id"),
    )
