"""Who is using the web interface: every page needs a signed-in session unless it is listed as public.

Deny by default: :func:`load_signed_in` runs before every request outside the JSON API, the federation
endpoints and the static files. It loads the session from the cookie into ``g.web_user`` and ``g.actor`` (the
same :class:`~node.auth.Actor` the API's services take), checks the CSRF token of every form sent, and sends a
visitor who is not signed in to the login page. A session whose second factor is still due, or whose user must
enrol TOTP first, may open only those pages.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from flask import current_app, g, redirect, request, session, url_for
from flask_wtf.csrf import CSRFProtect
from werkzeug.wrappers import Response

from node.auth import Actor, require
from node.db import request_session

from .login import load_session, must_enrol

#: paths the web interface does not own (they authenticate otherwise; health and metrics: node/observability)
NOT_WEB = ("/api/", "/federation/", "/static/", "/healthz", "/readyz", "/metrics")
#: endpoints anyone may open
PUBLIC = frozenset({"web_account.login", "web_account.set_language", "static"})
#: endpoints a session may open while its second factor is due or TOTP must be set up first
SECOND_STEP = frozenset({"web_account.second_factor", "web_account.enrol_totp", "web_account.logout"})
SESSION_KEY = "sid"

csrf = CSRFProtect()


def is_web_request() -> bool:
    return not request.path.startswith(NOT_WEB)


def load_signed_in() -> Response | None:
    if not is_web_request():
        return None
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        csrf.protect()
    token = session.get(SESSION_KEY)
    signed_in = None
    if isinstance(token, str):
        ctx = current_app.extensions["ccm"]
        db = request_session()
        signed_in = load_session(db, token, ctx.clock.now(), timedelta(minutes=ctx.config.web_idle_minutes))
        db.commit()
        if signed_in is None:
            session.pop(SESSION_KEY, None)
            g.session_expired = True
    if signed_in is not None:
        user = signed_in.user
        g.web_user = user
        g.web_session = signed_in.session
        g.actor = Actor(user.id, user.username, user.role, user.team, request.remote_addr)
    endpoint = request.endpoint or ""
    if endpoint in PUBLIC:
        return None
    if signed_in is None:
        expired = 1 if g.get("session_expired") else None
        return redirect(url_for("web_account.login", next=_next_path(), expired=expired))
    if endpoint not in SECOND_STEP:
        if signed_in.second_factor_due:
            return redirect(url_for("web_account.second_factor"))
        if must_enrol(signed_in.user):
            return redirect(url_for("web_account.enrol_totp"))
    return None


def _next_path() -> str | None:
    path = request.full_path if request.query_string else request.path
    return path if request.method == "GET" and safe_next(path) else None


def safe_next(value: str | None) -> bool:
    """Only a path on this site (never another host) may be a place to go after login."""
    return bool(value) and value.startswith("/") and not value.startswith("//") and "\\" not in value \
        and not value.startswith(NOT_WEB)


def actor() -> Actor:
    signed_in: Actor = g.actor
    return signed_in


def permitted(permission: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A view only for roles with ``permission`` (others get the 403 page)."""
    from functools import wraps

    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            require(actor(), permission)
            return view(*args, **kwargs)

        return wrapper

    return decorator
