"""Consent in the protocol: the signed consent record, minimisation, and the receiver's check.

The originating node records the returnee's consent (``make_consent_record``) and signs it
(``sign_consent``). Before a handover it cuts the case summary down with ``minimise`` to the categories the
consent grants that recipient for that purpose, naming every other category as ``withheld``. The receiver runs
``check_handover`` (or ``check_forward`` for a case passed on by a further hop) after ``open_envelope``: it
verifies the origin's signature on the consent and refuses anything the consent does not cover.

Both sides apply the same rules (SPEC.md section 9), so a sender never sends
what the receiver will refuse. Withdrawals the receiver has already been told of (validated
``consent_withdrawn`` bodies) are passed in; this module keeps no state.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Any

import nacl.signing
from marshmallow import ValidationError

from .custody import CLOCK_SKEW, verify_custody
from .errors import (
    ConsentInvalidError,
    MalformedError,
    OutsideConsentError,
    SchemaError,
    UnknownKeyError,
    WrongRecipientError,
)
from .fastschema import Acceptor, fast_loader
from .fields import parse_date
from .messages import validate_body
from .signing import sign_json, verify_signed_json
from .summary import (
    CATEGORIES,
    PURPOSES,
    ConsentRecordSchema,
    SignedConsentRecordSchema,
    SummarySchema,
)
from .times import format_time, parse_time, require_aware

__all__ = [
    "ADULT_AGE",
    "CATEGORIES",
    "PURPOSES",
    "allowed_categories",
    "check_forward",
    "check_handover",
    "is_child_case",
    "make_consent_record",
    "minimise",
    "sign_consent",
    "verify_consent",
]

ADULT_AGE = 18
# Each schema's load with its fast acceptor in front (``protocol.fastschema``; the schema decides the rest).
_CONSENT_SCHEMA = fast_loader(ConsentRecordSchema())
_SIGNED_CONSENT_SCHEMA = fast_loader(SignedConsentRecordSchema())
_SUMMARY_SCHEMA = fast_loader(SummarySchema())


def _load(load: Acceptor, data: object, what: str) -> dict[str, Any]:
    try:
        loaded: dict[str, Any] = load(data)
    except ValidationError as exc:
        messages = exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages}
        raise SchemaError(f"{what} does not match its schema", errors=messages) from None
    return loaded


def make_consent_record(*, consent_id: str, origin: str, case_id: str, given_at: datetime,
                        valid_until: datetime, method: str, language: str, subject: Mapping[str, Any],
                        grants: Iterable[Mapping[str, Any]], child: Mapping[str, Any] | None = None,
                        ) -> dict[str, Any]:
    """Build a consent record (unsigned) from what the returnee agreed to.

    Args:
        consent_id: the originating node's id for this consent.
        origin: the originating node's id (it signs the record).
        case_id: the originating node's case id (the handover's ``case.origin_case_id``).
        given_at: when the consent was given (aware).
        valid_until: when it lapses (aware, later than ``given_at``).
        method: ``written_signature``, ``digital_signature`` or ``oral_witnessed``.
        language: BCP 47 tag of the language the returnee was informed in.
        subject: ``{"child": bool, "date_of_birth"?: "YYYY-MM-DD"}``.
        grants: ``{"recipient", "purposes", "categories"}`` per recipient.
        child: guardian, views and best-interests record (required in effect for a child's case).
    Returns:
        The record as plain JSON data, grants' lists in the protocol's canonical order.
    Raises:
        SchemaError: a value is out of bounds or of the wrong form.
    """
    record: dict[str, Any] = {
        "v": 1, "consent_id": consent_id, "origin": origin, "case_id": case_id,
        "given_at": format_time(given_at), "valid_until": format_time(valid_until), "method": method,
        "language": language, "subject": dict(subject),
        "grants": [_ordered_grant(grant) for grant in grants],
    }
    if child is not None:
        record["child"] = copy.deepcopy(dict(child))
    return _load(_CONSENT_SCHEMA, record, "consent record")


def _ordered_grant(grant: Mapping[str, Any]) -> dict[str, Any]:
    ordered = dict(grant)
    for member, order in (("purposes", PURPOSES), ("categories", CATEGORIES)):
        values = ordered.get(member)
        if isinstance(values, list | tuple) and all(v in order for v in values):
            ordered[member] = sorted(values, key=order.index)
    return ordered


def sign_consent(record: Mapping[str, Any], signer: str,
                 signing_key: nacl.signing.SigningKey, *, validated: bool = False) -> dict[str, Any]:
    """Sign a consent record as its origin node.

    Args:
        record: a consent record (from ``make_consent_record``).
        signer: the signing node's id; must be the record's ``origin``.
        signing_key: that node's Ed25519 signing key.
        validated: True when ``record`` is what ``make_consent_record`` just returned (validated there):
            the schema check is not repeated.
    Returns:
        The record with ``signatures[signer]`` added.
    Raises:
        SchemaError: the record is malformed.
        MalformedError: ``signer`` is not the record's origin.
    """
    loaded = dict(record) if validated else _load(_CONSENT_SCHEMA, record, "consent record")
    if signer != loaded["origin"]:
        raise MalformedError("a consent record is signed by its origin node")
    return sign_json(loaded, signer, signing_key)


def verify_consent(record: object, verify_key: nacl.signing.VerifyKey) -> dict[str, Any]:
    """Validate a travelling consent record and verify its origin's signature.

    Returns:
        The validated record.
    Raises:
        SchemaError: malformed or unsigned.
        BadSignatureError: not signed by its origin with ``verify_key``.
    """
    loaded = _load(_SIGNED_CONSENT_SCHEMA, record, "consent record")
    verify_signed_json(loaded, loaded["origin"], verify_key)
    return loaded


def allowed_categories(consent: Mapping[str, Any], recipient: str, purpose: str,
                       withdrawals: Iterable[Mapping[str, Any]] = ()) -> tuple[str, ...]:
    """The categories ``consent`` lets ``recipient`` receive for ``purpose``, after known withdrawals.

    A withdrawal counts when its ``consent_id`` matches; its scope (absent = everything) takes the listed
    categories (or all) away from the listed recipients (or all).

    Returns:
        The granted categories, in ``CATEGORIES`` order.
    Raises:
        OutsideConsentError: the recipient is not named, or not for this purpose.
        ConsentInvalidError: the consent was withdrawn for this recipient altogether.
    """
    grant = next((g for g in consent["grants"] if g["recipient"] == recipient), None)
    if grant is None:
        raise OutsideConsentError("the consent does not name this recipient")
    if purpose not in grant["purposes"]:
        raise OutsideConsentError("the consent does not cover this purpose for this recipient")
    granted = set(grant["categories"])
    for withdrawal in withdrawals:
        if withdrawal["consent_id"] != consent["consent_id"]:
            continue
        scope = withdrawal.get("scope", {})
        if recipient not in scope.get("recipients", [recipient]):
            continue
        if "categories" not in scope:
            raise ConsentInvalidError("the consent was withdrawn")
        granted -= set(scope["categories"])
    return tuple(c for c in CATEGORIES if c in granted)


def _age(born: date, on: date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def is_child_case(consent: Mapping[str, Any], summary: Mapping[str, Any], now: datetime | None) -> bool:
    """Whether the subject counts as a child: flagged so, or under 18 when the consent was given (or now).

    The date of birth is taken from the consent's ``subject`` and, if shared, the summary's identity section.
    """
    if consent["subject"]["child"]:
        return True
    at = parse_time(consent["given_at"])
    if now is not None:
        at = min(at, now)
    births = (consent["subject"].get("date_of_birth"), summary.get("identity", {}).get("date_of_birth"))
    return any(born is not None and _age(parse_date(born), at.date()) < ADULT_AGE for born in births)


def _not_future(moment: str, now: datetime | None, what: str) -> None:
    if now is not None and parse_time(moment) > now + CLOCK_SKEW:
        raise ConsentInvalidError(f"{what} lies in the future")


def _check_child_safeguards(consent: Mapping[str, Any], now: datetime | None) -> None:
    safeguards = consent.get("child", {})
    guardian = safeguards.get("guardian")
    if guardian is None or not guardian["identity_verified"] or "consented_at" not in guardian:
        raise ConsentInvalidError("a child's case needs a verified guardian's consent")
    _not_future(guardian["consented_at"], now, "the guardian's consent")
    views = safeguards.get("views")
    if views is None:
        raise ConsentInvalidError("a child's case needs the child's views recorded")
    _not_future(views["recorded_at"], now, "the record of the child's views")
    assessment = safeguards.get("best_interests")
    if assessment is None or assessment["outcome"] != "in_best_interests":
        raise ConsentInvalidError("a child's case needs a best-interests assessment in favour of return")
    _not_future(assessment["assessed_at"], now, "the best-interests assessment")


def _check_active(consent: Mapping[str, Any], summary: Mapping[str, Any], now: datetime | None) -> None:
    if "withdrawn_at" in consent:
        raise ConsentInvalidError("the consent was withdrawn")
    if now is not None:
        if parse_time(consent["valid_until"]) < now:
            raise ConsentInvalidError("the consent has expired")
        _not_future(consent["given_at"], now, "the consent")
    if is_child_case(consent, summary, now):
        _check_child_safeguards(consent, now)


def minimise(summary: Mapping[str, Any], consent: Mapping[str, Any], recipient: str, purpose: str, *,
             now: datetime | None = None, withdrawals: Iterable[Mapping[str, Any]] = (),
             validated: bool = False, copy_sections: bool = True) -> dict[str, Any]:
    """Cut a case summary down to what ``consent`` lets ``recipient`` receive for ``purpose``.

    Args:
        summary: the full case summary (one section per category).
        consent: the consent record (signed or not).
        recipient: the receiving node's id.
        purpose: one of ``PURPOSES``.
        now: the sender's clock; when given, an expired or future-dated consent is refused too.
        withdrawals: validated ``consent_withdrawn`` bodies already known for this consent.
        validated: True when ``consent`` was validated by the caller (``make_consent_record``) and the body
            the cut goes into will be validated whole (``validate_body``): neither the consent nor the
            summary is validated here, and sections the cut leaves out are never checked.
        copy_sections: False when ``summary`` was built for this one body and nothing else holds it: the
            granted sections go into the result as they are, not deep-copied.
    Returns:
        ``{"summary": {...}, "withheld": [...]}``: the granted sections present in ``summary`` (deep copies,
        unless ``copy_sections`` is False),
        and every category the grant does not allow (in ``CATEGORIES`` order), whether or not ``summary``
        holds it, so the list says nothing about what the case contains. Merge it into the handover body.
    Raises:
        SchemaError: the summary or the consent is malformed.
        ConsentInvalidError: the consent is withdrawn (or expired, with ``now``), or it is a child's case
            without the safeguards.
        OutsideConsentError: the consent does not name ``recipient`` for ``purpose``.
    """
    if now is not None:
        require_aware(now)
    if validated:
        loaded_consent, loaded_summary = consent, summary
    else:
        loaded_consent = _load(_CONSENT_SCHEMA, consent, "consent record")
        loaded_summary = _load(_SUMMARY_SCHEMA, summary, "case summary")
    _check_active(loaded_consent, loaded_summary, now)
    allowed = allowed_categories(loaded_consent, recipient, purpose, withdrawals)
    shared = [c for c in allowed if c in loaded_summary]
    return {
        "summary": {c: copy.deepcopy(loaded_summary[c]) if copy_sections else loaded_summary[c] for c in shared},
        "withheld": [c for c in CATEGORIES if c not in allowed],
    }


def _check_consented(part: Mapping[str, Any], recipient: str, now: datetime,
                     origin_verify_key: nacl.signing.VerifyKey, sender: str | None,
                     withdrawals: Iterable[Mapping[str, Any]]) -> None:
    consent = part["consent"]
    verify_signed_json(consent, consent["origin"], origin_verify_key)
    if sender is not None and consent["origin"] != sender:
        raise OutsideConsentError("the consent was recorded by another node than the sender")
    if consent["case_id"] != part["case"]["origin_case_id"]:
        raise OutsideConsentError("the consent belongs to another case")
    _check_active(consent, part["summary"], now)
    allowed = allowed_categories(consent, recipient, part["purpose"], withdrawals)
    outside = sorted(set(part["summary"]) - set(allowed), key=CATEGORIES.index)
    if outside:
        raise OutsideConsentError(f"the summary holds categories outside the consent: {', '.join(outside)}")


def check_handover(body: Mapping[str, Any], recipient: str, now: datetime,
                   origin_verify_key: nacl.signing.VerifyKey, *, sender: str | None = None,
                   withdrawals: Iterable[Mapping[str, Any]] = (), validated: bool = False) -> None:
    """The receiver's consent check of a handover body (after ``open_envelope``).

    Args:
        body: the handover body.
        recipient: this (receiving) node's id.
        now: the receiver's clock (aware).
        origin_verify_key: the originating node's Ed25519 verify key.
        sender: the envelope's sender; when given, the consent must have been recorded by it.
        withdrawals: validated ``consent_withdrawn`` bodies already received for this consent.
        validated: True when ``body`` is the body of an ``OpenedMessage`` of type ``handover``, which
            ``open_envelope`` validated against the same schema (step 15): the schema check is not repeated.
    Raises:
        SchemaError: the body is malformed.
        BadSignatureError: the consent is not signed by its origin with ``origin_verify_key``.
        ConsentInvalidError: withdrawn, expired, dated in the future, or a child's case without a verified
            guardian's consent, the child's recorded views and a best-interests outcome in favour.
        OutsideConsentError: the consent is another node's or another case's, does not name ``recipient``
            for the purpose, or the summary holds a category outside the grant.
    """
    require_aware(now)
    checked = body if validated else validate_body("handover", body)
    _check_consented(checked, recipient, now, origin_verify_key, sender, withdrawals)


def check_forward(body: Mapping[str, Any], recipient: str, sender: str, now: datetime,
                  verify_keys: Mapping[str, nacl.signing.VerifyKey], *,
                  withdrawals: Iterable[Mapping[str, Any]] = ()) -> None:
    """The receiver's check of a ``forward``: custody chain, then the original consent as for a handover.

    Every node on the custody chain must be named in the original consent, and the forwarded summary must lie
    inside the grant for ``recipient``.

    Args:
        body: the forward body.
        recipient: this (receiving) node's id; must be ``forwarded_to``.
        sender: the envelope's sender (the last holder on the chain).
        now: the receiver's clock (aware).
        verify_keys: Ed25519 verify keys by node id for the origin and every holder on the chain.
        withdrawals: validated ``consent_withdrawn`` bodies already received for this consent.
    Raises:
        WrongRecipientError: ``forwarded_to`` is another node.
        ChainError, UnknownKeyError, BadSignatureError: see ``verify_custody``.
        OutsideConsentError, ConsentInvalidError, SchemaError: as for ``check_handover``.
    """
    require_aware(now)
    validated = validate_body("forward", body)
    if validated["forwarded_to"] != recipient:
        raise WrongRecipientError("the case is forwarded to another node")
    verify_custody(validated, sender, now, verify_keys)
    part = validated["original_handover"]
    origin = part["consent"]["origin"]
    origin_key = verify_keys.get(origin)
    if origin_key is None:
        raise UnknownKeyError("no key for the consent's origin node")
    named = {grant["recipient"] for grant in part["consent"]["grants"]}
    if any(step["holder"] not in named for step in validated["chain"]):
        raise OutsideConsentError("a node on the custody chain is not named in the consent")
    _check_consented(part, recipient, now, origin_key, None, withdrawals)
