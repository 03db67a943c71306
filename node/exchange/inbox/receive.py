"""The inbox: verify a received envelope, act on it, store it and sign a receipt, all in one transaction.

Order of checks (the protocol's verification order, SPEC.md section 6, then the node's own):

1. size (before anything is parsed);
2. ``protocol.open_envelope`` with the partner directory and the inbox history over this database: strict
   canonical JSON, version, addressed to us, sender an *active* partner (unknown, suspended and revoked
   senders are refused here, before any decryption), key ids, outer signature, time window, replay, decrypt,
   inner document and signature, inner header, body schema, chain link;
3. the agreement: a message that cites an agreement must cite the one recorded for that partner, and a
   ``handover`` or ``forward`` must cite one (``unknown_agreement``);
4. the domain applier for the message's type (``dispatch.apply``), which may refuse with a protocol code.

Any failure raises its ``ProtocolError``; the caller rolls back, so nothing is stored, and answers the code
only. An exact retransmission (same sender, same message id, byte-identical envelope: a sender retrying after
a lost answer) gets the receipt stored the first time and changes nothing; the same id with other bytes is
``replayed``. A message off the chain from a sender this node has not yet resynced with after a restore is
``ResyncPending`` (503, tried again), not ``broken_chain``. Receiving anything from a partner resets its
delivery backoff (it is evidently up).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import cast

import sqlalchemy as sa
from sqlalchemy import orm

from node.audit import record as audit
from node.db import by_key, insert_now
from node.exchange.delivery.queue import reset_backoff
from node.exchange.inbox import dispatch
from node.exchange.models import InboundMessage, Partner
from node.exchange.trust.directory import DatabaseDirectory, DatabaseHistory
from protocol import (
    BoxCache,
    ChainError,
    NodeKeys,
    OpenedMessage,
    OversizedError,
    ReplayedError,
    UnknownAgreementError,
    UnknownSenderError,
    b64encode,
    canonical_bytes,
    make_receipt,
    open_envelope,
)
from protocol.envelope import MAX_ENVELOPE_BYTES

#: Message types that carry case data and must cite the data-sharing agreement they are sent under.
AGREEMENT_REQUIRED = frozenset({"handover", "forward"})


@dataclass(frozen=True)
class InboxAnswer:
    """What the inbox answers: the signed receipt (canonical JSON bytes) and the stored message."""

    receipt: bytes
    message: InboundMessage
    duplicate: bool


class ResyncPending(Exception):
    """A message that does not follow its sender's chain as this node knows it, while this node, restored from a
    backup, has not yet resynced with that sender: answered 503 (the sender tries again later), not
    ``broken_chain`` (which would park it for good)."""


def envelope_hash(data: bytes) -> str:
    return b64encode(hashlib.sha256(data).digest())


def check_agreement(opened: OpenedMessage, partner: Partner) -> None:
    """Refuse a message citing an agreement we do not hold with its sender, or a handover citing none.

    Raises:
        UnknownAgreementError: as above.
    """
    if opened.agreement is None:
        if opened.header.type in AGREEMENT_REQUIRED:
            raise UnknownAgreementError("message cites no agreement")
        return
    if partner.agreement_id is None or opened.agreement != partner.agreement_id:
        raise UnknownAgreementError("message cites an agreement not held with its sender")


_INBOUND = cast(sa.Table, InboundMessage.__table__)
_SET_CASE = sa.update(_INBOUND).where(_INBOUND.c.id == sa.bindparam("_id")).values(case_id=sa.bindparam("_case"))


def receive(session: orm.Session, *, data: bytes, keys: NodeKeys, now: datetime,
            boxes: BoxCache | None = None, reader: orm.Session | None = None) -> InboxAnswer:
    """Verify, apply and store one received envelope, in the caller's transaction (no commit).

    Args:
        session: the request's session; roll it back on any exception.
        data: the received bytes.
        keys: this node's keys.
        now: the time of receipt.
        boxes: the process's shared-key cache.
        reader: a session for the lookups of the verification (SQLite: one that does not take the write
            lock, so that the cryptography runs outside it); default ``session``. A concurrent write that
            lands between the two is caught by the unique constraints (see Raises).
    Returns:
        The receipt to answer with (the original one for an exact retransmission).
    Raises:
        ProtocolError: the subclass for the first failing check (its ``code`` is the whole answer).
        sqlalchemy.exc.IntegrityError: a concurrent request stored the same message or the same chain link
            first; roll back and call again (it then answers as a retransmission or ``broken_chain``).
    """
    if len(data) > MAX_ENVELOPE_BYTES:
        raise OversizedError("envelope too large")
    lookup = reader or session
    directory = DatabaseDirectory(lookup)
    history = DatabaseHistory(lookup)
    digest = envelope_hash(data)
    try:
        opened = open_envelope(data, keys=keys, directory=directory, history=history, now=now, boxes=boxes)
    except ReplayedError:
        original = history.seen_row
        if original is not None and original.envelope_hash == digest:
            return InboxAnswer(original.receipt.encode("utf-8"), original, duplicate=True)
        raise
    except ChainError:
        if directory.found is not None and directory.found.resync_since is not None:
            raise ResyncPending() from None  # restored from a backup: the sender's chain comes back with the resync
        raise
    found = directory.found
    if found is None:  # cannot happen: open_envelope asked the directory for the sender
        raise UnknownSenderError("sender not known")
    check_agreement(opened, found)
    receipt = canonical_bytes(make_receipt(keys, opened, now))  # signed before the write lock is taken
    partner = found if lookup is session else by_key(session, Partner, found.id)
    if partner is None or partner.status != "active":  # suspended while we were verifying
        raise UnknownSenderError("sender not known")
    header = opened.header
    message = InboundMessage(
        partner_id=partner.id, sender=header.sender, message_id=header.id, type=header.type,
        thread=header.thread, seq=history.head_seq + 1, prev=opened.prev, message_hash=opened.message_hash,
        envelope_hash=digest, agreement_id=opened.agreement, inner=opened.inner_bytes, case_id=None,
        received_at=now, receipt=receipt.decode("utf-8"),
    )
    insert_now(session, message)  # a Core INSERT: the session does not track the row
    dispatch.apply(session, message=message, opened=opened, partner=partner, now=now, keys=keys)
    if message.case_id is not None:  # the applier found the local case the message belongs to
        session.execute(_SET_CASE, {"_id": message.id, "_case": message.case_id})
    audit(session, actor=None, action="receive", object_type="message", object_id=header.id,
          case_id=message.case_id, now=now,
          detail={"from": header.sender, "type": header.type, "thread": header.thread})
    reset_backoff(session, partner, now)
    return InboxAnswer(receipt, message, duplicate=False)
