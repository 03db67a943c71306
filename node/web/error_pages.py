"""Error pages of the web interface, in the user's language: one template, a title and a sentence per status.

:func:`render_error_page` is installed as ``app.extensions["ccm_error_page"]`` and called by
:func:`node.errors.problem` for every error answer; outside the web pages (API, federation) it answers None and
the problem document goes out as before. The page never shows the exception, the request's data or a trace.
"""

from __future__ import annotations

import logging

from flask import g, render_template
from flask_babel import lazy_gettext as _l
from werkzeug.wrappers import Response

from .guard import is_web_request

log = logging.getLogger(__name__)
FALLBACK = ('<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Error {status}</title></head>'
            "<body><main><h1>Error {status}</h1><p>Nothing was saved. Go back and try again.</p></main></body></html>")

TITLES = {
    400: _l("The request could not be understood"),
    401: _l("Please sign in"),
    403: _l("Your role does not allow this"),
    404: _l("Page not found"),
    405: _l("This action is not available here"),
    409: _l("This cannot be done now"),
    412: _l("Someone changed this in the meantime"),
    413: _l("What you sent is too large"),
    415: _l("The request could not be understood"),
    422: _l("Some details are not valid"),
    428: _l("The request could not be understood"),
    429: _l("Too many attempts"),
    500: _l("Something went wrong on our side"),
    503: _l("The node is busy"),
}
EXPLANATIONS = {
    400: _l("The form may have expired or been sent twice. Go back, reload the page and try again."),
    401: _l("Your session has ended. Sign in again to continue."),
    403: _l("If you need this, ask your node's administrator."),
    404: _l("There is no such page, or it is a case you may not see."),
    405: _l("Go back and use the buttons on the page."),
    409: _l("The case or handover is not in a state that allows this. Go back and reload the page."),
    412: _l("Reload the page to see the latest version, then make your change again."),
    413: _l("Shorten the text or send less at once."),
    415: _l("Go back and use the form on the page."),
    422: _l("Go back and check what you entered."),
    428: _l("Go back, reload the page and try again."),
    429: _l("Wait a few minutes before trying again."),
    500: _l("Nothing was saved. Try again; if it happens again, tell your node's administrator."),
    503: _l("Nothing was saved. Wait a few seconds and try again."),
}
#: Error codes whose page says more than their status's: a full disk is not over in a few seconds.
TITLES_BY_CODE = {"storage_full": _l("The node's disk is full")}
EXPLANATIONS_BY_CODE = {
    "storage_full": _l("Nothing was saved. Tell your node's administrator, and try again once space has been freed."),
}


def render_error_page(status: int, code: str, headers: dict[str, str]) -> Response | None:
    if not is_web_request():
        return None
    detail = g.pop("error_detail", None)
    try:
        fallback = 500 if status >= 500 else 400
        body = render_template("error.html", status=status, code=code,
                               title=TITLES_BY_CODE.get(code) or TITLES.get(status, TITLES[fallback]),
                               explanation=EXPLANATIONS_BY_CODE.get(code)
                               or EXPLANATIONS.get(status, EXPLANATIONS[fallback]),
                               detail=detail)
    except Exception:  # the page itself failed (a template error, the database gone): a plain page instead
        log.exception("error page %s could not be rendered", status)
        body = FALLBACK.format(status=status)
    response = Response(body, status=status, mimetype="text/html")
    for key, value in headers.items():
        if key.lower() != "www-authenticate":
            response.headers[key] = value
    return response
