"""Delivery receipts: a plain JSON object signed by the receiver, returned as the HTTP answer to a delivery.

A receipt is not sealed: it holds no personal data (a message id, a hash, a time and two node ids), and
signing alone makes it a proof the sender can keep and show: "the receiver acknowledged the message with this
content hash at this time". Its members are exactly those of the ``receipt`` message body (messages.md), so
the same signed object can also travel later as the body of a sealed ``receipt`` message. See SPEC.md
section 7.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .cards import NodeCard
from .envelope import ENVELOPE_VERSION
from .errors import BadSignatureError, MalformedError
from .keys import NodeKeys
from .messages import validate_body
from .seal import OpenedMessage
from .signing import sign_json, verify_signed_json
from .times import format_time, parse_time

RECEIPT_TYPE = "delivery_receipt"


@dataclass(frozen=True)
class Receipt:
    """A verified receipt."""

    message_id: str
    content_hash: str
    received_at: datetime
    sender: str
    recipient: str


def make_receipt(keys: NodeKeys, opened: OpenedMessage, now: datetime) -> dict[str, Any]:
    """Sign a receipt for a message this node has opened.

    Args:
        keys: the receiver's keys (the receipt's signer, its ``to``).
        opened: the verified message.
        now: the time of receipt (aware).
    Returns:
        ``{v: 1, type: "delivery_receipt", message_id, content_hash, received_at, from, to, signatures}``
        where ``content_hash`` is the message's ``message_hash``, ``from`` the original sender and ``to``
        this node (the signer).
    Raises:
        MalformedError: the message was not addressed to ``keys.node_id``.
    """
    if opened.header.recipient != keys.node_id:
        raise MalformedError("cannot acknowledge a message addressed to another node")
    doc = {
        "v": ENVELOPE_VERSION, "type": RECEIPT_TYPE, "message_id": opened.header.id,
        "content_hash": opened.message_hash, "received_at": format_time(now),
        "from": opened.header.sender, "to": keys.node_id,
    }
    return sign_json(doc, keys.node_id, keys.signing_key)


def verify_receipt(
    receipt: object,
    receiver_card: NodeCard,
    *,
    sender: str | None = None,
    message_id: str | None = None,
    content_hash: str | None = None,
) -> Receipt:
    """Verify a receipt signed by the receiver, against the message the caller sent (SPEC.md section 7).

    Every member is checked against the message before the signature is (a receipt that answers another
    message is refused whoever signed it), in this order: shape; ``to`` is the receiver whose card is given;
    ``from`` is ``sender``; ``message_id``; ``content_hash``; then the signature, with the card's key.

    Args:
        receipt: the parsed receipt object.
        receiver_card: the receiver's verified card (its node id must be the receipt's ``to``).
        sender: the node that sent the message (the caller itself); the receipt's ``from`` must name it.
        message_id: the id of the message sent; the receipt must acknowledge it.
        content_hash: the message's ``message_hash``; the receipt must name it.
        (A sender checking a receipt for a message it sent MUST give all three; without them only the shape,
        ``to`` and the signature are checked.)
    Returns:
        The verified receipt.
    Raises:
        MalformedError: bad shape (``SchemaError``), or another sender, message or content.
        BadSignatureError: ``to`` is not the card's node, or the signature is not its key's.
    """
    if not isinstance(receipt, Mapping):
        raise MalformedError("receipt must be an object")
    validate_body("receipt", receipt)
    parsed = Receipt(
        message_id=receipt["message_id"],
        content_hash=receipt["content_hash"],
        received_at=parse_time(receipt["received_at"]),
        sender=receipt["from"],
        recipient=receipt["to"],
    )
    if parsed.recipient != receiver_card.node_id:
        raise BadSignatureError("receipt not from that receiver")
    if sender is not None and parsed.sender != sender:
        raise MalformedError("receipt acknowledges a message of another sender")
    if message_id is not None and parsed.message_id != message_id:
        raise MalformedError("receipt acknowledges another message")
    if content_hash is not None and parsed.content_hash != content_hash:
        raise MalformedError("receipt acknowledges other content")
    verify_signed_json(receipt, receiver_card.node_id, receiver_card.verify_key)
    return parsed
