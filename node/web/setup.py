"""Assembling the web interface onto the node's Flask app (called by :func:`node.create_app`)."""

from __future__ import annotations

from importlib import import_module
from typing import Any

from flask import Blueprint, Flask, current_app, g
from werkzeug.wrappers import Response

from node.auth import can

from .error_pages import render_error_page
from .guard import csrf, is_web_request, load_signed_in
from .i18n import init_i18n
from .labels import label_globals
from .navigation import navigation
from .notifications import unread_for_badge

#: the page modules, each with ``make_blueprint()``; the order is the order of their routes' registration
PAGE_MODULES = ("account", "home", "cases", "intake_sections", "plan", "consent", "handovers", "intake",
                "progress", "returnee_copy", "dashboard", "notifications", "admin_node", "admin_partners",
                "admin_delivery", "admin_staff", "admin_audit", "admin_erasures")

CONTENT_SECURITY_POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                           "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")


def _security_headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
    if is_web_request():
        response.headers.setdefault("Cache-Control", "no-store")  # pages hold personal data: never cached
    return response


def _template_globals() -> dict[str, Any]:
    actor = g.get("actor")
    config = current_app.extensions["ccm"].config
    return {
        "node_name": config.name,
        "node_id": config.node_id,
        **label_globals(),
        "can": lambda permission: actor is not None and can(actor.role, permission),
        "web_user": g.get("web_user"),
        "navigation": navigation(),
        "unread_notifications": unread_for_badge,  # called by base.html's menu: one indexed COUNT
    }


def init_web(app: Flask) -> None:
    """Add the web interface: languages, CSRF, sessions, security headers, error pages and the pages."""
    config = app.extensions["ccm"].config
    app.config.update(
        WTF_CSRF_CHECK_DEFAULT=False,  # checked for web forms only (the API and federation sign otherwise)
        WTF_CSRF_TIME_LIMIT=None,      # bound to the browser session, which the idle timeout ends
        SESSION_COOKIE_NAME="ccm_web",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=config.base_url.startswith("https://"),
        SEND_FILE_MAX_AGE_DEFAULT=3600,
    )
    csrf.init_app(app)
    init_i18n(app, config.timezone)
    app.extensions["ccm_error_page"] = render_error_page
    app.before_request(load_signed_in)
    app.after_request(_security_headers)
    app.context_processor(_template_globals)
    assets = Blueprint("web_assets", __name__, static_folder="static", static_url_path="/static/web",
                       template_folder="templates")
    app.register_blueprint(assets)
    for name in PAGE_MODULES:
        module = import_module(f"{__package__}.{name}")
        app.register_blueprint(module.make_blueprint())
