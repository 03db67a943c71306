"""The protocol's one exception hierarchy. Every subclass carries a stable machine-readable ``code``.

Nodes answer partners with the code only (see SPEC.md, "Error codes"); the message is for logs and operators
and never contains payload data or key material.
"""

from __future__ import annotations


class ProtocolError(Exception):
    """Base of every error this library raises. ``code`` is stable across versions."""

    code: str = "protocol_error"

    def __init__(self, message: str = "") -> None:
        super().__init__(message or self.code)
        self.message = message or self.code


class MalformedError(ProtocolError):
    """Not parseable, not strict JSON, wrong shape, or a field out of its bounds."""

    code = "malformed"


class NonCanonicalError(MalformedError):
    """Signed bytes are not the RFC 8785 canonical form of what they encode."""

    code = "non_canonical"


class OversizedError(MalformedError):
    """The input exceeds a size limit in SPEC.md."""

    code = "oversized"


class UnsupportedVersionError(ProtocolError):
    code = "unsupported_version"


class BadSignatureError(ProtocolError):
    code = "bad_signature"


class DecryptionError(ProtocolError):
    """The ciphertext failed authentication (tampered, or not for this key)."""

    code = "decryption_failed"


class UnknownSenderError(ProtocolError):
    code = "unknown_sender"


class UnknownKeyError(ProtocolError):
    """A key id that the receiver does not know (or no longer accepts) for that sender."""

    code = "unknown_key"


class RevokedKeyError(ProtocolError):
    code = "revoked_key"


class WrongRecipientError(ProtocolError):
    code = "wrong_recipient"


class ReplayedError(ProtocolError):
    code = "replayed"


class ExpiredError(ProtocolError):
    code = "expired"


class NotYetValidError(ProtocolError):
    """Created in the future beyond the clock-skew tolerance, or a card/key not yet valid."""

    code = "not_yet_valid"


class ChainError(ProtocolError):
    """The per-case chain link does not match: a gap, reordering or fork."""

    code = "broken_chain"


class UnknownAgreementError(ProtocolError):
    code = "unknown_agreement"


class OutsideConsentError(ProtocolError):
    """The summary holds data outside its consent, or the consent does not allow this transfer."""

    code = "outside_consent"


class ConsentInvalidError(OutsideConsentError):
    """The consent is expired, withdrawn, or a child's consent lacks guardian/best-interests."""

    code = "consent_invalid"


class HeaderMismatchError(BadSignatureError):
    """The signed inner header differs from the outer envelope header (splicing or re-wrapping)."""

    code = "header_mismatch"


class KeyFileError(ProtocolError):
    """A local key file is missing, too permissive or malformed (never sent to a partner)."""

    code = "key_file"


class SchemaError(MalformedError):
    """A message body or consent record does not match its schema.

    ``errors`` holds marshmallow's field-level messages (field name → list of messages, nested for nested
    objects), so an operator can see which field failed; it never holds the rejected values.
    """

    def __init__(self, message: str = "", errors: dict[str, object] | None = None) -> None:
        super().__init__(message or "body does not match its schema")
        self.errors: dict[str, object] = errors or {}
