"""Node identity: node ids, key ids, the human fingerprint, and a node's private keys.

A node has two key pairs: Ed25519 for signing and X25519 for encryption (never one key for both). A key id is
``base64url(SHA-256(public key))[:22]`` (132 bits). The fingerprint two administrators read to each other over
the phone is 60 decimal digits in 12 groups of 5, derived from the node id and the signing public key with
5200 iterations of SHA-512 (the construction of Signal's safety numbers); see SPEC.md section 2.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import nacl.public
import nacl.signing

from .canonical import b64decode, b64encode, canonical_bytes, strict_loads
from .errors import KeyFileError, MalformedError

NODE_ID_RE = re.compile(r"[a-z]{2}\.[a-z0-9][a-z0-9-]{1,62}")
KEY_ID_LENGTH = 22
KEY_FILE_VERSION = 1
FINGERPRINT_ITERATIONS = 5200
_FINGERPRINT_DOMAIN = b"ccm-fingerprint-v1"
_SEED_DOMAIN_SIGNING = b"ccm-seed-signing-v1"
_SEED_DOMAIN_ENCRYPTION = b"ccm-seed-encryption-v1"


def check_node_id(node_id: object) -> str:
    """Return ``node_id`` if it is a well-formed node id (``cc.name``, lowercase).

    Raises:
        MalformedError: not a string of the node-id form.
    """
    if not isinstance(node_id, str) or NODE_ID_RE.fullmatch(node_id) is None:
        raise MalformedError("not a node id")
    return node_id


def key_id(public_key_bytes: bytes) -> str:
    """The key id of a 32-byte public key: ``base64url(SHA-256(key))`` cut to 22 characters.

    Args:
        public_key_bytes: raw Ed25519 or X25519 public key.
    Returns:
        22 base64url characters.
    """
    return b64encode(hashlib.sha256(public_key_bytes).digest())[:KEY_ID_LENGTH]


def fingerprint(node_id: str, signing_public_key: bytes) -> str:
    """The human-comparable fingerprint of a node's signing key: 12 groups of 5 digits.

    ``h0 = SHA-512("ccm-fingerprint-v1" || 0x00 || node_id || 0x00 || key)``, then 5200 times
    ``h = SHA-512(h || key)``; the first 60 bytes, in 12 chunks of 5, each read as a big-endian integer
    modulo 100000 and written as 5 digits.

    Args:
        node_id: the node id the key belongs to.
        signing_public_key: raw 32-byte Ed25519 public key.
    Returns:
        e.g. ``"05298 12871 ... 73340"`` (12 groups separated by single spaces).
    """
    digest = hashlib.sha512(
        _FINGERPRINT_DOMAIN + b"\x00" + node_id.encode("utf-8") + b"\x00" + signing_public_key
    ).digest()
    for _ in range(FINGERPRINT_ITERATIONS):
        digest = hashlib.sha512(digest + signing_public_key).digest()
    groups = [int.from_bytes(digest[i : i + 5], "big") % 100000 for i in range(0, 60, 5)]
    return " ".join(f"{g:05d}" for g in groups)


@dataclass(frozen=True)
class NodeKeys:
    """A node's private keys. Keep them in a key file readable only by the node (mode 0600)."""

    node_id: str
    signing_key: nacl.signing.SigningKey
    encryption_key: nacl.public.PrivateKey

    @classmethod
    def generate(cls, node_id: str) -> NodeKeys:
        """Fresh random keys for ``node_id``."""
        return cls(
            check_node_id(node_id), nacl.signing.SigningKey.generate(), nacl.public.PrivateKey.generate()
        )

    @classmethod
    def from_seed(cls, node_id: str, seed: bytes) -> NodeKeys:
        """Deterministic keys from a 32-byte seed (test vectors only; never for a real node).

        The Ed25519 seed is ``SHA-256("ccm-seed-signing-v1" || seed)`` and the X25519 private key
        ``SHA-256("ccm-seed-encryption-v1" || seed)``.

        Raises:
            MalformedError: the seed is not 32 bytes or the node id is malformed.
        """
        if len(seed) != 32:
            raise MalformedError("seed must be 32 bytes")
        return cls(
            check_node_id(node_id),
            nacl.signing.SigningKey(hashlib.sha256(_SEED_DOMAIN_SIGNING + seed).digest()),
            nacl.public.PrivateKey(hashlib.sha256(_SEED_DOMAIN_ENCRYPTION + seed).digest()),
        )

    @property
    def signing_public(self) -> bytes:
        return bytes(self.signing_key.verify_key)

    @property
    def encryption_public(self) -> bytes:
        return bytes(self.encryption_key.public_key)

    @cached_property
    def skid(self) -> str:
        """Key id of the signing key."""
        return key_id(self.signing_public)

    @cached_property
    def ekid(self) -> str:
        """Key id of the encryption key."""
        return key_id(self.encryption_public)

    def fingerprint(self) -> str:
        return fingerprint(self.node_id, self.signing_public)

    def to_json_bytes(self) -> bytes:
        """The key file content (canonical JSON; secret: never log it)."""
        return canonical_bytes({
            "v": KEY_FILE_VERSION,
            "node_id": self.node_id,
            "signing_seed": b64encode(bytes(self.signing_key)),
            "encryption_key": b64encode(bytes(self.encryption_key)),
        })

    @classmethod
    def from_json_bytes(cls, data: bytes) -> NodeKeys:
        """Parse key file content.

        Raises:
            KeyFileError: wrong version, shape or key lengths.
        """
        try:
            doc = strict_loads(data)
            if not isinstance(doc, dict) or set(doc) != {"v", "node_id", "signing_seed", "encryption_key"}:
                raise MalformedError("unexpected key file fields")
            if doc["v"] != KEY_FILE_VERSION:
                raise MalformedError("unsupported key file version")
            return cls(
                check_node_id(doc["node_id"]),
                nacl.signing.SigningKey(b64decode(doc["signing_seed"], length=32)),
                nacl.public.PrivateKey(b64decode(doc["encryption_key"], length=32)),
            )
        except MalformedError as exc:
            raise KeyFileError(f"bad key file: {exc.message}") from None

    def save(self, path: str | os.PathLike[str], *, overwrite: bool = False) -> None:
        """Write the key file with mode 0600 (created atomically with that mode).

        Raises:
            KeyFileError: the file exists and ``overwrite`` is false, or it cannot be created.
        """
        flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if overwrite else os.O_EXCL)
        try:
            fd = os.open(path, flags, 0o600)
        except FileExistsError:
            raise KeyFileError("key file exists") from None
        except OSError as exc:
            raise KeyFileError(f"cannot create key file: {exc.strerror}") from None
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), 0o600)
            fh.write(self.to_json_bytes())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> NodeKeys:
        """Read a key file; refuses one that group or others can read or write.

        Raises:
            KeyFileError: missing, unreadable, too permissive, or malformed.
        """
        file = Path(path)
        try:
            mode = file.stat().st_mode
            if mode & (stat.S_IRWXG | stat.S_IRWXO):
                raise KeyFileError("key file must have mode 0600")
            data = file.read_bytes()
        except OSError as exc:
            raise KeyFileError(f"cannot read key file: {exc.strerror}") from None
        return cls.from_json_bytes(data)
