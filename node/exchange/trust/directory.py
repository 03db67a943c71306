"""The protocol's ``Directory`` and ``History`` over this node's database, for ``open_envelope``.

Only active partners are in the directory: a suspended or revoked partner, like an unknown node, is refused
at step 6 of the verification order, before any decryption. A partner whose current key it revoked itself
(``key_revoked``) is in it with no accepted key, so that its old key gets ``revoked_key`` and anything else
``unknown_key`` (the sender retries, and gets through once the administrator checked the new fingerprint).
The accepted keys follow the partner's key history (``partner_keys.partner_view``): a rotated-out key until
the end of its overlap, never a revoked one. Both objects remember the rows they found so that the inbox does
not query twice.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy import orm

from node.exchange.models import InboundMessage, Partner
from node.exchange.trust.partner_keys import partner_view
from protocol import PartnerView

# Built once: building a statement costs more than running it (the inbox runs these for every message).
_PARTNER = sa.select(Partner).where(Partner.node_id == sa.bindparam("node_id"))
_SEEN = sa.select(InboundMessage).where(InboundMessage.sender == sa.bindparam("sender"),
                                        InboundMessage.message_id == sa.bindparam("message_id"))
_HEAD = (sa.select(InboundMessage.message_hash, InboundMessage.seq)
         .where(InboundMessage.sender == sa.bindparam("sender"), InboundMessage.thread == sa.bindparam("thread"))
         .order_by(InboundMessage.seq.desc()).limit(1))


class DatabaseDirectory:
    """Active partners and the keys accepted from them."""

    def __init__(self, session: orm.Session) -> None:
        self._session = session
        self.found: Partner | None = None

    def partner(self, node_id: str) -> PartnerView | None:
        row = self._session.scalar(_PARTNER, {"node_id": node_id})
        if row is None or row.status not in ("active", "key_revoked"):
            return None
        self.found = row
        return partner_view(self._session, row)


class DatabaseHistory:
    """What this node has accepted: replay lookups and each sender's chain head per thread."""

    def __init__(self, session: orm.Session) -> None:
        self._session = session
        self.seen_row: InboundMessage | None = None
        self.head_seq = 0

    def seen(self, sender: str, message_id: str) -> bool:
        self.seen_row = self._session.scalar(_SEEN, {"sender": sender, "message_id": message_id})
        return self.seen_row is not None

    def chain_head(self, sender: str, thread: str) -> str | None:
        row = self._session.execute(_HEAD, {"sender": sender, "thread": thread}).first()
        if row is None:
            self.head_seq = 0
            return None
        self.head_seq = row.seq
        return str(row.message_hash)
