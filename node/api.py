"""The JSON API's plumbing: a flask-smorest ``Api`` whose errors are problem details, and a ``Blueprint``
whose JSON bodies are parsed strictly (duplicate keys, NaN, unsafe integers and deep nesting refused).

Every ``/api/v1`` blueprint is made from :class:`Blueprint` here and registered through :func:`init_api`. What
every view of every blueprint uses is here too: :func:`documented` (security and problem answers in the
OpenAPI document), the clock and actor, the version a write read (:func:`expected`), :func:`commit` and
:func:`with_etag`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import flask_smorest
import marshmallow as ma
from flask import Flask, Request, current_app, request
from webargs.flaskparser import FlaskParser, is_json_request
from webargs.multidictproxy import MultiDictProxy  # noqa: F401  (re-exported for query schemas)

from protocol.canonical import strict_loads
from protocol.errors import MalformedError

from .auth import Actor, current_actor
from .concurrency import Expected, etag, expected_from
from .db import request_session
from .errors import PROBLEM_MIMETYPE, NotFound, ValidationFailed, handle_http_exception


class StrictParser(FlaskParser):
    """webargs parser that uses the protocol's strict JSON reader: 400 for a body that is not valid JSON, 415
    for a body sent as anything but JSON (a form or plain text is never guessed at). An unknown query
    parameter is refused (422) like an unknown body field, not ignored: a misspelt filter never widens a list."""

    DEFAULT_VALIDATION_STATUS = 422
    DEFAULT_UNKNOWN_BY_LOCATION: ClassVar[dict[str, str | None]] = {
        **FlaskParser.DEFAULT_UNKNOWN_BY_LOCATION, "query": ma.RAISE, "querystring": ma.RAISE}

    def _raw_load_json(self, req: Request) -> Any:
        data = req.get_data(cache=True)
        if not data:
            return ma.missing
        if not is_json_request(req):
            sent = req.mimetype or "no Content-Type"
            flask_smorest.abort(415, message=f"The request body must be sent as application/json (it was sent "
                                             f"as {sent}).")
        try:
            return strict_loads(data)
        except MalformedError as exc:
            flask_smorest.abort(400, message=f"The request body cannot be read: {exc.message}.")


class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = StrictParser()


class ProblemSchema(ma.Schema):
    """RFC 9457 problem details, as every API error is answered."""

    type = ma.fields.String(metadata={"description": "urn:ccm:problem:<code>"})
    title = ma.fields.String()
    status = ma.fields.Integer()
    code = ma.fields.String(metadata={"description": "Stable machine-readable error code"})
    detail = ma.fields.String()
    errors = ma.fields.Dict(metadata={"description": "Field-level messages, nested like the request body"})


class Api(flask_smorest.Api):
    ERROR_SCHEMA = ProblemSchema

    def handle_http_exception(self, error: Any) -> Any:
        return handle_http_exception(error)

    def _register_responses(self) -> None:
        """The error answers flask-smorest documents by itself (422 and ``default``) with the content type they
        are sent with, ``application/problem+json`` (its default is application/json)."""
        self.DEFAULT_RESPONSE_CONTENT_TYPE = PROBLEM_MIMETYPE
        try:
            super()._register_responses()  # type: ignore[misc]
        finally:
            del self.DEFAULT_RESPONSE_CONTENT_TYPE


def _refuse_nul() -> None:
    """No id, key or parameter holds a NUL character, and PostgreSQL refuses one in a query: a path with one
    names nothing (404), a query parameter with one is invalid (422), before any view runs."""
    if not request.path.startswith("/api/"):
        return
    if "\x00" in request.path:
        raise NotFound("No such resource.")
    bad = sorted({name for name, value in request.args.items(multi=True) if "\x00" in name or "\x00" in value})
    if bad:
        raise ValidationFailed("Invalid query parameters.",
                               {name.replace("\x00", "\\x00"): ["Must not contain a NUL character."] for name in bad})


def init_api(app: Flask, blueprints: list[flask_smorest.Blueprint]) -> Api:
    app.config.setdefault("API_TITLE", "CCM Exchange node API")
    app.config.setdefault("API_VERSION", "v1")
    app.config.setdefault("OPENAPI_VERSION", "3.0.3")
    app.config.setdefault("OPENAPI_URL_PREFIX", "/api/v1")
    app.config.setdefault("OPENAPI_JSON_PATH", "openapi.json")
    api = Api(app, spec_kwargs={
        "info": {"description": "A CCM Exchange node: cases, consent, plans and progress. "
                                "Errors are RFC 9457 problem details (application/problem+json)."},
    })
    api.spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    for blp in blueprints:
        api.register_blueprint(blp)
    app.before_request(_refuse_nul)
    return api


# -- what every /api/v1 view uses -------------------------------------------------------------------------

SECURITY = [{"bearer": []}]
IF_MATCH = {"in": "header", "name": "If-Match", "required": False, "schema": {"type": "string"},
            "description": 'The ETag you read, e.g. "3" (or send a "version" field in the body). A stale one '
                           "answers 412; neither answers 428."}
_PROBLEMS = {401: "No valid bearer token", 403: "Your role does not allow this",
             404: "No such case (or not yours)", 409: "Stale 'version' field, or a state conflict",
             412: "Stale If-Match", 428: "Neither If-Match nor 'version' given"}


def documented(blp: Blueprint, *codes: int) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Document the bearer security and the given problem answers on a view (and If-Match on writes that
    need a version)."""

    def decorator(func: Callable[..., Any]) -> Callable[..., Any]:
        func = blp.doc(security=SECURITY, **({"parameters": [IF_MATCH]} if 428 in codes else {}))(func)
        for code in (401, 403, *codes):
            func = blp.alt_response(code, schema=ProblemSchema, description=_PROBLEMS[code],
                                    content_type="application/problem+json")(func)
        return func

    return decorator


def now_and_actor() -> tuple[Any, Actor]:
    return current_app.extensions["ccm"].clock.now(), current_actor()


def node_config() -> Any:
    return current_app.extensions["ccm"].config


def expected(data: dict[str, Any]) -> Expected:
    """The writer's precondition (``If-Match`` or the body's ``version``, which is removed from ``data``)."""
    return expected_from(request.headers.get("If-Match"), data.pop("version", None))


def commit() -> None:
    request_session().commit()


def with_etag(result: Any, version: int, status: int = 200,
              **headers: str) -> tuple[Any, int, dict[str, str]]:
    return result, status, {"ETag": etag(version), **headers}
