"""The protocol's ``Directory`` and ``History`` over this node's database, for ``open_envelope``.

Only active partners are in the directory: a suspended or revoked partner, like an unknown node, is refused
at step 6 of the verification order, before any decryption. Both objects remember the rows they found so
that the inbox does not query twice.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy import orm

from protocol import PartnerView, b64decode

from .models import InboundMessage, Partner


class DatabaseDirectory:
    """Active partners and the keys accepted from them."""

    def __init__(self, session: orm.Session) -> None:
        self._session = session
        self.found: Partner | None = None

    def partner(self, node_id: str) -> PartnerView | None:
        row = self._session.scalar(sa.select(Partner).where(Partner.node_id == node_id))
        if row is None or row.status != "active":
            return None
        self.found = row
        return PartnerView(
            node_id=row.node_id,
            signing_keys={row.signing_kid: b64decode(row.signing_key, length=32)},
            encryption_keys={row.encryption_kid: b64decode(row.encryption_key, length=32)},
        )


class DatabaseHistory:
    """What this node has accepted: replay lookups and each sender's chain head per thread."""

    def __init__(self, session: orm.Session) -> None:
        self._session = session
        self.seen_row: InboundMessage | None = None
        self.head_seq = 0

    def seen(self, sender: str, message_id: str) -> bool:
        self.seen_row = self._session.scalar(sa.select(InboundMessage).where(
            InboundMessage.sender == sender, InboundMessage.message_id == message_id))
        return self.seen_row is not None

    def chain_head(self, sender: str, thread: str) -> str | None:
        row = self._session.execute(
            sa.select(InboundMessage.message_hash, InboundMessage.seq)
            .where(InboundMessage.sender == sender, InboundMessage.thread == thread)
            .order_by(InboundMessage.seq.desc()).limit(1)
        ).first()
        if row is None:
            self.head_seq = 0
            return None
        self.head_seq = row.seq
        return str(row.message_hash)
