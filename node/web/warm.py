"""Warming the web interface in the gunicorn master, before it forks its workers.

What a worker would otherwise build on its first requests — every template compiled, the four languages'
catalogues and CLDR locale data (dates, numbers, text direction), the URL map, the ORM's mappers — is built
once here and then shared by the forked workers, copy-on-write. :func:`freeze` then moves everything the
master allocated into the garbage collector's permanent generation, so a worker's collections never write to
(and so never copy) those shared pages. Measured with ``bench/web_bench.py``: without this, each worker grew
by 20–35 MB on its first pages.

Nothing here touches the database or any personal data: the only request made is an anonymous sign-in page
in each language.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import datetime as dt
import gc

import flask_babel
from flask import Flask
from sqlalchemy import orm

from .i18n import SUPPORTED


def warm_up(app: Flask) -> int:
    """Compile every template, load each language, build the URL map and the mappers; return the number of
    templates compiled."""
    orm.configure_mappers()
    env = app.jinja_env
    names = [name for name in env.list_templates() if name.endswith(".html")]
    env.cache = None if env.cache is None else type(env.cache)(max(len(names) * 2, 400))  # room for all
    for name in names:
        env.get_template(name)
    client = app.test_client()
    for lang in SUPPORTED:
        with app.test_request_context("/login", headers={"Accept-Language": lang}):
            flask_babel.refresh()
            flask_babel.gettext("Home")
            flask_babel.format_date(dt.date(2026, 1, 31), "medium")
            flask_babel.format_datetime(dt.datetime(2026, 1, 31, 12, 0, tzinfo=dt.UTC), "medium")
            flask_babel.format_decimal(12345.5)
        client.get("/login", headers={"Accept-Language": lang})
    return len(names)


#: glibc's mallopt() parameter for the number of malloc arenas
M_ARENA_MAX = -8


def freeze() -> None:
    """Collect once, then exempt every object alive now from later collections (call just before forking).

    Also caps glibc's malloc arenas at two per process: each worker serves with several threads, and glibc
    otherwise gives threads arenas of their own (up to 8 per core), which keep freed memory as fragments.
    """
    gc.collect()
    gc.freeze()
    libc_name = ctypes.util.find_library("c")
    if libc_name:
        with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to cap
            ctypes.CDLL(libc_name).mallopt(M_ARENA_MAX, 2)
