"""Restoring a backup into a data directory, and making again the erasures made after it.

Everything is checked before anything is written: the file's signature (by the key in its manifest, which
must be this node's current or a retired signing key when the directory holds a node; on a fresh directory
the key file inside must hold it), decryption with the backup key, every member against the manifest, the
node id, the schema revision (known to this code), the kind of database, the erasure journal here (it must
continue the backup's), and that no other process has the node's database open (the node is stopped).

Then: the files missing from the data directory are written (``node.toml``, ``secret_key``, ``keys/``; files
present are kept: keys present can only be the same or newer, a rotation keeps the old generations), the
database is replaced (SQLite: the copy is moved over ``node.db`` and its ``-wal``/``-shm`` removed; PostgreSQL:
``pg_restore --clean --if-exists --single-transaction``), migrated to this code's head, and every journal line
after the backup's is made again (:func:`reapply`), one transaction each, without a new erasure confirmation
(the partner got the one sent at the time). A line whose handover the backup does not hold, or holds
erased already, does nothing.

Messages after the backup. The restored node has forgotten what it exchanged after the backup was taken, and
its partners hold it as delivered, so every partner is marked out of step (``Partner.resync_since``, an hour
before the backup): nothing is delivered to it until the delivery worker has resynced with it
(``node/exchange/resync``). The partner then queues again what it sent us since (we apply what we do not hold
and answer the rest with the receipt stored the first time) and lists what it received from us, which we record
as delivered; what we still have to send is put back on each thread's chain after it. A message received after
the backup that erased something is also in the journal, made again above.
"""

from __future__ import annotations

import os
import time
import tomllib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic.script import ScriptDirectory
from sqlalchemy import orm

from node import migrate
from node.at_rest.startup import open_node_data_keys
from node.audit import record
from node.backup import journal
from node.backup.archive import (
    BACKUP_KEY_FILE,
    PGDUMP_MEMBER,
    SQLITE_MEMBER,
    BackupError,
    Opened,
    backup_key_path,
    open_backup,
    private_workdir,
    read_backup_key,
    read_header,
    run_pg,
)
from node.config import CONFIG_FILE, SECRET_FILE, ConfigError, default_database_url, load_config
from node.db import make_engine, make_sessionmaker, normalise_url
from node.exchange.chain.erasure import checkpoint, erase_categories, erase_handover
from node.exchange.chain.models import ConsentWithdrawal
from node.exchange.handovers.models import Handover
from node.exchange.resync.requester import mark_out_of_step
from node.exchange.trust.key_files import KEY_DIR, KEY_FILE, load_history
from node.private_files import write_private
from protocol import KeyFileError, NodeKeys
from protocol.times import parse_time

#: The resync after a restore asks about an hour more than the backup missed (clocks, a backup taken slowly).
RESYNC_MARGIN = timedelta(hours=1)


@dataclass
class RestoreResult:
    manifest: dict[str, Any]
    database_url: str
    reapplied: list[str] = field(default_factory=list)
    journal_lines_after_backup: int = 0
    journal_missing: bool = False
    partners_to_resync: int = 0
    seconds: float = 0.0


def _own_skids(data_dir: Path) -> tuple[str, set[str]] | None:
    """(node id, every signing key id this node has held) when the directory holds a node, else None."""
    if not (data_dir / CONFIG_FILE).is_file():
        return None
    config = load_config(data_dir)
    try:
        keys = NodeKeys.load(data_dir / KEY_DIR / KEY_FILE)
        history = load_history(data_dir)
    except KeyFileError as exc:
        raise BackupError(f"the node's key file cannot be read ({exc.message}): restore into an empty "
                          "directory with --key-file instead") from None
    return config.node_id, {keys.skid, *(g.skid for g in history.retired)}


