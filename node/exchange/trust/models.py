"""The history of partners' keys: every card trusted for a partner, and the revocations received.

``partner_keys`` holds one row per key generation (one card) of a partner: the first card (trusted after the
administrator confirmed its fingerprint), each successor accepted through a rotation (``key_rotated``, endorsed
by the previous key), and a card trusted again after a revocation. The partner row (``partners``) still holds
the current card and keys; its generation here has ``retired_at`` null. A retired generation stays accepted
until ``accept_until`` (the overlap the partner announced) and is kept for good afterwards, so that receipts,
consent records and custody steps it signed can still be verified.

``key_revocations`` holds every signed revocation statement accepted for a partner (SPEC.md 3.3), also for key
ids this node never saw (a revoked key must not be accepted later either).
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from node.db import Base, UTCDateTime

#: How a generation came to be trusted.
TRUSTED_BY = ("fingerprint", "rotation")
#: How a revocation arrived.
REVOCATION_SOURCES = ("federation", "file")


class PartnerKey(Base):
    __tablename__ = "partner_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    partner_id: Mapped[int] = mapped_column(sa.ForeignKey("partners.id"), index=True)
    signing_kid: Mapped[str] = mapped_column(sa.String(22))
    signing_key: Mapped[str] = mapped_column(sa.String(64))
    encryption_kid: Mapped[str] = mapped_column(sa.String(22))
    encryption_key: Mapped[str] = mapped_column(sa.String(64))
    card: Mapped[str] = mapped_column(sa.Text())
    fingerprint: Mapped[str] = mapped_column(sa.String(71))
    trusted_by: Mapped[str] = mapped_column(sa.String(16))
    trusted_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    retired_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    accept_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (sa.UniqueConstraint("partner_id", "signing_kid", name="uq_partner_keys_signing"),)


class KeyRevocation(Base):
    __tablename__ = "key_revocations"

    id: Mapped[int] = mapped_column(primary_key=True)
    partner_id: Mapped[int] = mapped_column(sa.ForeignKey("partners.id"))
    kid: Mapped[str] = mapped_column(sa.String(22))
    reason: Mapped[str] = mapped_column(sa.String(16))
    revoked_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    statement: Mapped[str] = mapped_column(sa.Text())
    source: Mapped[str] = mapped_column(sa.String(16))
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())

    __table_args__ = (sa.UniqueConstraint("partner_id", "kid", name="uq_key_revocations_partner_kid"),)
