"""CCM Exchange wire protocol: signed, encrypted case handovers between partner nodes.

A pure library (stdlib, PyNaCl, marshmallow, rfc8785). The normative description is ``protocol/SPEC.md``;
deterministic test vectors are in ``protocol/vectors/``. Typical use::

    sealed = seal(keys=my_keys, recipient=partner_card, msg_type="handover", body=body, thread=thread,
                  now=clock.now(), prev=last_hash, agreement=agreement_id, boxes=box_cache)
    opened = open_envelope(data, keys=my_keys, directory=partners, history=inbox, now=clock.now())
    receipt = make_receipt(my_keys, opened, clock.now())

Every failure raises a ``ProtocolError`` subclass whose ``code`` is stable and safe to send to a partner.
"""

from __future__ import annotations

from .bundle import BUNDLE, RECEIPTS, OpenedBundle, open_bundle, seal_bundle, seal_receipts
from .canonical import b64decode, b64encode, canonical_bytes, strict_loads
from .cards import (
    NodeCard,
    Revocation,
    make_card,
    make_revocation,
    verify_card,
    verify_revocation,
    verify_rotation,
)
from .chain import message_hash, verify_chain
from .consent import (
    allowed_categories,
    check_forward,
    check_handover,
    make_consent_record,
    minimise,
    sign_consent,
    verify_consent,
)
from .custody import make_custody_step, verify_custody
from .envelope import Header
from .errors import (
    BadSignatureError,
    ChainError,
    ConsentInvalidError,
    DecryptionError,
    ExpiredError,
    HeaderMismatchError,
    KeyFileError,
    MalformedError,
    NonCanonicalError,
    NotYetValidError,
    OutsideConsentError,
    OversizedError,
    ProtocolError,
    ReplayedError,
    RevokedKeyError,
    SchemaError,
    UnknownAgreementError,
    UnknownKeyError,
    UnknownSenderError,
    UnsupportedVersionError,
    WrongRecipientError,
)
from .keys import NodeKeys, fingerprint, key_id
from .messages import MESSAGE_TYPES, validate_body
from .receipts import Receipt, make_receipt, verify_receipt
from .resync import (
    ReceivedEntry,
    ResyncAnswer,
    ResyncRequest,
    make_answer,
    make_request,
    reseal,
    verify_answer,
    verify_request,
)
from .seal import BoxCache, Directory, History, OpenedMessage, PartnerView, SealedMessage, open_envelope, seal
from .signing import sign_json, signature_ids, verify_signed_json
from .summary import CATEGORIES, PURPOSES

__all__ = [
    "BUNDLE",
    "CATEGORIES",
    "MESSAGE_TYPES",
    "PURPOSES",
    "RECEIPTS",
    "BadSignatureError",
    "BoxCache",
    "ChainError",
    "ConsentInvalidError",
    "DecryptionError",
    "Directory",
    "ExpiredError",
    "Header",
    "HeaderMismatchError",
    "History",
    "KeyFileError",
    "MalformedError",
    "NodeCard",
    "NodeKeys",
    "NonCanonicalError",
    "NotYetValidError",
    "OpenedBundle",
    "OpenedMessage",
    "OutsideConsentError",
    "OversizedError",
    "PartnerView",
    "ProtocolError",
    "Receipt",
    "ReceivedEntry",
    "ReplayedError",
    "ResyncAnswer",
    "ResyncRequest",
    "Revocation",
    "RevokedKeyError",
    "SchemaError",
    "SealedMessage",
    "UnknownAgreementError",
    "UnknownKeyError",
    "UnknownSenderError",
    "UnsupportedVersionError",
    "WrongRecipientError",
    "allowed_categories",
    "b64decode",
    "b64encode",
    "canonical_bytes",
    "check_forward",
    "check_handover",
    "fingerprint",
    "key_id",
    "make_answer",
    "make_card",
    "make_consent_record",
    "make_custody_step",
    "make_receipt",
    "make_request",
    "make_revocation",
    "message_hash",
    "minimise",
    "open_bundle",
    "open_envelope",
    "reseal",
    "seal",
    "seal_bundle",
    "seal_receipts",
    "sign_consent",
    "sign_json",
    "signature_ids",
    "strict_loads",
    "validate_body",
    "verify_answer",
    "verify_card",
    "verify_chain",
    "verify_consent",
    "verify_custody",
    "verify_receipt",
    "verify_request",
    "verify_revocation",
    "verify_rotation",
    "verify_signed_json",
]
