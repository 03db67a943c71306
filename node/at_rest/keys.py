"""The data key: 32 random bytes that encrypt the special-category columns, held outside the database.

The key file is ``DATA_DIR/keys/data.key`` (directory 0700, file 0600, made by ``ccm-node init`` or on the
first start of a node that has none), or the file named by ``CCM_DATA_KEY_FILE`` (for example one a secrets
manager mounts; it is never created). It holds one key per line in base64, the first line being the key new
values are encrypted with, the others older keys still needed to read rows a rotation has not reached yet;
``#`` starts a comment line. A key's id (``kid``) is derived from the key itself (8 characters), so the file
needs nothing but the keys.

A running process re-reads the file when it changed on disk (checked at most every ``RELOAD_SECONDS`` before
an encryption, and at once when a value names a key id it does not hold): ``ccm-node keys data-rotate`` writes
a new first line, and the web workers and the delivery worker follow within seconds without a restart.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from node.private_files import replace_private, write_private

KEY_DIR = "keys"
KEY_FILE = "data.key"
ENV_KEY_FILE = "CCM_DATA_KEY_FILE"
KEY_BYTES = 32
RELOAD_SECONDS = 2.0
_HEADER = ("# CCM Exchange data key(s): the first line encrypts, the others only decrypt. Keep this file\n"
           "# secret and back it up apart from the database: without it the encrypted columns are lost.\n")

#: Every key this process has loaded, by id: a value is readable through any engine once its key is known here.
_KEYRING: dict[str, bytes] = {}
_KEYRING_LOCK = threading.Lock()


class DataKeyError(Exception):
    """The data key is missing, unreadable or not the one the database was encrypted with."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def key_id(secret: bytes) -> str:
    """The 8-character id of a key (a truncated hash of it: it tells nothing about the key)."""
    digest = hashlib.sha256(b"ccm-data-key-id:" + secret).digest()[:6]
    return base64.urlsafe_b64encode(digest).decode("ascii")


@dataclass(frozen=True)
class DataKey:
    kid: str
    secret: bytes = field(repr=False)

    @classmethod
    def generate(cls) -> DataKey:
        secret = secrets.token_bytes(KEY_BYTES)
        return cls(key_id(secret), secret)

    @classmethod
    def from_secret(cls, secret: bytes) -> DataKey:
        return cls(key_id(secret), secret)


def remember(keys: Sequence[DataKey]) -> None:
    """Add keys to the process-wide keyring (decryption only)."""
    with _KEYRING_LOCK:
        for key in keys:
            _KEYRING[key.kid] = key.secret


def keyring_get(kid: str) -> bytes | None:
    return _KEYRING.get(kid)


