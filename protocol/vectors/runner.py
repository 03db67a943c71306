"""Recompute a test vector from its input: the one interpreter used by ``generate.py``, the CLI and the tests.

Each vector file is ``{"description", "kind", "vectors": [...]}`` and each vector is
``{"description", "input", "expected"}`` or ``{"description", "input", "error"}`` (a ``ProtocolError`` code).
``compute(kind, input)`` returns ``("expected", value)`` or ``("error", code)``; a vector passes when that
equals what the file records. Binary values are unpadded base64url, except in the RFC files, which keep the
RFCs' hex. Keys come from 32-byte seeds with ``NodeKeys.from_seed``; cards from ``party_card`` below.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import nacl.public
import nacl.signing

from ..bundle import BUNDLE, MAX_BUNDLE_BYTES, open_bundle, seal_bundle, seal_receipts
from ..canonical import b64decode, b64encode, canonical_bytes, reference_canonical_bytes, strict_loads
from ..cards import (
    NodeCard,
    check_key_rotated,
    make_card,
    make_revocation,
    parse_revocation_batch,
    verify_card,
    verify_revocation,
    verify_rotation,
)
from ..chain import message_hash, verify_chain
from ..consent import check_forward, check_handover
from ..envelope import Envelope, sig_member
from ..errors import MalformedError, ProtocolError
from ..keys import NodeKeys
from ..messages import enumerations
from ..receipts import make_receipt, verify_receipt
from ..resync import ResyncRequest, make_answer, make_request, verify_answer, verify_request
from ..seal import OpenedMessage, PartnerView, open_envelope, seal
from ..signing import sign_json, signing_input, verify_signed_json
from ..times import format_time, parse_time

VECTOR_DIR = Path(__file__).resolve().parent
CARD_VALID_FROM = "2026-01-01T00:00:00Z"
CARD_VALID_UNTIL = "2028-01-01T00:00:00Z"
Outcome = tuple[str, Any]


def party_keys(party: dict[str, Any]) -> NodeKeys:
    """``{"node_id", "seed"}`` → the deterministic keys."""
    return NodeKeys.from_seed(party["node_id"], b64decode(party["seed"], length=32))


def party_card(party: dict[str, Any]) -> NodeCard:
    """The vector world's card of a party: name = node id, base URL ``https://<node id>.example``, valid
    2026-01-01 to 2028-01-01 (``CARD_VALID_FROM`` / ``CARD_VALID_UNTIL``)."""
    keys = party_keys(party)
    return make_card(keys, name=keys.node_id, base_url=f"https://{keys.node_id}.example",
                     valid_from=parse_time(CARD_VALID_FROM), valid_until=parse_time(CARD_VALID_UNTIL))


class StaticDirectory:
    """A ``Directory`` over fixed cards and revoked key ids; ``previous`` adds a partner's previous cards, each
    accepted until the end of its rotation overlap (SPEC 3.2)."""

    def __init__(self, cards: list[NodeCard], revoked: frozenset[str] = frozenset(),
                 previous: Sequence[tuple[NodeCard, datetime]] = ()) -> None:
        grouped: dict[str, list[NodeCard]] = {}
        until: dict[str, dict[str, datetime]] = {}
        for card in cards:
            grouped.setdefault(card.node_id, []).append(card)
        for card, end in previous:
            grouped.setdefault(card.node_id, []).append(card)
            until.setdefault(card.node_id, {}).update({card.skid: end, card.ekid: end})
        self._views = {node: replace(PartnerView.from_cards(group, revoked), accepted_until=until.get(node, {}))
                       for node, group in grouped.items()}

    def partner(self, node_id: str) -> PartnerView | None:
        return self._views.get(node_id)


class StaticHistory:
    """A ``History`` over fixed seen ids and chain heads."""

    def __init__(self, seen: list[list[str]], heads: list[list[str]]) -> None:
        self._seen = {(s, i) for s, i in seen}
        self._heads = {(s, t): h for s, t, h in heads}

    def seen(self, sender: str, message_id: str) -> bool:
        return (sender, message_id) in self._seen

    def chain_head(self, sender: str, thread: str) -> str | None:
        return self._heads.get((sender, thread))


def _text(data: bytes) -> str:
    return data.decode("utf-8")


def _rfc8032(inp: dict[str, Any]) -> Any:
    key = nacl.signing.SigningKey(bytes.fromhex(inp["secret_key"]))
    message = bytes.fromhex(inp["message"])
    signature = key.sign(message).signature
    key.verify_key.verify(message, signature)
    return {"public_key": bytes(key.verify_key).hex(), "signature": signature.hex()}


def _rfc8785(inp: dict[str, Any]) -> Any:
    if "ieee754" in inp:
        value = struct.unpack(">d", bytes.fromhex(inp["ieee754"]))[0]
        return _text(reference_canonical_bytes(value))
    return _text(canonical_bytes(strict_loads(inp["json"])))


def _canonical(inp: dict[str, Any]) -> Any:
    data = b64decode(inp["json_b64"]) if "json_b64" in inp else inp["json"].encode("utf-8")
    return _text(canonical_bytes(strict_loads(data)))


def _keys(inp: dict[str, Any]) -> Any:
    keys = party_keys(inp)
    return {"signing_public": b64encode(keys.signing_public),
            "encryption_public": b64encode(keys.encryption_public), "signing_kid": keys.skid,
            "encryption_kid": keys.ekid, "fingerprint": keys.fingerprint()}


def _signatures(inp: dict[str, Any]) -> Any:
    keys = party_keys(inp["signer"])
    if inp["op"] == "sign":
        return {"signing_input": _text(signing_input(inp["object"])),
                "signed": sign_json(inp["object"], keys.node_id, keys.signing_key)}
    verify_signed_json(inp["object"], keys.node_id, keys.signing_key.verify_key)
    return {"valid": True}


def _cards(inp: dict[str, Any]) -> Any:
    op = inp["op"]
    if op == "make":
        keys = party_keys(inp["party"])
        previous = party_keys(inp["previous"]) if inp.get("previous") else None
        card = make_card(keys, name=inp["name"], base_url=inp["base_url"],
                         valid_from=parse_time(inp["valid_from"]), valid_until=parse_time(inp["valid_until"]),
                         previous=previous)
        return {"card": card.to_json(), "fingerprint": card.fingerprint()}
    if op == "verify":
        verify_card(NodeCard.from_json(inp["card"]), parse_time(inp["now"]), revoked=frozenset(inp.get("revoked", [])))
    elif op == "rotate":
        verify_rotation(NodeCard.from_json(inp["old_card"]), NodeCard.from_json(inp["new_card"]),
                        parse_time(inp["now"]))
    elif op == "key_rotated":
        card = check_key_rotated(inp["body"], inp["skid"], NodeCard.from_json(inp["held"]), parse_time(inp["now"]),
                                 revoked=frozenset(inp.get("revoked", [])))
        return {"card": card.to_json()}
    elif op == "revocation_batch":
        statements = parse_revocation_batch(b64decode(inp["batch_b64"]) if "batch_b64" in inp
                                            else inp["batch"].encode("utf-8"))
        return {"node_id": statements[0]["node_id"], "count": len(statements)}
    elif op == "revoke":
        keys = party_keys(inp["party"])
        statement = make_revocation(keys, inp["kid"], revoked_at=parse_time(inp["now"]), reason=inp["reason"])
        revocation = verify_revocation(statement, party_card(inp["party"]))
        return {"statement": statement, "kid": revocation.kid}
    else:
        revocation = verify_revocation(inp["statement"], NodeCard.from_json(inp["card"]))
        return {"kid": revocation.kid}
    return {"valid": True}


def _seal(inp: dict[str, Any]) -> Any:
    sender, recipient = party_keys(inp["sender"]), party_card(inp["recipient"])
    sealed = seal(keys=sender, recipient=recipient, msg_type=inp["type"], body=inp["body"],
                  thread=inp["thread"], now=parse_time(inp["now"]), prev=inp["prev"],
                  agreement=inp["agreement"], ttl=timedelta(seconds=inp["ttl_seconds"]),
                  message_id=inp["message_id"], nonce=b64decode(inp["nonce"], length=24),
                  validate=inp.get("validate", True))
    return {"inner": _text(sealed.inner_bytes), "message_hash": sealed.message_hash,
            "envelope": _text(sealed.data)}


def reseal(envelope: str, sender: dict[str, Any], recipient: dict[str, Any],
           change: Callable[[bytes], bytes]) -> bytes:
    """``envelope`` with its inner document replaced by ``change(inner)``: encrypted again to ``recipient`` with
    the same nonce and signed again by ``sender`` (so a refusal comes from the inner checks, SPEC 6.1 12-14)."""
    keys, card = party_keys(sender), party_card(recipient)
    doc = strict_loads(envelope)
    header = Envelope.from_json(doc).header
    opened = open_envelope(envelope.encode("utf-8"), keys=party_keys(recipient),
                           directory=StaticDirectory([party_card(sender)]), history=StaticHistory([], []),
                           now=header.created)
    nonce = b64decode(doc["nonce"], length=24)
    ct = nacl.public.Box(keys.encryption_key, nacl.public.PublicKey(card.encryption_key)).encrypt(
        change(opened.inner_bytes), nonce).ciphertext
    head, tail = Envelope(header, keys.skid, keys.ekid, card.ekid, nonce, ct, b"").canonical_parts()
    return b"".join((head, sig_member(keys.signing_key.sign(head + tail).signature), tail))


def _envelope_bytes(inp: dict[str, Any]) -> bytes:
    if "inner_pad_to" in inp:  # a valid envelope whose inner document is padded with spaces to that size
        size = inp["inner_pad_to"]
        return reseal(inp["envelope"], inp["sender"], inp["receiver"],
                      lambda inner: inner + b" " * max(0, size - len(inner)))
    return b64decode(inp["envelope_b64"]) if "envelope_b64" in inp else inp["envelope"].encode("utf-8")


def _open(inp: dict[str, Any]) -> tuple[OpenedMessage, datetime]:
    data = _envelope_bytes(inp)
    data += b" " * max(0, inp.get("pad_to", 0) - len(data))
    receiver = party_keys(inp["receiver"])
    previous = [(party_card(p["party"]), parse_time(p["accepted_until"])) for p in inp.get("previous_partners", [])]
    directory = StaticDirectory([party_card(p) for p in inp["partners"]], frozenset(inp.get("revoked", [])),
                                previous)
    history = StaticHistory(inp.get("seen", []), inp.get("chain_heads", []))
    now = parse_time(inp["now"])
    retired = [party_keys(p) for p in inp.get("retired_keys", [])]
    return open_envelope(data, keys=receiver, directory=directory, history=history, now=now,
                         retired_keys=retired), now


def _opened(inp: dict[str, Any]) -> Any:
    opened, now = _open(inp)
    if "consent_origin" in inp:
        origin = party_keys(inp["consent_origin"])
        check_handover(opened.body, opened.header.recipient, now, origin.signing_key.verify_key,
                       sender=opened.header.sender)
    return {"id": opened.header.id, "type": opened.header.type, "from": opened.header.sender,
            "thread": opened.header.thread, "prev": opened.prev, "agreement": opened.agreement,
            "body": opened.body, "message_hash": opened.message_hash}


def _chain(inp: dict[str, Any]) -> Any:
    messages = [m.encode("utf-8") for m in inp["messages"]]
    verify_chain(messages)
    return {"hashes": [message_hash(m) for m in messages]}


def _receipts(inp: dict[str, Any]) -> Any:
    if inp["op"] == "make":
        opened, _ = _open(inp)
        receipt = make_receipt(party_keys(inp["receiver"]), opened, parse_time(inp["received_at"]))
        return {"receipt": receipt}
    verified = verify_receipt(inp["receipt"], party_card(inp["receiver"]), sender=inp.get("sender"),
                              message_id=inp.get("message_id"), content_hash=inp.get("content_hash"))
    return {"message_id": verified.message_id, "received_at": format_time(verified.received_at)}


def _bundle(inp: dict[str, Any]) -> Any:
    """SPEC 16: ``seal`` a bundle (``kind`` ``ccm_bundle`` of envelopes or ``ccm_receipts`` of receipts) or
    ``open`` one (steps 1-10 of 16.4)."""
    if inp["op"] == "seal":
        sender, recipient = party_keys(inp["sender"]), party_card(inp["recipient"])
        now, nonce = parse_time(inp["now"]), b64decode(inp["nonce"], length=24)
        if inp["kind"] == BUNDLE:
            data = seal_bundle(keys=sender, recipient=recipient, now=now, nonce=nonce,
                               envelopes=[e.encode("utf-8") for e in inp["items"]])
        else:
            data = seal_receipts(keys=sender, recipient=recipient, receipts=inp["items"], now=now, nonce=nonce)
        return {"bundle": _text(data)}
    directory = StaticDirectory([party_card(p) for p in inp["partners"]], frozenset(inp.get("revoked", [])))
    data = inp["bundle"].encode("utf-8")
    data += b" " * max(0, inp.get("pad_to", 0) - len(data))
    opened = open_bundle(data, keys=party_keys(inp["receiver"]), directory=directory, now=parse_time(inp["now"]),
                         max_bytes=inp.get("max_bytes", MAX_BUNDLE_BYTES))
    items: list[Any] = [_text(e) for e in opened.envelopes] if opened.kind == BUNDLE else list(opened.receipts)
    return {"kind": opened.kind, "from": opened.sender, "to": opened.recipient,
            "created_at": format_time(opened.created_at), "items": items}


def _forward(inp: dict[str, Any]) -> Any:
    """SPEC 9.8: ``check_forward`` of a forward body at ``recipient``, sent by ``sender``; ``keys`` are the
    parties whose signing keys the receiver holds (the origin and every holder on the chain)."""
    verify_keys = {p["node_id"]: party_keys(p).signing_key.verify_key for p in inp["keys"]}
    check_forward(inp["body"], inp["recipient"], inp["sender"], parse_time(inp["now"]), verify_keys,
                  withdrawals=inp.get("withdrawals", []))
    return {"valid": True}


def _consent(inp: dict[str, Any]) -> Any:
    """SPEC 9.5 (and 9.7): ``check_handover`` of a handover body at ``recipient``, sent by ``sender``."""
    check_handover(inp["body"], inp["recipient"], parse_time(inp["now"]),
                   party_keys(inp["origin"]).signing_key.verify_key, sender=inp["sender"],
                   withdrawals=inp.get("withdrawals", []))
    return {"valid": True}


def _request_of(doc: dict[str, Any]) -> ResyncRequest:
    """The request a requester sent, read from its own document (as it holds it: not verified again)."""
    return ResyncRequest(doc["id"], doc["from"], doc["to"], parse_time(doc["created"]), parse_time(doc["since"]),
                         doc["after"])


def _padded_answer(inp: dict[str, Any]) -> dict[str, Any]:
    """The answer, or with ``pad_received_to`` its last entry repeated until ``received`` has that many entries
    and the whole signed again by ``responder`` (an over-long page without 501 entries in the file)."""
    answer: dict[str, Any] = inp["answer"]
    size = inp.get("pad_received_to")
    if size is None:
        return answer
    received = list(answer["received"])
    received += [received[-1]] * max(0, size - len(received))
    unsigned = {k: v for k, v in answer.items() if k != "signatures"}
    keys = party_keys(inp["responder"])
    return sign_json({**unsigned, "received": received}, keys.node_id, keys.signing_key)


def _resync(inp: dict[str, Any]) -> Any:
    """SPEC 7a: ``make_request``, ``verify_request`` (at the responder), ``make_answer``, ``verify_answer`` (at
    the requester, against the request document it sent)."""
    op = inp["op"]
    if op == "make_request":
        doc = make_request(party_keys(inp["requester"]), inp["responder"], since=parse_time(inp["since"]),
                           now=parse_time(inp["now"]), after=inp["after"], request_id=inp["request_id"])
        return {"request": doc}
    if op == "verify_request":
        request = verify_request(inp["request"], party_card(inp["requester"]), responder=inp["responder"],
                                 now=parse_time(inp["now"]))
        return {"id": request.id, "from": request.requester, "to": request.responder,
                "created": format_time(request.created), "since": format_time(request.since),
                "after": request.after}
    if op == "make_answer":
        doc = make_answer(party_keys(inp["responder"]), _request_of(inp["request"]), requeued=inp["requeued"],
                          received=inp["received"], next_after=inp["next"], now=parse_time(inp["now"]))
        return {"answer": doc}
    answer = verify_answer(_padded_answer(inp), party_card(inp["responder"]), request=_request_of(inp["request"]),
                           now=parse_time(inp["now"]))
    return {"request": answer.request, "from": answer.responder, "to": answer.requester,
            "created": format_time(answer.created), "requeued": answer.requeued, "next": answer.next,
            "received": [{"thread": e.thread, "id": e.message_id, "type": e.type, "prev": e.prev,
                          "message_hash": e.message_hash, "received_at": format_time(e.received_at)}
                         for e in answer.received]}


def _fields(inp: dict[str, Any]) -> Any:
    if inp["op"] == "base64url":
        return {"hex": b64decode(inp["value"]).hex()}
    return {"time": format_time(parse_time(inp["value"]))}


def _value_sets(inp: dict[str, Any]) -> Any:
    sets = enumerations()
    if inp["set"] not in sets:
        raise MalformedError(f"no value set {inp['set']!r}")
    return {"values": list(sets[inp["set"]])}


KINDS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "rfc8032": _rfc8032, "rfc8785": _rfc8785, "canonical": _canonical, "keys": _keys,
    "signatures": _signatures, "cards": _cards, "seal": _seal, "open": _opened, "chain": _chain,
    "receipts": _receipts, "value_sets": _value_sets, "fields": _fields,
    "consent": _consent, "bundle": _bundle, "forward": _forward, "resync": _resync,
}


def compute(kind: str, inp: dict[str, Any]) -> Outcome:
    """Run one vector's input through the library.

    Returns:
        ``("expected", value)`` on success or ``("error", code)`` for a ``ProtocolError``.
    """
    try:
        return "expected", KINDS[kind](inp)
    except ProtocolError as exc:
        return "error", exc.code


def recorded(vector: dict[str, Any]) -> Outcome:
    """What a vector records: ``("expected", value)`` or ``("error", code)``."""
    return ("error", vector["error"]) if "error" in vector else ("expected", vector["expected"])


def load_files(directory: Path = VECTOR_DIR) -> dict[str, dict[str, Any]]:
    """Every vector file in ``directory`` (``*.json`` except ``sample_bodies.json``), by file name."""
    return {p.name: json.loads(p.read_text("utf-8")) for p in sorted(directory.glob("*.json"))
            if p.name != "sample_bodies.json"}


def check_all(directory: Path = VECTOR_DIR) -> list[str]:
    """Recompute every vector; return one line per mismatch (empty when all pass)."""
    problems = []
    for name, doc in load_files(directory).items():
        for index, vector in enumerate(doc["vectors"]):
            got = compute(doc["kind"], vector["input"])
            if got != recorded(vector):
                problems.append(f"{name}[{index}] {vector['description']}: got {got[0]} {str(got[1])[:80]}")
    return problems
