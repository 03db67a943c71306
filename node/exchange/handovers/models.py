"""The handover domain's tables: handovers in both directions, progress updates, and the partner's stages.

``handovers`` has one row per handover this node sent (``outgoing``: the local case, the recipient, the
consent it relied on, what was shared and withheld) or received (``incoming``: the sender's signed consent
and, while it waits for an adviser, the summary). ``message_id`` is the envelope id of the ``handover``
message, which is also the ``handover_id`` every later message of the case thread cites (SPEC.md 8.3).
``status`` is ``pending`` until the receiving adviser decides, then ``accepted`` or ``declined``; whether an
outgoing handover was delivered is read from its outbound message (the signed receipt), never stored twice.
The received summary is erased once the handover is decided: on acceptance it lives on in the new case, on
a decline it must go (SPEC.md 8.7).

``progress_updates`` keeps the work reported on a case: updates recorded here and sent to the origin
(``sent``), recorded on a case that came from no handover (``local``), and updates received from the partner
working the case (``received``; a repeated ``update_id`` replaces the earlier version, SPEC.md 8.8).
``partner_stages`` is the origin's view of the partner's stages: the newest status reported per stage.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from node.at_rest import EncryptedJSON, EncryptedText
from node.db import Base, UTCDateTime

DIRECTIONS = ("outgoing", "incoming")
#: ``revoked``: an outgoing handover its sender took back; ``erased``: an incoming one whose data was erased
HANDOVER_STATUSES = ("pending", "accepted", "declined", "revoked", "erased")
#: ``handover`` from the origin, or ``forward`` from a node that holds the case
HANDOVER_KINDS = ("handover", "forward")
UPDATE_DIRECTIONS = ("sent", "received", "local")


class Handover(Base):
    __tablename__ = "handovers"

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    direction: Mapped[str] = mapped_column(sa.String(8))
    status: Mapped[str] = mapped_column(sa.String(16))
    partner_id: Mapped[int] = mapped_column(sa.ForeignKey("partners.id"))
    partner_node: Mapped[str] = mapped_column(sa.String(80))
    thread: Mapped[str] = mapped_column(sa.String(22))
    message_id: Mapped[str] = mapped_column(sa.String(22))
    case_id: Mapped[str | None] = mapped_column(sa.String(36), sa.ForeignKey("cases.id", ondelete="SET NULL"))
    consent_id: Mapped[str] = mapped_column(sa.String(128))
    purpose: Mapped[str] = mapped_column(sa.String(32))
    reference: Mapped[str] = mapped_column(sa.String(64))
    origin_case_id: Mapped[str] = mapped_column(sa.String(128))
    categories: Mapped[list[str]] = mapped_column(sa.JSON())
    withheld: Mapped[list[str]] = mapped_column(sa.JSON())
    #: outgoing: the granted values the summary did not carry as they are (``summary_gaps.not_carried``)
    not_carried: Mapped[list[dict[str, str]] | None] = mapped_column(sa.JSON())
    #: incoming, while pending: the received case, summary, requested support and retention
    body: Mapped[dict[str, Any] | None] = mapped_column(EncryptedJSON("handovers.body"))
    #: incoming: the signed consent record the handover travelled under
    consent: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON())
    child: Mapped[bool] = mapped_column(sa.Boolean())
    destination_country: Mapped[str] = mapped_column(sa.String(2))
    retain_until: Mapped[dt.date | None] = mapped_column(sa.Date())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    decided_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    decided_by: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    reason_code: Mapped[str | None] = mapped_column(sa.String(32))
    reason: Mapped[str | None] = mapped_column(EncryptedText("handovers.reason"))
    #: the other side's case reference (outgoing), or the case created here on acceptance (incoming)
    local_reference: Mapped[str | None] = mapped_column(sa.String(64))
    #: outgoing, once accepted: the adviser and first meeting the partner named
    answer: Mapped[dict[str, Any] | None] = mapped_column(EncryptedJSON("handovers.answer"))
    kind: Mapped[str] = mapped_column(sa.String(16), server_default="handover")
    #: the node whose consent the case travels under (the sender, for a handover)
    origin_node: Mapped[str | None] = mapped_column(sa.String(80))
    #: an outgoing forward: the incoming handover (or forward) it passes on
    upstream_id: Mapped[str | None] = mapped_column(sa.String(36), sa.ForeignKey("handovers.id",
                                                                                 ondelete="SET NULL"))
    #: an incoming forward: ``{"chain": [signed custody steps], "cards": [cards vouched for by the sender]}``
    custody: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON())
    erased_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    #: ``{"code", "text"?, "by"}``: the outcome and the node that closed the case
    close_outcome: Mapped[dict[str, Any] | None] = mapped_column(EncryptedJSON("handovers.close_outcome"))
    version: Mapped[int] = mapped_column(sa.Integer())

    __table_args__ = (
        sa.UniqueConstraint("direction", "partner_node", "message_id", name="uq_handovers_message"),
        sa.Index("ix_handovers_direction_status", "direction", "status", "created_at"),
        # the home page's answered and shared-by-outcome queues, newest answer first
        sa.Index("ix_handovers_direction_status_decided", "direction", "status", "decided_at"),
        # Every received message finds its case thread's handover by (partner, thread, direction); a case's
        # handovers are found by (case, direction, status), e.g. its open handover to a partner or its accepted
        # incoming one. Three columns, so that SQLite's planner (no statistics: it takes the index with more
        # equalities) prefers these to the two-column prefixes of uq_handovers_message (direction, partner) and
        # ix_handovers_direction_status* (direction, status), which read every handover of the partner or in
        # the status (migration 0015).
        sa.Index("ix_handovers_thread", "partner_node", "thread", "direction"),
        sa.Index("ix_handovers_case", "case_id", "direction", "status"),
    )
    __mapper_args__: ClassVar[dict[str, Any]] = {"version_id_col": version}


class ProgressUpdate(Base):
    __tablename__ = "progress_updates"

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    case_id: Mapped[str] = mapped_column(sa.String(36), sa.ForeignKey("cases.id", ondelete="CASCADE"))
    direction: Mapped[str] = mapped_column(sa.String(8))
    handover_id: Mapped[str | None] = mapped_column(sa.String(36),
                                                    sa.ForeignKey("handovers.id", ondelete="SET NULL"))
    partner_node: Mapped[str | None] = mapped_column(sa.String(80))
    update_id: Mapped[str] = mapped_column(sa.String(128))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    note: Mapped[str | None] = mapped_column(EncryptedText("progress_updates.note"))
    stage_changes: Mapped[list[dict[str, Any]]] = mapped_column(EncryptedJSON("progress_updates.stage_changes"))
    interventions: Mapped[list[dict[str, Any]]] = mapped_column(EncryptedJSON("progress_updates.interventions"))
    meetings: Mapped[list[dict[str, Any]]] = mapped_column(EncryptedJSON("progress_updates.meetings"))
    indicators: Mapped[list[dict[str, Any]]] = mapped_column(EncryptedJSON("progress_updates.indicators"))
    message_id: Mapped[str | None] = mapped_column(sa.String(22))
    author_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        sa.UniqueConstraint("case_id", "direction", "partner_node", "update_id",
                            name="uq_progress_updates_update"),
        sa.Index("ix_progress_updates_case_at", "case_id", "at"),
        # the home page's received-progress queue, newest first
        sa.Index("ix_progress_updates_direction_created", "direction", "created_at"),
    )


class PartnerStage(Base):
    __tablename__ = "partner_stages"

    case_id: Mapped[str] = mapped_column(sa.String(36), sa.ForeignKey("cases.id", ondelete="CASCADE"),
                                         primary_key=True)
    partner_node: Mapped[str] = mapped_column(sa.String(80), primary_key=True)
    stage_key: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    status: Mapped[str] = mapped_column(sa.String(20))
    note: Mapped[str | None] = mapped_column(EncryptedText("partner_stages.note"))
    changed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    message_id: Mapped[str] = mapped_column(sa.String(22))
