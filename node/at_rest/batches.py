"""Rewriting an encrypted column in batches, below the ORM: encrypting rows still in clear (migration 0012),
re-encrypting under a new key (rotation), decrypting (migration 0012's downgrade).

A batch selects up to ``limit`` rows whose stored value does not yet start with the wanted prefix and rewrites
them, so running the same step again after an interruption simply continues: no position is kept, and a row is
never rewritten twice. The raw value is read and written through plain column types (``sa.table``), never
through the encrypting types.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from .cipher import KeyLookup, open_bytes, open_text, seal_bytes, seal_text
from .keys import DataKey

KINDS = ("text", "json", "bytes")


@dataclass(frozen=True)
class ColumnSpec:
    """An encrypted column: its table, name, kind (``text``, ``json``, ``bytes``) and its table's primary key."""

    table: str
    column: str
    kind: str
    primary_key: tuple[str, ...]

    @property
    def context(self) -> str:
        return f"{self.table}.{self.column}"


def _raw(spec: ColumnSpec) -> sa.TableClause:
    kind: sa.types.TypeEngine[Any] = {"text": sa.Text(), "json": sa.JSON(none_as_null=True),
                                      "bytes": sa.LargeBinary()}[spec.kind]
    return sa.table(spec.table, sa.column(spec.column, kind), *(sa.column(k) for k in spec.primary_key))


def _selection(spec: ColumnSpec, table: sa.TableClause, head: str | None, starting: bool) -> list[Any]:
    """Rows with a value that does not start (``starting``: that starts) with ``head``."""
    column = table.c[spec.column]
    conditions: list[Any] = [column.is_not(None)]
    if head is None:
        pass
    elif spec.kind == "json":
        conditions.append(sa.cast(column, sa.Text) != "null")  # a JSON null written before 0012: nothing to do
        start, wanted = sa.func.substr(sa.cast(column, sa.Text), 1, len(head) + 1), '"' + head
        conditions.append(start == wanted if starting else start != wanted)
    elif spec.kind == "bytes":
        start, raw = sa.func.substr(column, 1, len(head)), sa.literal(head.encode("ascii"), sa.LargeBinary)
        conditions.append(start == raw if starting else start != raw)
    else:
        start = sa.func.substr(column, 1, len(head))
        conditions.append(start == head if starting else start != head)
    return conditions


def rewrite_batch(conn: sa.Connection, spec: ColumnSpec, *, skip_head: str | None,
                  transform: Callable[[Any], Any], limit: int, starting: bool = False) -> int:
    """Rewrite up to ``limit`` values of ``spec`` not starting with ``skip_head`` (``starting``: only those
    that start with it) with ``transform(raw)``.

    For a JSON column ``raw`` is the stored JSON text and ``transform`` returns the value to store as JSON.
    Returns the number of rows rewritten (0: the column is done).
    """
    table = _raw(spec)
    column = table.c[spec.column]
    value = sa.cast(column, sa.Text) if spec.kind == "json" else column
    keys = [table.c[k] for k in spec.primary_key]
    rows = conn.execute(sa.select(*keys, value.label("raw")).where(*_selection(spec, table, skip_head, starting))
                        .limit(limit)).all()
    if not rows:
        return 0
    update = (sa.update(table).where(*(table.c[k] == sa.bindparam(f"pk_{i}") for i, k in enumerate(spec.primary_key)))
              .values({spec.column: sa.bindparam("new_value", type_=column.type)}))
    conn.execute(update, [{**{f"pk_{i}": row[i] for i in range(len(keys))}, "new_value": transform(row.raw)}
                          for row in rows])
    return len(rows)


def encrypt_plain(spec: ColumnSpec, key: DataKey) -> Callable[[Any], Any]:
    """A value still in clear → its ciphertext under ``key``."""
    if spec.kind == "bytes":
        return lambda raw: seal_bytes(key, bytes(raw), spec.context)
    if spec.kind == "json":
        return lambda raw: seal_text(key, json.dumps(json.loads(raw), ensure_ascii=False, separators=(",", ":")),
                                     spec.context)
    return lambda raw: seal_text(key, raw, spec.context)


def reencrypt(spec: ColumnSpec, key: DataKey, lookup: KeyLookup) -> Callable[[Any], Any]:
    """A ciphertext under any known key → the ciphertext of the same value under ``key``."""
    if spec.kind == "bytes":
        return lambda raw: seal_bytes(key, open_bytes(lookup, raw, spec.context), spec.context)
    if spec.kind == "json":
        return lambda raw: seal_text(key, open_text(lookup, json.loads(raw), spec.context), spec.context)
    return lambda raw: seal_text(key, open_text(lookup, raw, spec.context), spec.context)


def decrypt(spec: ColumnSpec, lookup: KeyLookup) -> Callable[[Any], Any]:
    """A ciphertext → the value in clear (a downgrade below 0012)."""
    if spec.kind == "bytes":
        return lambda raw: open_bytes(lookup, raw, spec.context)
    if spec.kind == "json":
        return lambda raw: json.loads(open_text(lookup, json.loads(raw), spec.context))
    return lambda raw: open_text(lookup, raw, spec.context)


def rewrite_all(conn: sa.Connection, columns: Sequence[ColumnSpec], *, head: str,
                transform: Callable[[ColumnSpec], Callable[[Any], Any]], starting: bool = False,
                limit: int = 500) -> int:
    """Every column, batch after batch on one connection (a migration's transaction). Returns the rows rewritten."""
    total = 0
    for spec in columns:
        step = transform(spec)
        while done := rewrite_batch(conn, spec, skip_head=head, transform=step, limit=limit, starting=starting):
            total += done
    return total
