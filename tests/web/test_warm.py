"""Warming the interface in the gunicorn master: every template compiled, each language loaded, no database."""

from __future__ import annotations

from flask import Flask

from node.web.i18n import SUPPORTED
from node.web.warm import warm_up


def test_warm_up_compiles_every_template_and_loads_each_language(app: Flask) -> None:
    compiled = warm_up(app)
    names = [name for name in app.jinja_env.list_templates() if name.endswith(".html")]
    assert compiled == len(names) > 30
    cache = app.jinja_env.cache
    assert cache is not None and all(any(key[1] == name for key in cache) for name in names)
    for lang in SUPPORTED:  # the sign-in page still answers in each language afterwards
        page = app.test_client().get("/login", headers={"Accept-Language": lang})
        assert page.status_code == 200 and f'lang="{lang}"' in page.get_data(as_text=True)
