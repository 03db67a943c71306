"""The erasure journal: what was erased, kept outside the database so that it survives a restore.

``<data_dir>/erasures.journal`` (mode 0600) holds one canonical JSON line per erasure at this node, appended
after the erasing transaction committed: ``seq``, ``prev`` (the previous line's hash), ``hash`` (SHA-256 of the
line without ``hash``), ``kind`` (``full`` or ``categories``), the handover row id and message id, the local
case id, the sender, the categories, the cause, the withdrawal id, the tombstone id, the erasure confirmation's
message id and the time. Ids, categories and times only: never a name or a note.

The erasing code does not know the data directory; the engine carries it as an execution option
(:func:`bind`, done by ``create_app`` and the command line). An engine without it writes no journal (tests of
other rooms, and the restore itself while it re-applies the journal).

A crash between the commit and the append loses that line (the window is one ``write``); a failed append is
logged and the erasure stays committed. A backup records the journal's length and head hash; the restore
re-applies every line after that length (``node.backup.restore``).
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm

from protocol import canonical_bytes
from protocol.canonical import strict_loads
from protocol.errors import ProtocolError

JOURNAL_FILE = "erasures.journal"
#: The engine execution option naming the node's data directory.
DATA_DIR_OPTION = "ccm_data_dir"
GENESIS = "0" * 64
_PENDING = "ccm_erasure_journal_pending"
_LISTENING = "ccm_erasure_journal_listening"
_READY = "ccm_erasure_journal_ready"
log = logging.getLogger(__name__)


class JournalError(Exception):
    """The journal is unreadable or its hash chain is broken; the message says at which line."""


@dataclass(frozen=True)
class JournalHead:
    """How long the journal is and the hash of its last line (``GENESIS`` when empty)."""

    length: int
    head: str


def bind(engine: sa.Engine, data_dir: Path) -> None:
    """Let erasures on this engine's sessions be journalled in ``data_dir``."""
    engine.update_execution_options(**{DATA_DIR_OPTION: str(data_dir)})


def journal_path(data_dir: Path) -> Path:
    return data_dir / JOURNAL_FILE


def _line_hash(entry: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_bytes({k: v for k, v in entry.items() if k != "hash"})).hexdigest()


def read(path: Path) -> list[dict[str, Any]]:
    """Every line of a journal, its chain verified (an absent file is an empty journal).

    Raises:
        JournalError: a line is not canonical JSON, out of sequence, or its hash or link is wrong.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise JournalError(f"cannot read {path.name}: {exc.strerror}") from None
    return parse(data)


def parse(data: bytes) -> list[dict[str, Any]]:
    """The lines of journal bytes, verified (see :func:`read`)."""
    entries: list[dict[str, Any]] = []
    prev = GENESIS
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    for number, line in enumerate(lines, start=1):
        try:
            entry = strict_loads(line)
        except (ProtocolError, ValueError, RecursionError):
            raise JournalError(f"erasure journal line {number} is not valid JSON") from None
        if not isinstance(entry, dict) or entry.get("seq") != number or entry.get("prev") != prev \
                or entry.get("hash") != _line_hash(entry) or canonical_bytes(entry) != line:
            raise JournalError(f"erasure journal line {number} is out of sequence or altered")
        entries.append(entry)
        prev = entry["hash"]
    return entries


def head_of(entries: list[dict[str, Any]]) -> JournalHead:
    return JournalHead(len(entries), entries[-1]["hash"] if entries else GENESIS)


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    fd = os.open(path.with_name(f".{path.name}.lock"), os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def append(data_dir: Path, records: list[dict[str, Any]]) -> JournalHead:
    """Append erasure records (each gets ``seq``, ``prev`` and ``hash``), under a file lock, synced to disk.

    Raises:
        JournalError: the existing journal is broken (nothing is appended to it).
        OSError: the file cannot be written (a full disk: ``ENOSPC``); the journal is left as it was, without
            part of a line.
    """
    path = journal_path(data_dir)
    with _locked(path):
        entries = read(path)
        head = head_of(entries)
        lines = []
        for record in records:
            entry = {**record, "seq": head.length + 1, "prev": head.head}
            entry["hash"] = _line_hash(entry)
            lines.append(canonical_bytes(entry) + b"\n")
            head = JournalHead(head.length + 1, entry["hash"])
        data = b"".join(lines)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            length = os.fstat(fd).st_size
            try:
                if os.write(fd, data) != len(data):  # a full disk takes part of it, then refuses the rest
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                os.fsync(fd)
            except OSError:
                os.ftruncate(fd, length)  # never a line cut short: the chain stays readable and appendable
                raise
        finally:
            os.close(fd)
    return head


def _data_dir(session: orm.Session) -> Path | None:
    bind_ = session.get_bind()
    engine = bind_.engine if isinstance(bind_, sa.Connection) else bind_
    value = engine.get_execution_options().get(DATA_DIR_OPTION) if isinstance(engine, sa.Engine) else None
    return Path(value) if value else None


def after_commit(session: orm.Session, make_record: Any) -> None:
    """Journal an erasure once the session's transaction commits (nothing if it rolls back).

    Args:
        session: the erasing session.
        make_record: a callable returning the record (a dict of ids, categories, cause, time), or None when
            the erasure was undone (a savepoint rolled back); it is called just before the commit, so it sees
            values set after the erasure (the confirmation's message id).
    """
    data_dir = _data_dir(session)
    if data_dir is None:
        return
    session.info.setdefault(_PENDING, []).append(make_record)
    if session.info.get(_LISTENING):
        return
    session.info[_LISTENING] = True

    def _before_commit(committing: orm.Session) -> None:
        if committing.in_nested_transaction():
            return
        made = [make() for make in committing.info.pop(_PENDING, [])]
        committing.info[_READY] = [m for m in made if m is not None]  # None: its savepoint rolled back

    def _after_commit(committed: orm.Session) -> None:
        if committed.in_nested_transaction():
            return
        records = committed.info.pop(_READY, [])
        if records:
            try:
                append(data_dir, records)
            except (OSError, JournalError) as exc:
                log.error("erasure journal not written (%d erasure(s) committed): %s", len(records),
                          getattr(exc, "strerror", None) or exc)

    def _after_transaction_end(ended: orm.Session, transaction: orm.SessionTransaction) -> None:
        if transaction.parent is None:  # the whole transaction: written above if it committed, else dropped
            ended.info.pop(_PENDING, None)
            ended.info.pop(_READY, None)

    sa.event.listen(session, "before_commit", _before_commit)
    sa.event.listen(session, "after_commit", _after_commit)
    sa.event.listen(session, "after_transaction_end", _after_transaction_end)
