"""The fast body acceptors (``protocol.fastschema``) agree with the marshmallow schemas they are made from.

A differential test, the schemas being the reference: on every body of the protocol vectors and on bodies
generated from the samples by mutation (hypothesis), an acceptor accepts exactly what its schema accepts and
returns what the schema's ``load`` returns (equal, and with its members in the same order); what it refuses
goes to the schema in ``validate_body``, whose errors are therefore unchanged.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError, fields, post_load

from protocol.canonical import strict_loads
from protocol.fastschema import NotCompilable, Refused, compile_schema, field_acceptor, schema_acceptor
from protocol.fields import StrictSchema, Text
from protocol.messages import BODY_SCHEMAS, MESSAGE_TYPES, validate_body
from protocol.summary import ConsentRecordSchema, SignedConsentRecordSchema, SummarySchema

VECTORS = Path(__file__).resolve().parents[2] / "protocol" / "vectors"
SAMPLES: dict[str, Any] = strict_loads((VECTORS / "sample_bodies.json").read_bytes())
#: The body schemas and the consent module's own (a consent record alone, signed or not, and a summary alone).
REFERENCE = {**BODY_SCHEMAS, "consent record": ConsentRecordSchema(),
             "signed consent record": SignedConsentRecordSchema(), "summary": SummarySchema()}
_ACCEPTORS = {name: compile_schema(schema) for name, schema in REFERENCE.items()}


def schema_decision(msg_type: str, body: Any) -> tuple[str, Any]:
    try:
        return "valid", REFERENCE[msg_type].load(body)
    except ValidationError:
        return "invalid", None


def fast_decision(msg_type: str, body: Any) -> tuple[str, Any]:
    try:
        return "valid", _ACCEPTORS[msg_type](body)  # type: ignore[misc]
    except Exception:  # validate_body gives up on any exception too
        return "invalid", None


def check_agrees(msg_type: str, body: Any) -> str:
    expected, fast = schema_decision(msg_type, body), fast_decision(msg_type, body)
    assert fast[0] == expected[0], (msg_type, body)
    if expected[0] == "valid":
        assert fast[1] == expected[1]
        assert json.dumps(fast[1]) == json.dumps(expected[1])  # the same members, in the same order
        if msg_type in MESSAGE_TYPES:
            assert validate_body(msg_type, copy.deepcopy(body)) == expected[1]
    return expected[0]


def test_every_body_schema_has_an_acceptor() -> None:
    assert set(_ACCEPTORS) >= MESSAGE_TYPES and None not in _ACCEPTORS.values()


def objects_in(value: Any) -> Iterator[Any]:
    if isinstance(value, dict):
        yield value
        for member in value.values():
            yield from objects_in(member)
    elif isinstance(value, list):
        for member in value:
            yield from objects_in(member)


def test_every_object_of_the_protocol_vectors() -> None:
    """Every JSON object anywhere in the vectors (bodies valid and invalid, and all else), as every type's body."""
    seen = {"valid": 0, "invalid": 0}
    for path in sorted(VECTORS.glob("*.json")):
        for candidate in objects_in(strict_loads(path.read_bytes())):
            for name in sorted(REFERENCE):
                seen[check_agrees(name, candidate)] += 1
    assert seen["valid"] >= len(REFERENCE) and seen["invalid"] > 1000


# --- generated bodies: the samples, mutated -------------------------------------------------------


def leaves(value: Any) -> Iterator[Any]:
    if isinstance(value, dict):
        for member in value.values():
            yield from leaves(member)
    elif isinstance(value, list):
        for member in value:
            yield from leaves(member)
    else:
        yield value


