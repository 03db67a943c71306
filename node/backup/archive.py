"""A node's backup file: its database, keys and configuration in one file, encrypted and signed.

The file is ``MAGIC``, one line of canonical JSON (the *header*), then the ciphertext::

    CCM-BACKUP/1\\n
    {"ciphertext":{"sha256":HEX,"size":N},"manifest":{...},"signature":B64}\\n
    SecretBox(backup key) of a tar archive

The manifest names the node, the time, the schema revision, the kind of database, the SHA-256 of every member
of the tar, the erasure journal's length and head hash at backup time, and the public signing key; the
signature (Ed25519, the node's signing key) covers the manifest and the ciphertext's hash. The manifest holds no
personal data, so it is readable before decryption: a restore checks the signature and that the backup belongs
to the node *before* it decrypts. The tar holds ``database.sqlite`` (SQLite's online backup API, never a copy
of the live file) or ``database.pgdump`` (``pg_dump --format=custom``), ``keys/`` (without ``backup.key``),
``node.toml``, ``secret_key`` and ``erasures.journal``.

The backup key (32 random bytes, base64 in ``<data_dir>/keys/backup.key``, mode 0600) is made on the first
backup. Keep a copy off the machine: a restore on a new machine needs it (``--key-file``).

The archive is built and encrypted in memory (one SecretBox): it is meant for databases up to
``MAX_ARCHIVE_BYTES`` (about three times that much memory is used while it is made or read).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import nacl.exceptions
import nacl.secret
import nacl.signing
import nacl.utils
import sqlalchemy as sa

from node.backup import journal
from node.config import CONFIG_FILE, SECRET_FILE, NodeConfig
from node.exchange.trust.key_files import KEY_DIR, KEY_FILE
from node.private_files import PrivateFileError, save_private, write_private
from protocol import NodeKeys, b64decode, b64encode, canonical_bytes
from protocol.canonical import strict_loads
from protocol.errors import ProtocolError
from protocol.keys import key_id
from protocol.times import format_time

MAGIC = b"CCM-BACKUP/1\n"
FORMAT = 1
BACKUP_KEY_FILE = "backup.key"
#: What the signature covers is prefixed with this, so it can never be mistaken for a protocol signature.
SIGNING_DOMAIN = b"ccm-backup-v1\x00"
MAX_HEADER_BYTES = 1 << 20
MAX_ARCHIVE_BYTES = 2 << 30
SQLITE_MEMBER = "database.sqlite"
PGDUMP_MEMBER = "database.pgdump"
#: Where pg_dump and pg_restore are (PostgreSQL 15 client binaries, same major version as the server).
PG_BIN = Path("/usr/bin")


class BackupError(Exception):
    """A backup cannot be made, or a file is refused as a backup; the message is the one line to show."""


@dataclass(frozen=True)
class Backup:
    """What was written: the file, its size and its manifest."""

    path: Path
    size: int
    manifest: dict[str, Any]


# -- the backup key ---------------------------------------------------------------------------------------


def backup_key_path(data_dir: Path) -> Path:
    return data_dir / KEY_DIR / BACKUP_KEY_FILE


def read_backup_key(path: Path) -> bytes:
    """Read a backup key file (base64 of 32 bytes).

    Raises:
        BackupError: missing, unreadable or not a key.
    """
    try:
        text = path.read_text(encoding="ascii").strip()
        key = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except FileNotFoundError:
        raise BackupError(f"backup key {path} not found") from None
    except OSError as exc:
        raise BackupError(f"cannot read backup key {path}: {exc.strerror}") from None
    except (UnicodeDecodeError, binascii.Error, ValueError):
        raise BackupError(f"{path} is not a backup key") from None
    if len(key) != nacl.secret.SecretBox.KEY_SIZE:
        raise BackupError(f"{path} is not a backup key (expected 32 bytes)")
    return key


def ensure_backup_key(data_dir: Path) -> tuple[bytes, bool]:
    """The node's backup key, made (mode 0600) if there is none yet. Returns (key, made now)."""
    path = backup_key_path(data_dir)
    if path.exists():
        return read_backup_key(path), False
    key = nacl.utils.random(nacl.secret.SecretBox.KEY_SIZE)
    write_private(path, (base64.urlsafe_b64encode(key).decode("ascii").rstrip("=") + "\n").encode("ascii"),
                  exclusive=True)
    return key, True


