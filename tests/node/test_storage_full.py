"""A full disk is ``503 storage_full`` (node/errors.py), told apart from a busy database and from a fault, and the
erasure journal is never left with a line cut short (node/backup/journal.py). The whole path against a real
full disk: tests/e2e/test_disk_full.py."""

from __future__ import annotations

import errno
import logging
import os
import sqlite3
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from flask import Flask

from node.backup import journal
from node.errors import database_unavailable, handle_unexpected, storage_full


def sqlite_full() -> sa.exc.OperationalError:
    """A real SQLITE_FULL, as SQLAlchemy raises it: a database allowed three pages, given a larger row."""
    engine = sa.create_engine("sqlite://")
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA max_page_count = 3")
            conn.exec_driver_sql("CREATE TABLE notes (text BLOB)")
            with pytest.raises(sa.exc.OperationalError) as raised:
                conn.exec_driver_sql("INSERT INTO notes VALUES (randomblob(100000))")
    finally:
        engine.dispose()
    return raised.value


def sqlite_locked(tmp_path: Path) -> sa.exc.OperationalError:
    """A real "database is locked": another connection holds the write lock."""
    path = tmp_path / "locked.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN EXCLUSIVE")
    engine = sa.create_engine(f"sqlite:///{path}", connect_args={"timeout": 0})
    try:
        with engine.connect() as conn, pytest.raises(sa.exc.OperationalError) as raised:
            conn.exec_driver_sql("INSERT INTO t VALUES (1)")
    finally:
        engine.dispose()
        holder.close()
    return raised.value


def test_sqlite_full_is_storage_full_not_a_busy_database() -> None:
    exc = sqlite_full()
    assert "database or disk is full" in str(exc.orig)
    assert storage_full(exc) and not database_unavailable(exc)


def test_a_locked_database_is_busy_not_full(tmp_path: Path) -> None:
    exc = sqlite_locked(tmp_path)
    assert database_unavailable(exc) and not storage_full(exc)


def test_postgresql_disk_full_is_storage_full() -> None:
    exc = sa.exc.OperationalError("INSERT INTO cases ...", {}, psycopg.errors.DiskFull("could not extend file"))
    other = sa.exc.OperationalError("SELECT 1", {}, psycopg.errors.AdminShutdown("terminating connection"))
    assert storage_full(exc)
    assert not storage_full(other) and database_unavailable(other)


@pytest.mark.parametrize(("code", "full"), [(errno.ENOSPC, True), (errno.EDQUOT, True), (errno.EACCES, False),
                                            (errno.EIO, False)])
def test_a_file_that_finds_no_room_is_storage_full(code: int, full: bool) -> None:
    assert storage_full(OSError(code, os.strerror(code), "/srv/ccm/erasures.journal")) is full


def test_other_errors_are_not_storage_full() -> None:
    assert not storage_full(ValueError("disk is full"))
    assert not storage_full(sa.exc.IntegrityError("INSERT", {}, sqlite3.IntegrityError("UNIQUE constraint")))


@pytest.mark.parametrize(("exc", "outcome"), [
    (sqlite_full(), "nothing was changed"),
    (OSError(errno.ENOSPC, "No space left on device", "/srv/ccm/bundles/receipts/Layla-Hassan.json"),
     "it may not have been saved whole"),
])
def test_storage_full_answers_503_in_words_and_logs_no_data(exc: Exception, outcome: str,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    app = Flask(__name__)
    with app.test_request_context("/api/v1/cases", method="POST"), caplog.at_level(logging.WARNING):
        response = handle_unexpected(exc)
    assert response.status_code == 503
    assert response.mimetype == "application/problem+json"
    assert response.headers["Retry-After"] == "60"
    body = response.get_json()
    assert body["code"] == "storage_full" and body["type"] == "urn:ccm:problem:storage_full"
    assert "disk is full" in body["detail"] and outcome in body["detail"]
    assert [r.getMessage() for r in caplog.records] == [
        "disk full: OSError (ENOSPC)" if isinstance(exc, OSError) else "disk full: OperationalError (SQLITE_FULL)"]
    assert all(r.exc_info is None for r in caplog.records)  # no traceback
    assert "Hassan" not in caplog.text and "randomblob" not in caplog.text  # no path, no statement, no data


def test_a_journal_append_the_disk_cuts_short_leaves_the_journal_as_it_was(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = journal.append(tmp_path, [{"kind": "full", "case": "c-1"}])
    before = journal.journal_path(tmp_path).read_bytes()
    real_write = os.write

    def disk_fills(fd: int, data: bytes) -> int:  # the disk takes a part of the line, then has no room
        return real_write(fd, data[: len(data) // 2])

    monkeypatch.setattr(os, "write", disk_fills)
    with pytest.raises(OSError) as raised:
        journal.append(tmp_path, [{"kind": "full", "case": "c-2"}])
    assert raised.value.errno == errno.ENOSPC
    assert journal.journal_path(tmp_path).read_bytes() == before  # no half line
    monkeypatch.setattr(os, "write", real_write)
    second = journal.append(tmp_path, [{"kind": "full", "case": "c-2"}])  # space is back: the chain goes on
    assert second.length == first.length + 1
    assert [e["case"] for e in journal.read(journal.journal_path(tmp_path))] == ["c-1", "c-2"]
