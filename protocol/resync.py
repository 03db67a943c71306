"""Resynchronisation after a restore: a signed request and a signed, paged answer (SPEC.md section 7a).

A node restored from a backup has forgotten what it exchanged with each partner after the backup was taken:
messages it received (the partner holds them as delivered) and messages it sent (the partner holds them; our
chain head is behind, so our next message would be refused ``broken_chain``). The restored node (the
*requester*) asks each partner (the *responder*) with a ``resync_request``: "send again what you delivered to
me since ``since``, and tell me what you received from me since then". The responder queues its messages
again (the same envelopes, byte for byte: the requester's inbox answers those it holds with the receipt it
stored, and applies the others once) and answers with a ``resync_answer``: one page of the messages it
received from the requester, each with the receipt it signed at the time, and a cursor for the next page.

Both documents are plain JSON signed with ``sign_json`` (no personal data: ids, hashes, times, types). Neither
is a message: they travel outside the chain, over ``POST /federation/v1/resync``, so that a node whose chains
are out of step can still be heard.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import nacl.exceptions
from marshmallow import ValidationError
from marshmallow import fields as mm_fields

from .canonical import b64encode, loads_canonical
from .cards import NodeCard
from .envelope import CLOCK_SKEW, ENVELOPE_VERSION, Envelope, parse_inner
from .errors import (
    BadSignatureError,
    DecryptionError,
    ExpiredError,
    MalformedError,
    NotYetValidError,
    SchemaError,
    UnknownKeyError,
    UnsupportedVersionError,
    WrongRecipientError,
)
from .fields import Enum, StrictSchema, Time, bounded_list, content_hash, integer, message_id, node_id, signatures
from .keys import NodeKeys
from .messages import MESSAGE_TYPES, ReceiptSchema
from .receipts import Receipt, verify_receipt
from .seal import BoxCache, SealedMessage, seal
from .signing import sign_json, signature_ids, verify_signed_json
from .times import format_time, parse_time, require_aware

REQUEST_TYPE = "resync_request"
ANSWER_TYPE = "resync_answer"
#: The most received messages one answer lists (the requester asks again with ``after`` for the rest).
PAGE_SIZE = 500
#: How far back a request may reach (the longest a message can live: its largest lifetime).
MAX_LOOKBACK = timedelta(days=90)
#: The largest request and answer, in bytes (a page of 500 entries with their receipts is about 400 KiB).
MAX_REQUEST_BYTES = 16_384
MAX_ANSWER_BYTES = 2_097_152
#: The largest cursor (the largest integer strict JSON carries exactly).
MAX_CURSOR = 2**53 - 1


class _RequestSchema(StrictSchema):
    v = integer(1, 1, required=True)
    type = Enum((REQUEST_TYPE,), required=True)
    id = message_id(required=True)
    from_ = node_id(data_key="from", attribute="from", required=True)
    to = node_id(required=True)
    created = Time(required=True)
    since = Time(required=True)
    after = integer(0, MAX_CURSOR, required=True, allow_none=True)
    signatures = signatures(required=True)


class _EntrySchema(StrictSchema):
    thread = message_id(required=True)
    id = message_id(required=True)
    type = Enum(tuple(sorted(MESSAGE_TYPES)), required=True)
    prev = content_hash(required=True, allow_none=True)
    message_hash = content_hash(required=True)
    receipt = mm_fields.Nested(ReceiptSchema, required=True)


class _AnswerSchema(StrictSchema):
    v = integer(1, 1, required=True)
    type = Enum((ANSWER_TYPE,), required=True)
    request = message_id(required=True)
    from_ = node_id(data_key="from", attribute="from", required=True)
    to = node_id(required=True)
    created = Time(required=True)
    requeued = integer(0, MAX_CURSOR, required=True)
    received = bounded_list(mm_fields.Nested(_EntrySchema), PAGE_SIZE, required=True)
    next = integer(0, MAX_CURSOR, required=True, allow_none=True)
    signatures = signatures(required=True)


_REQUEST = _RequestSchema()
_ANSWER = _AnswerSchema()


@dataclass(frozen=True)
class ResyncRequest:
    """A verified request: ``requester`` asks ``responder`` for what passed between them since ``since``."""

    id: str
    requester: str
    responder: str
    created: datetime
    since: datetime
    after: int | None


@dataclass(frozen=True)
class ReceivedEntry:
    """One message the responder received from the requester, with the receipt it signed for it."""

    thread: str
    message_id: str
    type: str
    prev: str | None
    message_hash: str
    receipt: dict[str, Any]
    received_at: datetime


@dataclass(frozen=True)
class ResyncAnswer:
    """A verified answer page."""

    request: str
    responder: str
    requester: str
    created: datetime
    requeued: int
    received: list[ReceivedEntry]
    next: int | None


def _load(schema: StrictSchema, doc: object, what: str) -> dict[str, Any]:
    if not isinstance(doc, Mapping):
        raise MalformedError(f"{what} must be an object")
    if doc.get("v") != ENVELOPE_VERSION and type(doc.get("v")) is int:  # a bool is not an integer (SPEC 11)
        raise UnsupportedVersionError(f"{what}: unsupported version")
    try:
        loaded: dict[str, Any] = schema.load(doc)
    except ValidationError as exc:
        messages = exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages}
        raise SchemaError(f"{what} does not match its schema", errors=messages) from None
    return loaded


def _check_time(created: datetime, now: datetime) -> None:
    if created > now + CLOCK_SKEW:
        raise NotYetValidError("created in the future")
    if created < now - CLOCK_SKEW:
        raise ExpiredError("created too long ago")


def make_request(keys: NodeKeys, responder: str, *, since: datetime, now: datetime, after: int | None = None,
                 request_id: str | None = None) -> dict[str, Any]:
    """Sign a request to ``responder`` for what passed between the two nodes since ``since``.

    Args:
        keys: the requester's keys.
        responder: the partner's node id.
        since: the earliest time asked about (aware; cut to whole seconds), at most 90 days before ``now``.
        now: the current time (aware).
        after: the cursor of the previous answer's ``next`` (None for the first page).
        request_id: fixed id (vectors only); default 128 random bits.
    Raises:
        MalformedError: ``since`` after ``now`` or more than 90 days before it.
    """
    require_aware(now)
    require_aware(since)
    if since > now or since < now - MAX_LOOKBACK:
        raise MalformedError("since must lie within the 90 days before now")
    doc = {
        "v": ENVELOPE_VERSION, "type": REQUEST_TYPE, "id": request_id or b64encode(os.urandom(16)),
        "from": keys.node_id, "to": responder, "created": format_time(now), "since": format_time(since),
        "after": after,
    }
    return sign_json(doc, keys.node_id, keys.signing_key)


def verify_request(doc: object, requester_card: NodeCard, *, responder: str, now: datetime) -> ResyncRequest:
    """Verify a request received by ``responder`` from the partner whose card is given.

    Checks, in order: shape (``SchemaError``); ``to`` is ``responder`` (``WrongRecipientError``); ``from`` is
    the card's node and the signature is its key's (``BadSignatureError``); ``created`` within 300 s of ``now``
    (``NotYetValidError`` / ``ExpiredError``); ``since`` not after ``created`` nor more than 90 days before it
    (``MalformedError``).
    """
    require_aware(now)
    loaded = _load(_REQUEST, doc, "resync request")
    if loaded["to"] != responder:
        raise WrongRecipientError("resync request not addressed to this node")
    if loaded["from"] != requester_card.node_id:
        raise BadSignatureError("resync request not from that partner")
    verify_signed_json(doc, requester_card.node_id, requester_card.verify_key)  # type: ignore[arg-type]
    created, since = parse_time(loaded["created"]), parse_time(loaded["since"])
    _check_time(created, now)
    if since > created or since < created - MAX_LOOKBACK:
        raise MalformedError("since must lie within the 90 days before created")
    return ResyncRequest(loaded["id"], loaded["from"], loaded["to"], created, since, loaded["after"])


def make_answer(keys: NodeKeys, request: ResyncRequest, *, requeued: int, received: Sequence[Mapping[str, Any]],
                next_after: int | None, now: datetime) -> dict[str, Any]:
    """Sign one answer page to a verified request.

    Args:
        keys: the responder's keys.
        request: the request answered.
        requeued: how many messages the responder queued again for the requester (0 on later pages).
        received: at most ``PAGE_SIZE`` entries ``{thread, id, type, prev, message_hash, receipt}``, in the order
            the responder received them, ``receipt`` the parsed receipt it signed then.
        next_after: the cursor to ask for the next page with, None on the last page.
        now: the current time.
    Raises:
        MalformedError: more than ``PAGE_SIZE`` entries, or a request to another node.
    """
    require_aware(now)
    if request.responder != keys.node_id:
        raise MalformedError("cannot answer a request addressed to another node")
    if len(received) > PAGE_SIZE:
        raise MalformedError("too many entries for one page")
    doc = {
        "v": ENVELOPE_VERSION, "type": ANSWER_TYPE, "request": request.id, "from": keys.node_id,
        "to": request.requester, "created": format_time(now), "requeued": requeued,
        "received": [dict(entry) for entry in received], "next": next_after,
    }
    return sign_json(doc, keys.node_id, keys.signing_key)


def _check_entry(entry: Mapping[str, Any], responder_card: NodeCard, requester: str) -> Receipt:
    receipt = entry["receipt"]
    expect = {"sender": requester, "message_id": entry["id"], "content_hash": entry["message_hash"]}
    if responder_card.skid in signature_ids(receipt, responder_card.node_id):
        return verify_receipt(receipt, responder_card, **expect)
    # Signed by one of the responder's earlier keys: vouched for by the answer's signature (checked before),
    # the members must still name this message.
    if receipt["to"] != responder_card.node_id or receipt["from"] != requester or \
            receipt["message_id"] != entry["id"] or receipt["content_hash"] != entry["message_hash"]:
        raise MalformedError("receipt does not acknowledge the listed message")
    if not signature_ids(receipt, responder_card.node_id):
        raise BadSignatureError("receipt not signed by the responder")
    return Receipt(receipt["message_id"], receipt["content_hash"], parse_time(receipt["received_at"]),
                   receipt["from"], receipt["to"])


def verify_answer(doc: object, responder_card: NodeCard, *, request: ResyncRequest, now: datetime) -> ResyncAnswer:
    """Verify an answer to a request this node sent (the requester's side).

    Checks, in order: shape; ``request`` is the request's id, ``from`` its responder and ``to`` its requester
    (``MalformedError``); the signature by the responder's card (``BadSignatureError``); ``created`` within 300 s
    of ``now``; ``next``, if not None, is greater than the request's ``after`` (``MalformedError``: a page must
    advance); every entry's receipt acknowledges that entry's message, from the requester, and is signed by
    the responder (by its current key, or by an earlier one under the answer's signature); within a thread,
    each entry's ``prev`` is the previous entry's ``message_hash`` (``ChainError`` is not raised: a page may
    start in the middle of a thread, so only links between entries of the page are checked, as
    ``MalformedError``); no message id twice.
    """
    require_aware(now)
    loaded = _load(_ANSWER, doc, "resync answer")
    if loaded["request"] != request.id or loaded["from"] != request.responder or loaded["to"] != request.requester:
        raise MalformedError("resync answer does not answer this request")
    if loaded["from"] != responder_card.node_id:
        raise BadSignatureError("resync answer not from that partner")
    verify_signed_json(doc, responder_card.node_id, responder_card.verify_key)  # type: ignore[arg-type]
    created = parse_time(loaded["created"])
    _check_time(created, now)
    if loaded["next"] is not None and request.after is not None and loaded["next"] <= request.after:
        raise MalformedError("next does not advance past the request's cursor")
    entries: list[ReceivedEntry] = []
    heads: dict[str, str] = {}
    seen: set[str] = set()
    for entry in loaded["received"]:
        receipt = _check_entry(entry, responder_card, request.requester)
        if entry["id"] in seen:
            raise MalformedError("a message listed twice")
        seen.add(entry["id"])
        head = heads.get(entry["thread"])
        if head is not None and entry["prev"] != head:
            raise MalformedError("listed messages of a thread do not follow each other")
        heads[entry["thread"]] = entry["message_hash"]
        entries.append(ReceivedEntry(entry["thread"], entry["id"], entry["type"], entry["prev"],
                                     entry["message_hash"], dict(entry["receipt"]), receipt.received_at))
    return ResyncAnswer(loaded["request"], loaded["from"], loaded["to"], created, loaded["requeued"], entries,
                        loaded["next"])


def reseal(data: bytes, *, keys: NodeKeys, own_keys: Sequence[NodeKeys], recipient: NodeCard, prev: str | None,
           peer_keys: Mapping[str, bytes] | None = None, boxes: BoxCache | None = None) -> SealedMessage:
    """Seal again, on a new chain link, a message this node sealed earlier and the recipient never received.

    After a resync the sender's chain head in a thread may have moved (the responder listed messages the
    restored node had forgotten it sent), so a message queued before the resync carries a ``prev`` the recipient
    would refuse. Its sender opens its own envelope (crypto_box is symmetric: the sender's secret key and the
    recipient's public key give the same shared key) and seals the same message again: the same header (id,
    type, created, expires, thread), agreement and body, with the new ``prev``, under the sender's current keys
    and the recipient's current card, with a fresh nonce.

    Args:
        data: the envelope sealed earlier by this node.
        keys: this node's current keys (the new seal's).
        own_keys: every key generation of this node that may have sealed ``data`` (current and retired).
        recipient: the recipient's current card (its node must be the envelope's ``to``).
        prev: the new chain link.
        peer_keys: the recipient's earlier encryption keys by key id, for an envelope sealed to one of them.
        boxes: the shared-key cache.
    Returns:
        The new sealed message (same id).
    Raises:
        MalformedError: not an envelope of this node to that recipient.
        UnknownKeyError: sealed with a key pair not given.
        DecryptionError: the ciphertext does not authenticate.
    (The caller checks the lifetime: a message past its ``expires`` cannot be sent any more.)
    """
    envelope = Envelope.from_json(loads_canonical(data))
    header = envelope.header
    if header.sender != keys.node_id or header.recipient != recipient.node_id:
        raise MalformedError("not a message of this node to that recipient")
    own = {k.ekid: k.encryption_key for k in (keys, *own_keys)}
    peers = {recipient.ekid: recipient.encryption_key, **(peer_keys or {})}
    if envelope.ekid not in own or envelope.rkid not in peers:
        raise UnknownKeyError("sealed with a key pair no longer held")
    box = (boxes or BoxCache()).box(own[envelope.ekid], peers[envelope.rkid])
    try:
        inner_bytes = box.decrypt(envelope.ct, envelope.nonce)
    except (nacl.exceptions.CryptoError, nacl.exceptions.ValueError, nacl.exceptions.TypeError):
        raise DecryptionError("ciphertext does not authenticate") from None
    inner = loads_canonical(inner_bytes)
    parse_inner(inner, header.sender)
    return seal(keys=keys, recipient=recipient, msg_type=header.type, body=inner["body"], thread=header.thread,
                now=header.created, prev=prev, agreement=inner["agreement"], ttl=header.expires - header.created,
                message_id=header.id, boxes=boxes, validate=False)
