"""This node's key files, and changing them safely.

``DATA_DIR/keys`` (directory 0700, files 0600) holds ``node.key`` (the current private keys), ``card.json``
(the current card), ``cards/<skid>.json`` (the card issued with each key generation), ``retired/<skid>.key``
(previous private keys, kept after a rotation) and ``history.json`` (public facts only: each retired
generation's key ids, when it was retired, until when it is accepted, whether it was revoked; and every
revocation statement this node issued). ``keystore.py`` reads them into a process's identity.

A rotation or revocation changes them under :func:`key_change_lock` through a :class:`KeyChange`: everything is
written to temporary files first and installed by atomic renames only after the database change that
announces it was committed (:func:`install_key_change`).
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from node.private_files import replace_private, write_private
from protocol import KeyFileError, NodeCard, NodeKeys
from protocol.canonical import strict_loads
from protocol.errors import ProtocolError
from protocol.times import format_time, parse_time

if TYPE_CHECKING:
    from sqlalchemy import orm

KEY_DIR = "keys"
KEY_FILE = "node.key"
CARD_FILE = "card.json"
CARDS_DIR = "cards"
RETIRED_DIR = "retired"
HISTORY_FILE = "history.json"
LOCK_FILE = ".lock"


def key_path(data_dir: Path) -> Path:
    return data_dir / KEY_DIR / KEY_FILE


# -- history ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetiredGeneration:
    """A previous key generation of this node: public facts (``history.json``)."""

    skid: str
    ekid: str
    retired_at: datetime
    accept_until: datetime
    revoked_at: datetime | None = None
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"skid": self.skid, "ekid": self.ekid, "retired_at": format_time(self.retired_at),
                "accept_until": format_time(self.accept_until),
                "revoked_at": format_time(self.revoked_at) if self.revoked_at else None, "reason": self.reason}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> RetiredGeneration:
        return cls(doc["skid"], doc["ekid"], parse_time(doc["retired_at"]), parse_time(doc["accept_until"]),
                   parse_time(doc["revoked_at"]) if doc.get("revoked_at") else None, doc.get("reason"))


@dataclass(frozen=True)
class KeyHistory:
    """``history.json``: the retired generations, newest last, and the revocations this node issued."""

    retired: tuple[RetiredGeneration, ...] = ()
    revocations: tuple[dict[str, Any], ...] = ()

    def to_bytes(self) -> bytes:
        doc = {"v": 1, "retired": [g.to_json() for g in self.retired], "revocations": list(self.revocations)}
        return json.dumps(doc, indent=2, ensure_ascii=False).encode("utf-8") + b"\n"


def load_history(data_dir: Path) -> KeyHistory:
    """The node's key history (empty before the first rotation).

    Raises:
        KeyFileError: the history file exists but is unreadable or malformed.
    """
    path = data_dir / KEY_DIR / HISTORY_FILE
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return KeyHistory()
    except OSError as exc:
        raise KeyFileError(f"cannot read the key history: {exc.strerror}") from None
    try:
        doc = strict_loads(data)
        return KeyHistory(tuple(RetiredGeneration.from_json(g) for g in doc["retired"]),
                          tuple(doc["revocations"]))
    except (ProtocolError, KeyError, TypeError, AttributeError):
        raise KeyFileError("the key history file is malformed") from None


def retired_key_path(data_dir: Path, skid: str) -> Path:
    return data_dir / KEY_DIR / RETIRED_DIR / f"{skid}.key"


def card_bytes(card: NodeCard) -> bytes:
    return (json.dumps(card.to_json(), indent=2, ensure_ascii=False) + "\n").encode("utf-8")


# -- changing the key files -------------------------------------------------------------------------------


@contextmanager
def key_change_lock(data_dir: Path) -> Iterator[None]:
    """Hold the exclusive lock on this node's key files (one rotation or revocation at a time).

    Raises:
        KeyFileError: another key change is running, or there is no key directory.
    """
    try:
        fd = os.open(data_dir / KEY_DIR / LOCK_FILE, os.O_WRONLY | os.O_CREAT, 0o600)
    except OSError as exc:
        raise KeyFileError(f"cannot lock the key directory: {exc.strerror}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise KeyFileError("another key rotation or revocation is running") from None
        yield
    finally:
        os.close(fd)


class KeyChange:
    """A change of the key files: ``prepare`` writes everything to temporary files (and the retired keys to
    their own files, which are harmless until the history names them), ``install`` renames them into place
    (history first, then the keys, then the card), ``discard`` removes the temporary files."""

    def __init__(self, data_dir: Path) -> None:
        self.directory = data_dir / KEY_DIR
        self._staged: list[tuple[Path, Path]] = []

    def _stage(self, name: str, data: bytes) -> None:
        target = self.directory / name
        temporary = target.with_name(f".{target.name}.new")
        write_private(temporary, data)
        self._staged.append((temporary, target))

    def prepare(self, *, history: KeyHistory, retire: Sequence[NodeKeys] = (), keys: NodeKeys | None = None,
                card: NodeCard | None = None) -> None:
        """Write the new files aside.

        Args:
            history: the new ``history.json``.
            retire: keys to keep as retired (``retired/<skid>.key``).
            keys: new current keys, with their ``card`` (None: the keys stay).
            card: the card of the new keys.
        Raises:
            KeyFileError: a file cannot be written.
        """
        try:
            (self.directory / RETIRED_DIR).mkdir(mode=0o700, exist_ok=True)
            (self.directory / CARDS_DIR).mkdir(mode=0o700, exist_ok=True)
            for old in retire:
                path = self.directory / RETIRED_DIR / f"{old.skid}.key"
                if not path.exists():
                    old.save(path)
            self._stage(HISTORY_FILE, history.to_bytes())
            if keys is not None and card is not None:
                replace_private(self.directory / CARDS_DIR / f"{keys.skid}.json", card_bytes(card))
                self._stage(KEY_FILE, keys.to_json_bytes())
                self._stage(CARD_FILE, card_bytes(card))
        except OSError as exc:
            self.discard()
            raise KeyFileError(f"cannot write the new key files: {exc.strerror}") from None

    def install(self) -> None:
        """Rename the prepared files into place."""
        for temporary, target in self._staged:
            os.replace(temporary, target)
        self._staged.clear()

    def discard(self) -> None:
        for temporary, _ in self._staged:
            temporary.unlink(missing_ok=True)
        self._staged.clear()


def with_revoked(history: KeyHistory, generation: RetiredGeneration, now: datetime,
                 reason: str) -> KeyHistory:
    """The history with one retired generation marked revoked."""
    marked = replace(generation, revoked_at=now, reason=reason)
    return replace(history, retired=tuple(marked if g.skid == generation.skid else g for g in history.retired))


def install_key_change(session: orm.Session, change: KeyChange) -> None:
    """Commit the database side of a key change, then put the new key files in place (discarded on failure).

    Call it while holding :func:`key_change_lock`.
    """
    try:
        session.commit()
    except BaseException:
        change.discard()
        raise
    change.install()
