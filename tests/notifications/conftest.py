"""Fixtures of the notification tests: the app's database with its partners and a team's staff."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from flask import Flask

from node.clock import FakeClock
from node.db import make_sessionmaker

from .rows import Rows


@pytest.fixture
def rows(app: Flask, engine: sa.Engine, clock: FakeClock, partners: list[str]) -> Rows:
    """Göteborg's team ``gbg`` (counsellors anna and bo, adviser cai, a coordinator, a disabled counsellor),
    counsellor olle of team ``malmo``, and two admins."""
    made = Rows(make_sessionmaker(engine))
    now = clock.now()
    made.user("anna", "counsellor", "gbg", now, email="anna@gi.example")
    made.user("bo", "counsellor", "gbg", now, email="bo@gi.example", notify_email=False)
    made.user("cai", "adviser", "gbg", now)
    made.user("coord", "coordinator", "gbg", now)
    made.user("gone", "counsellor", "gbg", now, active=False)
    made.user("olle", "counsellor", "malmo", now)
    made.user("admin1", "admin", None, now, email="admin1@gi.example")
    made.user("admin2", "admin", None, now)
    return made
