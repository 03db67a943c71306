"""The envelope's wire layout: outer header fields, their bounds, and the inner document's shape.

Every binary field is base64url without padding. The envelope is one JSON object in RFC 8785 canonical form::

    {"created":…,"ct":…,"ekid":…,"expires":…,"from":…,"id":…,"nonce":…,"rkid":…,"sig":…,"skid":…,
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
from functools import cached_property
from typing import Any

from .canonical import b64decode, b64encode, b64encode_ascii, canonical_bytes, loads_canonical
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
_HEADER_FIELD_SET = frozenset(HEADER_FIELDS)

_ID_RE = re.compile(r"[A-Za-z0-9_-]{22}")
_TYPE_RE = re.compile(r"[a-z][a-z_]{0,31}")
_AGREEMENT_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
_HASH_RE = re.compile(r"[A-Za-z0-9_-]{43}")
# The common envelope (see parse_plain_envelope) cut at every '"': "{", then per string member its name, ":",
# its value and ",", and last "v" and ":1}".
_STRING_MEMBERS = tuple(sorted(ENVELOPE_FIELDS - {"v"}))
_STRING_MEMBER_NAMES = [name.encode("ascii") for name in _STRING_MEMBERS]
_PLAIN_PIECES = 4 * len(_STRING_MEMBERS) + 3
_CT_VALUE = _STRING_MEMBERS.index("ct")
_CONTROL_RE = re.compile(rb"[\x00-\x1f]")


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

    @cached_property
    def _times(self) -> tuple[str, str]:
        # Formatted once: seal writes the header twice (inner document and envelope).
        return format_time(self.created), format_time(self.expires)

    def to_json(self) -> dict[str, Any]:
        created, expires = self._times
        return {
            "v": ENVELOPE_VERSION, "id": self.id, "type": self.type, "from": self.sender,
            "to": self.recipient, "created": created, "expires": expires, "thread": self.thread,
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
        unsigned = canonical_bytes(members)
        # Inside a canonical string every '"' is escaped, so ',"ekid":' and ',"skid":' occur only where these
        # members start: "ct" sorts just before "ekid", and "sig" just before "skid".
        at_ct, at_sig = unsigned.index(b',"ekid":'), unsigned.index(b',"skid":')
        ct = b64encode_ascii(self.ct)
        head = b"".join((unsigned[:at_ct], b',"ct":"', ct, b'"', unsigned[at_ct:at_sig]))
        return head, unsigned[at_sig:]

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
        return cls.from_members(doc, None)

    @classmethod
    def from_members(cls, doc: Mapping[str, Any], ct: bytes | None) -> Envelope:
        """Each field's form, for a document with exactly the envelope members (``from_json`` checks that).

        Args:
            doc: the envelope document.
            ct: ``doc["ct"]`` already decoded, or None to decode it here.
        Raises:
            MalformedError: a field out of its form.
        """
        header = Header.from_json(doc)
        skid = check_id(doc["skid"], "skid")
        ekid = check_id(doc["ekid"], "ekid")
        rkid = check_id(doc["rkid"], "rkid")
        nonce = b64decode(doc["nonce"], length=NONCE_BYTES)
        if ct is None:
            ct = b64decode(doc["ct"])
        sig = b64decode(doc["sig"], length=SIGNATURE_BYTES)
        return cls(header=header, skid=skid, ekid=ekid, rkid=rkid, nonce=nonce, ct=ct, sig=sig)


def parse_plain_envelope(data: bytes) -> tuple[dict[str, Any], Envelope] | None:
    """Steps 2-4 at once for a common envelope: ``(doc, envelope)``, or None for any other bytes.

    None means "not recognised", never "invalid": the caller then runs ``loads_canonical`` and
    ``Envelope.from_json``, which decide and raise the error of the first failing step. Common means:
    exactly the envelope members, ``v`` the integer 1, ``ct`` base64url and every other value a string of
    printable ASCII other than ``"`` and ``\\``. Such bytes, cut at every ``"``, show the members in
    canonical order with only ``:`` and ``,`` between them; they are strict JSON in canonical form (nothing
    to escape, no whitespace, sorted unique names), and ``doc`` equals ``loads_canonical(data)``. The field
    checks then run as in ``from_json`` (``ct`` is decoded first: on its own it proves ``ct`` plain). The
    property tests compare both paths; this one skips the JSON parse of ``ct``, nearly all of the envelope.
    """
    if b"\\" in data or not data.isascii():
        return None
    pieces = data.split(b'"')
    if (
        len(pieces) != _PLAIN_PIECES
        or pieces[0] != b"{"
        or pieces[-2:] != [b"v", b":1}"]
        or pieces[1:-2:4] != _STRING_MEMBER_NAMES
        or pieces[2:-2:4].count(b":") != len(_STRING_MEMBERS)
        or pieces[4:-2:4].count(b",") != len(_STRING_MEMBERS)
    ):
        return None
    values = pieces[3:-2:4]
    ct_text = values[_CT_VALUE].decode("ascii")
    values[_CT_VALUE] = b""
    if _CONTROL_RE.search(b" ".join(values)):
        return None
    try:
        ct = b64decode(ct_text)
    except MalformedError:
        return None
    doc: dict[str, Any] = {
        name: value.decode("ascii") for name, value in zip(_STRING_MEMBERS, values, strict=True)
    }
    doc["ct"] = ct_text
    doc["v"] = ENVELOPE_VERSION
    return doc, Envelope.from_members(doc, ct)


def sig_member(sig: bytes) -> bytes:
    """The envelope's ``sig`` member as it appears in canonical form (with the comma before it)."""
    return b',"sig":"' + b64encode_ascii(sig) + b'"'


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
    if not isinstance(header, dict) or header.keys() != _HEADER_FIELD_SET:
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


def envelope_sender(data: bytes) -> str:
    """The node id an envelope names as its sender (``from``): what its receipt's ``from`` must name.

    Raises:
        ProtocolError: the bytes are not an envelope (``MalformedError``, ``NonCanonicalError``, ...).
    """
    plain = parse_plain_envelope(data)
    envelope = plain[1] if plain is not None else Envelope.from_json(loads_canonical(data))
    return envelope.header.sender
