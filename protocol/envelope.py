"""The envelope's wire layout: outer header fields, their bounds, and the inner document's shape.

Every binary field is base64url without padding. The envelope is one JSON object in RFC 8785 canonical form::

    {"ct":…,"created":…,"ekid":…,"expires":…,"from":…,"id":…,"nonce":…,"rkid":…,"sig":…,"skid":…,
     "thread":…,"to":…,"type":…,"v":1}

``sig`` signs the canonical JSON of the envelope without ``sig``. ``ct`` is the crypto_box of the canonical
inner document ``{"agreement","body","header","prev","signatures"}``, where ``header`` repeats the binding
fields ``v,id,type,from,to,created,expires,thread`` and ``signatures`` is the sender's ``sign_json``
signature. Parsing here checks shape only; ``seal.open_envelope`` runs the full verification order.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from .canonical import b64decode, b64encode, canonical_bytes
from .errors import MalformedError, UnsupportedVersionError
from .keys import check_node_id
from .times import format_time, parse_time

ENVELOPE_VERSION = 1
MAX_ENVELOPE_BYTES = 1_048_576
MAX_INNER_BYTES = 778_240
CLOCK_SKEW = timedelta(seconds=300)
DEFAULT_TTL = timedelta(days=30)
MAX_TTL = timedelta(days=90)
NONCE_BYTES = 24
SIGNATURE_BYTES = 64
HASH_CHARS = 43

HEADER_FIELDS = ("v", "id", "type", "from", "to", "created", "expires", "thread")
KEY_FIELDS = ("skid", "ekid", "rkid", "nonce")
ENVELOPE_FIELDS = frozenset((*HEADER_FIELDS, *KEY_FIELDS, "ct", "sig"))
INNER_FIELDS = frozenset({"header", "prev", "agreement", "body", "signatures"})

_ID_RE = re.compile(r"[A-Za-z0-9_-]{22}")
_TYPE_RE = re.compile(r"[a-z][a-z_]{0,31}")
_AGREEMENT_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
_HASH_RE = re.compile(r"[A-Za-z0-9_-]{43}")


def check_id(value: object, what: str = "id") -> str:
    """Return ``value`` if it is a 22-character base64url identifier (message id, thread id, key id).

    Raises:
        MalformedError: it is not.
    """
    if not isinstance(value, str) or _ID_RE.fullmatch(value) is None:
        raise MalformedError(f"{what}: expected 22 base64url characters")
    return value


def check_agreement(value: object) -> str | None:
    """Return an agreement id (1..64 of ``A-Z a-z 0-9 . _ : -``, starting alphanumeric) or None.

    Raises:
        MalformedError: any other value.
    """
    if value is None:
        return None
    if not isinstance(value, str) or _AGREEMENT_RE.fullmatch(value) is None:
        raise MalformedError("agreement: not an agreement id")
    return value


def check_hash(value: object) -> str | None:
    """Return a chain link (43 base64url characters: a SHA-256 digest) or None.

    Raises:
        MalformedError: any other value.
    """
    if value is None:
        return None
    if not isinstance(value, str) or _HASH_RE.fullmatch(value) is None:
        raise MalformedError("prev: not a message hash")
    b64decode(value, length=32)
    return value


def check_version(doc: Mapping[str, Any]) -> None:
    """Version rule: ``v`` must be the integer 1; any other integer is refused, never downgraded.

    Raises:
        MalformedError: ``v`` missing or not an integer.
        UnsupportedVersionError: an integer other than 1.
    """
    version = doc.get("v")
    if type(version) is not int:
        raise MalformedError("v must be an integer")
    if version != ENVELOPE_VERSION:
        raise UnsupportedVersionError(f"envelope version {version} not supported")


@dataclass(frozen=True)
class Header:
    """The binding fields, identical in the outer envelope and the signed inner document."""

    id: str
    type: str
    sender: str
    recipient: str
    created: datetime
    expires: datetime
    thread: str

    def to_json(self) -> dict[str, Any]:
        return {
            "v": ENVELOPE_VERSION, "id": self.id, "type": self.type, "from": self.sender,
            "to": self.recipient, "created": format_time(self.created), "expires": format_time(self.expires),
            "thread": self.thread,
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Header:
        """Parse the header fields of an envelope or inner header (other members are ignored here).

        Raises:
            MalformedError: a field missing or out of bounds, or expiry not after creation, or a lifetime
                longer than ``MAX_TTL``.
        """
        msg_type = doc.get("type")
        if not isinstance(msg_type, str) or _TYPE_RE.fullmatch(msg_type) is None:
            raise MalformedError("type: not a message type name")
        header = cls(
            id=check_id(doc.get("id")),
            type=msg_type,
            sender=check_node_id(doc.get("from")),
            recipient=check_node_id(doc.get("to")),
            created=parse_time(doc.get("created")),
            expires=parse_time(doc.get("expires")),
            thread=check_id(doc.get("thread"), "thread"),
        )
        if not header.created < header.expires <= header.created + MAX_TTL:
            raise MalformedError("expires must be after created and within the maximum lifetime")
        return header


@dataclass(frozen=True)
class Envelope:
    """A parsed envelope (shape-checked, not yet verified)."""

    header: Header
    skid: str
    ekid: str
    rkid: str
    nonce: bytes
    ct: bytes
    sig: bytes

    def unsigned_json(self) -> dict[str, Any]:
        """The envelope without ``sig``: its canonical JSON is the outer signature input."""
        return {
            **self.header.to_json(), "skid": self.skid, "ekid": self.ekid, "rkid": self.rkid,
            "nonce": b64encode(self.nonce), "ct": b64encode(self.ct),
        }

    def to_json(self) -> dict[str, Any]:
        return {**self.unsigned_json(), "sig": b64encode(self.sig)}

    def canonical_parts(self) -> tuple[bytes, bytes]:
        """The canonical envelope split where ``sig`` goes: ``(head, tail)``.

        ``head + tail`` is the canonical JSON of ``unsigned_json()`` (the outer signature input) and
        ``head + sig_member(sig) + tail`` that of ``to_json()``. ``ct``, nearly all of the envelope, is
        written as is (base64url needs no escaping) instead of through the JSON encoder.

        Raises:
            NonCanonicalError: a field cannot be canonicalised.
        """
        members = self.header.to_json()
        members.update(skid=self.skid, ekid=self.ekid, rkid=self.rkid, nonce=b64encode(self.nonce))
        ct_member = b'"ct":"' + b64encode(self.ct).encode("ascii") + b'"'
        pieces = (
            _inner_members({k: v for k, v in members.items() if k < "ct"}), ct_member,
            _inner_members({k: v for k, v in members.items() if "ct" < k < "sig"}),
        )
        head = b"{" + b",".join(piece for piece in pieces if piece)
        tail = _inner_members({k: v for k, v in members.items() if k > "sig"})
        return head, (b"," + tail if tail else b"") + b"}"

    @classmethod
    def from_json(cls, doc: object) -> Envelope:
        """Check the version, then the exact field set and each field's form.

        Raises:
            UnsupportedVersionError: ``v`` is an integer other than 1.
            MalformedError: anything else.
        """
        if not isinstance(doc, dict):
            raise MalformedError("envelope must be a JSON object")
        check_version(doc)
        if set(doc) != ENVELOPE_FIELDS:
            raise MalformedError("envelope: unexpected or missing fields")
        ct = doc["ct"]
        if not isinstance(ct, str) or len(ct) > MAX_ENVELOPE_BYTES:
            raise MalformedError("ct: expected base64url")
        return cls(
            header=Header.from_json(doc),
            skid=check_id(doc["skid"], "skid"),
            ekid=check_id(doc["ekid"], "ekid"),
            rkid=check_id(doc["rkid"], "rkid"),
            nonce=b64decode(doc["nonce"], length=NONCE_BYTES),
            ct=b64decode(ct),
            sig=b64decode(doc["sig"], length=SIGNATURE_BYTES),
        )


def _inner_members(doc: dict[str, Any]) -> bytes:
    # Keys are ASCII, so comparing them as str is the canonical (UTF-16) order.
    return canonical_bytes(doc)[1:-1]


def sig_member(sig: bytes) -> bytes:
    """The envelope's ``sig`` member as it appears in canonical form (with the comma before it)."""
    return b',"sig":"' + b64encode(sig).encode("ascii") + b'"'


