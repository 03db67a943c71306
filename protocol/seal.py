"""Seal a message for one partner, and open (verify) a received envelope in exactly one function.

``seal``: sign the inner document with ``sign_json`` (non-repudiation), encrypt its canonical bytes with
crypto_box (X25519 + XSalsa20-Poly1305, random 24-byte nonce) for the recipient's encryption key, then sign
the outer envelope so that a receiver can refuse junk before decrypting.

``open_envelope`` runs the verification order of SPEC.md section 6, step by step, and raises the
``ProtocolError`` subclass named there for the first failing step. The partner directory and the inbox
history are injected (``Directory``, ``History``) so the node implements them over its database; the clock is
the ``now`` argument. Agreement and consent checks are the caller's (``protocol.consent``); the returned
``OpenedMessage`` carries what they need.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

import nacl.exceptions
import nacl.public
import nacl.signing

from .canonical import b64encode, canonical_bytes, loads_canonical
from .cards import NodeCard
from .chain import message_hash
from .envelope import (
    CLOCK_SKEW,
    DEFAULT_TTL,
    HEADER_FIELDS,
    MAX_ENVELOPE_BYTES,
    MAX_INNER_BYTES,
    MAX_TTL,
    NONCE_BYTES,
    Envelope,
    Header,
    check_agreement,
    check_hash,
    check_id,
    parse_inner,
    parse_plain_envelope,
    sig_member,
)
from .errors import (
    BadSignatureError,
    ChainError,
    DecryptionError,
    ExpiredError,
    HeaderMismatchError,
    MalformedError,
    NonCanonicalError,
    NotYetValidError,
    OversizedError,
    ReplayedError,
    RevokedKeyError,
    UnknownKeyError,
    UnknownSenderError,
    WrongRecipientError,
)
from .keys import NodeKeys
from .messages import MESSAGE_TYPES, validate_body
from .signing import verify_signature
from .times import require_aware


@dataclass(frozen=True)
class PartnerView:
    """What the receiver accepts from one partner: key id → raw public key, and revoked key ids.

    ``accepted_until`` limits keys of a previous card after a rotation (SPEC.md 3.2): key id → the end of the
    overlap, from which that key is refused (``unknown_key``). A key not named there has no time limit.
    """

    node_id: str
    signing_keys: Mapping[str, bytes]
    encryption_keys: Mapping[str, bytes]
    revoked: frozenset[str] = frozenset()
    accepted_until: Mapping[str, datetime] = field(default_factory=dict)

    @classmethod
    def from_cards(cls, cards: Iterable[NodeCard], revoked: frozenset[str] = frozenset()) -> PartnerView:
        """A view accepting the keys of the given (already verified) cards of one node.

        Raises:
            MalformedError: no cards, or cards of different nodes.
        """
        card_list = list(cards)
        if not card_list or len({c.node_id for c in card_list}) != 1:
            raise MalformedError("partner view needs cards of exactly one node")
        return cls(
            node_id=card_list[0].node_id,
            signing_keys={c.skid: c.signing_key for c in card_list},
            encryption_keys={c.ekid: c.encryption_key for c in card_list},
            revoked=revoked,
        )


class Directory(Protocol):
    """The receiver's partner directory (the node implements it over its partner table)."""

    def partner(self, node_id: str) -> PartnerView | None:
        """The partner's accepted keys, or None if the node is unknown or not allowed to send to us."""
        ...


class History(Protocol):
    """The receiver's inbox history (the node implements it over its inbox table)."""

    def seen(self, sender: str, message_id: str) -> bool:
        """Whether a message with this id from this sender was already accepted."""
        ...

    def chain_head(self, sender: str, thread: str) -> str | None:
        """``message_hash`` of the last message accepted from ``sender`` in ``thread`` (None if none)."""
        ...


class BoxCache:
    """Precomputed crypto_box shared keys per (own key, peer key); create one per process and pass it in."""

    def __init__(self, max_entries: int = 1024) -> None:
        self._max = max_entries
        self._boxes: OrderedDict[tuple[bytes, bytes], nacl.public.Box] = OrderedDict()

    def box(self, private_key: nacl.public.PrivateKey, peer_public: bytes) -> nacl.public.Box:
        """The Box for this key pair (computing the X25519 shared key once).

        Raises:
            DecryptionError: the peer key is not a usable X25519 key.
        """
        cache_key = (bytes(private_key.public_key), peer_public)
        box = self._boxes.get(cache_key)
        if box is None:
            try:
                box = nacl.public.Box(private_key, nacl.public.PublicKey(peer_public))
            except (nacl.exceptions.CryptoError, nacl.exceptions.ValueError, nacl.exceptions.TypeError):
                raise DecryptionError("unusable peer encryption key") from None
            self._boxes[cache_key] = box
            if len(self._boxes) > self._max:
                self._boxes.popitem(last=False)
        return box


@dataclass(frozen=True)
class SealedMessage:
    """The result of ``seal``: the envelope bytes to send and what the sender records."""

    data: bytes
    header: Header
    message_hash: str
    inner_bytes: bytes = field(repr=False)


