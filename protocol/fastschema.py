"""A fast acceptor for the message body schemas, made from the marshmallow schemas themselves.

The marshmallow schemas of ``protocol.messages`` and ``protocol.summary`` are the specification of a valid body
(SPEC.md section 8) and stay the reference: ``validate_body`` answers with them whenever a body is not
plainly valid, so every refusal, and every error message, is marshmallow's. What this module adds is the
common case: a body that *is* valid is recognised by plain Python checks made once from the very same field
objects (their checks, their validators, their ``@validates_schema`` hooks), at about a tenth of the cost of
``Schema.load`` (which builds error stores, getters and keyword dicts for each of the ~25 nested loads of a
handover body).

Soundness: an acceptor returns only when every check marshmallow would run on that body passed, and it returns
what ``Schema.load`` returns (new dicts and lists, members in the schema's field order, the same scalars);
anything it is not sure about (a type it does not know, a missing required member, an unknown member, a check
that fails, any exception) makes it give up, and marshmallow decides. Only what it can mirror is compiled: a
schema with other hooks (``pre_load``, ``post_load``, ``@validates``), field options (``load_default``,
``allow_none``, ``pre_load``/``post_load`` functions, a dotted attribute) or field types has no acceptor and is
always validated by marshmallow. ``tests/protocol/test_fastschema.py`` checks the agreement on every protocol
vector and on generated bodies (hypothesis).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from marshmallow import RAISE, Schema, fields, missing
from marshmallow.decorators import VALIDATES_SCHEMA
from marshmallow.validate import Validator

from .fields import Bool, Checked

#: An acceptor: the loaded value, as ``Schema.load`` (or a field's ``deserialize``) returns it, or an exception.
Acceptor = Callable[[Any], Any]


class Refused(Exception):
    """The acceptor gives up on a value: marshmallow decides (it may well accept it)."""


class NotCompilable(Exception):
    """A schema or field this module cannot mirror exactly (it stays marshmallow's alone)."""


_MISSING = object()


def _plain_field(field: fields.Field[Any]) -> None:
    """Refuse a field with options the acceptors do not mirror."""
    if field.allow_none or field.pre_load or field.post_load:
        raise NotCompilable(f"{field!r}: allow_none, pre_load or post_load")
    if field.load_default is not missing:  # a member left out would be filled in
        raise NotCompilable(f"{field!r}: load_default")


def _with_validators(field: fields.Field[Any], accept: Acceptor) -> Acceptor:
    """``accept`` followed by the field's validators, as ``Field._validate`` runs them (marshmallow's ``And``:
    a validator fails by raising or, a plain function, by returning False)."""
    if type(field)._validate is not fields.Field._validate:
        raise NotCompilable(f"{field!r}: its own _validate")
    validators = tuple(field.validators)
    if not validators:
        return accept

    def validated(value: Any) -> Any:
        output = accept(value)
        for validator in validators:
            if validator(output) is False and not isinstance(validator, Validator):
                raise Refused
        return output

    return validated


def _checked(field: Checked) -> Acceptor:
    check = field.plain_check()
    if check is None:
        raise NotCompilable(f"{field!r}: a Checked field with its own _deserialize or _validate")

    def accept(value: Any) -> str:
        if type(value) is not str:
            raise Refused
        check(value)
        return value

    return accept


def _string(value: Any) -> str:
    if type(value) is not str:  # marshmallow also takes bytes (and decodes them): those it decides
        raise Refused
    return value


def _boolean(value: Any) -> bool:
    if type(value) is not bool:
        raise Refused
    return value


def _strict_integer(value: Any) -> int:
    if type(value) is not int:  # a bool is no integer, and marshmallow refuses it too
        raise Refused
    return value


def _list(inner: Acceptor, check: Callable[[str], None] | None) -> Acceptor:
    def accept(value: Any) -> list[Any]:
        if type(value) is not list:  # marshmallow takes any collection; a JSON array is a list
            raise Refused
        return [inner(member) for member in value]

    def accept_checked(value: Any) -> list[Any]:  # a list of Checked strings: the check inlined
        if type(value) is not list:
            raise Refused
        for member in value:
            if type(member) is not str:
                raise Refused
            check(member)  # type: ignore[misc]
        return list(value)

    return accept if check is None else accept_checked


def _dict(keys: Acceptor | None, values: Acceptor | None) -> Acceptor:
    def accept(value: Any) -> dict[Any, Any]:
        if type(value) is not dict:
            raise Refused
        if keys is None and values is None:
            return dict(value)
        return {(key if keys is None else keys(key)): (member if values is None else values(member))
                for key, member in value.items()}

    return accept


def field_acceptor(field: fields.Field[Any]) -> Acceptor:
    """The acceptor of one bound field (``Field.deserialize`` of a present, non-null value).

    Raises:
        NotCompilable: a field type or option not mirrored here.
    """
    _plain_field(field)
    if isinstance(field, Checked):
        return _checked(field)
    kind = type(field)
    if kind is Bool:
        return _with_validators(field, _boolean)
    if kind is fields.String:
        return _with_validators(field, _string)
    if kind is fields.Integer and field.strict and not field.as_string:  # type: ignore[attr-defined]
        return _with_validators(field, _strict_integer)
    if kind is fields.List:
        inner = field.inner  # type: ignore[attr-defined]
        return _with_validators(field, _list(field_acceptor(inner), inner.plain_check() if isinstance(inner, Checked)
                                             else None))
    if kind is fields.Dict:
        key_field, value_field = field.key_field, field.value_field  # type: ignore[attr-defined]
        return _with_validators(field, _dict(field_acceptor(key_field) if key_field is not None else None,
                                             field_acceptor(value_field) if value_field is not None else None))
    if kind is fields.Nested:
        if field.many or field.unknown is not None or field.only is not None or field.exclude:  # type: ignore[attr-defined]
            raise NotCompilable(f"{field!r}: many, unknown, only or exclude")
        return _with_validators(field, schema_acceptor(field.schema))  # type: ignore[attr-defined]
    raise NotCompilable(f"{field!r}: field type {kind.__name__}")


def schema_acceptor(schema: Schema) -> Acceptor:
    """The acceptor of ``schema.load`` (the schema's own ``many``, ``partial`` and ``unknown``).

    Raises:
        NotCompilable: the schema, or a field of it, is not mirrored here.
    """
    hooks = schema._hooks
    if (schema.many or schema.partial or schema.unknown != RAISE or schema.dict_class is not dict
            or any(hooks[tag] for tag in hooks if tag != VALIDATES_SCHEMA)):
        raise NotCompilable(f"{schema!r}: many, partial, unknown, dict_class or a hook other than validates_schema")
    validators = []
    for attr_name, hook_many, options in hooks[VALIDATES_SCHEMA]:
        if hook_many or options.get("pass_original"):
            raise NotCompilable(f"{schema!r}: a validates_schema hook with pass_many or pass_original")
        validators.append(getattr(schema, attr_name))
    # (data key, attribute, required, the check of a Checked field or None, the field's acceptor)
    plan: list[tuple[str, str, bool, Callable[[str], None] | None, Acceptor]] = []
    for attr_name, field in schema.load_fields.items():
        data_key = field.data_key if field.data_key is not None else attr_name
        key = field.attribute or attr_name
        if "." in key:
            raise NotCompilable(f"{schema!r}: the dotted attribute {key}")
        member = field_acceptor(field)
        check = field.plain_check() if isinstance(field, Checked) else None  # inlined below: most members are these
        plan.append((data_key, key, field.required, check, member))
    if len({entry[0] for entry in plan}) != len(plan) or len({entry[1] for entry in plan}) != len(plan):
        raise NotCompilable(f"{schema!r}: two fields share a data key or an attribute")
    hook_kwargs = {"partial": schema.partial, "many": False, "unknown": schema.unknown}

    def accept(value: Any) -> dict[str, Any]:
        if type(value) is not dict:
            raise Refused
        loaded: dict[str, Any] = {}
        for data_key, key, required, check, member in plan:
            raw = value.get(data_key, _MISSING)
            if raw is _MISSING:
                if required:
                    raise Refused
            elif check is not None:
                if type(raw) is not str:
                    raise Refused
                check(raw)
                loaded[key] = raw
            else:
                loaded[key] = member(raw)
        if len(loaded) != len(value):  # an unknown member (every present known member was loaded)
            raise Refused
        for validator in validators:
            validator(loaded, **hook_kwargs)
        return loaded

    return accept


def compile_schema(schema: Schema) -> Acceptor | None:
    """``schema``'s acceptor, or None if it has parts this module does not mirror."""
    try:
        return schema_acceptor(schema)
    except NotCompilable:
        return None


def fast_loader(schema: Schema) -> Acceptor:
    """``schema.load`` with the schema's acceptor in front: what the acceptor accepts it returns, anything else
    (or everything, for a schema with no acceptor) ``schema.load`` decides, raising its ``ValidationError``."""
    accept = compile_schema(schema)
    if accept is None:
        return schema.load

    def load(data: Any) -> Any:
        try:
            return accept(data)
        except Exception:  # noqa: S110  (not plainly valid: the schema decides, and words the errors)
            pass
        return schema.load(data)

    return load

