"""Hand a verified inbound message to the room that acts on its type.

Each room's appliers (one per message type) are registered here at start-up by ``node.exchange.wiring.wire()``,
which lists them all; this module imports none of them. A type with no applier is stored and acknowledged
only. An applier runs in the inbox's transaction: if it raises a ``ProtocolError`` (e.g.
``OutsideConsentError``) the inbox answers that code and nothing is stored.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from sqlalchemy import orm

from protocol import NodeKeys, OpenedMessage

if TYPE_CHECKING:
    from node.exchange.models import InboundMessage, Partner


class Applier(Protocol):
    def __call__(self, session: orm.Session, *, message: InboundMessage, opened: OpenedMessage,
                 partner: Partner, now: datetime, keys: NodeKeys) -> None: ...


_APPLIERS: dict[str, Applier] = {}


def register(msg_type: str, func: Applier) -> None:
    """Register ``func`` as the applier of ``msg_type`` (one per type; registering it again changes nothing).

    Raises:
        ValueError: another applier is registered for that type already.
    """
    existing = _APPLIERS.get(msg_type)
    if existing is not None and existing is not func:
        raise ValueError(f"an applier for {msg_type!r} is registered already")
    _APPLIERS[msg_type] = func


def applier_for(msg_type: str) -> Applier | None:
    """The applier registered for a type, if any."""
    return _APPLIERS.get(msg_type)


def apply(session: orm.Session, *, message: InboundMessage, opened: OpenedMessage, partner: Partner,
          now: datetime, keys: NodeKeys) -> None:
    """Run the applier of the message's type, in the caller's transaction.

    Args:
        session: the inbox's session (the applier must not commit).
        message: the stored inbound row (flushed).
        opened: the verified message.
        partner: the sender.
        now: the time of receipt.
        keys: this node's keys (an applier may enqueue an answer).
    Raises:
        ProtocolError: the applier refuses the message; the inbox answers its code and stores nothing.
    """
    func = applier_for(opened.header.type)
    if func is not None:
        func(session, message=message, opened=opened, partner=partner, now=now, keys=keys)
