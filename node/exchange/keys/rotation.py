"""Key rotation: this node rotating its keys, and taking a partner's rotation.

**Rotation** (``ccm-node keys rotate``, :func:`rotate_keys`): new key pairs and a new card endorsed by the
previous signing key (SPEC.md 3.2). The card travels to every active partner with an agreement as a
``key_rotated`` message, queued in the outbox in the same transaction, sealed with the *previous* keys (the
ones the partner holds), in this node's keys thread (:func:`keys_thread`). The previous keys stay accepted
until ``overlap_until`` (default 30 days): here they open messages partners sealed to the previous card and
co-sign receipts (``keystore.NodeIdentity``); at the partner, messages signed with them are accepted until
then and refused after (``unknown_key``). The key files change only after the announcements are committed.

**Taking a rotation** (the ``key_rotated`` applier): the message must come signed by the key it replaces;
``verify_rotation`` checks the endorsement against the card held; no new fingerprint check is needed. The
previous card stays in the partner's key history (``trust/partner_keys.py``), accepted until the announced end of
the overlap, and verifiable for good. It is audited and listed by ``ccm-node keys partners``.

Installing the prepared key files after the commit: ``trust.key_files.install_key_change``. Revocation:
``revocation.py``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import orm

from node.audit import record as audit
from node.config import NodeConfig
from node.errors import ValidationFailed
from node.exchange.delivery.outbox import enqueue
from node.exchange.models import InboundMessage, Partner
from node.exchange.trust.key_files import KeyChange, KeyHistory, RetiredGeneration
from node.exchange.trust.keystore import CARD_VALIDITY, load_identity
from node.exchange.trust.partner_keys import KeyReuse, check_key_reuse, install_card, revocations
from node.exchange.trust.partners import list_partners, partner_card
from protocol import (
    BoxCache,
    MalformedError,
    NodeKeys,
    OpenedMessage,
    b64encode,
    make_card,
)
from protocol.cards import check_key_rotated
from protocol.envelope import MAX_TTL
from protocol.messages import MAX_ROTATION_OVERLAP
from protocol.times import format_time, parse_time

DEFAULT_OVERLAP = timedelta(days=30)
MIN_OVERLAP = timedelta(hours=1)
#: A key announcement may wait for an offline partner as long as any message may.
ANNOUNCEMENT_TTL = MAX_TTL
_KEYS_THREAD_DOMAIN = b"ccm-keys-thread-v1\x00"


def keys_thread(node_id: str) -> str:
    """The thread id of a node's key announcements: stable, derived from the node id (22 base64url chars)."""
    return b64encode(hashlib.sha256(_KEYS_THREAD_DOMAIN + node_id.encode("utf-8")).digest())[:22]

# -- this node rotates ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rotation:
    """What a rotation did; ``change`` still has to be installed (:func:`install_key_change`)."""

    previous_kid: str
    kid: str
    fingerprint: str
    overlap_until: datetime
    announced: list[str]
    not_announced: dict[str, str]
    change: KeyChange


def rotate_keys(session: orm.Session, config: NodeConfig, *, now: datetime,
                overlap: timedelta = DEFAULT_OVERLAP, boxes: BoxCache | None = None) -> Rotation:
    """Make new keys and a card endorsed by the current key, and queue the announcement to every partner
    (no commit; the key files are only prepared).

    Args:
        session: the session the announcements are queued in.
        config: this node's configuration.
        now: the current time.
        overlap: how long the previous keys stay accepted (1 hour to 365 days).
        boxes: the process's shared-key cache.
    Returns:
        The rotation, with the prepared key files.
    Raises:
        ValidationFailed: the overlap is out of bounds.
        KeyFileError: the key files cannot be read or written.
    """
    if not MIN_OVERLAP <= overlap <= MAX_ROTATION_OVERLAP:
        raise ValidationFailed("the overlap must be between 1 hour and 365 days")
    identity = load_identity(config, now)
    old, start = identity.keys, now.replace(microsecond=0)
    new = NodeKeys.generate(old.node_id)
    card = make_card(new, name=config.name, base_url=config.base_url, valid_from=start,
                     valid_until=start + CARD_VALIDITY, previous=old)
    until = start + overlap
    body = {"new_card": card.to_json(), "effective_at": format_time(start), "overlap_until": format_time(until)}
    announced: list[str] = []
    skipped: dict[str, str] = {}
    for partner in list_partners(session):
        if partner.status != "active" or partner.agreement_id is None:
            skipped[partner.node_id] = partner.status if partner.status != "active" else "no agreement"
            continue
        enqueue(session, keys=old, recipient=partner.node_id, msg_type="key_rotated", body=body,
                thread=keys_thread(old.node_id), now=now, ttl=ANNOUNCEMENT_TTL, boxes=boxes)
        announced.append(partner.node_id)
    history = KeyHistory((*identity.history.retired, RetiredGeneration(old.skid, old.ekid, start, until)),
                         identity.history.revocations)
    audit(session, actor=None, action="update", object_type="node_keys", object_id=old.node_id, case_id=None,
          now=now, detail={"key": "rotated", "previous_kid": old.skid, "kid": new.skid,
                           "overlap_until": body["overlap_until"], "announced": len(announced)})
    change = KeyChange(config.data_dir)
    change.prepare(history=history, retire=[old], keys=new, card=card)
    return Rotation(old.skid, new.skid, new.fingerprint(), until, announced, skipped, change)

# -- a partner rotates ------------------------------------------------------------------------------------


def apply_key_rotated(session: orm.Session, *, message: InboundMessage, opened: OpenedMessage,
                      partner: Partner, now: datetime, keys: NodeKeys) -> None:
    """Take a partner's new card: endorsed by the key it replaces, which also signed the announcement.

    Raises:
        MalformedError: not announced with the current key, not a card replacing it, or a card carrying a key
            another partner or this node holds (``check_key_reuse``).
        RevokedKeyError / BadSignatureError / ExpiredError / NotYetValidError: ``verify_rotation`` refuses.
    """
    card = check_key_rotated(opened.body, opened.skid, partner_card(partner), now,
                             revoked=frozenset(r.kid for r in revocations(session, partner)))
    try:
        check_key_reuse(session, card, partner_id=partner.id, own_kids={keys.skid, keys.ekid})
    except KeyReuse as exc:
        raise MalformedError(f"key_rotated: {exc.detail}") from None
    previous = partner.signing_kid
    install_card(session, partner, card, trusted_by="rotation", now=now,
                 previous_until=parse_time(opened.body["overlap_until"]))
    audit(session, actor=None, action="update", object_type="partner", object_id=partner.node_id, case_id=None,
          now=now, detail={"key": "rotated", "previous_kid": previous, "kid": card.skid,
                           "previous_accepted_until": opened.body["overlap_until"], "message": message.message_id})