@dataclass(frozen=True)
class OpenedMessage:
    """A fully verified message. ``inner_bytes`` is the sender-signed proof a third party can check."""

    header: Header
    skid: str
    prev: str | None
    agreement: str | None
    body: dict[str, Any] = field(repr=False)
    message_hash: str
    inner_bytes: bytes = field(repr=False)


def _signed_inner_bytes(inner: dict[str, Any], keys: NodeKeys) -> bytes:
    # "signatures" sorts last among the inner members, so the canonical signed document is the canonical
    # unsigned one with the signatures member appended: one canonicalisation instead of two.
    unsigned = canonical_bytes(inner)
    signature = keys.signing_key.sign(unsigned).signature
    signatures = canonical_bytes({keys.node_id: {keys.skid: b64encode(signature)}})
    return b"".join((memoryview(unsigned)[:-1], b',"signatures":', signatures, b"}"))


def seal(
    *,
    keys: NodeKeys,
    recipient: NodeCard,
    msg_type: str,
    body: dict[str, Any],
    thread: str,
    now: datetime,
    prev: str | None = None,
    agreement: str | None = None,
    ttl: timedelta = DEFAULT_TTL,
    message_id: str | None = None,
    nonce: bytes | None = None,
    boxes: BoxCache | None = None,
    validate: bool = True,
) -> SealedMessage:
    """Seal ``body`` as a message of ``msg_type`` from ``keys.node_id`` to ``recipient``.

    Args:
        keys: the sender's keys.
        recipient: the recipient's verified card (node id and encryption key).
        msg_type: one of ``protocol.MESSAGE_TYPES``.
        body: the message body; validated with ``protocol.validate_body``.
        thread: the case thread id (22 base64url characters).
        now: the current time (aware); ``created`` is ``now`` cut to whole seconds.
        prev: ``message_hash`` of the sender's previous message in this thread, None for its first.
        agreement: id of the data-sharing agreement the message is sent under (required by handover and
            forward bodies; see messages.md).
        ttl: lifetime, at most 90 days (default 30).
        message_id: fixed id (vectors only); default 128 random bits.
        nonce: fixed 24-byte nonce (vectors only; never reuse one); default random.
        boxes: a ``BoxCache`` to reuse the precomputed shared key.
        validate: False skips the sender-side schema check when the caller has just validated the body
            (receivers always validate; negative test vectors use it to build invalid bodies).
    Returns:
        The sealed message.
    Raises:
        SchemaError: the body does not match its type's schema.
        MalformedError: an argument out of bounds.
        OversizedError: the inner document or envelope exceeds its limit.
    """
    require_aware(now)
    if msg_type not in MESSAGE_TYPES:
        raise MalformedError("unknown message type")
    if not timedelta(seconds=1) <= ttl <= MAX_TTL:
        raise MalformedError("ttl out of bounds")
    if validate:
        validate_body(msg_type, body)
    created = now.replace(microsecond=0)
    header = Header(
        id=check_id(message_id) if message_id is not None else b64encode(os.urandom(16)),
        type=msg_type, sender=keys.node_id, recipient=recipient.node_id, created=created,
        expires=created + ttl, thread=check_id(thread, "thread"),
    )
    inner = {"header": header.to_json(), "prev": check_hash(prev), "agreement": check_agreement(agreement),
             "body": body}
    inner_bytes = _signed_inner_bytes(inner, keys)
    if len(inner_bytes) > MAX_INNER_BYTES:
        raise OversizedError("inner document too large")
    nonce = nonce if nonce is not None else os.urandom(NONCE_BYTES)
    if len(nonce) != NONCE_BYTES:
        raise MalformedError("nonce must be 24 bytes")
    box = (boxes or BoxCache()).box(keys.encryption_key, recipient.encryption_key)
    ct = box.encrypt(inner_bytes, nonce).ciphertext
    head, tail = Envelope(header, keys.skid, keys.ekid, recipient.ekid, nonce, ct, b"").canonical_parts()
    data = b"".join((head, sig_member(keys.signing_key.sign(head + tail).signature), tail))
    if len(data) > MAX_ENVELOPE_BYTES:
        raise OversizedError("envelope too large")
    return SealedMessage(data, header, message_hash(inner_bytes), inner_bytes)


def _signature_input(data: bytes, envelope: Envelope) -> bytes:
    # The envelope is canonical (checked before), so removing its "sig" member ("ct" always precedes it)
    # yields the canonical envelope without "sig": the outer signature input, cut from the received bytes.
    member = sig_member(envelope.sig)
    signature_input = data.replace(member, b"", 1)
    if len(signature_input) != len(data) - len(member):
        raise NonCanonicalError("sig member not found in canonical position")
    return signature_input