def target_database_url(data_dir: Path, opened: Opened) -> str:
    """The database to restore into: the one the directory's node uses, else the backup's configuration's."""
    if (data_dir / CONFIG_FILE).is_file():
        return load_config(data_dir).database_url
    try:
        raw = tomllib.loads(opened.members[CONFIG_FILE].decode("utf-8"))
    except (KeyError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        raise BackupError("backup refused: it holds no readable node.toml") from None
    if raw.get("node", {}).get("id") != opened.manifest["node_id"]:
        raise BackupError("backup refused: its node.toml names another node than its manifest")
    return os.environ.get("CCM_DATABASE_URL") or raw.get("database", {}).get("url") \
        or default_database_url(data_dir)


def other_processes_holding(path: Path) -> list[int]:
    """Linux: the other processes that have ``path`` open (read from ``/proc``; those of other users are not
    visible and not found)."""
    found = []
    wanted = {str(path.resolve()), str(path.resolve()) + "-wal"}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            links = [os.readlink(fd) for fd in (entry / "fd").iterdir()]
        except OSError:
            continue
        if wanted.intersection(links):
            found.append(int(entry.name))
    return found


def check_not_running(url: str) -> None:
    """Refuse while the node (web app, delivery worker, another command) uses its database.

    SQLite: no other process may have the database file open. PostgreSQL: no other session may be connected.
    """
    if url.startswith("sqlite"):
        database = sa.engine.make_url(url).database
        if database and Path(database).exists():
            holders = other_processes_holding(Path(database))
            if holders:
                raise BackupError(f"the node is running (process {holders[0]} has {database} open): stop the "
                                  "web app and the delivery worker first")
        return
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            others = conn.scalar(sa.text("SELECT count(*) FROM pg_stat_activity WHERE datname = "
                                         "current_database() AND pid <> pg_backend_pid()"))
    except sa.exc.OperationalError:
        return  # no database yet (a new server): nothing is running on it
    finally:
        engine.dispose()
    if others:
        raise BackupError(f"the node is running ({others} other connection(s) to its database): stop the web app "
                          "and the delivery worker first")


def _journal_after(data_dir: Path, manifest: dict[str, Any]) -> tuple[list[dict[str, Any]], bool]:
    """The journal lines after the backup's, checked to continue it; (lines, journal missing here)."""
    try:
        entries = journal.read(journal.journal_path(data_dir))
    except journal.JournalError as exc:
        raise BackupError(f"restore refused: {exc}") from None
    length, head = manifest["journal"]["length"], manifest["journal"]["head"]
    if not entries:
        return [], length > 0
    if len(entries) < length or journal.head_of(entries[:length]).head != head:
        raise BackupError("restore refused: the erasure journal here does not continue the backup's "
                          "(another node's backup, or a journal from elsewhere)")
    return entries[length:], False


def _check_revision(revision: str | None) -> None:
    if revision is None:
        raise BackupError("backup refused: it holds an empty database")
    script = ScriptDirectory(str(migrate.MIGRATIONS_DIR))
    try:
        known = script.get_revision(revision) is not None
    except Exception:  # alembic raises several kinds for an unknown revision
        known = False
    if not known:
        raise BackupError(f"backup refused: its schema revision {revision} is unknown to this version of the "
                          "node (a backup from a newer version)")


def _write_missing_files(data_dir: Path, members: dict[str, bytes]) -> list[str]:
    written = []
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    (data_dir / KEY_DIR).mkdir(mode=0o700, exist_ok=True)
    for name, data in sorted(members.items()):
        if name not in (CONFIG_FILE, SECRET_FILE) and not name.startswith(f"{KEY_DIR}/"):
            continue
        path = data_dir / name
        if path.exists():
            continue
        write_private(path, data, exclusive=True)
        written.append(name)
    return written


def _restore_database(data_dir: Path, url: str, opened: Opened) -> None:
    if url.startswith("sqlite"):
        database = sa.engine.make_url(url).database
        if not database:
            raise BackupError("cannot restore into an in-memory database")
        target = Path(database)
        temporary = target.with_name(f".{target.name}.restore-{os.getpid()}")
        write_private(temporary, opened.members[SQLITE_MEMBER])
        for suffix in ("-wal", "-shm"):
            Path(str(target) + suffix).unlink(missing_ok=True)
        os.replace(temporary, target)
        return
    with private_workdir(data_dir) as workdir:
        dump = workdir / PGDUMP_MEMBER
        dump.write_bytes(opened.members[PGDUMP_MEMBER])
        run_pg("pg_restore", ["--clean", "--if-exists", "--no-owner", "--no-privileges", "--single-transaction",
                              "--exit-on-error", "--dbname", sa.engine.make_url(url).database or "", str(dump)],
               normalise_url(url))


def reapply(session: orm.Session, entry: dict[str, Any]) -> bool:
    """Make one journalled erasure again on a restored database (no commit, no confirmation sent).

    Returns:
        Whether anything was erased (False: the handover is not there, or that much is erased already).
    """
    handover = session.get(Handover, entry["handover_id"])
    if handover is None or handover.status == "erased":
        return False
    withdrawal_id = entry.get("withdrawal_id")
    if withdrawal_id is not None and session.get(ConsentWithdrawal, withdrawal_id) is None:
        withdrawal_id = None  # recorded after the backup: the tombstone names none
    erased_at = parse_time(entry["erased_at"])
    if entry["kind"] == "full":
        tombstone = erase_handover(session, handover, cause=entry["cause"], now=erased_at,
                                   withdrawal_id=withdrawal_id)
    else:
        wanted = [c for c in entry.get("categories") or [] if c not in handover.withheld]
        if not wanted:
            return False
        tombstone = erase_categories(session, handover, wanted, cause=entry["cause"], now=erased_at,
                                     withdrawal_id=withdrawal_id)
    tombstone.confirmation_message_id = entry.get("confirmation_message_id")
    return True


def restore_backup(data_dir: Path, data: bytes, *, now: datetime, key_file: Path | None = None) -> RestoreResult:
    """Restore a backup file's contents into ``data_dir`` (see the module's description).

    Args:
        data_dir: the node's data directory (its node stopped), or an empty/new directory.
        data: the backup file's bytes.
        now: the time (audit entry).
        key_file: the backup key file; default ``<data_dir>/keys/backup.key`` (required on a fresh directory).
    Returns:
        What was restored and which erasures were made again.
    Raises:
        BackupError: a check failed (nothing was changed), or the database restore itself failed.
    """
    started = time.monotonic()
    manifest, _ciphertext = read_header(data)
    own = _own_skids(data_dir)
    if own is not None:
        node_id, skids = own
        if manifest["node_id"] != node_id:
            raise BackupError(f"backup refused: it is a backup of {manifest['node_id']}, this is {node_id}")
        if manifest["skid"] not in skids:
            raise BackupError("backup refused: it is not signed by a key this node holds or held")
    elif key_file is None:
        raise BackupError("this directory holds no node: give the backup key with --key-file")
    backup_key = read_backup_key(key_file or backup_key_path(data_dir))
    opened = open_backup(data, backup_key=backup_key)
    url = target_database_url(data_dir, opened)
    kind = sa.engine.make_url(normalise_url(url)).get_backend_name()
    if kind != manifest["database"]:
        raise BackupError(f"backup refused: it holds a {manifest['database']} database, this node uses {kind}")
    _check_revision(manifest.get("schema_revision"))
    newer, missing = _journal_after(data_dir, manifest)
    check_not_running(normalise_url(url))

    # -- from here on, the data directory and the database change
    _write_missing_files(data_dir, opened.members)
    if key_file is not None:  # the next backups use the key the operator keeps a copy of
        _write_missing_files(data_dir, {f"{KEY_DIR}/{BACKUP_KEY_FILE}": key_file.read_bytes()})
    _restore_database(data_dir, url, opened)
    if missing or not journal.journal_path(data_dir).exists():
        write_private(journal.journal_path(data_dir), opened.members.get(journal.JOURNAL_FILE, b""))
    result = RestoreResult(manifest, url, journal_lines_after_backup=len(newer), journal_missing=missing)
    engine = make_engine(url)  # not bound to the journal: what is made again is journalled already
    try:
        try:  # the encrypted columns (node/at_rest) need the data key the archive or the directory holds, and
            # so do the migrations that encrypt what a backup from an older version holds in clear (0012, 0014)
            open_node_data_keys(load_config(data_dir), engine, now)
        except ConfigError as exc:
            raise BackupError(f"the database was restored but cannot be opened: {exc}") from None
        migrate.upgrade(engine)
        sessions = make_sessionmaker(engine)
        for entry in newer:
            with sessions() as session, session.begin():
                if reapply(session, entry):
                    result.reapplied.append(entry["handover_id"])
        with sessions() as session, session.begin():
            result.partners_to_resync = mark_out_of_step(
                session, parse_time(manifest["created_at"]) - RESYNC_MARGIN)
            record(session, actor=None, action="import", object_type="backup", object_id=None, case_id=None,
                   now=now, detail={"backup_created_at": manifest["created_at"],
                                    "schema_revision": manifest["schema_revision"],
                                    "erasures_reapplied": len(result.reapplied),
                                    "partners_to_resync": result.partners_to_resync})
        checkpoint(engine)
    finally:
        engine.dispose()
    result.seconds = time.monotonic() - started
    return result
