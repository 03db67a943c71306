"""The audit log: every create, read, change and export of case data: who, when, what, from where.

Append-only and hash-chained. Entry ``n`` stores ``prev_hash`` (the hash of entry ``n-1``; 64 zeros for the
first) and ``entry_hash`` = SHA-256 of the RFC 8785 canonical JSON of all its other fields. A one-row
``audit_head`` table holds the sequence number and hash of the newest entry; appending locks that row
(``FOR UPDATE`` on PostgreSQL; SQLite transactions are already serialised by ``BEGIN IMMEDIATE``), so sequence
numbers are contiguous and the chain never forks, whatever the number of workers. A transaction that appends
several entries (a handover: the message sent, the handover created) locks and reads the head once: the
session remembers the locked head row for the rest of its transaction.

:func:`verify_chain` walks the log and names every entry that was edited (its hash no longer matches its
content), deleted (a gap in the sequence, or a log shorter than the head says) or reordered (a broken link).
Entries never hold personal data: ids, actions, field names and counts only.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

import sqlalchemy as sa
from sqlalchemy import orm
from sqlalchemy.orm import Mapped, mapped_column

from protocol.canonical import canonical_bytes

from .db import Base, UTCDateTime

if TYPE_CHECKING:
    from .auth import Actor

GENESIS_HASH = "0" * 64
ACTIONS = frozenset({"create", "read", "update", "delete", "export", "login", "login_failed", "logout", "withdraw",
                     "send", "receive", "verify", "retry", "import", "revoke", "suspend", "resume", "disable",
                     "enable", "notify"})


class AuditEntry(Base):
    __tablename__ = "audit_log"

    seq: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True,
                                     autoincrement=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor_id: Mapped[int | None] = mapped_column()
    actor_username: Mapped[str | None] = mapped_column(sa.String(64))
    actor_role: Mapped[str | None] = mapped_column(sa.String(20))
    remote_addr: Mapped[str | None] = mapped_column(sa.String(64))
    action: Mapped[str] = mapped_column(sa.String(20))
    object_type: Mapped[str] = mapped_column(sa.String(40))
    object_id: Mapped[str | None] = mapped_column(sa.String(64))
    case_id: Mapped[str | None] = mapped_column(sa.String(36), index=True)
    detail: Mapped[str | None] = mapped_column(sa.Text())
    prev_hash: Mapped[str] = mapped_column(sa.String(64))
    entry_hash: Mapped[str] = mapped_column(sa.String(64))


class AuditHead(Base):
    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    last_seq: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer(), "sqlite"))
    last_hash: Mapped[str] = mapped_column(sa.String(64))


def _content(entry: AuditEntry) -> dict[str, Any]:
    return {
        "seq": entry.seq,
        "at": entry.at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "actor_id": entry.actor_id,
        "actor_username": entry.actor_username,
        "actor_role": entry.actor_role,
        "remote_addr": entry.remote_addr,
        "action": entry.action,
        "object_type": entry.object_type,
        "object_id": entry.object_id,
        "case_id": entry.case_id,
        "detail": entry.detail,
        "prev_hash": entry.prev_hash,
    }


def compute_hash(entry: AuditEntry) -> str:
    return hashlib.sha256(canonical_bytes(_content(entry))).hexdigest()


_HEAD = "ccm_audit_head"
_HEAD_TABLE = cast(sa.Table, AuditHead.__table__)
_ENTRY_TABLE = cast(sa.Table, AuditEntry.__table__)
_LOCK_HEAD = (sa.select(_HEAD_TABLE.c.last_seq, _HEAD_TABLE.c.last_hash)
              .where(_HEAD_TABLE.c.id == 1).with_for_update())
_INSERT_ENTRY = sa.insert(_ENTRY_TABLE)
_MOVE_HEAD = (sa.update(_HEAD_TABLE).where(_HEAD_TABLE.c.id == 1)
              .values(last_seq=sa.bindparam("seq"), last_hash=sa.bindparam("entry_hash")))


@dataclass
class _Head:
    """The head as this session's current (possibly nested) transaction last wrote it."""

    transaction: orm.SessionTransaction
    seq: int
    hash: str


def _locked_head(session: orm.Session) -> _Head:
    """The head row, locked for this session's transaction.

    The first entry of a transaction reads it ``FOR UPDATE``; the session keeps its values in
    ``session.info`` with the (possibly nested) transaction that read them, and later entries of that same
    transaction use them. In any other transaction (a savepoint begun, released or rolled back since) the
    row is read, and locked, again: a rolled-back savepoint takes its entries, its head update and, on
    PostgreSQL, its row lock with it.
    """
    current = session.get_nested_transaction() or session.get_transaction()
    held: _Head | None = session.info.get(_HEAD)
    if held is not None and held.transaction is current and current is not None and current.is_active:
        return held
    row = session.execute(_LOCK_HEAD).first()
    seq, hash_ = (int(row[0]), str(row[1])) if row is not None else (0, GENESIS_HASH)
    if row is None:
        session.execute(sa.insert(_HEAD_TABLE).values(id=1, last_seq=seq, last_hash=hash_))
    current = session.get_nested_transaction() or session.get_transaction()
    assert current is not None  # the SELECT began one
    head = _Head(current, seq, hash_)
    session.info[_HEAD] = head
    return head