def open_envelope(
    data: bytes,
    *,
    keys: NodeKeys,
    directory: Directory,
    history: History,
    now: datetime,
    boxes: BoxCache | None = None,
    retired_keys: Sequence[NodeKeys] = (),
    check_chain: bool = True,
) -> OpenedMessage:
    """Verify and decrypt a received envelope (SPEC.md section 6, steps 1-16).

    Args:
        data: the received bytes.
        keys: the receiver's current keys.
        directory: known partners and the keys accepted from them.
        history: replay and chain-head lookups.
        now: the current time (aware).
        boxes: a ``BoxCache`` to reuse precomputed shared keys.
        retired_keys: the receiver's previous keys, still accepted for decryption during a rotation.
        check_chain: False only for offline debugging (the CLI); nodes always check the chain link.
    Returns:
        The verified message.
    Raises:
        ProtocolError: the subclass for the first failing step (oversized, malformed, non_canonical,
            unsupported_version, wrong_recipient, unknown_sender, revoked_key, unknown_key, bad_signature,
            not_yet_valid, expired, replayed, decryption_failed, header_mismatch, broken_chain).
    """
    require_aware(now)
    # 1. Size.
    if len(data) > MAX_ENVELOPE_BYTES:
        raise OversizedError("envelope too large")
    # 2-4. A common envelope passes steps 2-4 in one go; any other bytes take them one at a time and fail
    # at the first failing step (parse_plain_envelope never raises for a step before 4).
    plain = parse_plain_envelope(data)
    if plain is not None:
        doc, envelope = plain
    else:
        # 2. Strict JSON, in canonical form (the only form a signature input can have, in every version).
        doc = loads_canonical(data)
        # 3-4. Version (before anything else is interpreted), then the exact shape.
        envelope = Envelope.from_json(doc)
    header = envelope.header
    if header.type not in MESSAGE_TYPES:
        raise MalformedError("unknown message type")
    # 5. Addressed to us.
    if header.recipient != keys.node_id:
        raise WrongRecipientError("not addressed to this node")
    # 6. Sender known and allowed.
    partner = directory.partner(header.sender)
    if partner is None or partner.node_id != header.sender:
        raise UnknownSenderError("sender not known")
    # 7. Key ids: the sender's signing and encryption keys (a previous card's only until its overlap ends),
    # and our encryption key.
    for kid, accepted in ((envelope.skid, partner.signing_keys), (envelope.ekid, partner.encryption_keys)):
        if kid in partner.revoked:
            raise RevokedKeyError("sender key revoked")
        if kid not in accepted:
            raise UnknownKeyError("sender key not known")
        until = partner.accepted_until.get(kid)
        if until is not None and now >= until:
            raise UnknownKeyError("sender key no longer accepted: its rotation overlap ended")
    own = {k.ekid: k.encryption_key for k in (keys, *retired_keys)}
    if envelope.rkid not in own:
        raise UnknownKeyError("recipient key not ours")
    # 8. Outer signature over the received bytes minus the sig member.
    verify_key = nacl.signing.VerifyKey(partner.signing_keys[envelope.skid])
    verify_signature(_signature_input(data, envelope), envelope.sig, verify_key)
    # 9. Time window.
    if header.created > now + CLOCK_SKEW:
        raise NotYetValidError("created in the future")
    if now >= header.expires:
        raise ExpiredError("message expired")
    # 10. Replay.
    if history.seen(header.sender, header.id):
        raise ReplayedError("message id already seen")
    # 11. Decrypt.
    box = (boxes or BoxCache()).box(own[envelope.rkid], partner.encryption_keys[envelope.ekid])
    try:
        inner_bytes = box.decrypt(envelope.ct, envelope.nonce)
    except (nacl.exceptions.CryptoError, nacl.exceptions.ValueError, nacl.exceptions.TypeError):
        raise DecryptionError("ciphertext does not authenticate") from None
    # 12. Inner document: size, strict JSON in canonical form, shape.
    if len(inner_bytes) > MAX_INNER_BYTES:
        raise OversizedError("inner document too large")
    inner = loads_canonical(inner_bytes)
    inner_header, inner_kid, inner_sig = parse_inner(inner, header.sender)
    # 13. Inner signature, by the same key as the outer one, over the received bytes minus "signatures"
    # (canonical, and "signatures" is its last member: no other member can hold this byte sequence after it).
    if inner_kid != envelope.skid:
        raise BadSignatureError("inner document signed with another key")
    unsigned = b"".join((memoryview(inner_bytes)[: inner_bytes.rindex(b',"signatures":')], b"}"))
    verify_signature(unsigned, inner_sig, verify_key)
    # 14. Inner header equals the outer header.
    if inner_header != {name: doc[name] for name in HEADER_FIELDS}:
        raise HeaderMismatchError("inner header differs from the envelope")
    # 15. Body schema.
    body = inner["body"]
    validate_body(header.type, body)
    # 16. Chain link.
    prev = inner["prev"]
    if check_chain and prev != history.chain_head(header.sender, header.thread):
        raise ChainError("prev does not match the last message from this sender in this thread")
    return OpenedMessage(header, envelope.skid, prev, inner["agreement"], body, message_hash(inner_bytes),
                         inner_bytes)
