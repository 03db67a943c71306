"""Shared fixtures: a node app on a real database (SQLite and PostgreSQL), a client, a fake clock, users.

Every test that uses ``app`` runs twice, once per database. The PostgreSQL half needs the server at
``CCM_TEST_ADMIN_DSN`` (default postgresql://postgres@127.0.0.1:5432/postgres): one fresh database per run,
dropped afterwards. Outside CI it is skipped with a message when no server answers; with CI=true it is required.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import orm

from node import create_app
from node.accounts import User, create_token, create_user
from node.clock import FakeClock
from node.config import NodeConfig, config_for_tests
from node.db import make_engine, make_sessionmaker
from node.exchange import wiring
from node.exchange.trust.partners import add_partner
from node.migrate import target_metadata, upgrade
from protocol import NodeKeys, canonical_bytes, make_card

# The rooms are wired as the app and the command line wire them, once, before any test sets the appliers aside.
wiring.wire()

ADMIN_DSN = os.environ.get("CCM_TEST_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
IN_CI = os.environ.get("CI", "").lower() == "true"


def postgres_available() -> str | None:
    """None when the server answers, else the reason."""
    try:
        import psycopg

        with psycopg.connect(ADMIN_DSN, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:
        return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
    return None


@pytest.fixture(scope="session")
def pg_server() -> str:
    reason = postgres_available()
    if reason is not None:
        if IN_CI:
            pytest.fail(f"PostgreSQL is required in CI but {ADMIN_DSN} does not answer: {reason}")
        pytest.skip(f"PostgreSQL tests skipped: no server at {ADMIN_DSN} ({reason})")
    return ADMIN_DSN


@pytest.fixture(scope="session")
def make_pg_database(pg_server: str) -> Iterator[Callable[[], str]]:
    """A factory of fresh, uniquely named PostgreSQL databases, all dropped at the end of the run."""
    import psycopg

    made: list[str] = []

    def make() -> str:
        name = f"ccm_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(pg_server, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        made.append(name)
        return pg_server.rsplit("/", 1)[0] + "/" + name

    yield make
    with psycopg.connect(pg_server, autocommit=True) as conn:
        for name in made:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'node.db'}"
    make: Callable[[], str] = request.getfixturevalue("make_pg_database")
    return make()


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[sa.Engine]:
    eng = make_engine(database_url)
    upgrade(eng)
    yield eng
    eng.dispose()


def _empty_all_tables(eng: sa.Engine) -> None:
    metadata = target_metadata()
    with eng.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            conn.execute(table.delete())


@pytest.fixture(scope="session")
def _shared_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def clock(_shared_clock: FakeClock) -> FakeClock:
    """The fake clock the app uses, reset to its start for every test."""
    _shared_clock.set(FakeClock().now())
    return _shared_clock


@pytest.fixture(scope="session")
def node_config(tmp_path_factory: pytest.TempPathFactory, database_url: str) -> NodeConfig:
    from node.exchange.trust.keystore import generate_node_keys

    config = config_for_tests(tmp_path_factory.mktemp("node"), database_url)
    generate_node_keys(config.data_dir, config.node_id)  # every node has its keys (``ccm-node init``)
    return config


@pytest.fixture(scope="session")
def _session_app(node_config: NodeConfig, engine: sa.Engine, _shared_clock: FakeClock) -> Flask:
    # Building the app (and its OpenAPI spec) takes ~0.5 s: one app per database, emptied between tests.
    application = create_app(node_config, clock=_shared_clock, engine=engine)
    application.config["TESTING"] = True
    return application


@pytest.fixture
def app(_session_app: Flask, engine: sa.Engine, clock: FakeClock) -> Iterator[Flask]:
    _empty_all_tables(engine)
    yield _session_app


#: The partner nodes tests name in consents (a consent may name only partners of the node).
TEST_PARTNERS = ("ba.cldd-sarajevo", "se.cldd-stockholm", "iq.cldd-baghdad", "gh.accra-partner")


@pytest.fixture
def partners(app: Flask, engine: sa.Engine, clock: FakeClock) -> list[str]:
    """``TEST_PARTNERS`` trusted as partners of the app's node (each with a card made here)."""
    now = clock.now()
    with make_sessionmaker(engine)() as session:
        for node_id in TEST_PARTNERS:
            card = make_card(NodeKeys.generate(node_id), name=node_id, base_url=f"https://{node_id}.example",
                             valid_from=now - timedelta(days=1), valid_until=now + timedelta(days=730))
            add_partner(session, card_data=canonical_bytes(card.to_json()), fingerprint=card.fingerprint(),
                        agreement="dsa-test", now=now, own_node_id=app.extensions["ccm"].config.node_id)
        session.commit()
    return list(TEST_PARTNERS)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def db_session(app: Flask, engine: sa.Engine) -> Iterator[orm.Session]:
    session = make_sessionmaker(engine)()
    yield session
    session.rollback()
    session.close()


@pytest.fixture
def make_user(engine: sa.Engine, app: Flask, clock: FakeClock) -> Callable[..., tuple[User, str]]:
    """``make_user(role, team=None, username=None) -> (user, bearer_token)``, committed."""
    counter = iter(range(1, 10_000))

    def make(role: str, team: str | None = None, username: str | None = None) -> tuple[User, str]:
        with make_sessionmaker(engine)() as session:
            user = create_user(session, username=username or f"{role}{next(counter)}", role=role, team=team,
                               now=clock.now(), display_name=None)
            token = create_token(session, user, now=clock.now(), days=30)
            session.commit()
            session.expunge(user)
        return user, token

    return make


@pytest.fixture
def auth_headers() -> Callable[[str], dict[str, str]]:
    def headers(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    return headers
