"""Node cards (a node's signed public description), key rotation and key revocation.

A card is self-signed with ``sign_json`` by the signing key it carries. Administrators accept a partner's
first card only after comparing its fingerprint over the phone. A later card that names the previous signing
key in ``replaces`` and carries a second signature by that key (the endorsement) is accepted without a new
manual check. A revocation is a signed statement naming a key id; see SPEC.md section 3.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any

import nacl.signing

from .canonical import b64decode, b64encode, strict_loads
from .errors import (
    ExpiredError,
    MalformedError,
    NotYetValidError,
    OversizedError,
    RevokedKeyError,
    UnknownKeyError,
    UnsupportedVersionError,
)
from .keys import NodeKeys, check_node_id, fingerprint, key_id
from .signing import sign_json, signature_ids, verify_signed_json
from .times import format_time, parse_time, require_aware

CARD_VERSION = 1
CARD_TYPE = "node_card"
REVOCATION_TYPE = "key_revocation"
REVOCATION_REASONS = frozenset({"compromised", "superseded", "retired"})
MAX_NAME_LENGTH = 200
MAX_URL_LENGTH = 2048
CLOCK_SKEW = timedelta(seconds=300)
_URL_RE = re.compile(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~%/-]*)?")
_KID_RE = re.compile(r"[A-Za-z0-9_-]{22}")
_CARD_FIELDS = frozenset({
    "v", "type", "node_id", "name", "base_url", "signing_key", "signing_kid", "encryption_key",
    "encryption_kid", "valid_from", "valid_until", "replaces", "signatures",
})
_REVOCATION_FIELDS = frozenset({"v", "type", "node_id", "kid", "revoked_at", "reason", "signatures"})


def check_kid(value: object) -> str:
    """Return ``value`` if it has the key-id form (22 base64url characters).

    Raises:
        MalformedError: it does not.
    """
    if not isinstance(value, str) or _KID_RE.fullmatch(value) is None:
        raise MalformedError("not a key id")
    return value


def _text(doc: Mapping[str, Any], name: str, limit: int) -> str:
    value = doc.get(name)
    if not isinstance(value, str) or not value or len(value) > limit:
        raise MalformedError(f"{name}: expected a string of 1..{limit} characters")
    return value


@dataclass(frozen=True)
class NodeCard:
    """A parsed node card. ``from_json`` checks shape only; call ``verify_card`` before trusting it."""

    node_id: str
    name: str
    base_url: str
    signing_key: bytes
    encryption_key: bytes
    valid_from: datetime
    valid_until: datetime
    replaces: str | None
    signatures: Mapping[str, Mapping[str, str]]

    @cached_property
    def skid(self) -> str:
        return key_id(self.signing_key)

    @cached_property
    def ekid(self) -> str:
        return key_id(self.encryption_key)

    @property
    def verify_key(self) -> nacl.signing.VerifyKey:
        return nacl.signing.VerifyKey(self.signing_key)

    def fingerprint(self) -> str:
        return fingerprint(self.node_id, self.signing_key)

    def to_json(self) -> dict[str, Any]:
        """The card as a JSON object (with its signatures)."""
        return {
            "v": CARD_VERSION,
            "type": CARD_TYPE,
            "node_id": self.node_id,
            "name": self.name,
            "base_url": self.base_url,
            "signing_key": b64encode(self.signing_key),
            "signing_kid": self.skid,
            "encryption_key": b64encode(self.encryption_key),
            "encryption_kid": self.ekid,
            "valid_from": format_time(self.valid_from),
            "valid_until": format_time(self.valid_until),
            "replaces": self.replaces,
            "signatures": {s: dict(v) for s, v in self.signatures.items()},
        }

    @classmethod
    def from_json(cls, doc: object) -> NodeCard:
        """Parse a card object strictly (exact field set, bounded strings, consistent key ids).

        Raises:
            UnsupportedVersionError: ``v`` is not 1.
            MalformedError: anything else about its shape.
        """
        if not isinstance(doc, dict):
            raise MalformedError("card must be an object")
        _check_version(doc)
        if set(doc) != _CARD_FIELDS or doc["type"] != CARD_TYPE:
            raise MalformedError("card: unexpected fields or type")
        signing_key = b64decode(doc["signing_key"], length=32)
        encryption_key = b64decode(doc["encryption_key"], length=32)
        if doc["signing_kid"] != key_id(signing_key) or doc["encryption_kid"] != key_id(encryption_key):
            raise MalformedError("card: key id does not match key")
        if signing_key == encryption_key:
            raise MalformedError("card: the signing and encryption keys must differ")
        base_url = _text(doc, "base_url", MAX_URL_LENGTH)
        if _URL_RE.fullmatch(base_url) is None:
            raise MalformedError("card: base_url is not an http(s) URL")
        replaces = doc["replaces"]
        if replaces is not None:
            check_kid(replaces)
        signatures = doc["signatures"]
        if not isinstance(signatures, dict) or not all(
            isinstance(v, dict) and all(isinstance(s, str) for s in v.values()) for v in signatures.values()
        ):
            raise MalformedError("card: signatures must be an object of objects of strings")
        valid_from, valid_until = parse_time(doc["valid_from"]), parse_time(doc["valid_until"])
        if valid_until <= valid_from:
            raise MalformedError("card: valid_until must be after valid_from")
        return cls(
            node_id=check_node_id(doc["node_id"]),
            name=_text(doc, "name", MAX_NAME_LENGTH),
            base_url=base_url,
            signing_key=signing_key,
            encryption_key=encryption_key,
            valid_from=valid_from,
            valid_until=valid_until,
            replaces=replaces,
            signatures=signatures,
        )


def _check_version(doc: Mapping[str, Any]) -> None:
    version = doc.get("v")
    if type(version) is not int:
        raise MalformedError("v must be an integer")
    if version != CARD_VERSION:
        raise UnsupportedVersionError(f"version {version} not supported")


def make_card(
    keys: NodeKeys,
    *,
    name: str,
    base_url: str,
    valid_from: datetime,
    valid_until: datetime,
    previous: NodeKeys | None = None,
) -> NodeCard:
    """Make and sign a node card.

    Args:
        keys: the node's (new) keys; the card is self-signed with ``keys.signing_key``.
        name: display name (1..200 characters).
        base_url: the node's federation base URL.
        valid_from: start of validity (aware datetime).
        valid_until: end of validity (aware datetime, after ``valid_from``).
        previous: on key rotation, the node's previous keys: the card then names the previous signing key
            in ``replaces`` and carries its endorsement signature.
    Returns:
        The signed card.
    Raises:
        MalformedError: a field out of bounds, or ``previous`` belongs to another node.
    """
    if previous is not None and previous.node_id != keys.node_id:
        raise MalformedError("previous keys belong to another node")
    doc: dict[str, Any] = NodeCard(
        node_id=keys.node_id, name=name, base_url=base_url, signing_key=keys.signing_public,
        encryption_key=keys.encryption_public, valid_from=valid_from, valid_until=valid_until,
        replaces=previous.skid if previous is not None else None, signatures={},
    ).to_json()
    del doc["signatures"]
    doc = sign_json(doc, keys.node_id, keys.signing_key)
    if previous is not None:
        doc = sign_json(doc, keys.node_id, previous.signing_key)
    return NodeCard.from_json(doc)


def _check_window(valid_from: datetime, valid_until: datetime, now: datetime) -> None:
    if now + CLOCK_SKEW < valid_from:
        raise NotYetValidError("card not yet valid")
    if now >= valid_until:
        raise ExpiredError("card expired")


def verify_card(card: NodeCard, now: datetime, *, revoked: frozenset[str] = frozenset()) -> None:
    """Verify a card's self-signature and that it is valid at ``now``.

    Args:
        card: the parsed card.
        now: the current time (aware).
        revoked: key ids the caller knows to be revoked.
    Raises:
        RevokedKeyError: the card's signing or encryption key is revoked.
        BadSignatureError: the self-signature is missing or wrong.
        NotYetValidError / ExpiredError: outside the validity window (300 s skew tolerated at the start).
    """
    require_aware(now)
    if card.skid in revoked or card.ekid in revoked:
        raise RevokedKeyError("card key revoked")
    verify_signed_json(card.to_json(), card.node_id, card.verify_key)
    _check_window(card.valid_from, card.valid_until, now)


def verify_rotation(
    old_card: NodeCard, new_card: NodeCard, now: datetime, *, revoked: frozenset[str] = frozenset()
) -> None:
    """Accept ``new_card`` as the successor of the already-trusted ``old_card``.

    Checks: same node id; ``new_card.replaces`` is the old signing key id; the old key is not revoked; the
    new card is validly self-signed and valid at ``now``; it carries a valid endorsement signature by the old
    signing key; and it became valid before the old card expired (the endorsement was made while the old
    key was current).

    Raises:
        MalformedError: different node, or the new card does not name the old key in ``replaces``.
        RevokedKeyError: the old signing key is revoked (a compromised key must not endorse a successor).
        BadSignatureError: a missing or bad self-signature or endorsement.
        NotYetValidError / ExpiredError: the new card is not valid at ``now``, or it starts after the old
            card's validity ended (ExpiredError).
    """
    if new_card.node_id != old_card.node_id:
        raise MalformedError("rotation: cards of different nodes")
    if new_card.replaces != old_card.skid:
        raise MalformedError("rotation: new card does not replace the old signing key")
    if old_card.skid in revoked:
        raise RevokedKeyError("rotation: old signing key revoked")
    verify_signed_json(old_card.to_json(), old_card.node_id, old_card.verify_key)
    verify_card(new_card, now, revoked=revoked)
    verify_signed_json(new_card.to_json(), new_card.node_id, old_card.verify_key)
    if new_card.valid_from >= old_card.valid_until:
        raise ExpiredError("rotation: old card had expired before the new card's validity")


@dataclass(frozen=True)
class Revocation:
    """A verified revocation statement: ``kid`` of ``node_id`` is revoked from ``revoked_at``."""

    node_id: str
    kid: str
    revoked_at: datetime
    reason: str
    doc: Mapping[str, Any]


def make_revocation(
    keys: NodeKeys, kid: str, *, revoked_at: datetime, reason: str, signing_keys: NodeKeys | None = None
) -> dict[str, Any]:
    """Make a signed revocation of key ``kid`` of node ``keys.node_id``.

    Args:
        keys: the node's keys; they sign the statement unless ``signing_keys`` is given.
        kid: the key id being revoked (a signing or encryption key, current or previous).
        revoked_at: from when the key must no longer be accepted.
        reason: one of ``compromised``, ``superseded``, ``retired``.
        signing_keys: sign with these keys instead (e.g. the new keys after a rotation).
    Returns:
        The signed statement (a JSON object).
    Raises:
        MalformedError: unknown reason or malformed key id.
    """
    if reason not in REVOCATION_REASONS:
        raise MalformedError("unknown revocation reason")
    signer = signing_keys or keys
    doc = {
        "v": CARD_VERSION, "type": REVOCATION_TYPE, "node_id": keys.node_id, "kid": check_kid(kid),
        "revoked_at": format_time(revoked_at), "reason": reason,
    }
    return sign_json(doc, signer.node_id, signer.signing_key)


def verify_revocation(statement: object, trusted: NodeCard | list[NodeCard]) -> Revocation:
    """Verify a revocation against one or more trusted cards of the same node.

    A revocation is accepted when it is signed by the signing key of any trusted card of that node,
    including the key being revoked (self-revocation, e.g. of a compromised key).

    Args:
        statement: the parsed JSON statement.
        trusted: the card(s) of that node the verifier already trusts.
    Returns:
        The verified revocation.
    Raises:
        UnsupportedVersionError / MalformedError: bad shape.
        UnknownKeyError: not signed by any trusted key of that node.
        BadSignatureError: the signature does not verify.
    """
    if not isinstance(statement, dict):
        raise MalformedError("revocation must be an object")
    _check_version(statement)
    if set(statement) != _REVOCATION_FIELDS or statement["type"] != REVOCATION_TYPE:
        raise MalformedError("revocation: unexpected fields or type")
    node_id = check_node_id(statement["node_id"])
    kid = check_kid(statement["kid"])
    if not isinstance(statement["reason"], str) or statement["reason"] not in REVOCATION_REASONS:
        raise MalformedError("revocation: unknown reason")
    revoked_at = parse_time(statement["revoked_at"])
    cards = trusted if isinstance(trusted, list) else [trusted]
    signed_by = set(signature_ids(statement, node_id))
    for card in cards:
        if card.node_id == node_id and card.skid in signed_by:
            verify_signed_json(statement, node_id, card.verify_key)
            return Revocation(node_id, kid, revoked_at, statement["reason"], statement)
    raise UnknownKeyError("revocation not signed by a trusted key of that node")


def check_key_rotated(body: Mapping[str, Any], skid: str, held: NodeCard, now: datetime, *,
                      revoked: frozenset[str] = frozenset()) -> NodeCard:
    """The receiver's check of a ``key_rotated`` body (SPEC.md 3.2, "Announcement"), after ``open_envelope``.

    Args:
        body: the validated body (``new_card``, ``effective_at``, ``overlap_until``).
        skid: the envelope's ``skid``: the key the announcement was signed with.
        held: the card the receiver currently holds for the sender.
        now: the receiver's clock.
        revoked: key ids the receiver knows to be revoked.
    Returns:
        The new card, to hold next (its keys still to be checked against other nodes' keys, 3.1).
    Raises:
        MalformedError: not announced with the signing key of ``held``, or ``new_card`` not a card.
        ProtocolError: as ``verify_rotation``.
    """
    if skid != held.skid:
        raise MalformedError("a key rotation must be announced with the key it replaces")
    card = NodeCard.from_json(body["new_card"])
    verify_rotation(held, card, now, revoked=revoked)
    return card


#: The largest revocation batch (SPEC.md 3.3, "Transport") and the most statements in one.
MAX_REVOCATION_BATCH_BYTES = 65_536
MAX_REVOCATION_BATCH = 16


def parse_revocation_batch(data: bytes) -> list[dict[str, Any]]:
    """The statements of a revocation batch, before any of them is verified (SPEC.md 3.3, "Transport").

    Raises:
        OversizedError: more than ``MAX_REVOCATION_BATCH_BYTES``.
        MalformedError: not strict JSON, or not an array of 1..16 objects that all name one node.
    """
    if len(data) > MAX_REVOCATION_BATCH_BYTES:
        raise OversizedError("revocation batch too large")
    doc = strict_loads(data)
    if not isinstance(doc, list) or not 1 <= len(doc) <= MAX_REVOCATION_BATCH or \
            not all(isinstance(s, dict) for s in doc):
        raise MalformedError(f"expected a JSON array of 1..{MAX_REVOCATION_BATCH} revocation statements")
    if len({s.get("node_id") for s in doc}) != 1:
        raise MalformedError("the statements of one batch must concern one node")
    return doc


def card_from_bytes(data: bytes) -> NodeCard:
    """Parse a card from JSON bytes (strict parse, shape check; no signature check).

    Raises:
        MalformedError / UnsupportedVersionError: malformed JSON or card.
    """
    return NodeCard.from_json(strict_loads(data))
