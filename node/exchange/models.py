"""The exchange's shared tables, the floor every room stands on: partners, the outbox and the inbox.

Every room reads these three; each room's own tables are in its ``models.py`` (``trust/models.py``: the
history of partners' keys; ``handovers/models.py``; ``chain/models.py``).

``partners`` holds each partner's verified card, its keys, the fingerprint the administrator confirmed, the
data-sharing agreement and the per-partner delivery state (Synapse's ``destinations`` retry timings:
``retry_interval`` 0 means healthy, ``retry_at`` the earliest next attempt). Its status is ``active``,
``suspended``, ``revoked`` (trust withdrawn by this node's administrator) or ``key_revoked`` (the partner
revoked its current key: nothing is accepted from or sent to it until its new fingerprint is checked). The
history of its keys is in ``trust/models.py``.

``outbound_messages`` is the transactional outbox: a row is written in the same transaction as the business
record that caused it, holding the sealed envelope bytes, so nothing is sent that was not recorded and nothing
recorded is lost. ``seq`` numbers the messages of one (partner, thread) chain; the unique constraint on it
turns two concurrent writers that read the same chain head into one error instead of a silent fork.

``inbound_messages`` keeps, per ``(sender, message_id)``, the sender-signed inner document (non-repudiation),
the hash of the envelope bytes (to recognise an exact retransmission) and the receipt we answered with.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from node.at_rest import EncryptedBytes
from node.db import Base, UTCDateTime

PARTNER_STATUSES = ("active", "suspended", "revoked", "key_revoked")
OUTBOUND_STATUSES = ("queued", "sending", "delivered", "parked", "undeliverable")

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


class Partner(Base):
    __tablename__ = "partners"

    id: Mapped[int] = mapped_column(primary_key=True)
    node_id: Mapped[str] = mapped_column(sa.String(80), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    base_url: Mapped[str] = mapped_column(sa.String(2048))
    card: Mapped[str] = mapped_column(sa.Text())
    signing_key: Mapped[str] = mapped_column(sa.String(64))
    signing_kid: Mapped[str] = mapped_column(sa.String(22))
    encryption_key: Mapped[str] = mapped_column(sa.String(64))
    encryption_kid: Mapped[str] = mapped_column(sa.String(22))
    fingerprint: Mapped[str] = mapped_column(sa.String(71))
    agreement_id: Mapped[str | None] = mapped_column(sa.String(64))
    retention_days: Mapped[int | None] = mapped_column(sa.Integer())
    status: Mapped[str] = mapped_column(sa.String(16))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    # when the partner's keys last changed (a rotation or a revocation); None: only its first card is known,
    # so verifying its messages needs no look into the key history
    keys_changed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    # delivery state (node/exchange/retry.py)
    retry_interval: Mapped[float] = mapped_column(sa.Float())
    retry_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    retry_last_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    # resync after a restore (node/exchange/resync): the time asked about, None when in step (nothing is
    # delivered to the partner while it is set), and the cursor of the next answer page to ask for
    resync_since: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    resync_after: Mapped[int | None] = mapped_column(sa.BigInteger())


class OutboundMessage(Base):
    __tablename__ = "outbound_messages"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    message_id: Mapped[str] = mapped_column(sa.String(22), unique=True)
    partner_id: Mapped[int] = mapped_column(sa.ForeignKey("partners.id"))
    recipient: Mapped[str] = mapped_column(sa.String(80))
    type: Mapped[str] = mapped_column(sa.String(32))
    thread: Mapped[str] = mapped_column(sa.String(22))
    seq: Mapped[int] = mapped_column(sa.Integer())
    prev: Mapped[str | None] = mapped_column(sa.String(43))
    message_hash: Mapped[str] = mapped_column(sa.String(43))
    envelope: Mapped[bytes] = mapped_column(sa.LargeBinary())
    case_id: Mapped[str | None] = mapped_column(sa.String(36), index=True)
    status: Mapped[str] = mapped_column(sa.String(16))
    attempts: Mapped[int] = mapped_column(sa.Integer())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    queued_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())  # the retry horizon counts from here
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())  # the envelope's own expiry
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    last_attempt_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(sa.String(64))
    claimed_by: Mapped[str | None] = mapped_column(sa.String(64))
    lease_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    delivered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    receipt: Mapped[str | None] = mapped_column(sa.Text())

    __table_args__ = (
        sa.UniqueConstraint("partner_id", "thread", "seq", name="uq_outbound_messages_chain"),
        # The claim query's order (queue.py): due messages are walked in (next_attempt_at, id) order and the
        # walk stops at the batch size, with no sort of the messages queued in the same instant.
        sa.Index("ix_outbound_messages_claim", "status", "next_attempt_at", "id"),
    )


class InboundMessage(Base):
    __tablename__ = "inbound_messages"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    partner_id: Mapped[int] = mapped_column(sa.ForeignKey("partners.id"))
    sender: Mapped[str] = mapped_column(sa.String(80))
    message_id: Mapped[str] = mapped_column(sa.String(22))
    type: Mapped[str] = mapped_column(sa.String(32))
    thread: Mapped[str] = mapped_column(sa.String(22))
    seq: Mapped[int] = mapped_column(sa.Integer())
    prev: Mapped[str | None] = mapped_column(sa.String(43))
    message_hash: Mapped[str] = mapped_column(sa.String(43))
    envelope_hash: Mapped[str] = mapped_column(sa.String(43))
    agreement_id: Mapped[str | None] = mapped_column(sa.String(64))
    #: the inner document in clear, encrypted at rest; None once erased (retention, decline)
    inner: Mapped[bytes | None] = mapped_column(EncryptedBytes("inbound_messages.inner"))
    case_id: Mapped[str | None] = mapped_column(sa.String(36), index=True)
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    receipt: Mapped[str] = mapped_column(sa.Text())

    __table_args__ = (
        sa.UniqueConstraint("sender", "message_id", name="uq_inbound_messages_sender_message"),
        sa.UniqueConstraint("sender", "thread", "seq", name="uq_inbound_messages_chain"),
    )