#: Values that are valid somewhere (every leaf of every sample): put elsewhere, they probe each field's check.
DONORS = sorted({json.dumps(leaf) for body in SAMPLES.values() for leaf in leaves(body)})
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=12)
    | st.sampled_from(DONORS).map(json.loads)
    | st.sampled_from(["", " ", "x" * 201, "2026-02-30", "2026-03-02T10:00:00+01:00", "+4631700123", "SE", "se",
                       "XK", "EUR", "eur", "1500.0000001", "-5", "sv-SE", "a\u2028b", "a\tb", "0", "-0"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6)


def paths(value: Any, at: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield at
    if isinstance(value, dict):
        for name, member in value.items():
            yield from paths(member, (*at, name))
    elif isinstance(value, list):
        for index, member in enumerate(value):
            yield from paths(member, (*at, index))


def at_path(body: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        body = body[step]
    return body


#: A sample of each schema: the message bodies, and the consent record and summary of the handover.
SCHEMA_SAMPLES = {**SAMPLES, "signed consent record": SAMPLES["handover"]["consent"],
                  "consent record": {name: value for name, value in SAMPLES["handover"]["consent"].items()
                                     if name != "signatures"},
                  "summary": SAMPLES["handover"]["summary"]}


@st.composite
def mutated(draw: st.DrawFn) -> tuple[str, Any]:
    msg_type = draw(st.sampled_from(sorted(REFERENCE)))
    body = copy.deepcopy(SCHEMA_SAMPLES[msg_type])
    for _ in range(draw(st.integers(0, 3))):
        path = draw(st.sampled_from(list(paths(body))))
        if not path:
            if draw(st.integers(0, 9)) == 0:
                body = draw(json_values)
            continue
        parent, step = at_path(body, path[:-1]), path[-1]
        action = draw(st.sampled_from(["replace", "donor", "delete", "add", "duplicate", "empty"]))
        if action == "replace":
            parent[step] = draw(json_values)
        elif action == "donor":
            parent[step] = json.loads(draw(st.sampled_from(DONORS)))
        elif action == "delete":
            del parent[step]
        elif action == "add" and isinstance(parent, dict):
            parent[draw(st.sampled_from([*sorted(parent), "from", "from_", "extra"]))] = draw(json_values)
        elif action == "duplicate" and isinstance(parent, list):
            parent.append(copy.deepcopy(parent[step]))
        elif action == "empty" and isinstance(parent[step], (list, dict)):
            parent[step] = type(parent[step])()
    return msg_type, body


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_sample_bodies(case: tuple[str, Any]) -> None:
    check_agrees(*case)


@pytest.mark.parametrize("msg_type", sorted(REFERENCE))
def test_the_samples_are_accepted_fast(msg_type: str) -> None:
    assert check_agrees(msg_type, SCHEMA_SAMPLES[msg_type]) == "valid"
    assert fast_decision(msg_type, SCHEMA_SAMPLES[msg_type])[0] == "valid"


# --- what is not mirrored stays the schema's alone ------------------------------------------------


def test_what_is_not_mirrored_is_not_compiled() -> None:
    class WithPostLoad(StrictSchema):
        text = Text()

        @post_load
        def _changed(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
            return {**data, "added": True}

    class WithDefault(StrictSchema):
        text = Text(load_default="filled in")

    class WithFloat(StrictSchema):
        amount = fields.Float()

    for schema in (WithPostLoad(), WithDefault(), WithFloat()):
        assert compile_schema(schema) is None
        with pytest.raises(NotCompilable):
            schema_acceptor(schema)
    with pytest.raises(NotCompilable):
        field_acceptor(fields.Integer())  # not strict: marshmallow converts "3" to 3


def test_an_acceptor_refuses_rather_than_guesses() -> None:
    accept = _ACCEPTORS["case_closed"]
    assert accept is not None
    body = copy.deepcopy(SAMPLES["case_closed"])
    with pytest.raises(Refused):
        accept({**body, "unknown": 1})
    with pytest.raises(Refused):
        accept({name: value for name, value in body.items() if name != "closed_at"})
    with pytest.raises(ValidationError):  # the field's own check
        accept({**body, "closed_at": "2026-02-30T10:00:00Z"})
