"""Bundles: store-and-forward by file, for when there is no link between two nodes (SPEC.md, "Bundles").

A bundle carries, in one signed and encrypted file, either the envelopes a node has queued for one partner
(``ccm_bundle``) or the receipts a node signed for the envelopes of such a bundle (``ccm_receipts``). The file is
one JSON object in RFC 8785 canonical form::

    {"ciphertext":…,"created_at":…,"ekid":…,"from":…,"nonce":…,"rkid":…,"sig":…,"skid":…,"to":…,"type":…,"v":1}

``ciphertext`` is the crypto_box (sender's X25519 key ``ekid`` to the recipient's ``rkid``, as for envelopes) of
the canonical plaintext ``{"items":[…]}``: base64url of each envelope's bytes in queue order, or each receipt
object. ``sig`` is the sender's Ed25519 signature (key ``skid``) over the canonical bundle without ``sig``.

``open_bundle`` runs the verification order of SPEC.md ("Bundles") and raises the ``ProtocolError`` of the
first failing step; the sender is looked up in the same ``Directory`` ``open_envelope`` uses, and the signature
is checked, before anything is decrypted. The items are the caller's: every envelope goes through the full
verification order of section 6 (the node's inbox), every receipt through ``verify_receipt``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import nacl.exceptions
import nacl.public
import nacl.signing

from .canonical import b64decode, b64encode, b64encode_ascii, canonical_bytes, loads_canonical
from .cards import NodeCard
from .envelope import CLOCK_SKEW, NONCE_BYTES, SIGNATURE_BYTES, check_id, check_version
from .errors import (
    DecryptionError,
    MalformedError,
    NonCanonicalError,
    NotYetValidError,
    OversizedError,
    RevokedKeyError,
    UnknownKeyError,
    UnknownSenderError,
    WrongRecipientError,
)
from .keys import NodeKeys, check_node_id
from .seal import BoxCache, Directory
from .signing import verify_signature
from .times import format_time, parse_time, require_aware

BUNDLE_VERSION = 1
#: A bundle of envelopes, and a bundle of the receipts signed for them.
BUNDLE = "ccm_bundle"
RECEIPTS = "ccm_receipts"
BUNDLE_TYPES = frozenset({BUNDLE, RECEIPTS})
MAX_BUNDLE_BYTES = 268_435_456  # 256 MiB, the whole file
MAX_BUNDLE_ITEMS = 100_000
#: What the bundle document holds besides the ciphertext, at most (the node ids at their longest).
BUNDLE_OVERHEAD = 1024
BUNDLE_FIELDS = frozenset({
    "v", "type", "from", "to", "created_at", "skid", "ekid", "rkid", "nonce", "ciphertext", "sig",
})
_SMALL_FIELDS = BUNDLE_FIELDS - {"ciphertext"}
# "ciphertext" sorts first among the members, so a canonical bundle starts with it; "sig" sorts just before
# "skid" (see _split).
_CT_PREFIX = b'{"ciphertext":"'
_SIG_PREFIX = b',"sig":"'
_SKID_MEMBER = b',"skid":'


@dataclass(frozen=True)
class OpenedBundle:
    """A verified, decrypted bundle. Exactly one of ``envelopes`` and ``receipts`` is used, by ``kind``."""

    kind: str
    sender: str
    recipient: str
    created_at: datetime
    skid: str
    envelopes: tuple[bytes, ...] = field(default=(), repr=False)
    receipts: tuple[dict[str, Any], ...] = field(default=(), repr=False)

    @property
    def count(self) -> int:
        """How many items the bundle holds."""
        return len(self.envelopes) if self.kind == BUNDLE else len(self.receipts)


def _b64_length(size: int) -> int:
    """Length of the unpadded base64url encoding of ``size`` bytes."""
    return (4 * size + 2) // 3


def envelopes_that_fit(sizes: Iterable[int], max_bytes: int = MAX_BUNDLE_BYTES,
                       max_items: int = MAX_BUNDLE_ITEMS) -> int:
    """How many of the leading envelopes, of the given sizes in bytes, one bundle file can hold.

    The count is exact for the plaintext and errs on the safe side by at most ``BUNDLE_OVERHEAD`` bytes for
    the rest of the document, so a bundle of that many envelopes never exceeds ``max_bytes``.
    """
    plaintext = len(b'{"items":[]}')
    count = 0
    for size in sizes:
        grown = plaintext + _b64_length(size) + 2 + (1 if count else 0)
        if count >= max_items or BUNDLE_OVERHEAD + _b64_length(grown + 16) > max_bytes:
            break
        plaintext = grown
        count += 1
    return count


def seal_items(keys: NodeKeys, recipient: NodeCard, kind: str, items: list[Any], now: datetime,
               nonce: bytes | None, boxes: BoxCache | None) -> bytes:
    """Seal ``items`` as a bundle of ``kind`` (``seal_bundle`` and ``seal_receipts`` check the items first)."""
    require_aware(now)
    if len(items) > MAX_BUNDLE_ITEMS:
        raise OversizedError("too many items for one bundle")
    plaintext = canonical_bytes({"items": items})
    nonce = nonce if nonce is not None else os.urandom(NONCE_BYTES)
    if len(nonce) != NONCE_BYTES:
        raise MalformedError("nonce must be 24 bytes")
    box = (boxes or BoxCache()).box(keys.encryption_key, recipient.encryption_key)
    ciphertext = box.encrypt(plaintext, nonce).ciphertext
    small = canonical_bytes({
        "v": BUNDLE_VERSION, "type": kind, "from": keys.node_id, "to": recipient.node_id,
        "created_at": format_time(now), "skid": keys.skid, "ekid": keys.ekid, "rkid": recipient.ekid,
        "nonce": b64encode(nonce),
    })
    at_skid = small.index(_SKID_MEMBER)
    head = b"".join((_CT_PREFIX, b64encode_ascii(ciphertext), b'",', small[1:at_skid]))
    tail = small[at_skid:]
    signature = keys.signing_key.sign(head + tail).signature
    data = b"".join((head, _SIG_PREFIX, b64encode_ascii(signature), b'"', tail))
    if len(data) > MAX_BUNDLE_BYTES:
        raise OversizedError("bundle too large")
    return data


def seal_bundle(*, keys: NodeKeys, recipient: NodeCard, envelopes: Sequence[bytes], now: datetime,
                nonce: bytes | None = None, boxes: BoxCache | None = None) -> bytes:
    """Seal queued envelopes for ``recipient`` into one ``ccm_bundle`` file.

    Args:
        keys: the sender's keys (it must be the sender of the envelopes; the receiver checks each).
        recipient: the recipient's verified card.
        envelopes: the envelopes' bytes, in the order they were queued.
        now: the current time (aware); ``created_at`` is it cut to whole seconds.
        nonce: fixed 24-byte nonce (known-answer tests only; never reuse one); default random.
        boxes: a ``BoxCache`` to reuse the precomputed shared key.
    Returns:
        The bundle file's bytes.
    Raises:
        OversizedError: more than ``MAX_BUNDLE_ITEMS`` envelopes, or a file over ``MAX_BUNDLE_BYTES`` (see
            ``envelopes_that_fit``).
        MalformedError: a bad nonce.
    """
    return seal_items(keys, recipient, BUNDLE, [b64encode(e) for e in envelopes], now, nonce, boxes)


def seal_receipts(*, keys: NodeKeys, recipient: NodeCard, receipts: Sequence[Mapping[str, Any]],
                  now: datetime, nonce: bytes | None = None, boxes: BoxCache | None = None) -> bytes:
    """Seal the receipts signed for a bundle's envelopes into one ``ccm_receipts`` file for their sender.

    Args:
        keys: the receiver's keys (the receipts' signer).
        recipient: the card of the node that sent the envelopes.
        receipts: the signed receipt objects (``make_receipt``), in the bundle's order.
        now: the current time (aware).
        nonce: fixed nonce (known-answer tests only).
        boxes: a ``BoxCache``.
    Returns:
        The receipts file's bytes.
    Raises:
        OversizedError: too many receipts, or too large.
        NonCanonicalError: a receipt cannot be canonicalised.
    """
    return seal_items(keys, recipient, RECEIPTS, [dict(r) for r in receipts], now, nonce, boxes)


def parse_plain(data: bytes) -> tuple[dict[str, Any], bytes, int, int] | None:
    """The bundle's members, its ciphertext and where ``sig`` lies, for the one layout ``seal_items`` writes.

    None when ``data`` is not in that layout; the caller then parses strictly and fails with the precise
    error. The layout: ``{"ciphertext":"`` then base64url up to the next ``"`` then ``,`` and the rest of the
    members as a canonical object whose members all sort after ``ciphertext``: exactly the canonical form of
    the whole, without running the JSON parser over the ciphertext (nearly all of the file).
    """
    if not data.startswith(_CT_PREFIX):
        return None
    end = data.find(b'"', len(_CT_PREFIX))
    if end < 0 or data[end + 1 : end + 2] != b",":
        return None
    try:
        ciphertext = b64decode(data[len(_CT_PREFIX) : end].decode("ascii"))
        rest = loads_canonical(b"{" + data[end + 2 :])
    except (MalformedError, UnicodeDecodeError):
        return None
    if not isinstance(rest, dict) or set(rest) != _SMALL_FIELDS:
        return None
    sig_start = data.find(_SIG_PREFIX, end)
    if sig_start < 0:
        return None
    sig_end = data.find(b'"', sig_start + len(_SIG_PREFIX)) + 1
    return (rest, ciphertext, sig_start, sig_end) if sig_end > 0 else None


def _parse(data: bytes) -> tuple[dict[str, Any], bytes, bytes]:
    """Steps 2-4: strict canonical JSON, version, shape. Returns (members, ciphertext, signature input)."""
    plain = parse_plain(data)
    if plain is not None:
        doc, ciphertext, sig_start, sig_end = plain
        check_version(doc)
        _check_members(doc)
    else:
        doc = loads_canonical(data)
        if not isinstance(doc, dict):
            raise MalformedError("bundle must be a JSON object")
        check_version(doc)
        if set(doc) != BUNDLE_FIELDS:
            raise MalformedError("bundle: unexpected or missing fields")
        if not isinstance(doc["ciphertext"], str):
            raise MalformedError("ciphertext: expected base64url")
        ciphertext = b64decode(doc["ciphertext"])
        _check_members(doc)
        # Canonical, and every member a base64url, id or time string: the member occurs once, as written here.
        member = _SIG_PREFIX + doc["sig"].encode("ascii") + b'"'
        sig_start = data.find(member)
        if sig_start < 0:
            raise NonCanonicalError("sig member not found in canonical position")
        sig_end = sig_start + len(member)
    return doc, ciphertext, data[:sig_start] + data[sig_end:]


def _check_members(doc: Mapping[str, Any]) -> None:
    """Step 4, each member's form (the exact member set is checked by the caller)."""
    if not isinstance(doc["type"], str) or doc["type"] not in BUNDLE_TYPES:
        raise MalformedError("type: not a bundle type")
    check_node_id(doc["from"])
    check_node_id(doc["to"])
    parse_time(doc["created_at"])
    for name in ("skid", "ekid", "rkid"):
        check_id(doc[name], name)
    b64decode(doc["nonce"], length=NONCE_BYTES)
    b64decode(doc["sig"], length=SIGNATURE_BYTES)


def _items(plaintext: bytes, kind: str, max_items: int) -> tuple[tuple[bytes, ...], tuple[dict[str, Any], ...]]:
    """Step 10: the plaintext's shape, and the items decoded."""
    doc = loads_canonical(plaintext)
    if not isinstance(doc, dict) or list(doc) != ["items"] or not isinstance(doc["items"], list):
        raise MalformedError("bundle plaintext must be {\"items\": [...]}")
    items = doc["items"]
    if len(items) > max_items:
        raise OversizedError("too many items in the bundle")
    if kind == BUNDLE:
        if not all(isinstance(item, str) for item in items):
            raise MalformedError("bundle items must be base64url strings")
        return tuple(b64decode(item) for item in items), ()
    if not all(isinstance(item, dict) for item in items):
        raise MalformedError("receipts bundle items must be objects")
    return (), tuple(items)


def open_bundle(
    data: bytes,
    *,
    keys: NodeKeys,
    directory: Directory,
    now: datetime,
    boxes: BoxCache | None = None,
    retired_keys: Sequence[NodeKeys] = (),
    max_bytes: int = MAX_BUNDLE_BYTES,
    max_items: int = MAX_BUNDLE_ITEMS,
) -> OpenedBundle:
    """Verify and decrypt a bundle file (SPEC.md, "Bundles", steps 1-10); its items are not verified here.

    Args:
        data: the file's bytes.
        keys: the receiver's current keys.
        directory: known partners and the keys accepted from them (the one ``open_envelope`` uses).
        now: the current time (aware).
        boxes: a ``BoxCache``.
        retired_keys: the receiver's previous keys, still accepted for decryption during a rotation.
        max_bytes: the largest file accepted (at most ``MAX_BUNDLE_BYTES``; smaller in tests).
        max_items: the most items accepted.
    Returns:
        The verified bundle with its items.
    Raises:
        ProtocolError: the subclass for the first failing step (oversized, malformed, non_canonical,
            unsupported_version, wrong_recipient, unknown_sender, revoked_key, unknown_key, bad_signature,
            not_yet_valid, decryption_failed).
    """
    require_aware(now)
    # 1. Size, before anything is parsed.
    if len(data) > min(max_bytes, MAX_BUNDLE_BYTES):
        raise OversizedError("bundle too large")
    # 2-4. Strict canonical JSON, version, shape.
    doc, ciphertext, signature_input = _parse(data)
    # 5. Addressed to us.
    if doc["to"] != keys.node_id:
        raise WrongRecipientError("bundle not addressed to this node")
    # 6. Sender known and allowed.
    sender = doc["from"]
    partner = directory.partner(sender)
    if partner is None or partner.node_id != sender:
        raise UnknownSenderError("sender not known")
    # 7. Key ids.
    for kid, accepted in ((doc["skid"], partner.signing_keys), (doc["ekid"], partner.encryption_keys)):
        if kid in partner.revoked:
            raise RevokedKeyError("sender key revoked")
        if kid not in accepted:
            raise UnknownKeyError("sender key not known")
    own = {k.ekid: k.encryption_key for k in (keys, *retired_keys)}
    if doc["rkid"] not in own:
        raise UnknownKeyError("recipient key not ours")
    # 8. Signature over the bundle without "sig".
    verify_key = nacl.signing.VerifyKey(partner.signing_keys[doc["skid"]])
    verify_signature(signature_input, b64decode(doc["sig"], length=SIGNATURE_BYTES), verify_key)
    # 9. Not from the future.
    created_at = parse_time(doc["created_at"])
    if created_at > now + CLOCK_SKEW:
        raise NotYetValidError("bundle created in the future")
    # 10. Decrypt, then the plaintext's shape.
    box = (boxes or BoxCache()).box(own[doc["rkid"]], partner.encryption_keys[doc["ekid"]])
    try:
        plaintext = box.decrypt(ciphertext, b64decode(doc["nonce"], length=NONCE_BYTES))
    except (nacl.exceptions.CryptoError, nacl.exceptions.ValueError, nacl.exceptions.TypeError):
        raise DecryptionError("ciphertext does not authenticate") from None
    envelopes, receipts = _items(plaintext, doc["type"], max_items)
    return OpenedBundle(doc["type"], sender, doc["to"], created_at, doc["skid"], envelopes, receipts)
