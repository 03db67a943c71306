"""Hand a verified inbound message to the domain code that acts on its type.

Domain modules register one applier per message type with ``@register("handover")``. ``apply`` imports the
domain modules of ``DOMAIN_MODULES`` on first use (their import registers their appliers); a type with no
applier is stored and acknowledged only. An applier runs in the inbox's transaction: if it raises a
``ProtocolError`` (e.g. ``OutsideConsentError``) the inbox answers that code and nothing is stored.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from sqlalchemy import orm

from protocol import NodeKeys, OpenedMessage

if TYPE_CHECKING:
    from .models import InboundMessage, Partner

#: The modules whose import registers the appliers of received messages, one per domain.
DOMAIN_MODULES = (
    "node.exchange.handovers",  # handover, handover_accepted, handover_declined, progress_update
    "node.exchange.keys",  # key_rotated
    "node.exchange.withdrawal",  # consent_withdrawn, erasure_confirmed
    "node.exchange.closing",  # case_closed
    "node.exchange.forwarding",  # forward
)


class Applier(Protocol):
    def __call__(self, session: orm.Session, *, message: InboundMessage, opened: OpenedMessage,
                 partner: Partner, now: datetime, keys: NodeKeys) -> None: ...


_APPLIERS: dict[str, Applier] = {}
_loaded = False
_load_lock = threading.Lock()


def register(msg_type: str) -> Callable[[Applier], Applier]:
    """Register the decorated function as the applier of ``msg_type`` (one per type).

    Raises:
        ValueError: another applier is registered for that type already.
    """
    def decorator(func: Applier) -> Applier:
        existing = _APPLIERS.get(msg_type)
        if existing is not None and existing is not func:
            raise ValueError(f"an applier for {msg_type!r} is registered already")
        _APPLIERS[msg_type] = func
        return func

    return decorator


def _load_domain_appliers() -> None:
    global _loaded
    if _loaded:
        return
    with _load_lock:
        if not _loaded:
            for module in DOMAIN_MODULES:
                try:
                    importlib.import_module(module)
                except ModuleNotFoundError as exc:
                    if exc.name != module:
                        raise
            _loaded = True


def applier_for(msg_type: str) -> Applier | None:
    """The applier registered for a type, if any (after loading the domain modules)."""
    _load_domain_appliers()
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