# -- the database -----------------------------------------------------------------------------------------


def database_kind(url: str) -> str:
    name = sa.engine.make_url(url).get_backend_name()
    if name not in ("sqlite", "postgresql"):
        raise BackupError(f"cannot back up a {name} database")
    return name


def pg_environment(url: str) -> dict[str, str]:
    """libpq's environment for a database URL (the password never on a command line)."""
    parsed = sa.engine.make_url(url)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    for name, value in (("PGHOST", parsed.host), ("PGPORT", parsed.port), ("PGUSER", parsed.username),
                        ("PGPASSWORD", parsed.password), ("PGDATABASE", parsed.database)):
        if value is not None:
            env[name] = str(value)
    return env


def run_pg(tool: str, args: list[str], url: str) -> None:
    """Run ``pg_dump``/``pg_restore``; its first error line becomes a BackupError."""
    try:
        result = subprocess.run([str(PG_BIN / tool), *args], env=pg_environment(url), capture_output=True,  # noqa: S603
                                text=True, timeout=3600, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BackupError(f"{tool} failed: {exc}") from None
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        raise BackupError(f"{tool} failed: {lines[0] if lines else f'exit {result.returncode}'}")


def dump_database(engine: sa.Engine, workdir: Path) -> tuple[str, bytes]:
    """A consistent copy of the live database: (member name, bytes)."""
    if engine.dialect.name == "sqlite":
        source_path = engine.url.database
        if not source_path or source_path == ":memory:":
            raise BackupError("cannot back up an in-memory database")
        copy_path = workdir / SQLITE_MEMBER
        source = sqlite3.connect(source_path, timeout=30)
        target = sqlite3.connect(copy_path)
        try:
            source.backup(target)  # the online backup API: a consistent snapshot, WAL included
            target.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
        finally:
            target.close()
            source.close()
        return SQLITE_MEMBER, copy_path.read_bytes()
    url = engine.url.render_as_string(hide_password=False)
    dump_path = workdir / PGDUMP_MEMBER
    run_pg("pg_dump", ["--format=custom", "--no-owner", "--no-privileges", "--file", str(dump_path)], url)
    return PGDUMP_MEMBER, dump_path.read_bytes()


@contextmanager
def private_workdir(data_dir: Path) -> Iterator[Path]:
    """A temporary directory under the data directory, mode 0700, removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix=".backup-", dir=data_dir))
    try:
        os.chmod(path, 0o700)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


# -- the archive ------------------------------------------------------------------------------------------


def node_files(data_dir: Path) -> dict[str, bytes]:
    """``node.toml``, ``secret_key``, the erasure journal and every file under ``keys/`` except the backup
    key, lock and temporary files."""
    files: dict[str, bytes] = {}
    for name in (CONFIG_FILE, SECRET_FILE, journal.JOURNAL_FILE):
        path = data_dir / name
        if path.is_file():
            files[name] = path.read_bytes()
    keys = data_dir / KEY_DIR
    for path in sorted(keys.rglob("*")):
        relative = path.relative_to(data_dir)
        if path.is_file() and not path.is_symlink() and path.name != BACKUP_KEY_FILE \
                and not any(part.startswith(".") for part in relative.parts):
            files[relative.as_posix()] = path.read_bytes()
    return files


def tar_bytes(members: dict[str, bytes], mtime: datetime) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in sorted(members.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o600, int(mtime.timestamp())
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def signed_part(manifest: dict[str, Any], ciphertext: bytes) -> dict[str, Any]:
    return {"manifest": manifest,
            "ciphertext": {"sha256": hashlib.sha256(ciphertext).hexdigest(), "size": len(ciphertext)}}


def seal_archive(manifest: dict[str, Any], tar: bytes, *, backup_key: bytes, keys: NodeKeys) -> bytes:
    ciphertext = bytes(nacl.secret.SecretBox(backup_key).encrypt(tar))
    part = signed_part(manifest, ciphertext)
    signature = keys.signing_key.sign(SIGNING_DOMAIN + canonical_bytes(part)).signature
    return MAGIC + canonical_bytes({**part, "signature": b64encode(signature)}) + b"\n" + ciphertext


def create_backup(config: NodeConfig, engine: sa.Engine, out: Path, *, keys: NodeKeys, now: datetime,
                  schema_revision: str | None, backup_key: bytes | None = None, force: bool = False) -> Backup:
    """Write a backup of the node to ``out`` (mode 0600).

    Args:
        config: the node's configuration (its data directory is backed up).
        engine: the node's database.
        keys: the node's current keys (they sign the file).
        schema_revision: the database's Alembic revision.
        backup_key: the key to encrypt with; default the node's own (made on first use).
        force: replace ``out`` if it exists.
    Returns:
        The file written and its manifest.
    Raises:
        BackupError: ``out`` exists (without ``force``), the database cannot be copied, or it is too large.
    """
    if out.exists() and not force:
        raise BackupError(f"{out} exists: choose another --out or add --force")
    if keys.node_id != config.node_id:
        raise BackupError("the key file belongs to another node id")
    data_dir = config.data_dir
    if backup_key is None:
        backup_key, _made = ensure_backup_key(data_dir)
    with private_workdir(data_dir) as workdir:
        entries = journal.read(journal.journal_path(data_dir))  # before the database: never ahead of it
        files = node_files(data_dir)
        files.pop(journal.JOURNAL_FILE, None)
        files[journal.JOURNAL_FILE] = b"".join(canonical_bytes(e) + b"\n" for e in entries)
        name, database = dump_database(engine, workdir)
    if len(database) > MAX_ARCHIVE_BYTES:
        raise BackupError(f"the database is larger than {MAX_ARCHIVE_BYTES} bytes: too large for one archive")
    files[name] = database
    head = journal.head_of(entries)
    manifest = {
        "format": FORMAT, "node_id": config.node_id, "created_at": format_time(now),
        "schema_revision": schema_revision, "database": database_kind(config.database_url),
        "members": {n: {"sha256": hashlib.sha256(d).hexdigest(), "size": len(d)} for n, d in sorted(files.items())},
        "journal": {"length": head.length, "head": head.head},
        "signing_key": b64encode(keys.signing_public), "skid": keys.skid,
    }
    data = seal_archive(manifest, tar_bytes(files, now), backup_key=backup_key, keys=keys)
    try:
        save_private(out, data, force=force)
    except PrivateFileError as exc:
        raise BackupError(str(exc)) from None
    return Backup(out, len(data), manifest)


# -- reading it back --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Opened:
    """A backup file whose signature, encryption and members were all checked."""

    manifest: dict[str, Any]
    members: dict[str, bytes]


def read_header(data: bytes) -> tuple[dict[str, Any], bytes]:
    """Split a backup file into its header and ciphertext, and check the signature with the manifest's key.

    Raises:
        BackupError: not a backup file, malformed, or the signature or ciphertext hash does not verify.
    """
    if not data.startswith(MAGIC):
        raise BackupError("not a CCM backup file")
    end = data.find(b"\n", len(MAGIC), len(MAGIC) + MAX_HEADER_BYTES)
    if end < 0:
        raise BackupError("backup refused: malformed header")
    try:
        header = strict_loads(data[len(MAGIC):end])
        manifest, signature = header["manifest"], b64decode(header["signature"], length=64)
        if set(header) != {"manifest", "ciphertext", "signature"} or not isinstance(manifest, dict) \
                or manifest.get("format") != FORMAT:
            raise ValueError("unexpected header")
        verify_key = nacl.signing.VerifyKey(b64decode(manifest["signing_key"], length=32))
    except (ProtocolError, ValueError, KeyError, TypeError, RecursionError, nacl.exceptions.CryptoError):
        raise BackupError("backup refused: malformed header") from None
    ciphertext = data[end + 1:]
    try:
        verify_key.verify(SIGNING_DOMAIN + canonical_bytes(signed_part(manifest, ciphertext)), signature)
    except nacl.exceptions.BadSignatureError:
        raise BackupError("backup refused: the signature does not verify (the file was altered or damaged)") \
            from None
    if header["ciphertext"] != signed_part(manifest, ciphertext)["ciphertext"]:
        raise BackupError("backup refused: the signature does not verify (the file was altered or damaged)")
    if manifest.get("skid") != key_id(bytes(verify_key)):
        raise BackupError("backup refused: malformed manifest (key id)")
    return manifest, ciphertext


def untar(tar: bytes) -> dict[str, bytes]:
    """The regular files of a tar (no links, no absolute or parent paths)."""
    members: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(tar), mode="r:") as archive:
            for info in archive.getmembers():
                parts = Path(info.name).parts
                if not info.isfile() or info.name.startswith("/") or ".." in parts or info.name in members:
                    raise BackupError(f"backup refused: unexpected member {info.name!r}")
                handle = archive.extractfile(info)
                if handle is None:
                    raise BackupError(f"backup refused: unreadable member {info.name!r}")
                members[info.name] = handle.read()
    except tarfile.TarError:
        raise BackupError("backup refused: the archive inside is damaged") from None
    return members


def open_backup(data: bytes, *, backup_key: bytes) -> Opened:
    """Verify a backup file completely: signature, decryption, every member's hash, the keys inside.

    Returns:
        The manifest and the members.
    Raises:
        BackupError: any check fails (nothing is written by this function).
    """
    manifest, ciphertext = read_header(data)
    try:
        tar = nacl.secret.SecretBox(backup_key).decrypt(ciphertext)
    except nacl.exceptions.CryptoError:
        raise BackupError("backup refused: it does not decrypt with this backup key (wrong key, or damaged)") \
            from None
    members = untar(tar)
    listed = manifest.get("members")
    if not isinstance(listed, dict) or set(listed) != set(members):
        raise BackupError("backup refused: its members do not match the manifest")
    for name, data_ in members.items():
        if listed[name].get("sha256") != hashlib.sha256(data_).hexdigest():
            raise BackupError(f"backup refused: {name} does not match the manifest")
    check_keys(manifest, members)
    return Opened(manifest, members)


def check_keys(manifest: dict[str, Any], members: dict[str, bytes]) -> None:
    """The key file inside belongs to the manifest's node and holds the key that signed the file (or that key
    is one of its retired generations)."""
    name = f"{KEY_DIR}/{KEY_FILE}"
    if name not in members:
        raise BackupError("backup refused: it holds no node key file")
    try:
        keys = NodeKeys.from_json_bytes(members[name])
    except ProtocolError:
        raise BackupError("backup refused: its node key file is malformed") from None
    if keys.node_id != manifest.get("node_id"):
        raise BackupError("backup refused: its key file belongs to another node than its manifest")
    if keys.skid != manifest["skid"] and f"{KEY_DIR}/retired/{manifest['skid']}.key" not in members:
        raise BackupError("backup refused: it was not signed by the keys it holds")
    journal_bytes = members.get(journal.JOURNAL_FILE, b"")
    try:
        head = journal.head_of(journal.parse(journal_bytes))
    except journal.JournalError as exc:
        raise BackupError(f"backup refused: {exc}") from None
    if manifest.get("journal") != {"length": head.length, "head": head.head}:
        raise BackupError("backup refused: its erasure journal does not match the manifest")
