"""Fixtures for the protection-at-rest tests: the case domain's staff, the exchange's two in-process nodes, and
the raw bytes of a database as a thief would have them (the SQLite file and its WAL, or a ``pg_dump``)."""

from __future__ import annotations

import subprocess

import sqlalchemy as sa

from tests.cases.conftest import counsellor, staff  # noqa: F401  (fixtures)
from tests.exchange.conftest import (  # noqa: F401  (fixtures)
    gbg,
    make_worker,
    nodes,
    paired,
    sarajevo,
    transport,
    world,
)
from tests.exchange.desks import desks  # noqa: F401  (fixture)

PG_DUMP = "/usr/bin/pg_dump"


def raw_bytes(engine: sa.Engine) -> bytes:
    """Everything a copy of the database gives away: the SQLite file and its WAL, or a plain ``pg_dump``."""
    if engine.dialect.name == "sqlite":
        path = str(engine.url.database)
        data = b""
        for suffix in ("", "-wal"):
            try:
                with open(path + suffix, "rb") as fh:
                    data += fh.read()
            except FileNotFoundError:
                pass
        assert data, "no database file"
        return data
    url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    dump = subprocess.run([PG_DUMP, "--no-owner", "--dbname", url], capture_output=True, check=True, timeout=60)
    return dump.stdout


def found(haystack: bytes, text: str) -> bool:
    """The text in clear in the raw bytes: as UTF-8, or hex-encoded (how a dump shows a bytea value)."""
    needle = text.encode("utf-8")
    return needle in haystack or needle.hex().encode("ascii") in haystack