def record(session: orm.Session, *, actor: Actor | None, action: str, object_type: str, object_id: str | None,
           case_id: str | None, now: datetime, detail: dict[str, Any] | None = None) -> AuditEntry:
    """Append one entry to the chain, in the caller's transaction (it commits or rolls back with the change).

    The entry and the head are written at once with two Core statements: they do not flush the session's
    pending objects (a conflict among those surfaces at the caller's next flush or commit).

    Args:
        actor: who did it (None for the node itself, e.g. a delivery worker).
        action: one of ``ACTIONS``.
        object_type: e.g. ``case``, ``consent``, ``case_list``.
        detail: ids, field names, counts; never personal data.
    Returns:
        The new entry, as written (not attached to the session).
    """
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    head = _locked_head(session)
    entry = AuditEntry(
        seq=head.seq + 1,
        at=now,
        actor_id=actor.user_id if actor else None,
        actor_username=actor.username if actor else None,
        actor_role=actor.role if actor else None,
        remote_addr=actor.remote_addr if actor else None,
        action=action,
        object_type=object_type,
        object_id=object_id,
        case_id=case_id,
        detail=json.dumps(detail, sort_keys=True, separators=(",", ":")) if detail else None,
        prev_hash=head.hash,
    )
    entry.entry_hash = compute_hash(entry)
    session.execute(_INSERT_ENTRY, {
        "seq": entry.seq, "at": now, "actor_id": entry.actor_id, "actor_username": entry.actor_username,
        "actor_role": entry.actor_role, "remote_addr": entry.remote_addr, "action": action,
        "object_type": object_type, "object_id": object_id, "case_id": case_id, "detail": entry.detail,
        "prev_hash": entry.prev_hash, "entry_hash": entry.entry_hash})
    session.execute(_MOVE_HEAD, {"seq": entry.seq, "entry_hash": entry.entry_hash})
    head.seq, head.hash = entry.seq, entry.entry_hash
    return entry


@dataclass(frozen=True)
class AuditProblem:
    seq: int
    kind: str  # edited | deleted | reordered | truncated
    message: str


def verify_chain(session: orm.Session, batch: int = 5000) -> tuple[int, list[AuditProblem]]:
    """Walk the whole log in sequence order and report every inconsistency.

    Returns:
        (number of entries checked, problems found; empty when the log is intact).
    """
    problems: list[AuditProblem] = []
    expected_seq = 1
    prev_hash = GENESIS_HASH
    count = 0
    for entry in _iter_entries(session, batch):
        count += 1
        if entry.seq != expected_seq:
            missing = (f"entry {expected_seq}" if entry.seq == expected_seq + 1
                       else f"entries {expected_seq}..{entry.seq - 1}")
            problems.append(AuditProblem(expected_seq, "deleted", f"{missing} missing (deleted)"))
        if compute_hash(entry) != entry.entry_hash:
            problems.append(AuditProblem(entry.seq, "edited",
                                         f"entry {entry.seq}: content does not match its hash (edited)"))
        elif entry.prev_hash != prev_hash and entry.seq == expected_seq:
            problems.append(AuditProblem(entry.seq, "reordered",
                                         f"entry {entry.seq}: link to entry {entry.seq - 1} broken "
                                         "(entries reordered or replaced)"))
        prev_hash = entry.entry_hash
        expected_seq = entry.seq + 1
    head = session.get(AuditHead, 1)
    if head is not None:
        if head.last_seq > expected_seq - 1:
            problems.append(AuditProblem(expected_seq, "truncated",
                                         f"entries {expected_seq}..{head.last_seq} missing at the end (deleted)"))
        elif head.last_seq == expected_seq - 1 and head.last_hash != prev_hash and count:
            problems.append(AuditProblem(head.last_seq, "edited",
                                         f"entry {head.last_seq}: does not match the recorded head"))
    elif count:
        problems.append(AuditProblem(0, "edited", "audit head record missing"))
    return count, problems


def _iter_entries(session: orm.Session, batch: int) -> Iterator[AuditEntry]:
    last = 0
    while True:
        rows = list(session.scalars(sa.select(AuditEntry).where(AuditEntry.seq > last)
                                    .order_by(AuditEntry.seq).limit(batch)))
        if not rows:
            return
        yield from rows
        last = rows[-1].seq
        session.expunge_all()
