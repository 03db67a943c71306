"""Signed JSON in the style of python-signedjson.

A signed object carries ``signatures: {signer: {key_id: base64url(Ed25519 signature)}}``. The signature input
is the RFC 8785 canonical JSON of the object without its ``signatures`` and ``unsigned`` members, so several
signers (or several keys of one signer, as in a key rotation) can sign the same object independently.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import nacl.exceptions
import nacl.signing

from .canonical import b64decode, b64encode, canonical_bytes
from .errors import BadSignatureError, MalformedError
from .keys import key_id

UNSIGNED_MEMBERS = frozenset({"signatures", "unsigned"})
SIGNATURE_BYTES = 64


def signing_input(obj: Mapping[str, Any]) -> bytes:
    """The bytes a signature over ``obj`` covers: canonical JSON of ``obj`` minus ``signatures``/``unsigned``.

    Raises:
        NonCanonicalError: the object cannot be canonicalised.
    """
    return canonical_bytes({k: v for k, v in obj.items() if k not in UNSIGNED_MEMBERS})


def sign_json(obj: Mapping[str, Any], signer: str, signing_key: nacl.signing.SigningKey) -> dict[str, Any]:
    """Return a copy of ``obj`` with a signature by ``signing_key`` added under ``signatures[signer]``.

    Existing signatures (by other signers or other keys) are kept; ``unsigned`` is kept but not signed.

    Args:
        obj: a JSON object (str keys; canonicalisable values).
        signer: the signer's name (a node id).
        signing_key: the Ed25519 key to sign with.
    Returns:
        The signed copy.
    Raises:
        NonCanonicalError: the object cannot be canonicalised.
        MalformedError: an existing ``signatures`` member is not an object of objects.
    """
    signed = dict(obj)
    signatures = copy.deepcopy(signed.get("signatures", {}))
    if not isinstance(signatures, dict) or not all(isinstance(v, dict) for v in signatures.values()):
        raise MalformedError("signatures must be an object of objects")
    signature = signing_key.sign(signing_input(signed)).signature
    signatures.setdefault(signer, {})[key_id(bytes(signing_key.verify_key))] = b64encode(signature)
    signed["signatures"] = signatures
    return signed


def signature_ids(obj: Mapping[str, Any], signer: str) -> list[str]:
    """The key ids under which ``signer`` has signed ``obj`` (empty if none or malformed)."""
    signatures = obj.get("signatures")
    if not isinstance(signatures, dict):
        return []
    by_signer = signatures.get(signer)
    if not isinstance(by_signer, dict):
        return []
    return sorted(k for k in by_signer if isinstance(k, str))


def _signature_of(obj: Mapping[str, Any], signer: str, kid: str) -> bytes:
    signatures = obj.get("signatures")
    if not isinstance(signatures, dict):
        raise MalformedError("no signatures object")
    by_signer = signatures.get(signer)
    if by_signer is None:
        raise BadSignatureError(f"not signed by {signer}")
    if not isinstance(by_signer, dict):
        raise MalformedError("signatures must be an object of objects")
    encoded = by_signer.get(kid)
    if encoded is None:
        raise BadSignatureError(f"not signed by {signer} with key {kid}")
    return b64decode(encoded, length=SIGNATURE_BYTES)


def verify_signature(data: bytes, signature: bytes, verify_key: nacl.signing.VerifyKey) -> None:
    """Verify a detached Ed25519 signature over ``data``.

    Raises:
        BadSignatureError: the signature does not verify.
    """
    try:
        verify_key.verify(data, signature)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError, nacl.exceptions.TypeError):
        raise BadSignatureError("signature does not verify") from None


def verify_signed_json(obj: Mapping[str, Any], signer: str, verify_key: nacl.signing.VerifyKey) -> None:
    """Check that ``obj`` carries a valid signature by ``signer`` with ``verify_key``.

    The signature is looked up under ``signatures[signer][key_id(verify_key)]``.

    Args:
        obj: the signed object.
        signer: the expected signer name.
        verify_key: the signer's Ed25519 public key.
    Raises:
        MalformedError: ``signatures`` missing or of the wrong shape, or the signature is not 64 bytes of
            unpadded base64url.
        NonCanonicalError: the object cannot be canonicalised.
        BadSignatureError: no signature by that signer and key, or it does not verify.
    """
    signature = _signature_of(obj, signer, key_id(bytes(verify_key)))
    verify_signature(signing_input(obj), signature, verify_key)
