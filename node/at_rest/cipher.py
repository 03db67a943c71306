"""The at-rest ciphertext format: XChaCha20-Poly1305 under a data key, self-describing.

A text value is stored as ``ccm1:<kid>:<base64url(nonce || ciphertext)>`` and a binary one as the bytes
``ccm1:<kid>:`` followed by ``nonce || ciphertext`` (24-byte random nonce, 16-byte tag). The associated data
is ``ccm1|<kid>|<table>.<column>``: a ciphertext moved to another column, or relabelled with another key id,
fails to open. Opening never returns a wrong value: a changed byte, a wrong key or an unknown key id raises
:class:`AtRestError`.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Callable

from nacl.bindings import crypto_aead_xchacha20poly1305_ietf_decrypt, crypto_aead_xchacha20poly1305_ietf_encrypt
from nacl.exceptions import CryptoError

from .keys import DataKey

VERSION = "ccm1"
NONCE_BYTES = 24
KeyLookup = Callable[[str], bytes | None]


class AtRestError(Exception):
    """A stored value cannot be encrypted or opened (no key bound, unknown key, tampered, not encrypted).

    The message names the column and the key id, never the value.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def prefix(kid: str) -> str:
    """What every value encrypted under ``kid`` starts with."""
    return f"{VERSION}:{kid}:"


def _aad(kid: str, context: str) -> bytes:
    return f"{VERSION}|{kid}|{context}".encode()


def _seal(key: DataKey, plaintext: bytes, context: str) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    return nonce + crypto_aead_xchacha20poly1305_ietf_encrypt(plaintext, _aad(key.kid, context), nonce, key.secret)


def _open(secret: bytes | None, kid: str, blob: bytes, context: str) -> bytes:
    if secret is None:
        raise AtRestError(f"{context}: encrypted with data key {kid}, which this node does not hold")
    if len(blob) < NONCE_BYTES + 16:
        raise AtRestError(f"{context}: a ciphertext too short to be one")
    try:
        return crypto_aead_xchacha20poly1305_ietf_decrypt(blob[NONCE_BYTES:], _aad(kid, context),
                                                          blob[:NONCE_BYTES], secret)
    except CryptoError:
        raise AtRestError(f"{context}: a ciphertext under key {kid} failed its check (changed, or the wrong "
                          "key)") from None


def seal_text(key: DataKey, text: str, context: str) -> str:
    blob = _seal(key, text.encode("utf-8"), context)
    return prefix(key.kid) + base64.urlsafe_b64encode(blob).decode("ascii").rstrip("=")


def open_text(lookup: KeyLookup, value: str, context: str) -> str:
    parts = value.split(":", 2)
    if len(parts) != 3 or parts[0] != VERSION:
        raise AtRestError(f"{context}: a value that is not encrypted")
    kid, data = parts[1], parts[2]
    try:
        blob = base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))
    except (binascii.Error, ValueError):
        raise AtRestError(f"{context}: a ciphertext that is not base64") from None
    try:
        return _open(lookup(kid), kid, blob, context).decode("utf-8")
    except UnicodeDecodeError:
        raise AtRestError(f"{context}: a ciphertext that does not hold text") from None


def seal_bytes(key: DataKey, data: bytes, context: str) -> bytes:
    return prefix(key.kid).encode("ascii") + _seal(key, data, context)


def open_bytes(lookup: KeyLookup, value: bytes, context: str) -> bytes:
    value = bytes(value)
    parts = value.split(b":", 2)
    if len(parts) != 3 or parts[0] != VERSION.encode("ascii"):
        raise AtRestError(f"{context}: a value that is not encrypted")
    try:
        kid = parts[1].decode("ascii")
    except UnicodeDecodeError:
        raise AtRestError(f"{context}: a ciphertext with an unreadable key id") from None
    return _open(lookup(kid), kid, parts[2], context)


def is_sealed(value: str | bytes) -> bool:
    head = VERSION + ":"
    return value.startswith(head.encode("ascii")) if isinstance(value, bytes) else value.startswith(head)
