"""Rotating the data key (``ccm-node keys data-rotate``): a new key, every encrypted value re-encrypted under it
in batches, then the old keys retired.

1. Unless a rotation is under way (a key id other than the current one still in use in ``data_keys``), a new
   key is written first in the key file, the old ones kept after it (they still decrypt), and registered.
   Running processes reload the file within seconds and encrypt new values under the new key.
2. Each encrypted column is rewritten in batches (``batch_size`` rows a transaction) of the values not yet under
   the new key; the count is added to ``data_keys.rows_reencrypted`` in the same transaction. A killed run
   leaves every batch either done or not: run the command again and it continues with the same new key.
3. ``grace_seconds`` after the new key was registered (a request that began with the old key has ended by
   then), a last pass re-encrypts what was written meanwhile; the old keys, now used by no value, are marked
   retired in ``data_keys`` and then removed from the key file (in that order: the database never names a key
   the file lacks).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa

from .batches import ColumnSpec, reencrypt, rewrite_batch
from .cipher import prefix
from .keys import DataKey, DataKeyError, DataKeys, write_key_file
from .models import DataKeyRecord
from .startup import kids_in_use, register_key
from .types import ENCRYPTED_TYPES

#: A web request lasts at most gunicorn's 60 s timeout; the processes reload the key file within 2 s.
DEFAULT_GRACE_SECONDS = 65.0


@dataclass(frozen=True)
class RotationResult:
    kid: str
    started: bool
    rows: int
    retired: tuple[str, ...]


def encrypted_columns(metadata: sa.MetaData) -> list[ColumnSpec]:
    """Every column of the models whose type encrypts, in a stable order."""
    specs: list[ColumnSpec] = []
    for table in metadata.sorted_tables:
        for column in table.columns:
            if isinstance(column.type, ENCRYPTED_TYPES):
                kind = {"EncryptedText": "text", "EncryptedJSON": "json", "EncryptedBytes": "bytes"}[
                    type(column.type).__name__]
                specs.append(ColumnSpec(table.name, column.name, kind, tuple(c.name for c in table.primary_key)))
    return specs


def _reencrypt_all(engine: sa.Engine, columns: list[ColumnSpec], keys: DataKeys, key: DataKey, *, batch_size: int,
                   after_batch: Callable[[int], None] | None) -> int:
    total = 0
    for spec in columns:
        step = reencrypt(spec, key, keys.get)
        while True:
            with engine.begin() as conn:
                done = rewrite_batch(conn, spec, skip_head=prefix(key.kid), transform=step, limit=batch_size)
                if done:
                    conn.execute(sa.update(DataKeyRecord).where(DataKeyRecord.kid == key.kid)
                                 .values(rows_reencrypted=DataKeyRecord.rows_reencrypted + done))
            if not done:
                break
            total += done
            if after_batch is not None:
                after_batch(done)
    return total


def rotate_data_key(engine: sa.Engine, keys: DataKeys, metadata: sa.MetaData, *, now: Callable[[], dt.datetime],
                    batch_size: int = 500, grace_seconds: float = DEFAULT_GRACE_SECONDS,
                    sleep: Callable[[float], None] = time.sleep,
                    after_batch: Callable[[int], None] | None = None) -> RotationResult:
    """Rotate the data key of the database behind ``engine`` (or finish a rotation a killed run began).

    Args:
        engine: the node's database (with ``keys`` bound).
        keys: the node's data keys (their file is rewritten).
        metadata: the models' metadata (which columns are encrypted).
        now: the clock.
        batch_size: rows per transaction.
        grace_seconds: how long the new key must have been in use before the old ones are retired.
        sleep: waits out the rest of the grace period.
        after_batch: called after each committed batch with its row count (tests interrupt here).
    Returns:
        The new key's id, whether this run made it, the rows re-encrypted, the key ids retired.
    Raises:
        DataKeyError: the database is not migrated, or the key file cannot be written.
    """
    if keys.path is None:
        raise DataKeyError("these data keys have no key file to rotate")
    columns = encrypted_columns(metadata)
    with engine.connect() as conn:
        in_use = kids_in_use(conn)
        conn.rollback()
    if in_use is None:
        raise DataKeyError("the database is not migrated: run 'ccm-node db upgrade' first")
    keys.reload(force=True)
    current = keys.all[0]
    started = not [kid for kid in in_use if kid != current.kid]
    if started:
        current = DataKey.generate()
        _write(keys, [current, *keys.all])
    with engine.begin() as conn:
        register_key(conn, current.kid, now())
    rows = _reencrypt_all(engine, columns, keys, current, batch_size=batch_size, after_batch=after_batch)
    with engine.connect() as conn:
        registered = conn.scalar(sa.select(DataKeyRecord.created_at).where(DataKeyRecord.kid == current.kid))
        conn.rollback()
    waited = (now() - registered).total_seconds() if registered is not None else 0.0
    if waited < grace_seconds:
        sleep(grace_seconds - waited)
    rows += _reencrypt_all(engine, columns, keys, current, batch_size=batch_size, after_batch=after_batch)
    with engine.begin() as conn:
        old = [kid for kid in kids_in_use(conn) or () if kid != current.kid]
        if old:
            conn.execute(sa.update(DataKeyRecord).where(DataKeyRecord.kid.in_(old)).values(retired_at=now()))
    _write(keys, [current])
    return RotationResult(current.kid, started, rows, tuple(old))


def _write(keys: DataKeys, new: list[DataKey]) -> None:
    assert keys.path is not None
    try:
        write_key_file(keys.path, new)
    except OSError as exc:
        raise DataKeyError(f"cannot write the data key file {keys.path}: {exc.strerror}") from None
    keys.reload(force=True)
