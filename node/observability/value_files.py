"""prometheus-client's per-process value files, made safe for a full disk.

In multiprocess mode prometheus-client keeps each process's values in a file it maps into memory
(``MmapedDict``). It makes and grows that file with ``truncate``, which allocates no block, and then writes
through the map: on a full disk the first write to a page that has no block yet kills the process with SIGBUS.
That is a worker on its first request after the disk filled (the client's connection is dropped), and the
gunicorn master when it folds an exited worker's files into the archive (:func:`.multiprocess.fold`): the
whole node stops, and does not come back when space returns.

:class:`ValueFile` allocates every block before it is mapped (``posix_fallocate``), so a full disk is an
``OSError`` (``ENOSPC``) instead, raised before anything changed. A process's file is made under a temporary
name and renamed once allocated, so a scrape never reads a file half made. What happens then:

- a worker's file (:func:`install` makes prometheus-client use this class): when the disk has no room the file
  stays *detached*: nothing is written, the values live on in the process (prometheus-client keeps every value
  in memory and writes the whole value at each change), and at most every :data:`RETRY_SECONDS` a change tries
  again. Once there is room the file is made and each value reaches it at its next change; a scrape meanwhile
  misses that process's counts. Counting never raises, so metrics never fail a request;
- the master's fold (``strict=True``) raises the ``OSError``; the fold keeps the exited worker's files, which a
  scrape goes on summing.
"""

from __future__ import annotations

import contextlib
import logging
import os
import struct
import time
from typing import Any

from prometheus_client import values
from prometheus_client.mmap_dict import MmapedDict

log = logging.getLogger(__name__)

#: The size a value file starts at (prometheus-client's own first size).
INITIAL_BYTES = 1 << 16
#: How long a file that could not be made or grown waits before a change tries again.
RETRY_SECONDS = 5.0


def allocate(fd: int, size: int) -> None:
    """Give an open file at least ``size`` bytes, every block of them allocated (zeros where it had none).

    Raises:
        OSError: ``ENOSPC`` (or ``EDQUOT``) when the disk has no room; the file's contents are unchanged.
    """
    os.posix_fallocate(fd, 0, size)


def entry_bytes(key: str) -> int:
    """The bytes one value takes in the file, as ``MmapedDict._init_value`` lays it out (length, key padded to
    8 bytes, value and timestamp)."""
    encoded = key.encode("utf-8")
    padded = len(encoded) + (8 - (len(encoded) + 4) % 8)
    return struct.calcsize(f"i{padded}sdd")


class ValueFile(MmapedDict):
    """A process's value file whose blocks are allocated before they are mapped (see the module's docstring).

    Args:
        filename: the file (``counter_<pid>.db``, ...).
        read_mode: open an existing file only to read it (as prometheus-client does).
        strict: raise the ``OSError`` of a full disk instead of detaching (the master's fold).
    """

    def __init__(self, filename: str, read_mode: bool = False, *, strict: bool = False) -> None:
        self._strict = strict
        self._retry_at = 0.0
        self._failing = False
        if read_mode:
            super().__init__(filename, read_mode=True)  # type: ignore[no-untyped-call]
            return
        self._fname = filename
        self._f: Any = None
        self._m: Any = None
        self._positions: dict[str, int] = {}
        self._attach()

    def _make(self) -> None:
        """Make the file, allocated, under a temporary name (not ``*.db``: a scrape does not read it), then
        rename it into place."""
        temporary = f"{self._fname}.new"
        try:
            fd = os.open(temporary, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                allocate(fd, INITIAL_BYTES)
            finally:
                os.close(fd)
            os.rename(temporary, self._fname)
        except OSError:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
            raise

    def _attach(self) -> bool:
        """Make or open the file and map it. False (the file detached) when the disk has no room."""
        try:
            if not os.path.exists(self._fname):
                self._make()
            else:  # a file of this process already (the master re-reading its configuration): fill its holes
                fd = os.open(self._fname, os.O_RDWR)
                try:
                    allocate(fd, max(os.fstat(fd).st_size, INITIAL_BYTES))
                finally:
                    os.close(fd)
            super().__init__(self._fname)  # type: ignore[no-untyped-call]
        except OSError as exc:
            self._no_room(exc)
            return False
        self._room_again()
        return True

    def _no_room(self, exc: OSError) -> None:
        if self._strict:
            raise exc
        self._retry_at = time.monotonic() + RETRY_SECONDS
        if not self._failing:
            log.warning("metrics: %s cannot be written (%s); the values are kept in the process until there is "
                        "room", os.path.basename(self._fname), exc.strerror or type(exc).__name__)
            self._failing = True

    def _room_again(self) -> None:
        if self._failing:
            log.warning("metrics: %s is written again", os.path.basename(self._fname))
            self._failing = False

    def _ready(self) -> bool:
        if self._m is not None:
            return True
        return time.monotonic() >= self._retry_at and self._attach()

    def _init_value(self, key: str) -> None:
        """As prometheus-client's, but the blocks of a grown file are allocated before the map is extended."""
        capacity = self._capacity
        while self._used + entry_bytes(key) > capacity:
            capacity *= 2
        if capacity > self._capacity:
            allocate(self._f.fileno(), capacity)  # raises before anything changed
        super()._init_value(key)  # type: ignore[no-untyped-call]

    def read_value(self, key: str) -> tuple[float, float]:
        """The value and timestamp of ``key`` (0, 0 while the file is detached or cannot hold a new key)."""
        if self._ready() and (key in self._positions or time.monotonic() >= self._retry_at):
            try:
                return super().read_value(key)  # type: ignore[no-untyped-call,no-any-return]
            except OSError as exc:
                self._no_room(exc)
        return 0.0, 0.0

    def write_value(self, key: str, value: float, timestamp: float) -> None:
        """Write ``key``'s value (nothing while the file is detached or cannot hold a new key)."""
        if self._ready() and (key in self._positions or time.monotonic() >= self._retry_at):
            try:
                super().write_value(key, value, timestamp)  # type: ignore[no-untyped-call]
            except OSError as exc:
                self._no_room(exc)
                return
            self._room_again()


def install() -> None:
    """Make prometheus-client's multiprocess values use :class:`ValueFile` (call it once
    ``PROMETHEUS_MULTIPROC_DIR`` is set: the value class is chosen again from it)."""
    values.MmapedDict = ValueFile  # type: ignore[attr-defined]
    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]
