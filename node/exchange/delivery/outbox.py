"""The transactional outbox: seal a message for a partner and record it in the caller's transaction.

``enqueue`` never sends and never commits. The caller writes its business record (a handover, an
acceptance, a progress note) and calls ``enqueue`` in the same transaction, then commits both together: a
message is sent only if it was recorded, and a recorded message stays until it is delivered, parked or
given up on (the delivery worker, ``worker.py``). The decision to send is audited (``send``, ids only) in that
same transaction; the proof that the message arrived is the partner's signed receipt, stored on the row.

Each (partner, thread) pair is one chain: ``prev`` is the hash of the previous message this node sent to that
partner in that thread. ``seq`` numbers the chain; the unique constraint on (partner, thread, seq) makes two
concurrent writers that read the same chain head fail one of them instead of forking the chain.

``enqueue`` is :func:`seal_for` (the cryptography, no database) then :func:`store` (the row and its audit
entry). A caller that opens a new thread knows its chain head without asking (sequence 1, no ``prev``) and may
seal before it takes the database's write lock, then store (``handovers.send_handover`` on SQLite).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import orm

from node.audit import record as audit
from node.db import insert_now
from node.errors import ValidationFailed
from node.exchange.delivery.wakeup import notify_queued
from node.exchange.models import OutboundMessage, Partner
from node.exchange.trust.partners import partner_card, require_sendable
from protocol import BoxCache, NodeKeys, SchemaError, seal
from protocol.envelope import DEFAULT_TTL
from protocol.errors import ProtocolError
from protocol.seal import SealedMessage

if TYPE_CHECKING:
    from node.auth import Actor


class MessageRejected(ValidationFailed):
    """The message cannot be sealed (its body does not match its type's schema, or it is too large)."""

    code = "message_rejected"


def chain_head(session: orm.Session, partner_id: int, thread: str) -> tuple[int, str | None]:
    """(seq, message_hash) of the last message sent to a partner in a thread; (0, None) if none."""
    row = session.execute(
        sa.select(OutboundMessage.seq, OutboundMessage.message_hash)
        .where(OutboundMessage.partner_id == partner_id, OutboundMessage.thread == thread)
        .order_by(OutboundMessage.seq.desc()).limit(1)
    ).first()
    return (0, None) if row is None else (int(row.seq), str(row.message_hash))


def seal_for(partner: Partner, *, keys: NodeKeys, msg_type: str, body: dict[str, Any], thread: str,
             now: datetime, prev: str | None = None, boxes: BoxCache | None = None, ttl: timedelta = DEFAULT_TTL,
             validated: bool = False) -> SealedMessage:
    """Seal a message for a partner under its agreement (no database access).

    Args:
        partner: the recipient (its stored card and agreement are used).
        prev: the hash of the previous message to this partner in ``thread`` (None for the first).
        validated: True when the caller has just validated ``body`` against its type's schema
            (``protocol.validate_body``): it is not validated again.
        See :func:`enqueue` for the others.
    Raises:
        MessageRejected: the body does not match its schema, or the message is too large.
    """
    try:
        return seal(keys=keys, recipient=partner_card(partner), msg_type=msg_type, body=body, thread=thread,
                    now=now, prev=prev, agreement=partner.agreement_id, ttl=ttl, boxes=boxes,
                    validate=not validated)
    except SchemaError as exc:
        raise MessageRejected(f"the {msg_type} body does not match its schema", errors=exc.errors) from None
    except ProtocolError as exc:
        raise MessageRejected(f"the {msg_type} message cannot be sealed ({exc.code})") from None


def store(session: orm.Session, sealed: SealedMessage, partner: Partner, *, seq: int, prev: str | None,
          now: datetime, case_id: str | None = None, actor: Actor | None = None) -> OutboundMessage:
    """Record a sealed message as ``queued`` and audit the decision to send it (inserted, no commit).

    Args:
        sealed: from :func:`seal_for`, for ``partner``.
        seq: its place in its (partner, thread) chain: one more than the chain head's.
        prev: the ``prev`` it was sealed with (the chain head's hash).
        See :func:`enqueue` for the others.
    Returns:
        The queued message.
    Raises:
        sqlalchemy.exc.IntegrityError: another message took this place in the chain.
    """
    header = sealed.header
    message = OutboundMessage(
        message_id=header.id, partner_id=partner.id, recipient=partner.node_id, type=header.type,
        thread=header.thread, seq=seq, prev=prev, message_hash=sealed.message_hash, envelope=sealed.data,
        case_id=case_id, status="queued", attempts=0, created_at=now, queued_at=now, expires_at=header.expires,
        next_attempt_at=now,
    )
    insert_now(session, message)  # never changed in this transaction: no unit-of-work tracking
    audit(session, actor=actor, action="send", object_type="message", object_id=message.message_id,
          case_id=case_id, now=now, detail={"to": partner.node_id, "type": header.type, "thread": header.thread})
    notify_queued(session)
    return message


def enqueue(
    session: orm.Session,
    *,
    keys: NodeKeys,
    recipient: str,
    msg_type: str,
    body: dict[str, Any],
    thread: str,
    now: datetime,
    case_id: str | None = None,
    boxes: BoxCache | None = None,
    ttl: timedelta = DEFAULT_TTL,
    actor: Actor | None = None,
    validated: bool = False,
) -> OutboundMessage:
    """Seal a message for ``recipient`` and store it as ``queued``, in the caller's transaction (no commit).

    Args:
        session: the caller's session; the message is flushed, not committed.
        keys: this node's keys.
        recipient: the partner's node id.
        msg_type: one of ``protocol.MESSAGE_TYPES``.
        body: the message body (validated against its type's schema).
        thread: the case thread id (22 base64url characters).
        now: the current time.
        case_id: the local case the message belongs to, for status display.
        boxes: the process's shared-key cache.
        ttl: the envelope's lifetime.
        actor: the member of staff whose action sends it (None for the node itself), for the audit log.
        validated: True when the caller has just validated ``body`` with ``protocol.validate_body`` (the
            schema check is then not repeated).
    Returns:
        The queued message (its ``message_id`` is the envelope id).
    Raises:
        PartnerNotFound: the recipient is not a partner.
        PartnerStateError: the partner is suspended or revoked.
        NoAgreement: no data-sharing agreement is recorded for the partner.
        MessageRejected: the body does not match its schema, or the message is too large.
    """
    partner = require_sendable(session, recipient)
    seq, prev = chain_head(session, partner.id, thread)
    sealed = seal_for(partner, keys=keys, msg_type=msg_type, body=body, thread=thread, now=now, prev=prev,
                      boxes=boxes, ttl=ttl, validated=validated)
    return store(session, sealed, partner, seq=seq + 1, prev=prev, now=now, case_id=case_id, actor=actor)


def messages_for_case(session: orm.Session, case_id: str) -> Sequence[OutboundMessage]:
    """Every message sent (or to be sent) for a local case, oldest first, for status display."""
    return session.scalars(
        sa.select(OutboundMessage).where(OutboundMessage.case_id == case_id).order_by(OutboundMessage.id)
    ).all()


def find_message(session: orm.Session, message_id: str) -> OutboundMessage | None:
    """An outbound message by its envelope id."""
    return session.scalar(sa.select(OutboundMessage).where(OutboundMessage.message_id == message_id))
