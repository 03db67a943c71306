"""Marshmallow fields for case data: every string bounded and free of control characters, codes checked
against real code lists, booleans and integers strict.

PostgreSQL refuses NUL characters in text and both databases refuse lone surrogates, so these are rejected
here as validation errors (422) instead of surfacing as database errors.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from decimal import Decimal
from typing import Any

from marshmallow import ValidationError, fields, validate

from protocol.keys import NODE_ID_RE

from .codes import COUNTRY_CODES, CURRENCY_CODES

#: BCP 47 as used here: language (2-3 letters), optional script, optional region, optional variants.
LANGUAGE_TAG_RE = re.compile(
    r"[A-Za-z]{2,3}(?:-[A-Za-z]{4})?(?:-(?:[A-Za-z]{2}|[0-9]{3}))?(?:-[A-Za-z0-9]{5,8})*")
PHONE_RE = re.compile(r"\+?[0-9][0-9 ()./-]{2,39}")
EARLIEST_DATE = dt.date(1900, 1, 1)
LATEST_DATE = dt.date(2199, 12, 31)
MAX_AMOUNT = Decimal("9999999999.99")
_ALLOWED_CONTROLS = frozenset("\n\r\t")


def _check_characters(value: str, multiline: bool) -> None:
    for ch in value:
        category = unicodedata.category(ch)
        if category == "Cs":
            raise ValidationError("Contains an invalid character (a lone surrogate).")
        if category == "Cc" and not (multiline and ch in _ALLOWED_CONTROLS):
            raise ValidationError("Contains a control character.")


class Text(fields.String):
    """A bounded string, stripped of surrounding whitespace, without control characters (newlines and tabs
    are allowed when ``multiline``)."""

    def __init__(self, max_length: int, *, min_length: int = 0, multiline: bool = False,
                 **kwargs: Any) -> None:
        self.multiline = multiline
        validators = [validate.Length(min=min_length, max=max_length)]
        metadata = {"maxLength": max_length, **({"minLength": min_length} if min_length else {}),
                    **kwargs.pop("metadata", {})}
        super().__init__(validate=validators, metadata=metadata, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        text = super()._deserialize(value, attr, data, **kwargs)
        _check_characters(text, self.multiline)
        return text.strip()


class Code(fields.String):
    """An upper-case code from a fixed list (accepted in any case)."""

    def __init__(self, codes: frozenset[str], label: str, length: int, **kwargs: Any) -> None:
        self.codes = codes
        self.label = label
        metadata = {"pattern": f"^[A-Z]{{{length}}}$", "description": label, **kwargs.pop("metadata", {})}
        super().__init__(metadata=metadata, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        text = super()._deserialize(value, attr, data, **kwargs).upper()
        if text not in self.codes:
            raise ValidationError(f"Not a valid {self.label}.")
        return text


def CountryCode(**kwargs: Any) -> Code:
    return Code(COUNTRY_CODES, "ISO 3166-1 alpha-2 country code", 2, **kwargs)


def CurrencyCode(**kwargs: Any) -> Code:
    return Code(CURRENCY_CODES, "ISO 4217 currency code", 3, **kwargs)


class Pattern(fields.String):
    """A string matching a regular expression in full, at most ``max_length`` long."""

    def __init__(self, pattern: re.Pattern[str], max_length: int, message: str, **kwargs: Any) -> None:
        self.regex = pattern
        self.max_length = max_length
        self.message = message
        metadata = {"maxLength": max_length, "pattern": f"^{pattern.pattern}$", **kwargs.pop("metadata", {})}
        super().__init__(metadata=metadata, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        text = super()._deserialize(value, attr, data, **kwargs)
        if len(text) > self.max_length or self.regex.fullmatch(text) is None:
            raise ValidationError(self.message)
        return text


def LanguageTag(**kwargs: Any) -> Pattern:
    return Pattern(LANGUAGE_TAG_RE, 35, "Not a valid BCP 47 language tag (e.g. 'bs', 'ar-IQ').", **kwargs)


def NodeId(**kwargs: Any) -> Pattern:
    return Pattern(NODE_ID_RE, 65, "Not a valid node id (e.g. 'ba.cldd-sarajevo').", **kwargs)


def Phone(**kwargs: Any) -> Pattern:
    return Pattern(PHONE_RE, 40, "Not a valid phone number (digits, spaces and + ( ) . / - only).", **kwargs)


class StrictBool(fields.Boolean):
    """``true`` or ``false`` only (not 1, "yes" or "on")."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if not isinstance(value, bool):
            raise ValidationError("Not a valid boolean.")
        return value


class QueryBool(fields.Boolean):
    """A query-string boolean: ``true``/``false`` (or 1/0)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(truthy={"true", "1"}, falsy={"false", "0"}, **kwargs)


def Int(minimum: int, maximum: int, **kwargs: Any) -> fields.Integer:
    """A JSON integer (not a float or a string) within [minimum, maximum]."""
    return fields.Integer(strict=True, validate=validate.Range(min=minimum, max=maximum), **kwargs)


class SaneDate(fields.Date):
    """An ISO 8601 date between 1900-01-01 and 2199-12-31."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(validate=validate.Range(min=EARLIEST_DATE, max=LATEST_DATE), **kwargs)


class SaneDateTime(fields.AwareDateTime):
    """An ISO 8601 timestamp (UTC when no offset is given), returned in UTC, between 1900 and 2199."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(default_timezone=dt.UTC, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, str) and len(value) > 40:
            raise ValidationError("Not a valid datetime.")
        when = super()._deserialize(value, attr, data, **kwargs)
        if not EARLIEST_DATE.year <= when.year <= LATEST_DATE.year:
            raise ValidationError("Must be between 1900 and 2199.")
        try:
            return when.astimezone(dt.UTC)
        except (OverflowError, ValueError):
            raise ValidationError("Not a valid datetime.") from None


class Amount(fields.Decimal):
    """A non-negative amount with at most two decimals, given as a JSON number or a string; dumped as a
    string ("1500.00") so that no precision is lost."""

    def __init__(self, **kwargs: Any) -> None:
        metadata = {"description": 'decimal with at most 2 places, e.g. "1500.00"',
                    **kwargs.pop("metadata", {})}
        super().__init__(places=None, as_string=True, allow_nan=False, metadata=metadata, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, bool) or (isinstance(value, str) and len(value) > 20):
            raise ValidationError("Not a valid amount.")
        amount: Decimal = super()._deserialize(value, attr, data, **kwargs)
        if not amount.is_finite():
            raise ValidationError("Not a valid amount.")
        if not Decimal(0) <= amount <= MAX_AMOUNT:
            raise ValidationError(f"Must be between 0 and {MAX_AMOUNT}.")
        cents = amount.quantize(Decimal("0.01"))
        if cents != amount:
            raise ValidationError("At most two decimal places.")
        return cents
