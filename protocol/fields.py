"""Strict marshmallow field types shared by every message body schema.

Every field here deserialises to exactly the JSON value it was given (a ``str`` stays the same ``str``, times
and dates stay strings), so a validated body can be re-canonicalised byte for byte. No body contains a JSON
float: amounts and indicator values travel as decimal strings, which also keeps every body on the fast
canonical path of ``protocol.canonical``.

Code lists (ISO 3166-1 alpha-2, ISO 4217) are written out here rather than fetched: a node must validate
offline, and a change to a list is a protocol change that shows in review.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate

from .errors import MalformedError
from .keys import NODE_ID_RE


def _code_list(text: str) -> frozenset[str]:
    return frozenset(text.split())


# ISO 3166-1 alpha-2: the 249 officially assigned codes.
ISO_3166_ALPHA2 = _code_list(
    """
    AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW
    BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI
    FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN
    IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME
    MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF
    PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV
    SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE
    YT ZA ZM ZW
    """
)
# Kosovo (a return destination in this network) has no ISO 3166-1 code; "XK" is the user-assigned code the
# European Commission, IOM and CLDR use for it. It is the one code accepted outside the standard list.
USER_ASSIGNED_COUNTRIES = frozenset({"XK"})
COUNTRY_CODES = ISO_3166_ALPHA2 | USER_ASSIGNED_COUNTRIES

# ISO 4217 alphabetic codes of currencies in circulation (2025 list; no fund codes, precious metals, SDR or
# testing codes, none of which pays a returnee's rent).
CURRENCY_CODES = _code_list(
    """
    AED AFN ALL AMD AOA ARS AUD AWG AZN BAM BBD BDT BHD BIF BMD BND BOB BRL BSD BTN BWP BYN BZD CAD CDF
    CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD
    HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD
    LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK
    PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS
    TMT TND TOP TRY TTD TWD TZS UAH UGX USD UYU UYW UZS VED VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW
    ZWG
    """
)

# BCP 47 (RFC 5646) "langtag" and private-use tags; grandfathered tags are not accepted.
LANGUAGE_TAG_RE = re.compile(
    r"""
    (?:
      (?:[a-z]{2,3}(?:-[a-z]{3}){0,3}|[a-z]{4}|[a-z]{5,8})   # language (with extlang)
      (?:-[a-z]{4})?                                          # script
      (?:-(?:[a-z]{2}|[0-9]{3}))?                             # region
      (?:-(?:[a-z0-9]{5,8}|[0-9][a-z0-9]{3}))*                # variants
      (?:-[0-9a-wy-z](?:-[a-z0-9]{2,8})+)*                    # extensions
      (?:-x(?:-[a-z0-9]{1,8})+)?                              # private use
    |
      x(?:-[a-z0-9]{1,8})+
    )
    """,
    re.IGNORECASE | re.VERBOSE,
)
LANGUAGE_TAG_MAX = 64

OPAQUE_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
MESSAGE_ID_RE = re.compile(r"[A-Za-z0-9_-]{22}")  # 128 random bits, base64url
HASH_RE = re.compile(r"[A-Za-z0-9_-]{43}")  # base64url (unpadded) of a SHA-256 digest
KEY_ID_RE = re.compile(r"[A-Za-z0-9_-]{22}")  # base64url(SHA-256(public key))[:22]
SIGNATURE_RE = re.compile(r"[A-Za-z0-9_-]{86}")  # base64url (unpadded) of a 64-byte Ed25519 signature
KEY_RE = re.compile(r"[a-z][a-z0-9_]{0,63}")  # stage keys, indicator keys
DECIMAL_RE = re.compile(r"-?(?:0|[1-9][0-9]{0,14})(?:\.[0-9]{1,6})?")
PHONE_RE = re.compile(r"\+[1-9][0-9]{6,14}")  # E.164
_DNS_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
EMAIL_RE = re.compile(rf"[^@\s\x00-\x1f\x7f]{{1,64}}@{_DNS_LABEL}(?:\.{_DNS_LABEL})+")

NAME_MAX = 100
LINE_MAX = 200
NOTE_MAX = 2000
TEXT_MAX = 8000
REFERENCE_MAX = 64
DATE_MIN_YEAR = 1900
DATE_MAX_YEAR = 2199

# Control characters (Unicode Cc), line/paragraph separators (Zl, Zp) and surrogates (Cs); free text may
# hold tab, LF and CR.
_CONTROLS_RE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
_TEXT_CONTROLS_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
_TIME_RE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})Z")
_DATE_RE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")


class StrictSchema(Schema):
    """Base of every protocol schema: unknown members are an error, never ignored or passed through."""

    class Meta:
        unknown = RAISE


class Checked(fields.String):
    """A JSON string, checked by one function and returned unchanged.

    One check per field (rather than a list of marshmallow validators) keeps validation of a whole handover
    body cheap: the envelope code validates every body it opens.
    """

    def __init__(self, check: Callable[[str], None], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._check = check

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        if not isinstance(value, str):
            raise self.make_error("invalid")
        self._check(value)
        return value

    def _validate(self, value: Any) -> None:
        """Nothing more to do: ``_deserialize`` ran the one check (skips marshmallow's validator chain)."""

    def plain_check(self) -> Callable[[str], None] | None:
        """The one check this field runs on a string, or None when its class runs more (it overrides
        ``_deserialize`` or ``_validate``): what a compiled acceptor may call instead (``protocol.fastschema``)."""
        cls = type(self)
        if cls._deserialize is not Checked._deserialize or cls._validate is not Checked._validate:
            return None
        return self._check


def _text_check(max_length: int, controls: re.Pattern[str]) -> Callable[[str], None]:
    def check(value: str) -> None:
        if not 1 <= len(value) <= max_length:
            raise ValidationError(f"Length must be between 1 and {max_length}.")
        if controls.search(value) is not None:
            raise ValidationError("Control characters are not allowed.")
        if value.isspace():
            raise ValidationError("Must not be empty or only whitespace.")

    return check


def _pattern_check(regex: re.Pattern[str], message: str) -> Callable[[str], None]:
    def check(value: str) -> None:
        if regex.fullmatch(value) is None:
            raise ValidationError(message)

    return check


def _member_check(codes: frozenset[str], message: str) -> Callable[[str], None]:
    def check(value: str) -> None:
        if value not in codes:
            raise ValidationError(message)

    return check


def _time_check(value: str) -> None:
    match = _TIME_RE.fullmatch(value)
    try:
        if match is None:
            raise ValueError
        year, month, day, hour, minute, second = (int(part) for part in match.groups())
        datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except ValueError:
        raise ValidationError("Not a UTC time of the form YYYY-MM-DDTHH:MM:SSZ.") from None


def parse_date(value: str) -> date:
    """Parse a protocol date (``YYYY-MM-DD``, year 1900..2199).

    Raises:
        MalformedError: not of that form or not a real calendar date.
    """
    match = _DATE_RE.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise MalformedError("not a date of the form YYYY-MM-DD")
    try:
        parsed = date(*(int(part) for part in match.groups()))
    except ValueError:
        raise MalformedError("not a real calendar date") from None
    if not DATE_MIN_YEAR <= parsed.year <= DATE_MAX_YEAR:
        raise MalformedError("date out of range")
    return parsed


def _date_check(value: str) -> None:
    try:
        parse_date(value)
    except MalformedError:
        raise ValidationError("Not a date of the form YYYY-MM-DD (years 1900-2199).") from None


class Line(Checked):
    """Single-line text: 1..``max_length`` code points, no control or line-separator characters."""

    def __init__(self, max_length: int = LINE_MAX, **kwargs: Any) -> None:
        super().__init__(_text_check(max_length, _CONTROLS_RE), **kwargs)


class Text(Checked):
    """Free text: 1..``max_length`` code points; tab, LF and CR allowed, other control characters not."""

    def __init__(self, max_length: int = TEXT_MAX, **kwargs: Any) -> None:
        super().__init__(_text_check(max_length, _TEXT_CONTROLS_RE), **kwargs)


class Pattern(Checked):
    """An ASCII token that must match ``regex`` in full."""

    def __init__(self, regex: re.Pattern[str], message: str, **kwargs: Any) -> None:
        super().__init__(_pattern_check(regex, message), **kwargs)


class Enum(Checked):
    """A string from a closed set of values."""

    def __init__(self, choices: tuple[str, ...], **kwargs: Any) -> None:
        self.choices = choices
        message = f"Must be one of: {', '.join(choices)}."
        super().__init__(_member_check(frozenset(choices), message), **kwargs)


class Time(Checked):
    """A UTC instant as ``YYYY-MM-DDTHH:MM:SSZ`` (kept as the string)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(_time_check, **kwargs)


class Date(Checked):
    """A calendar date as ``YYYY-MM-DD`` (kept as the string)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(_date_check, **kwargs)


def country(**kwargs: Any) -> Checked:
    """An ISO 3166-1 alpha-2 code in upper case (or ``XK``)."""
    return Checked(_member_check(COUNTRY_CODES, "Not an ISO 3166-1 alpha-2 country code."), **kwargs)


def currency(**kwargs: Any) -> Checked:
    """An ISO 4217 alphabetic currency code."""
    return Checked(_member_check(CURRENCY_CODES, "Not an ISO 4217 currency code."), **kwargs)


def _language_check(value: str) -> None:
    if len(value) > LANGUAGE_TAG_MAX or LANGUAGE_TAG_RE.fullmatch(value) is None:
        raise ValidationError("Not a BCP 47 language tag.")


def language(**kwargs: Any) -> Checked:
    """A BCP 47 language tag such as ``sv``, ``bs-Latn`` or ``ar-IQ``."""
    return Checked(_language_check, **kwargs)


def node_id(**kwargs: Any) -> Pattern:
    """A node id such as ``se.gi-goteborg``."""
    return Pattern(NODE_ID_RE, "Not a node id (cc.name, lower case).", **kwargs)


def opaque_id(**kwargs: Any) -> Pattern:
    """An identifier chosen by its issuer: 1..128 of ``A-Z a-z 0-9 . _ : -``, starting alphanumeric."""
    return Pattern(OPAQUE_ID_RE, "Not an identifier (1-128 of A-Z a-z 0-9 . _ : -).", **kwargs)


def message_id(**kwargs: Any) -> Pattern:
    """An envelope message id (22 base64url characters)."""
    return Pattern(MESSAGE_ID_RE, "Not a message id.", **kwargs)


def content_hash(**kwargs: Any) -> Pattern:
    """An unpadded base64url SHA-256 digest (43 characters)."""
    return Pattern(HASH_RE, "Not a base64url SHA-256 digest.", **kwargs)


def key(**kwargs: Any) -> Pattern:
    """A configuration key (stage or indicator): lower case, digits and ``_``, 1..64."""
    return Pattern(KEY_RE, "Not a key (a-z, 0-9, _; starting with a letter).", **kwargs)


def decimal(**kwargs: Any) -> Pattern:
    """A decimal number as a string, e.g. ``"1500.00"`` (no exponent, at most 6 fraction digits)."""
    return Pattern(DECIMAL_RE, "Not a decimal number string.", **kwargs)


def phone(**kwargs: Any) -> Pattern:
    """A phone number in E.164 form, e.g. ``+46317001234``."""
    return Pattern(PHONE_RE, "Not an E.164 phone number.", **kwargs)


def _email_check(value: str) -> None:
    if len(value) > 254 or EMAIL_RE.fullmatch(value) is None:
        raise ValidationError("Not an e-mail address.")


def email(**kwargs: Any) -> Checked:
    """An e-mail address (a plain local part, a DNS domain), at most 254 characters."""
    return Checked(_email_check, **kwargs)


class Bool(fields.Boolean):
    """A JSON boolean, and only that (marshmallow's own also takes ``"yes"``, ``1`` and friends)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


def integer(minimum: int, maximum: int, **kwargs: Any) -> fields.Integer:
    """A JSON integer (never a bool, float or string) in ``minimum..maximum``."""
    return fields.Integer(strict=True, validate=validate.Range(minimum, maximum), **kwargs)


def bounded_list(inner: fields.Field[Any], maximum: int, *, minimum: int = 0, unique: bool = False,
                 **kwargs: Any) -> fields.List[Any]:
    """A JSON array of ``minimum..maximum`` members, optionally without repeats."""

    def check(values: list[Any]) -> None:
        if not minimum <= len(values) <= maximum:
            raise ValidationError(f"Length must be between {minimum} and {maximum}.")
        if unique and any(value in values[:index] for index, value in enumerate(values)):
            raise ValidationError("Members must be unique.")

    return fields.List(inner, validate=check, **kwargs)


def signatures(**kwargs: Any) -> fields.Dict:
    """A ``sign_json`` signatures map: ``{node_id: {key_id: base64url signature}}`` (1..4 by 1..4)."""
    per_signer = fields.Dict(
        keys=Pattern(KEY_ID_RE, "Not a key id."),
        values=Pattern(SIGNATURE_RE, "Not a base64url Ed25519 signature."),
        validate=validate.Length(1, 4),
    )
    return fields.Dict(keys=node_id(), values=per_signer, validate=validate.Length(1, 4), **kwargs)
