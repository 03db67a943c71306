"""Property tests of the federation endpoints over HTTP: an envelope, or a revocation statement, with any
member replaced by any JSON value (signed again or not), or any bytes at all, is refused with a protocol
error, never a 500, and nothing is stored, audited or changed. SQLite and PostgreSQL."""

from __future__ import annotations

import copy
import json
import uuid
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from node.audit import AuditEntry
from node.exchange.models import InboundMessage
from protocol import ProtocolError, b64encode, canonical_bytes, make_revocation, strict_loads
from protocol.signing import sign_json
from tests.exchange.conftest import Node, samples, thread_id
from tests.exchange.test_inbox import sealed
from tests.json_strategies import JSON

SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
MEMBERS = ["v", "id", "type", "from", "to", "created", "expires", "thread", "skid", "ekid", "nonce", "ct", "agr",
           "prev", "sig"]


def refused(node: Node, data: bytes) -> None:
    stored = node.count(InboundMessage), node.count(AuditEntry)
    response = node.post_inbox(data)
    assert 400 <= response.status_code < 500, response.data
    assert response.mimetype == "application/problem+json" and set(response.get_json()) == {
        "type", "title", "status", "code"}
    assert (node.count(InboundMessage), node.count(AuditEntry)) == stored


@SETTINGS
@example(member="from", value="se.gi-goteborg\x00", resign=True)  # a NUL must not reach PostgreSQL
@example(member="id", value="\x00", resign=True)
@example(member="thread", value="\x00" * 22, resign=True)
@given(member=st.sampled_from(MEMBERS), value=JSON, resign=st.booleans())
def test_any_member_replaced_by_any_value_is_refused(paired: tuple[Node, Node], member: str, value: object,
                                                     resign: bool) -> None:
    gbg, sarajevo = paired
    doc = strict_loads(sealed(gbg, sarajevo))
    if doc.get(member) == value or (member == "sig" and resign):  # unchanged, or a valid envelope again
        return
    doc[member] = value
    try:
        if resign:
            unsigned = {k: v for k, v in doc.items() if k != "sig"}
            doc["sig"] = b64encode(gbg.identity.keys.signing_key.sign(canonical_bytes(unsigned)).signature)
        data = canonical_bytes(doc)
    except ProtocolError:  # no canonical form (a float, a lone surrogate): sent as the JSON library writes it
        data = json.dumps(doc).encode("utf-8")
    refused(sarajevo, data)


@SETTINGS
@given(data=st.binary(max_size=300))
def test_any_bytes_are_refused(paired: tuple[Node, Node], data: bytes) -> None:
    refused(paired[1], data)


REVOCATION_MEMBERS = ["v", "node", "kid", "revoked_at", "reason", "signatures"]


@SETTINGS
@example(member="node", value="se.gi-goteborg\x00", resign=True, garbage=None)
@example(member="kid", value="\x00", resign=True, garbage=None)
@given(member=st.sampled_from(REVOCATION_MEMBERS), value=JSON, resign=st.booleans(),
       garbage=st.one_of(st.none(), st.binary(max_size=200)))
def test_any_revocation_statement_but_a_valid_one_is_refused(paired: tuple[Node, Node], member: str,
                                                             value: object, resign: bool,
                                                             garbage: bytes | None) -> None:
    gbg, sarajevo = paired
    keys = gbg.identity.keys
    statement = make_revocation(keys, keys.skid, revoked_at=gbg.clock.now(), reason="compromised")
    if statement.get(member) == value or (member == "signatures" and resign):
        return
    statement[member] = value
    try:
        if resign:
            unsigned = {k: v for k, v in statement.items() if k != "signatures"}
            statement = sign_json(unsigned, gbg.node_id, keys.signing_key)
        data = canonical_bytes([statement])
    except (ProtocolError, TypeError, ValueError):
        data = json.dumps([statement], default=str).encode("utf-8")
    before = sarajevo.partner(gbg.node_id).status, sarajevo.count(AuditEntry)
    response = sarajevo.client.post("/federation/v1/revocation", data=garbage if garbage is not None else data,
                                    content_type="application/json")
    assert 400 <= response.status_code < 500, response.data
    assert (sarajevo.partner(gbg.node_id).status, sarajevo.count(AuditEntry)) == before


def _paths(value: object, prefix: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    """Every member and item of a JSON value, as paths (the value itself included)."""
    found: list[tuple[str | int, ...]] = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    return found


def _replaced(value: Any, path: tuple[str | int, ...], new: object) -> Any:
    if not path:
        return new
    copied = copy.deepcopy(value)
    target = copied
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = new
    return copied


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(msg_type=st.sampled_from(sorted(set(samples()) - {"receipt"})), pick=st.integers(0, 10_000), value=JSON,
       drop=st.booleans())
def test_a_partner_sealing_any_body_gets_an_answer_never_a_500(paired: tuple[Node, Node], msg_type: str,
                                                                pick: int, value: object, drop: bool) -> None:
    """A trusted partner's valid envelope around a body changed anywhere (a value replaced or a member left
    out): the schema, the consent rules or the domain appliers refuse it, or it is taken; never a 500."""
    gbg, sarajevo = paired
    body = samples()[msg_type]
    paths = _paths(body)[1:]
    path = paths[pick % len(paths)]
    if drop and isinstance(path[-1], str):
        changed = copy.deepcopy(body)
        parent = changed
        for step in path[:-1]:
            parent = parent[step]
        del parent[path[-1]]
    else:
        changed = _replaced(body, path, value)
    try:
        data = sealed(gbg, sarajevo, msg_type=msg_type, body=changed, validate=False,
                      thread=thread_id(f"fuzz-{uuid.uuid4()}"))
    except ProtocolError:  # no canonical form: the partner could not seal it either
        return
    before = sarajevo.count(InboundMessage)
    response = sarajevo.post_inbox(data)
    assert response.status_code < 500, response.data
    assert sarajevo.count(InboundMessage) == before + (response.status_code == 200)
