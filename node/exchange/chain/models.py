"""The chain room's tables: withdrawals, the erasures the origin asked for, the tombstones of erasures, custody.

``consent_withdrawals`` keeps every withdrawal of a consent, wholly or in part, and every revocation of a
handover: at the origin as recorded by a counsellor, at a receiver as received (SPEC.md 9.6: a receiver keeps
the withdrawals it was told of, and applies them to later handovers under the same consent). A withdrawal holds
no personal data: ids, the scope (categories and node ids), times. The returnee's reason stays at the origin.

``erasure_requests`` is the origin's disclosure ledger of erasures: one row per (handover, holder) that was
asked to erase, or that reported an erasure of its own (retention), with the holder's signed confirmation
(``erasure_confirmed``: when, and the ids and hashes of what it erased) once it arrives.

``tombstones`` is a holder's record of an erasure it carried out: which handover, from which node, under which
consent, why, when, and the message ids and content hashes of what it erased. Nothing else of the case remains.

``custody_notices``: what a node learns about the onward custody of a case it handed over (SPEC.md 8.14).

When a node that received a case forwards it, it tells the node it received the case from with a
``custody_notice`` (relayed up the chain to the origin): who holds the case now, since when, by which message,
under which purpose and categories. ``custody_notices`` keeps them per outgoing handover at the origin (and at
each node in between), so the disclosure record names every holder, erasure is asked of every holder, and the
chain of custody can be shown.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from node.db import Base, UTCDateTime

#: Why data was erased at a holder.
ERASURE_CAUSES = ("withdrawal", "revocation", "retention")


def _handover_fk() -> sa.ForeignKey:
    return sa.ForeignKey("handovers.id", ondelete="CASCADE")


class ConsentWithdrawal(Base):
    __tablename__ = "consent_withdrawals"

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    #: the node that recorded the consent (this node at the origin)
    origin: Mapped[str] = mapped_column(sa.String(80))
    #: the consent record's id as it travels (the origin's consent id)
    consent_id: Mapped[str] = mapped_column(sa.String(128))
    case_id: Mapped[str | None] = mapped_column(sa.String(36), sa.ForeignKey("cases.id", ondelete="SET NULL"),
                                                index=True)
    #: None: the whole consent; else ``{"categories"?: [...], "recipients"?: [...]}``
    scope: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON())
    revocation: Mapped[bool] = mapped_column(sa.Boolean())
    #: the handover a revocation takes back
    handover_id: Mapped[str | None] = mapped_column(sa.String(36),
                                                    sa.ForeignKey("handovers.id", ondelete="SET NULL"))
    withdrawn_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    recorded_by: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    #: at a receiver: the node it came from and the message that carried it
    sender: Mapped[str | None] = mapped_column(sa.String(80))
    message_id: Mapped[str | None] = mapped_column(sa.String(22))

    __table_args__ = (sa.Index("ix_consent_withdrawals_consent", "origin", "consent_id"),)


class ErasureRequest(Base):
    __tablename__ = "erasure_requests"

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    handover_id: Mapped[str] = mapped_column(sa.String(36), _handover_fk(), index=True)
    withdrawal_id: Mapped[str | None] = mapped_column(
        sa.String(36), sa.ForeignKey("consent_withdrawals.id", ondelete="SET NULL"))
    case_id: Mapped[str | None] = mapped_column(sa.String(36), sa.ForeignKey("cases.id", ondelete="SET NULL"),
                                                index=True)
    consent_id: Mapped[str] = mapped_column(sa.String(128))
    #: the partner the request went to, and the node whose copy it is about
    partner_node: Mapped[str] = mapped_column(sa.String(80))
    holder: Mapped[str] = mapped_column(sa.String(80))
    cause: Mapped[str] = mapped_column(sa.String(16))
    scope: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON())
    #: None for an erasure the holder reported on its own (retention)
    requested_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    message_id: Mapped[str | None] = mapped_column(sa.String(22))
    confirmed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    erased_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    confirmation_message_id: Mapped[str | None] = mapped_column(sa.String(22))
    tombstone: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON())
    #: when the admin was first shown the request as overdue
    flagged_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (sa.Index("ix_erasure_requests_open", "confirmed_at", "requested_at"),)


class Tombstone(Base):
    __tablename__ = "tombstones"

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    handover_id: Mapped[str] = mapped_column(sa.String(36), _handover_fk(), index=True)
    withdrawal_id: Mapped[str | None] = mapped_column(
        sa.String(36), sa.ForeignKey("consent_withdrawals.id", ondelete="SET NULL"))
    sender: Mapped[str] = mapped_column(sa.String(80))
    consent_id: Mapped[str] = mapped_column(sa.String(128))
    cause: Mapped[str] = mapped_column(sa.String(16))
    scope: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON())
    erased_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    message_ids: Mapped[list[str]] = mapped_column(sa.JSON())
    content_hashes: Mapped[list[str]] = mapped_column(sa.JSON())
    confirmation_message_id: Mapped[str | None] = mapped_column(sa.String(22))


class CustodyNotice(Base):
    __tablename__ = "custody_notices"

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    #: this node's handover (outgoing) whose case moved on
    handover_id: Mapped[str] = mapped_column(sa.String(36), sa.ForeignKey("handovers.id", ondelete="CASCADE"),
                                             index=True)
    #: the node that passed the case on, and the node that holds it now
    forwarded_by: Mapped[str] = mapped_column(sa.String(80))
    holder: Mapped[str] = mapped_column(sa.String(80))
    forwarded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    forward_id: Mapped[str] = mapped_column(sa.String(22))
    message_hash: Mapped[str] = mapped_column(sa.String(43))
    purpose: Mapped[str] = mapped_column(sa.String(32))
    categories: Mapped[list[str]] = mapped_column(sa.JSON())
    #: the holder's card as the forwarding node vouched for it (JSON text), if given
    card: Mapped[str | None] = mapped_column(sa.Text())
    #: the partner that told us, and its message
    sender: Mapped[str] = mapped_column(sa.String(80))
    message_id: Mapped[str] = mapped_column(sa.String(22))
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
