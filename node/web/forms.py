"""Reading an HTML form into the dictionaries the domain services take, and their errors back onto the form.

Web forms carry the same fields as the JSON API's bodies, with dotted names for nested members
(``returnee.given_names``) and ``name.0.title`` for list items. The view validates with the API's own
marshmallow schema and calls the API's service, so both check the same rules; what is wrong comes back as
``{"returnee.given_names": ["..."]}``, keyed like the form's fields, in the page's language.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import marshmallow as ma
from werkzeug.datastructures import MultiDict

from node.errors import NodeError

from .i18n import translate_messages

#: the key of a message about the form as a whole (not one field)
FORM = "_form"


def read_form(form: MultiDict[str, str], *, lists: Collection[str] = (), flags: Collection[str] = (),
              skip: Collection[str] = ("csrf_token",)) -> dict[str, Any]:
    """The form as a nested dictionary. Empty fields are left out (the schema decides whether they are
    required); ``lists`` are read as lists (checkboxes, multi-selects), ``flags`` as booleans (a checkbox that
    is present is true, an absent one false).
    """
    data: dict[str, Any] = {}
    for key in form:
        if key in skip or key in flags:
            continue
        if key in lists:
            value: Any = [v.strip() for v in form.getlist(key) if v.strip()]
        else:
            value = form.get(key, "").strip()
            if value == "":
                continue
        _put(data, key.split("."), value)
    for key in flags:
        _put(data, key.split("."), key in form)
    for key in lists:
        if key not in form:
            _put(data, key.split("."), [])
    return _lists_from_indexes(data)


def _put(data: dict[str, Any], path: list[str], value: Any) -> None:
    for part in path[:-1]:
        data = data.setdefault(part, {})
    data[path[-1]] = value


def _lists_from_indexes(value: Any) -> Any:
    """``{"0": {...}, "1": {...}}`` (from ``items.0.title``) becomes a list, in index order."""
    if not isinstance(value, dict):
        return value
    converted = {key: _lists_from_indexes(item) for key, item in value.items()}
    if converted and all(key.isdigit() for key in converted):
        return [converted[key] for key in sorted(converted, key=int)]
    return converted


def flatten_errors(errors: Any, prefix: str = "") -> dict[str, list[str]]:
    """Nested error messages keyed by dotted field names."""
    flat: dict[str, list[str]] = {}
    if isinstance(errors, dict):
        for key, value in errors.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            if key == "_schema":
                name = prefix or FORM
            for field, messages in flatten_errors(value, name).items():
                flat.setdefault(field, []).extend(messages)
    elif isinstance(errors, list | tuple) and all(isinstance(item, str) for item in errors):
        flat[prefix or FORM] = [str(item) for item in errors]
    elif isinstance(errors, list | tuple):
        for index, item in enumerate(errors):
            flat.update(flatten_errors(item, f"{prefix}.{index}" if prefix else str(index)))
    elif errors is not None:
        flat[prefix or FORM] = [str(errors)]
    return flat


def form_errors(exc: Exception) -> dict[str, list[str]]:
    """The field messages of a schema's or a service's refusal, in the page's language."""
    if isinstance(exc, ma.ValidationError):
        flat = flatten_errors(exc.messages)
    elif isinstance(exc, NodeError):
        flat = flatten_errors(exc.errors) if exc.errors else {}
        if not flat:
            flat = {FORM: [exc.detail or exc.code]}
    else:
        raise TypeError(f"not a validation error: {type(exc).__name__}")
    translated: dict[str, list[str]] = translate_messages(flat)
    return translated


def validated(schema: ma.Schema, data: dict[str, Any]) -> dict[str, Any]:
    """``schema.load(data)``; raises ``marshmallow.ValidationError`` like the API's parser would."""
    loaded: dict[str, Any] = schema.load(data)
    return loaded

