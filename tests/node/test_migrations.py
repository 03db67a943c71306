"""Every migration upgrades from empty and downgrades cleanly, on both databases, and the head matches the
models exactly (no model change without a migration)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from node import migrate
from node.db import make_engine


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_engine(request: pytest.FixtureRequest, tmp_path: Path) -> sa.Engine:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'm.db'}"
    else:
        make: Callable[[], str] = request.getfixturevalue("make_pg_database")
        url = make()
    eng = make_engine(url)
    request.addfinalizer(eng.dispose)
    return eng


#: Revisions that change only stored values (and, on PostgreSQL, a column's type): their upgrade and downgrade are
#: tested with data in tests/at_rest/test_rotation.py.
DATA_ONLY = frozenset({"0014_totp_at_rest"})


def _tables(engine: sa.Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names()) - {"alembic_version"}


def _schema(engine: sa.Engine) -> set[str]:
    """Every table, column and index, as names: what a migration step must change."""
    inspector = sa.inspect(engine)
    names: set[str] = set()
    for table in _tables(engine):
        names.add(table)
        names.update(f"{table}.{column['name']}" for column in inspector.get_columns(table))
        names.update(f"{table}:{index['name']}" for index in inspector.get_indexes(table))
    return names


def test_upgrade_downgrade_each_revision(empty_engine: sa.Engine) -> None:
    script = ScriptDirectory.from_config(migrate.alembic_config(empty_engine))
    revisions = [r.revision for r in reversed(list(script.walk_revisions()))]
    assert revisions[0] == "0001_foundation"
    seen: list[set[str]] = [set()]
    for rev in revisions:  # up, one step at a time
        migrate.upgrade(empty_engine, rev)
        assert migrate.current_revision(empty_engine) == rev
        seen.append(_schema(empty_engine))
        assert seen[-1] != seen[-2] or rev in DATA_ONLY, f"{rev} changed nothing"
    for i in range(len(revisions) - 1, -1, -1):  # and down again
        target = revisions[i - 1] if i > 0 else "base"
        migrate.downgrade(empty_engine, target)
        assert _schema(empty_engine) == seen[i]
    assert _tables(empty_engine) == set()


def test_head_matches_models(empty_engine: sa.Engine) -> None:
    migrate.upgrade(empty_engine)
    with empty_engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(ctx, migrate.target_metadata())
    assert diff == [], f"models and migrations differ: {diff}"
