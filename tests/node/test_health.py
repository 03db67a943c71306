"""``/healthz`` and ``/readyz`` (node/observability/health.py), on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import orm

from node.at_rest.keys import key_file_path
from node.db import make_engine, make_sessionmaker
from node.observability import health
from node.observability.health import check_migrations, readiness


@pytest.fixture
def statements(engine: sa.Engine) -> Iterator[list[str]]:
    """Every SQL statement the app's engine runs while the test does."""
    seen: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    sa.event.listen(engine, "before_cursor_execute", note)
    yield seen
    sa.event.remove(engine, "before_cursor_execute", note)


def test_healthz_answers_ok_without_touching_the_database(client: FlaskClient, statements: list[str]) -> None:
    client.set_cookie("ccm_web", "a-stale-browser-session")  # the web interface's session check does not run
    answer = client.get("/healthz")
    assert answer.status_code == 200 and answer.get_json() == {"status": "ok"}
    assert answer.headers["Cache-Control"] == "no-store"
    assert statements == []


def test_readyz_answers_ok_when_every_check_holds(client: FlaskClient) -> None:
    answer = client.get("/readyz")
    assert answer.status_code == 200, answer.text
    body = answer.get_json()
    assert body["status"] == "ok" and set(body["checks"]) >= {"database", "keys", "migrations"}
    assert all(value == "ok" for value in body["checks"].values())


def test_both_are_open_without_signing_in(client: FlaskClient) -> None:
    for path in ("/healthz", "/readyz"):
        answer = client.get(path)
        assert answer.status_code == 200 and "Location" not in answer.headers, path


def test_a_database_behind_the_migrations_is_not_ready(app: Flask, db_session: orm.Session) -> None:
    head, known = health.migration_scripts(app)
    older = sorted(known - {head})[-1]
    db_session.execute(sa.text("UPDATE alembic_version SET version_num = :v"), {"v": older})  # rolled back after
    result = readiness(app, db_session, lambda: None)
    assert not result.ready
    assert result.checks["migrations"] == f"behind: {older} < {head}"
    assert result.checks["database"] == "ok" and result.checks["keys"] == "ok"


def test_keys_that_do_not_load_make_the_node_not_ready(app: Flask, db_session: orm.Session) -> None:
    def broken() -> None:
        raise OSError("/srv/ccm/keys/node.key: permission denied")

    result = readiness(app, db_session, broken)
    assert not result.ready and result.checks["keys"] == "not loadable"


@pytest.mark.parametrize(("current", "expected"), [
    ("0011_b", "ok"),
    ("0010_a", "behind: 0010_a < 0011_b"),
    (None, "not initialised: none < 0011_b"),
    ("0099_future", "unknown revision: 0099_future (head 0011_b)"),
])
def test_migration_check_in_words(current: str | None, expected: str) -> None:
    assert check_migrations(current, "0011_b", frozenset({"0010_a", "0011_b"})) == expected


def unreachable_url(database_url: str, tmp_path: Path) -> str:
    if database_url.startswith("sqlite"):
        return f"sqlite:///{tmp_path / 'no' / 'such' / 'dir' / 'node.db'}"
    return database_url.rsplit("/", 1)[0] + "/ccm_no_such_database"


@pytest.fixture
def database_gone(app: Flask, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Flask]:
    """The app, its database gone after it started (the engine swapped for one that cannot connect)."""
    gone = make_engine(unreachable_url(database_url, tmp_path), busy_seconds=1)
    ctx = app.extensions["ccm"]
    monkeypatch.setitem(app.extensions, "ccm", replace(ctx, engine=gone, sessionmaker=make_sessionmaker(gone)))
    monkeypatch.delitem(app.extensions, "ccm_reader", raising=False)  # its read-only engine is made anew
    yield app
    gone.dispose()


def test_an_unreachable_database_answers_503_in_words(database_gone: Flask) -> None:
    client = database_gone.test_client()
    answer = client.get("/readyz")
    assert answer.status_code == 503
    body = answer.get_json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"] == "unreachable" and body["checks"]["keys"] == "ok"
    assert body["checks"]["migrations"] == "unknown: database unreachable"
    assert "Traceback" not in answer.text and "ccm_no_such_database" not in answer.text
    assert client.get("/healthz").status_code == 200  # alive all the same


def test_the_data_key_is_checked(app: Flask, db_session: orm.Session) -> None:
    assert readiness(app, db_session, lambda: None).checks["data_key"] == "ok"


def test_a_missing_data_key_makes_the_node_unready_and_says_so(client: FlaskClient, app: Flask) -> None:
    path, _from_env = key_file_path(app.extensions["ccm"].config.data_dir)
    saved = path.read_bytes()
    path.unlink()
    try:
        answer = client.get("/readyz")
    finally:
        path.write_bytes(saved)
    assert answer.status_code == 503
    body = answer.get_json()
    assert body["checks"]["data_key"] == "data key missing or unreadable"
    assert body["checks"]["database"] == "ok"
    assert saved.decode("ascii", "replace") not in answer.text
    assert client.get("/readyz").status_code == 200


@pytest.mark.parametrize(("total", "free", "expected"), [
    (8 << 20, 0, "full: 0 bytes free"),  # a small disk, full
    (8 << 20, 1 << 20, "ok"),  # a small disk with an eighth free
    (1 << 40, 32 << 20, f"full: {32 << 20} bytes free"),  # a large disk: 64 MiB is the floor
    (1 << 40, 1 << 30, "ok"),
])
def test_the_disk_is_full_below_a_floor(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, total: int, free: int,
                                        expected: str) -> None:
    usage = SimpleNamespace(total=total, used=total - free, free=free)
    monkeypatch.setattr(health.shutil, "disk_usage", lambda _path: usage)
    assert health.check_disk(tmp_path) == expected


def test_a_full_disk_makes_the_node_unready_and_says_so(client: FlaskClient, monkeypatch: pytest.MonkeyPatch) -> None:
    assert client.get("/readyz").get_json()["checks"]["disk"] == "ok"
    monkeypatch.setattr(health.shutil, "disk_usage", lambda _path: SimpleNamespace(total=8 << 20, used=8 << 20, free=0))
    answer = client.get("/readyz")
    assert answer.status_code == 503
    body = answer.get_json()
    assert body["checks"]["disk"] == "full: 0 bytes free" and body["checks"]["database"] == "ok"
    assert client.get("/healthz").status_code == 200