def parse_key_file(text: str) -> list[DataKey]:
    """The keys of a key file, the current one first.

    Raises:
        ValueError: a line is not a base64 32-byte key, or the file holds none.
    """
    keys: list[DataKey] = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            secret = base64.b64decode(line.replace("-", "+").replace("_", "/"), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(f"line {number} is not base64") from None
        if len(secret) != KEY_BYTES:
            raise ValueError(f"line {number} is not a {KEY_BYTES}-byte key")
        keys.append(DataKey.from_secret(secret))
    if not keys:
        raise ValueError("no key in the file")
    return keys


def format_key_file(keys: Sequence[DataKey]) -> str:
    return _HEADER + "".join(base64.b64encode(k.secret).decode("ascii") + "\n" for k in keys)


def key_file_path(data_dir: Path) -> tuple[Path, bool]:
    """The key file and whether it comes from ``CCM_DATA_KEY_FILE`` (then it is never created here)."""
    named = os.environ.get(ENV_KEY_FILE)
    if named:
        return Path(named), True
    return data_dir / KEY_DIR / KEY_FILE, False


def write_key_file(path: Path, keys: Sequence[DataKey], *, exclusive: bool = False) -> None:
    """Write the key file atomically with mode 0600 (``exclusive``: fail if it exists).

    Raises:
        FileExistsError: ``exclusive`` and the file exists.
        OSError: the file cannot be written.
    """
    data = format_key_file(keys).encode("ascii")
    if exclusive:
        write_private(path, data, exclusive=True)
    else:
        replace_private(path, data)


def read_key_file(path: Path) -> list[DataKey]:
    """Raises: DataKeyError: missing or not a key file (one line saying which and why)."""
    try:
        text = path.read_text(encoding="ascii")
    except FileNotFoundError:
        raise DataKeyError(f"no data key at {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataKeyError(f"cannot read the data key {path}: {exc}") from None
    try:
        return parse_key_file(text)
    except ValueError as exc:
        raise DataKeyError(f"{path} is not a data key file: {exc}") from None


class DataKeys:
    """One node's data keys as a process holds them: the current key (encrypts) and every key it can decrypt
    with, reloaded from the key file when the file changes."""

    def __init__(self, keys: Sequence[DataKey], path: Path | None = None) -> None:
        if not keys:
            raise DataKeyError("no data key")
        self._lock = threading.Lock()
        self.path = path
        self._set(list(keys))
        self._checked = time.monotonic()

    def _set(self, keys: list[DataKey]) -> None:
        self._keys = keys
        self._by_kid = {k.kid: k.secret for k in keys}
        self._mtime = self._stat()
        remember(keys)

    def _stat(self) -> tuple[int, int] | None:
        if self.path is None:
            return None
        try:
            st = self.path.stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_ino)

    @property
    def current(self) -> DataKey:
        """The key to encrypt with (after a reload when the file changed; at most every RELOAD_SECONDS)."""
        now = time.monotonic()
        if now - self._checked >= RELOAD_SECONDS:
            self._checked = now
            self.reload()
        return self._keys[0]

    @property
    def all(self) -> list[DataKey]:
        """Every key held, the current one first (without a reload)."""
        return list(self._keys)

    @property
    def kids(self) -> list[str]:
        return [k.kid for k in self._keys]

    def get(self, kid: str) -> bytes | None:
        """The key with this id; the file is re-read once if it is not known (a rotation by another process)."""
        secret = self._by_kid.get(kid)
        if secret is None:
            self.reload(force=True)
            secret = self._by_kid.get(kid)
        return secret

    def reload(self, force: bool = False) -> None:
        if self.path is None:
            return
        with self._lock:
            if not force and self._stat() == self._mtime:
                return
            try:
                keys = read_key_file(self.path)
            except DataKeyError:
                return  # keep the keys we hold; the next start reports the file
            self._set(keys)


def load_data_keys(data_dir: Path, *, create: bool) -> tuple[DataKeys, bool]:
    """The node's data keys, from ``CCM_DATA_KEY_FILE`` or ``DATA_DIR/keys/data.key``.

    Args:
        data_dir: the node's data directory.
        create: make a new key file when there is none (never for ``CCM_DATA_KEY_FILE``).
    Returns:
        The keys, and whether the key file was created now.
    Raises:
        DataKeyError: no key file (and ``create`` is false or the file is named by the environment), or it is
            not a data key file.
    """
    path, from_env = key_file_path(data_dir)
    created = False
    if create and not from_env and not path.exists():
        try:
            write_key_file(path, [DataKey.generate()], exclusive=True)
            os.chmod(path.parent, 0o700)
            created = True
        except FileExistsError:
            pass  # another process of this node made it first: use that one
        except OSError as exc:
            raise DataKeyError(f"cannot create the data key {path}: {exc.strerror}") from None
    try:
        keys = read_key_file(path)
    except DataKeyError as exc:
        hint = f" ({ENV_KEY_FILE} names it)" if from_env else ""
        raise DataKeyError(f"{exc.message}{hint}") from None
    return DataKeys(keys, path), created
