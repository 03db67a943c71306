"""Opening a node's data keys at start: load (or, the first time, create) the key file, check it against the
key ids the database holds values under, register the current key, and bind the keys to the engine."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import sqlalchemy as sa

from node.config import ConfigError, NodeConfig

from .keys import ENV_KEY_FILE, DataKeyError, DataKeys, key_file_path, load_data_keys
from .models import DataKeyRecord
from .types import bind_data_keys

log = logging.getLogger(__name__)


def kids_in_use(connection: sa.Connection) -> list[str] | None:
    """The key ids the database holds values under (not retired); None before migration 0012."""
    if not sa.inspect(connection).has_table(DataKeyRecord.__tablename__):
        return None
    return list(connection.scalars(sa.select(DataKeyRecord.kid).where(DataKeyRecord.retired_at.is_(None))
                                   .order_by(DataKeyRecord.created_at)))


def register_key(connection: sa.Connection, kid: str, now: dt.datetime) -> None:
    """Record that values may be encrypted under ``kid`` from now on (once per key id)."""
    known = connection.execute(sa.select(DataKeyRecord.kid, DataKeyRecord.retired_at)
                               .where(DataKeyRecord.kid == kid)).first()
    if known is None:
        connection.execute(sa.insert(DataKeyRecord).values(kid=kid, created_at=now, retired_at=None,
                                                           rows_reencrypted=0))
    elif known.retired_at is not None:  # a retired key made current again (a restored key file)
        connection.execute(sa.update(DataKeyRecord).where(DataKeyRecord.kid == kid).values(retired_at=None))


def open_data_keys(data_dir: Path, engine: sa.Engine, *, now: dt.datetime, create: bool = True) -> DataKeys:
    """Load the node's data keys, check them against the database, and bind them to ``engine``.

    Args:
        data_dir: the node's data directory (``keys/data.key``), unless ``CCM_DATA_KEY_FILE`` names the file.
        engine: the node's database.
        now: the time a newly registered key is recorded with.
        create: make the key file if there is none *and* the database holds no encrypted value yet.
    Returns:
        The keys, bound to the engine.
    Raises:
        DataKeyError: the key file is missing or unreadable while the database needs it, or it lacks a key the
            database holds values under (a wrong or stale key file). Nothing is bound then.
    """
    with engine.connect() as conn:
        in_use = kids_in_use(conn)
        conn.rollback()
    path, _from_env = key_file_path(data_dir)
    try:
        keys, created = load_data_keys(data_dir, create=create and not in_use)
    except DataKeyError as exc:
        if in_use:
            raise DataKeyError(f"{exc.message}, but the database holds values encrypted with data key(s) "
                               f"{', '.join(in_use)}: restore the key file from the node's backup (or set "
                               f"{ENV_KEY_FILE})") from None
        raise
    missing = [kid for kid in in_use or () if kid not in keys.kids]
    if missing:
        raise DataKeyError(f"the database holds values encrypted with data key(s) {', '.join(missing)}, which "
                           f"{path} does not hold: this is not the node's key file (restore the right one)")
    if created:
        log.warning("created a new data key %s in %s: back it up apart from the database", keys.current.kid, path)
    if in_use is not None and keys.current.kid not in in_use:
        try:
            with engine.begin() as conn:
                register_key(conn, keys.current.kid, now)
        except sa.exc.IntegrityError:
            pass  # another process of this node registered it at the same moment
    bind_data_keys(engine, keys)
    return keys


def open_node_data_keys(config: NodeConfig, engine: sa.Engine, now: dt.datetime) -> DataKeys:
    """:func:`open_data_keys` for a node's app or command: a key problem is a :class:`ConfigError` (one line
    at start, exit 2 from ``ccm-node``)."""
    try:
        return open_data_keys(config.data_dir, engine, now=now)
    except DataKeyError as exc:
        raise ConfigError(f"data key: {exc.message}") from None
