"""Errors of the node layer and their one outward shape: RFC 9457 problem details.

Services raise :class:`NodeError` subclasses; the app turns them (and every HTTP error) into
``application/problem+json``::

    {"type": "urn:ccm:problem:validation_failed", "title": "Unprocessable Entity", "status": 422,
     "code": "validation_failed", "detail": "...", "errors": {"returnee": {"given_names": ["..."]}}}

``errors`` (field-level messages, nested like the request body) and ``code`` are extension members.
Unexpected exceptions are logged (type and traceback, never request data) and answered with a bare 500
problem; no traceback ever reaches a client. A database that is busy or unreachable (SQLite locked, PostgreSQL
down, restarting or holding a lock too long) is not a fault of the request: it answers ``503
database_unavailable`` with ``Retry-After``, and the request's transaction is rolled back, so nothing changed.
A disk with no room left (SQLite's "database or disk is full", PostgreSQL's ``disk_full``, ``ENOSPC`` writing a
file of the data directory) answers ``503 storage_full`` the same way: the node answers again by itself once
space is freed.
"""

from __future__ import annotations

import errno
import logging
import sqlite3
from typing import Any

import sqlalchemy as sa
from flask import Flask, Response, current_app, has_request_context, json
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)

PROBLEM_MIMETYPE = "application/problem+json"
#: Seconds a client is asked to wait before trying again when the database is busy or unreachable.
DATABASE_RETRY_AFTER = 5
#: SQLite's words for a database another process holds or that cannot be opened now.
_SQLITE_BUSY = ("database is locked", "database table is locked", "database is busy", "unable to open database")
#: Seconds a client is asked to wait when the disk is full: space comes back when someone frees it.
STORAGE_RETRY_AFTER = 60
#: ``errno`` values of a write that found no room: the disk is full, or the user's quota on it is used up.
_NO_ROOM = frozenset({errno.ENOSPC, errno.EDQUOT})
#: PostgreSQL's SQLSTATE for a server whose disk is full.
_PG_DISK_FULL = "53100"


class NodeError(Exception):
    """Base of the node's domain errors. ``status`` and ``code`` decide the answer."""

    status = 400
    code = "bad_request"

    def __init__(self, detail: str = "", errors: dict[str, Any] | None = None) -> None:
        super().__init__(detail or self.code)
        self.detail = detail
        self.errors = errors


class ValidationFailed(NodeError):
    status = 422
    code = "validation_failed"


class Unauthorized(NodeError):
    status = 401
    code = "unauthorized"


class Forbidden(NodeError):
    status = 403
    code = "forbidden"


class NotFound(NodeError):
    status = 404
    code = "not_found"


class Conflict(NodeError):
    status = 409
    code = "conflict"


class VersionConflict(Conflict):
    """The write carried a version that is no longer current: someone else changed the record."""

    status = 412
    code = "version_conflict"


class PreconditionRequired(NodeError):
    status = 428
    code = "precondition_required"


_CODES_BY_STATUS = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
    409: "conflict", 412: "version_conflict", 413: "too_large", 415: "unsupported_media_type",
    422: "validation_failed", 428: "precondition_required", 429: "too_many_requests", 500: "internal_error",
    503: "unavailable",
}


def problem(status: int, title: str, code: str | None = None, detail: str | None = None,
            errors: Any = None, headers: dict[str, str] | None = None) -> Response:
    """Build a problem-details response, or the error page of the web interface when a page was asked for
    (the renderer in ``app.extensions["ccm_error_page"]`` decides; it answers None outside the web pages)."""
    code = code or _CODES_BY_STATUS.get(status, "error")
    render = current_app.extensions.get("ccm_error_page") if has_request_context() else None
    page = render(status, code, headers or {}) if render is not None else None
    if page is not None:
        return page
    body: dict[str, Any] = {"type": f"urn:ccm:problem:{code}", "title": title, "status": status, "code": code}
    if detail:
        body["detail"] = detail
    if errors:
        body["errors"] = errors
    response = Response(json.dumps(body), status=status, mimetype=PROBLEM_MIMETYPE)
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def _title(status: int) -> str:
    from werkzeug.http import HTTP_STATUS_CODES

    return HTTP_STATUS_CODES.get(status, "Error")


def handle_node_error(exc: NodeError) -> Response:
    headers = {"WWW-Authenticate": 'Bearer realm="ccm"'} if exc.status == 401 else None
    return problem(exc.status, _title(exc.status), exc.code, exc.detail or None, exc.errors, headers)


