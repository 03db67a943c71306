"""The interface's languages: which are supported, how a request's language is chosen, and how dates,
numbers and validation messages are shown in it.

A language is listed here only when its catalogue is complete (tests/web/test_translations.py fails on any
untranslated or fuzzy string). The signed-in user's own choice comes first, then the browser's
``Accept-Language``, then English. Arabic is written right to left: templates take ``dir`` from the locale.
"""

from __future__ import annotations

from typing import Any

import flask_babel
from flask import Flask, g, request
from flask_babel import Babel, gettext

SUPPORTED: tuple[str, ...] = ("en", "sv", "bs", "ar")
#: each language named in itself, for the language picker
NAMES: dict[str, str] = {"en": "English", "sv": "Svenska", "bs": "Bosanski", "ar": "العربية"}
COOKIE = "ccm_lang"


def select_locale() -> str:
    user = g.get("web_user")
    chosen = getattr(user, "language", None) or request.cookies.get(COOKIE)
    if chosen in SUPPORTED:
        return str(chosen)
    return request.accept_languages.best_match(SUPPORTED) or "en"


def translate_messages(errors: Any) -> Any:
    """Validation messages (marshmallow's and the services') in the page's language; a message with no
    translation stays as written."""
    if isinstance(errors, dict):
        return {key: translate_messages(value) for key, value in errors.items()}
    if isinstance(errors, list | tuple):
        return [translate_messages(value) for value in errors]
    return gettext(errors) if isinstance(errors, str) else errors


def _page_language() -> dict[str, Any]:
    locale = flask_babel.get_locale()
    code = str(locale) if locale is not None else "en"
    direction = locale.text_direction if locale is not None else "ltr"
    return {"lang": code, "text_dir": direction, "languages": NAMES}


def init_i18n(app: Flask, timezone: str) -> Babel:
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", "web/translations")
    app.config["BABEL_DEFAULT_TIMEZONE"] = timezone
    babel = Babel(app, locale_selector=select_locale)
    app.context_processor(_page_language)
    app.jinja_env.filters["date"] = lambda value, fmt="medium": flask_babel.format_date(value, fmt) if value else ""
    app.jinja_env.filters["datetime"] = (lambda value, fmt="medium":
                                         flask_babel.format_datetime(value, fmt) if value else "")
    app.jinja_env.filters["number"] = lambda value: flask_babel.format_decimal(value) if value is not None else ""
    return babel
