"""A partner's keys over time: the generations this node trusted, the revocations it accepted, and what follows
for verifying the partner's messages and signatures.

- :func:`partner_view` is what the inbox's directory accepts from a partner: its current keys, a retired
  generation's keys until the end of the overlap the partner announced, never a revoked key id.
- :func:`install_card` makes a card the partner's current one (the first card, a rotation's successor, or a
  card trusted again after a revocation) and keeps the previous one as history.
- :func:`verify_signed_by`, :func:`signing_key_for`, :func:`verify_stored_receipt`: receipts, consent records
  and custody steps a partner signed with an older key still verify after a rotation (never with a key revoked
  before this node got them).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

import nacl.signing
import sqlalchemy as sa
from sqlalchemy import orm

from node.errors import Conflict
from node.exchange.models import OutboundMessage, Partner
from node.exchange.trust.models import KeyRevocation, PartnerKey
from protocol import (
    NodeCard,
    PartnerView,
    Receipt,
    RevokedKeyError,
    UnknownKeyError,
    b64decode,
    b64encode,
    signature_ids,
    strict_loads,
    verify_receipt,
    verify_signed_json,
)
from protocol.cards import card_from_bytes
from protocol.envelope import envelope_sender


def card_text(card: NodeCard) -> str:
    """A card as stored (compact JSON)."""
    return json.dumps(card.to_json(), ensure_ascii=False, separators=(",", ":"))


def generations(session: orm.Session, partner: Partner) -> Sequence[PartnerKey]:
    """Every key generation trusted for a partner, oldest first."""
    return session.scalars(sa.select(PartnerKey).where(PartnerKey.partner_id == partner.id)
                           .order_by(PartnerKey.trusted_at, PartnerKey.id)).all()


def revocations(session: orm.Session, partner: Partner) -> Sequence[KeyRevocation]:
    """The revocations accepted for a partner, oldest first."""
    return session.scalars(sa.select(KeyRevocation).where(KeyRevocation.partner_id == partner.id)
                           .order_by(KeyRevocation.received_at, KeyRevocation.id)).all()


def revoked_kids(session: orm.Session, partner_id: int) -> frozenset[str]:
    """Every key id of a partner this node accepted a revocation of."""
    return frozenset(session.scalars(sa.select(KeyRevocation.kid).where(KeyRevocation.partner_id == partner_id)))


def partner_view(session: orm.Session, partner: Partner) -> PartnerView:
    """The keys accepted from a partner (SPEC.md 6.1 step 7): none while its current key is revoked
    (``key_revoked``); otherwise its current keys and those of retired generations up to their
    ``accept_until``, without any revoked key id. A partner whose keys never changed costs no lookup."""
    if partner.keys_changed_at is None:
        return PartnerView(
            node_id=partner.node_id,
            signing_keys={partner.signing_kid: b64decode(partner.signing_key, length=32)},
            encryption_keys={partner.encryption_kid: b64decode(partner.encryption_key, length=32)},
        )
    revoked = revoked_kids(session, partner.id)
    if partner.status == "key_revoked":
        return PartnerView(node_id=partner.node_id, signing_keys={}, encryption_keys={}, revoked=revoked)
    signing = {partner.signing_kid: b64decode(partner.signing_key, length=32)}
    encryption = {partner.encryption_kid: b64decode(partner.encryption_key, length=32)}
    until: dict[str, datetime] = {}
    retired = session.scalars(sa.select(PartnerKey).where(
        PartnerKey.partner_id == partner.id, PartnerKey.retired_at.is_not(None),
        PartnerKey.accept_until.is_not(None), PartnerKey.revoked_at.is_(None)))
    for generation in retired:
        if generation.accept_until is None:  # excluded by the query; narrows the type
            continue
        for kid, key, accepted in ((generation.signing_kid, generation.signing_key, signing),
                                   (generation.encryption_kid, generation.encryption_key, encryption)):
            if kid not in accepted:
                accepted[kid] = b64decode(key, length=32)
                until[kid] = generation.accept_until
    return PartnerView(node_id=partner.node_id, signing_keys=signing, encryption_keys=encryption,
                       revoked=revoked, accepted_until=until)


def current_generation(session: orm.Session, partner: Partner) -> PartnerKey | None:
    return session.scalar(sa.select(PartnerKey).where(PartnerKey.partner_id == partner.id,
                                                      PartnerKey.signing_kid == partner.signing_kid))


def install_card(session: orm.Session, partner: Partner, card: NodeCard, *, trusted_by: str, now: datetime,
                 previous_until: datetime | None) -> PartnerKey:
    """Make ``card`` (already verified by the caller) the partner's current card (no commit).

    Args:
        partner: the partner row (its current card becomes history, unless it is the first).
        card: the verified card.
        trusted_by: ``fingerprint`` (checked by an administrator) or ``rotation`` (endorsed by the previous key).
        now: the current time.
        previous_until: until when the previous generation stays accepted (a rotation's overlap); None: not at
            all from now on.
    Returns:
        The new generation.
    """
    previous = current_generation(session, partner) if partner.id is not None else None
    if previous is not None and previous.signing_kid != card.skid:
        previous.retired_at = now
        previous.accept_until = previous_until if previous_until is not None and previous_until > now else now
        partner.keys_changed_at = now
    partner.name, partner.base_url, partner.card = card.name, card.base_url, card_text(card)
    partner.signing_key, partner.signing_kid = b64encode(card.signing_key), card.skid
    partner.encryption_key, partner.encryption_kid = b64encode(card.encryption_key), card.ekid
    partner.fingerprint = card.fingerprint()
    partner.updated_at = now
    session.flush()
    generation = current_generation(session, partner)
    if generation is None:
        generation = PartnerKey(partner_id=partner.id, signing_kid=card.skid, signing_key=partner.signing_key,
                                encryption_kid=card.ekid, encryption_key=partner.encryption_key, card=partner.card,
                                fingerprint=partner.fingerprint, trusted_by=trusted_by, trusted_at=now)
        session.add(generation)
    else:  # the same keys trusted again (e.g. a renewed card): keep the generation, clear its retirement
        generation.card, generation.retired_at, generation.accept_until = partner.card, None, None
    session.flush()
    return generation


class KeyReuse(Conflict):
    """A card carries a key that is already another node's, or one key for both uses (SPEC.md 3.1)."""

    code = "key_reuse"


def check_key_reuse(session: orm.Session, card: NodeCard, *, partner_id: int | None,
                    own_kids: Collection[str] = ()) -> None:
    """Refuse a card whose signing or encryption key another partner holds or held, or this node does.

    A key belongs to one node: a card that reuses one (a partner's current or earlier key, or one of this
    node's own) would let one node's messages pass for another's. A card's two keys must differ too
    (``protocol`` refuses such a card as malformed before it gets here).

    Args:
        card: the verified card about to be trusted (partner add, a card trusted again, a rotation).
        partner_id: the partner the card is for, whose own earlier keys it may carry; None for a new partner.
        own_kids: every key id of this node (``NodeIdentity.own_kids``).
    Raises:
        KeyReuse: naming the key, its use on the card, and the node that holds it.
    """
    uses = {card.skid: "signing", card.ekid: "encryption"}
    if card.skid == card.ekid:
        raise KeyReuse(f"the card of {card.node_id} uses one key ({card.skid}) for signing and encryption: "
                       "not trusted, nothing stored")
    for kid, use in uses.items():
        if kid in own_kids:
            raise KeyReuse(f"the {use} key of the card of {card.node_id} ({kid}) is a key of this node: not "
                           "trusted, nothing stored")
    held = session.execute(
        sa.select(Partner.node_id, PartnerKey.signing_kid, PartnerKey.encryption_kid)
        .join(Partner, Partner.id == PartnerKey.partner_id)
        .where(sa.or_(PartnerKey.signing_kid.in_(uses), PartnerKey.encryption_kid.in_(uses)),
               PartnerKey.partner_id != (partner_id if partner_id is not None else -1))
        .order_by(Partner.node_id).limit(1)).first()
    if held is not None:
        kid = held.signing_kid if held.signing_kid in uses else held.encryption_kid
        their = "signing" if held.signing_kid == kid else "encryption"
        raise KeyReuse(f"the {uses[kid]} key of the card of {card.node_id} ({kid}) is the {their} key of partner "
                       f"{held.node_id}: a key belongs to one node only; not trusted, nothing stored")


class RevocationSigners:
    """Which of a partner's cards may sign the revocation of a key id (SPEC.md 3.3, "a card the verifier
    trusts"): its current card and the cards still in their overlap, unless revoked; and the card the key id
    belongs to, whatever its age (a key may always revoke itself). So a key that left its overlap long ago and
    later leaked cannot revoke the partner's current key."""

    def __init__(self, session: orm.Session, partner: Partner, now: datetime) -> None:
        revoked = revoked_kids(session, partner.id)
        self._held = [(g, card_from_bytes(g.card.encode("utf-8"))) for g in generations(session, partner)]
        self._trusted = [card for g, card in self._held
                         if g.revoked_at is None and g.signing_kid not in revoked
                         and (g.retired_at is None or (g.accept_until is not None and now < g.accept_until))]

    def for_kid(self, kid: object) -> list[NodeCard]:
        own = [card for g, card in self._held if kid in (g.signing_kid, g.encryption_kid)]
        return [*self._trusted, *(c for c in own if c not in self._trusted)]


def _signing_generation(session: orm.Session, partner: Partner, doc: Mapping[str, Any],
                        at: datetime | None) -> PartnerKey:
    kids = signature_ids(doc, partner.node_id)
    rows = session.scalars(sa.select(PartnerKey).where(PartnerKey.partner_id == partner.id,
                                                       PartnerKey.signing_kid.in_(kids))).all()
    if not rows:
        raise UnknownKeyError("not signed by any key this node holds for the partner")
    revoked = {r.kid: r for r in session.scalars(sa.select(KeyRevocation).where(
        KeyRevocation.partner_id == partner.id, KeyRevocation.kid.in_(kids)))}
    for row in rows:
        revocation = revoked.get(row.signing_kid)
        if revocation is None or (at is not None and at < revocation.received_at):
            return row
    raise RevokedKeyError("signed only with a key the partner revoked before this node had the document")


def signing_key_for(session: orm.Session, partner: Partner, doc: Mapping[str, Any], *,
                    at: datetime | None = None) -> nacl.signing.VerifyKey:
    """The partner's key that signed ``doc`` (a consent record, a custody step), current or retired, for a
    caller that verifies itself (``protocol.check_handover`` takes the origin's key). Without verifying.

    Args:
        partner: the signer.
        doc: the signed object.
        at: as :func:`verify_signed_by`.
    Returns:
        The key of the generation named by ``doc``'s signature; the current key when no held, unrevoked
        generation is named (the caller's verification then fails as it should).
    """
    if partner.keys_changed_at is not None:
        try:
            generation = _signing_generation(session, partner, doc, at)
            return nacl.signing.VerifyKey(b64decode(generation.signing_key, length=32))
        except (UnknownKeyError, RevokedKeyError):
            pass
    return nacl.signing.VerifyKey(b64decode(partner.signing_key, length=32))


def verify_signed_by(session: orm.Session, partner: Partner, doc: Mapping[str, Any], *,
                     at: datetime | None = None) -> nacl.signing.VerifyKey:
    """Verify a partner's ``sign_json`` signature with whichever of its keys made it, current or retired.

    Args:
        partner: the signer.
        doc: the signed object (a consent record, a custody step, a receipt).
        at: when this node got the document (from its own records): a key revoked later still counts for it;
            None: revoked keys never count.
    Returns:
        The verify key that made the signature.
    Raises:
        UnknownKeyError: signed with no key this node ever held for the partner.
        RevokedKeyError: signed only with a revoked key (and not got before the revocation).
        BadSignatureError / MalformedError: the signature does not verify.
    """
    generation = _signing_generation(session, partner, doc, at)
    verify_key = nacl.signing.VerifyKey(b64decode(generation.signing_key, length=32))
    verify_signed_json(doc, partner.node_id, verify_key)
    return verify_key


def verify_stored_receipt(session: orm.Session, message: OutboundMessage) -> Receipt:
    """Verify again the receipt stored for a delivered message, with the partner's key history.

    Raises:
        UnknownKeyError: the message has no receipt, or it is signed by no key held for the partner.
        RevokedKeyError / BadSignatureError / MalformedError: as :func:`verify_signed_by` and
            ``protocol.verify_receipt`` (which also checks the message id and content hash).
    """
    if message.receipt is None:
        raise UnknownKeyError("the message has no receipt")
    partner = session.get(Partner, message.partner_id)
    if partner is None:
        raise UnknownKeyError("the message's partner is gone")
    receipt = strict_loads(message.receipt)
    generation = _signing_generation(session, partner, receipt, message.delivered_at)
    return verify_receipt(receipt, card_from_bytes(generation.card.encode("utf-8")),
                          sender=envelope_sender(message.envelope), message_id=message.message_id,
                          content_hash=message.message_hash)
