"""Column types that encrypt on the way into the database and decrypt on the way out.

``EncryptedText``, ``EncryptedJSON`` and ``EncryptedBytes`` wrap the column's declared type (so no table is
rebuilt: a JSON column stays JSON and holds a JSON string, the ciphertext). Each is made with its context,
``"table.column"``, which is bound into the ciphertext.

The key follows the *engine*, not a global: :func:`bind_data_keys` puts a node's :class:`DataKeys` on its
engine's dialect (one dialect per engine), and SQLAlchemy hands that dialect to every bind and result
processor. Two nodes in one process (the tests) have two engines and so two keys, and every session made on an
engine (a request, the delivery worker, a command, a test) encrypts with its node's key without a context to
set. An engine with no key bound refuses to encrypt (:class:`AtRestError`): nothing is ever written in clear
by accident. Decryption also accepts any key this process has loaded (the process-wide keyring), so a second
engine on the same database (a read-only one) reads what the first wrote.
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator

from node.db import DATA_KEYS_ATTR

from .cipher import AtRestError, open_bytes, open_text, seal_bytes, seal_text
from .keys import DataKeys, keyring_get


def bind_data_keys(engine: sa.Engine, keys: DataKeys) -> None:
    """Make ``engine`` encrypt with ``keys`` (and decrypt with them and the process keyring)."""
    setattr(engine.dialect, DATA_KEYS_ATTR, keys)


def data_keys_of(dialect: sa.Dialect) -> DataKeys | None:
    keys: DataKeys | None = getattr(dialect, DATA_KEYS_ATTR, None)
    return keys


def _encrypting_key(dialect: sa.Dialect, context: str) -> Any:
    keys = data_keys_of(dialect)
    if keys is None:
        raise AtRestError(f"{context}: no data key is bound to this database engine (refusing to write in clear)")
    return keys.current


def _lookup(dialect: sa.Dialect) -> Any:
    keys = data_keys_of(dialect)
    if keys is None:
        return keyring_get

    def lookup(kid: str) -> bytes | None:
        return keys.get(kid) or keyring_get(kid)

    return lookup


class EncryptedText(TypeDecorator[str]):
    """Text encrypted at rest. ``length``: the column was a ``VARCHAR(length)``; it stays one on SQLite (which
    does not enforce lengths) and is ``TEXT`` on PostgreSQL, since the ciphertext is longer than the text."""

    impl = sa.Text
    cache_ok = True

    def __init__(self, context: str, length: int | None = None) -> None:
        super().__init__()
        self.context = context
        self.length = length

    def load_dialect_impl(self, dialect: sa.Dialect) -> sa.types.TypeEngine[Any]:
        if self.length is not None and dialect.name != "postgresql":
            return sa.String(self.length)
        return sa.Text()  # (not type_descriptor: psycopg would adapt it to VARCHAR)

    def process_bind_param(self, value: str | None, dialect: sa.Dialect) -> str | None:
        if value is None:
            return None
        return seal_text(_encrypting_key(dialect, self.context), value, self.context)

    def process_result_value(self, value: str | None, dialect: sa.Dialect) -> str | None:
        if value is None:
            return None
        return open_text(_lookup(dialect), value, self.context)


class EncryptedJSON(TypeDecorator[Any]):
    """A JSON value encrypted at rest: the column stays JSON and holds one JSON string, the ciphertext of the
    value's JSON text. None is SQL NULL."""

    impl = sa.JSON(none_as_null=True)
    cache_ok = True

    def __init__(self, context: str) -> None:
        super().__init__()
        self.context = context

    def process_bind_param(self, value: Any, dialect: sa.Dialect) -> str | None:
        if value is None:
            return None
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        return seal_text(_encrypting_key(dialect, self.context), text, self.context)

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> Any:
        if value is None:
            return None
        if not isinstance(value, str):
            raise AtRestError(f"{self.context}: a value that is not encrypted")
        return json.loads(open_text(_lookup(dialect), value, self.context))


class EncryptedBytes(TypeDecorator[bytes]):
    """Bytes encrypted at rest (``ccm1:<kid>:`` then nonce and ciphertext, no base64)."""

    impl = sa.LargeBinary
    cache_ok = True

    def __init__(self, context: str) -> None:
        super().__init__()
        self.context = context

    def process_bind_param(self, value: bytes | None, dialect: sa.Dialect) -> bytes | None:
        if value is None:
            return None
        return seal_bytes(_encrypting_key(dialect, self.context), bytes(value), self.context)

    def process_result_value(self, value: bytes | None, dialect: sa.Dialect) -> bytes | None:
        if value is None:
            return None
        return open_bytes(_lookup(dialect), value, self.context)


ENCRYPTED_TYPES = (EncryptedText, EncryptedJSON, EncryptedBytes)
