"""Files only the node's own user may read (mode 0600): keys, the data key, secrets, backups, bundles and their
receipts. One writer for all of them, so that each is written the same way: created with mode 0600 from the
first byte (never made readable and then restricted), flushed and fsync-ed before it counts, and, when it
replaces a file, written beside it and renamed over it, so that a reader finds the old file or the new one,
never half of one.

- :func:`write_private`: create a file (or truncate one) and write it.
- :func:`replace_private`: replace a file atomically (through a temporary file in the same directory).
- :func:`save_private`: an export the operator named: a new file, or with ``force`` a replaced one; refusals
  are :class:`PrivateFileError` with the one line the command prints.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path


class PrivateFileError(Exception):
    """A file the operator asked for exists (without ``force``) or cannot be written; the message says which."""


def write_private(path: Path, data: bytes, *, exclusive: bool = False, durable: bool = True) -> None:
    """Write ``data`` to ``path``, created with mode 0600 (its directory, if made, 0700).

    Args:
        exclusive: refuse an existing file (``FileExistsError``) instead of truncating it.
        durable: fsync before returning (off only for files that are rewritten whole at the next start).
    Raises:
        FileExistsError: ``exclusive`` and the file exists.
        OSError: it cannot be written (with ``exclusive``, the file it made is removed).
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if exclusive else os.O_TRUNC)
    fd = os.open(path, flags, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
    except BaseException:
        if exclusive:  # made just now: no half-written file is left behind
            path.unlink(missing_ok=True)
        raise


def replace_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file beside it and a rename (mode 0600): a reader finds
    the old content or the new, never part of it. Safe from several threads and processes at once (each its
    own temporary file; the last rename wins).

    Raises:
        OSError: it cannot be written (the temporary file is removed).
    """
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        write_private(temporary, data)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def save_private(path: Path, data: bytes, *, force: bool) -> None:
    """Write an export the operator named (a backup, a bundle, its receipts): a new file, or with ``force`` the
    existing one replaced whole.

    Raises:
        PrivateFileError: the file exists (without ``force``) or cannot be written; the message is the one
            line to print.
    """
    try:
        if force:
            replace_private(path, data)
        else:
            write_private(path, data, exclusive=True)
    except FileExistsError:
        raise PrivateFileError(f"{path} exists: choose another file name or add --force") from None
    except OSError as exc:
        raise PrivateFileError(f"cannot write {path}: {exc.strerror or exc}") from None
