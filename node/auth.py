"""Who is asking, and what their role allows: the role matrix, enforced here and nowhere else.

Every request under ``/api/v1`` (except the OpenAPI document) must carry ``Authorization: Bearer <token>``.
Authentication failures of every kind (no header, malformed, unknown, expired, revoked, disabled user) get the
same opaque 401; the reason is not told to the caller.

The matrix (docs/roles.md mirrors it; tests/node/test_roles.py checks it cell by cell):

=================  =====  ==========  =======  ===========
permission         admin  counsellor  adviser  coordinator
=================  =====  ==========  =======  ===========
case.create               x           x
case.read                 x           x
case.update               x           x
consent.manage            x
progress.write            x           x
case.export               x
handover.send             x
handover.accept                       x
report.read        x      x           x        x
user.manage        x
partner.manage     x
audit.verify       x
=================  =====  ==========  =======  ===========

Case-level visibility (assigned to the user or the user's team) is applied on top of the matrix by
``node.cases.access``.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, current_app, g, request

from .accounts import check_token, mark_used
from .db import request_reader, request_session
from .errors import Forbidden, Unauthorized

ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    "admin": frozenset({"report.read", "user.manage", "partner.manage", "audit.verify"}),
    "counsellor": frozenset({"case.create", "case.read", "case.update", "consent.manage", "progress.write",
                             "case.export", "handover.send", "report.read"}),
    "adviser": frozenset({"case.create", "case.read", "case.update", "progress.write", "handover.accept",
                          "report.read"}),
    "coordinator": frozenset({"report.read"}),
}
PERMISSIONS: frozenset[str] = frozenset().union(*ROLE_PERMISSIONS.values())

_PUBLIC_API_PATHS = frozenset({"/api/v1/openapi.json"})


@dataclass(frozen=True)
class Actor:
    """The authenticated member of staff behind a request (or a CLI command)."""

    user_id: int
    username: str
    role: str
    team: str | None
    remote_addr: str | None = None


def can(role: str, permission: str) -> bool:
    return permission in ROLE_PERMISSIONS.get(role, frozenset())


def require(actor: Actor, permission: str) -> None:
    """Deny unless the actor's role grants ``permission``.

    Raises:
        Forbidden: the role does not grant it.
    """
    if permission not in PERMISSIONS:
        raise ValueError(f"unknown permission {permission!r}")
    if not can(actor.role, permission):
        raise Forbidden("Your role does not allow this action.")


def current_actor() -> Actor:
    """The actor authenticated for this request.

    Raises:
        Unauthorized: no valid bearer token came with the request.
    """
    actor: Actor | None = g.get("actor")
    if actor is None:
        raise Unauthorized("A valid bearer token is required.")
    return actor


def _authenticate_api_request() -> None:
    path = request.path
    if not path.startswith("/api/") or path in _PUBLIC_API_PATHS or request.method == "OPTIONS":
        return
    header = request.headers.get("Authorization", "")
    scheme, _, presented = header.partition(" ")
    if scheme.lower() != "bearer" or not presented.strip():
        raise Unauthorized("A valid bearer token is required.")
    now = current_app.extensions["ccm"].clock.now()
    session = request_session()
    reader = request_reader()  # SQLite: checked without the write lock
    use = check_token(reader or session, presented.strip(), now)
    if use is None:
        raise Unauthorized("A valid bearer token is required.")
    g.actor = Actor(use.user_id, use.username, use.role, use.team, request.remote_addr)
    # (SQLite) the view reads on the snapshot the token was checked on: a few microseconds old, and one
    # transaction less per request. What a view decides on it is checked again under the write lock.
    if use.stale:  # at most once a minute per token
        mark_used(session, use.token_id, now)
        session.commit()


def init_auth(app: Flask) -> None:
    app.before_request(_authenticate_api_request)
