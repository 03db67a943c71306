"""Database access: the declarative base, the engine and sessions scoped to a request or a job.

SQLite (the default) runs in WAL mode with foreign keys on, and every transaction starts with
``BEGIN IMMEDIATE``: nearly every request writes (reads of case data are audited), and an immediate
transaction avoids the "upgrade a read to a write" deadlock that WAL answers with SQLITE_BUSY_SNAPSHOT.
PostgreSQL is reached with psycopg 3 (``postgresql+psycopg://``).

Views get their session from :func:`request_session`; services take a session as an argument and never
commit; the view (or job) that owns the unit of work commits. On SQLite a view may also take a
:func:`request_reader`: a read-only session on a second engine whose transactions are plain (deferred) ones,
so that a service can do its reading and its cryptography on one consistent snapshot *before* it takes the
write lock, and hold that lock only for the re-check of what decides the outcome and for the writes.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

import sqlalchemy as sa
from flask import current_app, g
from sqlalchemy import event, orm
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


#: The attribute of an engine's dialect that holds the node's data keys (``node.at_rest.bind_data_keys``).
DATA_KEYS_ATTR = "ccm_data_keys"


class Base(orm.DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored as UTC and always returned timezone-aware (SQLite keeps no zone)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def normalise_url(url: str) -> str:
    """``postgresql://`` → ``postgresql+psycopg://`` (we ship psycopg 3, not psycopg2)."""
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url[len("postgresql://"):]
    if url.startswith("postgres://"):
        return "postgresql+psycopg://" + url[len("postgres://"):]
    return url


def make_engine(url: str, *, busy_seconds: int = 30, **kwargs: Any) -> sa.Engine:
    """Create the engine for a node's database, with the SQLite pragmas set on every connection.

    Args:
        url: the database URL.
        busy_seconds: how long a statement waits for a locked SQLite database, a PostgreSQL lock or a new
            PostgreSQL connection before it fails (``OperationalError``; the web app answers 503). The web app
            waits ``database_busy_seconds`` (5); commands and the delivery worker 30.
    """
    url = normalise_url(url)
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": busy_seconds}, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # we emit BEGIN ourselves
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute(f"PRAGMA busy_timeout={int(busy_seconds * 1000)}")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA secure_delete=ON")  # erased case data is overwritten in the file, not unlinked
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: sa.Connection) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    # Our indexes live on fast storage; with the default random_page_cost of 4 PostgreSQL prefers sequential
    # scans to count common-name matches (32 ms instead of 9.5 ms at 100,000 cases).
    connect_args: dict[str, Any] = {}
    if url.startswith("postgresql"):
        connect_args = {"options": f"-c random_page_cost=1.1 -c lock_timeout={int(busy_seconds * 1000)}",
                        "connect_timeout": max(1, int(busy_seconds))}
    return sa.create_engine(url, pool_pre_ping=True, connect_args=connect_args, **kwargs)


_INSERTS: dict[type[Any], sa.Insert] = {}


def insert_now(session: orm.Session, row: Base) -> None:
    """INSERT a new mapped object's row at once, with one Core statement in the session's transaction.

    For the rows a hot path writes and never changes afterwards in the same transaction (a queued message, a
    handover just sent, a timeline event): the object is not added to the session, so the unit of work
    neither tracks nor flushes it (a later change to it would not be saved). Only the attributes that were
    set are written (the others get their column defaults, a version counter its first value); an
    autoincremented primary key is set on the object. A constraint violation raises here, not at the next flush.
    """
    mapper = sa.inspect(type(row))
    state = vars(row)
    values: dict[str, Any] = {str(column.key): state[attr.key] for attr in mapper.column_attrs
                              if attr.key in state for column in attr.columns}
    version, generator = mapper.version_id_col, mapper.version_id_generator
    if version is not None and str(version.key) not in values and callable(generator):
        first = values[str(version.key)] = generator(None)  # the first version, as the unit of work sets it
        setattr(row, mapper.get_property_by_column(version).key, first)
    statement = _INSERTS.get(mapper.class_)
    if statement is None:
        statement = _INSERTS[mapper.class_] = sa.insert(cast(sa.Table, mapper.local_table))
    result = cast(sa.CursorResult[Any], session.execute(statement, values))
    for column, value in zip(mapper.primary_key, result.inserted_primary_key or (), strict=False):
        if value is not None:
            setattr(row, mapper.get_property_by_column(column).key, value)


