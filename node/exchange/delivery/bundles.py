"""Store-and-forward by file: a partner's queue exported as one bundle.

When an office has no link, ``ccm-node bundle export`` writes every message queued for that partner into one
signed, encrypted file (``protocol.bundle``) that travels on a USB stick or by e-mail. The messages stay
queued: the bundle is a second way for the same envelopes to arrive, not a new copy of them.

Importing a bundle (at the partner) or its receipts bundle (back here) is the inbox's: ``inbox/bundle_import.py``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm

from node.audit import record as audit
from node.exchange.delivery.queue import PENDING
from node.exchange.models import OutboundMessage, Partner
from node.exchange.trust.partners import partner_card, require_sendable
from protocol import BoxCache, NodeKeys, b64encode, seal_bundle
from protocol.bundle import MAX_BUNDLE_BYTES, envelopes_that_fit


def bundle_id(data: bytes) -> str:
    """The id a bundle file is known by in the audit log and the output: base64url SHA-256 of its bytes."""
    return b64encode(hashlib.sha256(data).digest())

@dataclass(frozen=True)
class BundleExport:
    """An exported bundle. ``data`` is None when nothing was ready to go (no file is worth writing)."""

    partner: str
    data: bytes | None
    message_ids: tuple[str, ...]
    left: int  # pending messages not in the bundle: over the size limit, or behind one that cannot go

    @property
    def count(self) -> int:
        return len(self.message_ids)



def _ready(session: orm.Session, partner: Partner, now: datetime) -> tuple[list[Any], int]:
    """The partner's pending, unexpired messages that can go now, oldest first, and how many others wait.

    A message can go when the one before it in its (partner, thread) chain is delivered or goes too, as the
    delivery worker's claim requires: one behind a parked or expired message would only be refused.
    """
    out = OutboundMessage
    rows = session.execute(
        sa.select(out.message_id, out.thread, out.seq, out.envelope)
        .where(out.partner_id == partner.id, out.status.in_(PENDING), out.expires_at > now)
        .order_by(out.id)
    ).all()
    heads: dict[str, int] = {
        thread: int(seq) for thread, seq in session.execute(
            sa.select(out.thread, sa.func.max(out.seq))
            .where(out.partner_id == partner.id, out.status == "delivered").group_by(out.thread))
    }
    ready = []
    for row in rows:
        if row.seq == heads.get(row.thread, 0) + 1:
            ready.append(row)
            heads[row.thread] = row.seq
    waiting = session.scalar(sa.select(sa.func.count()).select_from(out).where(
        out.partner_id == partner.id, out.status.in_(PENDING))) or 0
    return ready, int(waiting) - len(ready)


def export_bundle(session: orm.Session, *, keys: NodeKeys, partner: str, now: datetime,
                  boxes: BoxCache | None = None, max_bytes: int = MAX_BUNDLE_BYTES) -> BundleExport:
    """Seal every message ready to go to ``partner`` into one bundle, and audit the export (no commit).

    The messages stay queued. A queue larger than one bundle goes as its oldest part; the rest follows in the
    next export, once the receipts of this one are imported.

    Args:
        session: the caller's session.
        keys: this node's keys.
        partner: the partner's node id.
        now: the current time.
        boxes: the process's shared-key cache.
        max_bytes: the largest bundle file to write.
    Returns:
        The bundle (``data`` None when no message is ready).
    Raises:
        PartnerNotFound: not a partner.
        PartnerStateError: the partner is suspended or revoked.
        NoAgreement: no data-sharing agreement is recorded for it.
    """
    target = require_sendable(session, partner)
    ready, others = _ready(session, target, now)
    count = envelopes_that_fit((len(row.envelope) for row in ready), max_bytes)
    chosen = ready[:count]
    left = others + len(ready) - count
    if not chosen:
        return BundleExport(target.node_id, None, (), left)
    data = seal_bundle(keys=keys, recipient=partner_card(target), envelopes=[row.envelope for row in chosen],
                       now=now, boxes=boxes)
    audit(session, actor=None, action="export", object_type="bundle", object_id=bundle_id(data), case_id=None,
          now=now, detail={"to": target.node_id, "messages": count, "left": left})
    return BundleExport(target.node_id, data, tuple(row.message_id for row in chosen), left)
