"""Property tests of the inbox over HTTP: an envelope with any header member replaced by any JSON value
(signed again or not), or any bytes at all, is refused with a protocol error, never a 500, and nothing is
stored or audited. SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from node.audit import AuditEntry
from node.exchange.models import InboundMessage
from protocol import ProtocolError, b64encode, canonical_bytes, strict_loads
from tests.exchange.conftest import Node
from tests.exchange.test_inbox import sealed
from tests.json_strategies import JSON

pytestmark = pytest.mark.usefixtures("no_domain_appliers")

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