def parse_inner(doc: object, sender: str) -> tuple[dict[str, Any], str, bytes]:
    """Check the inner document's shape.

    Args:
        doc: the parsed inner document.
        sender: the envelope's ``from``; the only signer allowed.
    Returns:
        ``(header object, signing key id, signature bytes)``.
    Raises:
        UnsupportedVersionError: the inner header's ``v`` is not 1.
        MalformedError: wrong fields, or ``signatures`` other than exactly one signature by ``sender``.
    """
    if not isinstance(doc, dict) or set(doc) != INNER_FIELDS:
        raise MalformedError("inner document: unexpected or missing fields")
    header = doc["header"]
    if not isinstance(header, dict) or set(header) != set(HEADER_FIELDS):
        raise MalformedError("inner header: unexpected or missing fields")
    check_version(header)
    check_hash(doc["prev"])
    check_agreement(doc["agreement"])
    if not isinstance(doc["body"], dict):
        raise MalformedError("body must be a JSON object")
    signatures = doc["signatures"]
    if not isinstance(signatures, dict) or list(signatures) != [sender]:
        raise MalformedError("inner document must be signed by its sender only")
    by_key = signatures[sender]
    if not isinstance(by_key, dict) or len(by_key) != 1:
        raise MalformedError("inner document must carry exactly one signature")
    ((kid, encoded),) = by_key.items()
    return header, check_id(kid, "signature key id"), b64decode(encoded, length=SIGNATURE_BYTES)