def handle_http_exception(exc: HTTPException) -> Response:
    status = exc.code or 500
    data = getattr(exc, "data", None) or {}
    errors = data.get("errors") or data.get("messages")
    if isinstance(errors, dict) and len(errors) == 1 and set(errors) <= {"json", "query", "form", "headers"}:
        errors = next(iter(errors.values()))  # webargs nests by location; one location needs no level
    detail = data.get("message")
    if detail is None and status != 422 and exc.description and status < 500:
        detail = exc.description
    headers: dict[str, str] = dict(data.get("headers") or {})
    valid = getattr(exc, "valid_methods", None)
    if status == 405 and valid:
        headers["Allow"] = ", ".join(valid)
    if status == 422 and not detail:
        detail = "The request body or parameters are invalid; see 'errors'."
    return problem(status, _title(status), None, detail, errors, headers)


def database_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` says the database is busy or unreachable (try again later), not that a statement is wrong.

    SQLite: locked or busy past the busy timeout, or the file cannot be opened. PostgreSQL: any operational
    error (connection refused or lost, the server shutting down or starting, a lock or statement timeout); a
    connection found dead; no connection free in the pool in time.
    """
    if isinstance(exc, sa.exc.TimeoutError):
        return True
    if not isinstance(exc, sa.exc.DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    if not isinstance(exc, sa.exc.OperationalError):
        return False
    if type(exc.orig).__module__.startswith("sqlite3"):
        text = str(exc.orig).lower()
        return any(words in text for words in _SQLITE_BUSY)
    return True


def storage_full(exc: BaseException) -> bool:
    """Whether ``exc`` says the disk has no room for what the request wrote (try again once space is freed).

    SQLite: ``SQLITE_FULL`` ("database or disk is full"). PostgreSQL: ``disk_full`` (SQLSTATE 53100). A file:
    ``OSError`` with ``ENOSPC`` or ``EDQUOT``.
    """
    if isinstance(exc, OSError):
        return exc.errno in _NO_ROOM
    if not isinstance(exc, sa.exc.DBAPIError):
        return False
    orig = exc.orig
    if isinstance(orig, sqlite3.Error):
        return (getattr(orig, "sqlite_errorcode", 0) & 0xFF) == sqlite3.SQLITE_FULL
    return getattr(orig, "sqlstate", None) == _PG_DISK_FULL


def handle_storage_full(exc: BaseException) -> Response:
    """503 ``storage_full``. A database error rolled the request's transaction back (nothing changed); a file
    may have been left unwritten after a commit, so that answer does not promise it."""
    outcome = "it may not have been saved whole" if isinstance(exc, OSError) else "nothing was changed"
    return problem(503, "Service Unavailable", "storage_full",
                   f"The node's disk is full, so it cannot record this request: {outcome}. Try again once its "
                   "administrator has freed space.", headers={"Retry-After": str(STORAGE_RETRY_AFTER)})


def handle_database_unavailable() -> Response:
    return problem(503, "Service Unavailable", "database_unavailable",
                   "The node's database is busy or unreachable; nothing was changed. Try again shortly.",
                   headers={"Retry-After": str(DATABASE_RETRY_AFTER)})


def handle_unexpected(exc: Exception) -> Response:
    if isinstance(exc, HTTPException):
        return handle_http_exception(exc)
    if isinstance(exc, NodeError):
        return handle_node_error(exc)
    if storage_full(exc):
        log.warning("disk full: %s", _kind(exc))
        return handle_storage_full(exc)
    if database_unavailable(exc):
        log.warning("database busy or unreachable: %s", type(getattr(exc, "orig", exc)).__name__)
        return handle_database_unavailable()
    log.exception("unhandled %s", type(exc).__name__)
    return problem(500, "Internal Server Error", "internal_error")


def _kind(exc: BaseException) -> str:
    """What went wrong, without the message (a message may quote a value): the exception type and its code."""
    orig = getattr(exc, "orig", None) or exc
    code = getattr(orig, "sqlite_errorname", None) or getattr(orig, "sqlstate", None)
    if isinstance(orig, OSError) and orig.errno is not None:
        code = errno.errorcode.get(orig.errno)
    return f"{type(orig).__name__} ({code})" if code else type(orig).__name__


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(NodeError, handle_node_error)
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(Exception, handle_unexpected)
