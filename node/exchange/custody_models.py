"""What a node learns about the onward custody of a case it handed over (SPEC.md 8.14).

When a node that received a case forwards it, it tells the node it received the case from with a
``custody_notice`` (relayed up the chain to the origin): who holds the case now, since when, by which message,
under which purpose and categories. ``custody_notices`` keeps them per outgoing handover at the origin (and at
each node in between), so the disclosure record names every holder, erasure is asked of every holder, and the
chain of custody can be shown.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from node.db import Base, UTCDateTime


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