_BY_KEY: dict[type[Any], sa.Select[Any]] = {}
M = TypeVar("M", bound=Base)


def by_key(session: orm.Session, model: type[M], key: Any) -> M | None:
    """The row of ``model`` (one primary-key column) with primary key ``key``, or None: ``session.get`` for a
    hot path, whose SELECT is built once per model (building a statement costs more than running it).

    Unlike ``session.get`` it always runs its SELECT, even when the object is in the session already (it then
    returns that same object, unrefreshed).
    """
    statement = _BY_KEY.get(model)
    if statement is None:
        (column,) = sa.inspect(model).primary_key
        statement = _BY_KEY[model] = sa.select(model).where(column == sa.bindparam("key"))
    found: M | None = session.scalar(statement, {"key": key})
    return found


def make_sessionmaker(engine: sa.Engine) -> orm.sessionmaker[orm.Session]:
    return orm.sessionmaker(bind=engine, expire_on_commit=False)


def make_reader_engine(engine: sa.Engine, busy_seconds: int = 30) -> sa.Engine | None:
    """For a SQLite engine, an engine on the same file whose connections cannot write (``query_only``) and
    whose transactions begin deferred: a reader sees one committed snapshot from its first statement to its
    rollback and never takes or waits for the write lock. None for other databases (PostgreSQL readers never
    block writers: read on the writing session).
    """
    if engine.dialect.name != "sqlite" or engine.url.database in (None, "", ":memory:"):
        return None  # (an in-memory database cannot be opened twice)
    reader = sa.create_engine(engine.url, connect_args={"timeout": busy_seconds})
    setattr(reader.dialect, DATA_KEYS_ATTR, getattr(engine.dialect, DATA_KEYS_ATTR, None))  # reads decrypt

    @event.listens_for(reader, "connect")
    def _read_only(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves
        dbapi_conn.execute("PRAGMA query_only=ON")
        dbapi_conn.execute(f"PRAGMA busy_timeout={int(busy_seconds * 1000)}")

    @event.listens_for(reader, "begin")
    def _deferred_begin(conn: sa.Connection) -> None:
        conn.exec_driver_sql("BEGIN")  # deferred: a read snapshot, no lock on the writers

    return reader


def request_reader() -> orm.Session | None:
    """On SQLite, a read-only session of the current request (created on first use, closed at teardown;
    its engine is made once per process, after gunicorn forked); None on other databases."""
    if "db_reader" in g:
        reader: orm.Session | None = g.db_reader
        return reader
    app = current_app
    held = app.extensions.get("ccm_reader")
    if held is None or held[0] != os.getpid():
        ctx = app.extensions["ccm"]
        engine = make_reader_engine(ctx.engine, ctx.config.database_busy_seconds)
        held = (os.getpid(), orm.sessionmaker(bind=engine) if engine is not None else None)
        app.extensions["ccm_reader"] = held
    made: orm.Session | None = held[1]() if held[1] is not None else None
    g.db_reader = made
    return made


def request_session() -> orm.Session:
    """The session of the current request (created on first use, closed at teardown)."""
    if "db_session" not in g:
        g.db_session = current_app.extensions["ccm"].sessionmaker()
    session: orm.Session = g.db_session
    return session


def close_request_session(_exc: BaseException | None = None) -> None:
    session = g.pop("db_session", None)
    if session is not None:
        try:
            session.rollback()  # anything the view did not commit is not half-saved
        except sa.exc.DBAPIError:
            pass  # the database went away: nothing of this request was committed, and close() drops the connection
        finally:
            session.close()
    reader = g.pop("db_reader", None)
    if reader is not None:
        reader.close()
