"""Fixtures for the web interface's tests: signed-in browsers (Flask test clients) per role and team.

``web_client(role, team=None)`` makes a user with a password, signs in through the login form and returns a
:class:`WebClient`, whose ``post`` adds the page's CSRF token (read from the last HTML page it received).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from node.accounts import User, create_user
from node.clock import FakeClock
from node.db import make_sessionmaker

PASSWORD = "a long enough password"
_TOKEN = re.compile(rb'name="csrf_token" value="([^"]+)"')


class WebClient:
    """A test browser: remembers the CSRF token of the last page, follows nothing unless asked."""

    def __init__(self, client: FlaskClient, user: User | None = None) -> None:
        self.client = client
        self.user = user
        self.csrf = ""

    def _seen(self, response: TestResponse) -> TestResponse:
        found = _TOKEN.search(response.get_data())
        if found:
            self.csrf = found.group(1).decode()
        return response

    def get(self, url: str, **kwargs: Any) -> TestResponse:
        return self._seen(self.client.get(url, **kwargs))

    def post(self, url: str, data: dict[str, Any] | None = None, *, csrf: bool = True, **kwargs: Any) -> TestResponse:
        if not self.csrf:
            self.get("/login")
        form = dict(data or {})
        if csrf:
            form.setdefault("csrf_token", self.csrf)
        return self._seen(self.client.post(url, data=form, **kwargs))

    def text(self, response: TestResponse) -> str:
        return response.get_data(as_text=True)


@pytest.fixture
def make_web_user(engine: Any, app: Flask, clock: FakeClock) -> Callable[..., User]:
    counter = iter(range(1, 10_000))

    def make(role: str, team: str | None = None, username: str | None = None, **fields: Any) -> User:
        with make_sessionmaker(engine)() as session:
            user = create_user(session, username=username or f"web{role}{next(counter)}", role=role, team=team,
                               now=clock.now(), display_name=fields.pop("display_name", None), password=PASSWORD)
            for key, value in fields.items():
                setattr(user, key, value)
            session.commit()
            session.expunge(user)
        return user

    return make


@pytest.fixture
def web_client(app: Flask, make_web_user: Callable[..., User]) -> Callable[..., WebClient]:
    """``web_client(role, team=None, **user_fields) -> WebClient`` signed in (no second factor)."""

    def make(role: str, team: str | None = None, **fields: Any) -> WebClient:
        user = make_web_user(role, team, **fields)
        browser = WebClient(app.test_client(), user)
        browser.get("/login")
        response = browser.post("/login", {"username": user.username, "password": PASSWORD})
        assert response.status_code == 302, response.get_data(as_text=True)[:500]
        browser.get("/")
        return browser

    return make


@pytest.fixture
def anonymous(app: Flask) -> WebClient:
    return WebClient(app.test_client())
