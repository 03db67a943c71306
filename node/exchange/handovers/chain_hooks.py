"""What the chain room lends the handovers room, which stands below it and may not import it.

Three points where a handover needs consent across the chain (``chain/``):

- ``withdrawals_for(session, origin, consent_id)``: the withdrawals known for a consent, as the protocol's
  ``consent_withdrawn`` bodies; a handover is minimised (sending) and checked (receiving) against them;
- ``recheck_forward(session, handover, partner, keys, now)``: a forwarded case checked again, chain of custody
  and all, when an adviser accepts it (the consent may have lapsed while it waited);
- ``relay_progress(session, handover, body, sender, keys=, now=)``: progress on a forwarded case passed on
  towards the origin.

``node.exchange.wiring.wire()`` installs the chain room's functions once per process, beside the appliers.
Deny by default: until they are installed, calling any of them raises ``ChainNotWired`` (a wiring fault, never
a handover sent or accepted without its checks).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import orm

from protocol import NodeKeys

if TYPE_CHECKING:
    from node.exchange.handovers.models import Handover
    from node.exchange.models import Partner


class ChainNotWired(RuntimeError):
    """The chain room's hooks were never installed in this process (``node.exchange.wiring.wire()``)."""


class WithdrawalsFor(Protocol):
    def __call__(self, session: orm.Session, origin: str, consent_id: str) -> list[dict[str, Any]]: ...


class RecheckForward(Protocol):
    def __call__(self, session: orm.Session, handover: Handover, partner: Partner, keys: NodeKeys,
                 now: dt.datetime) -> None: ...


class RelayProgress(Protocol):
    def __call__(self, session: orm.Session, handover: Handover, body: dict[str, Any], sender: str, *,
                 keys: NodeKeys, now: dt.datetime) -> None: ...


@dataclass(frozen=True)
class ChainHooks:
    withdrawals_for: WithdrawalsFor
    recheck_forward: RecheckForward
    relay_progress: RelayProgress


_installed: list[ChainHooks] = []


def install(hooks: ChainHooks) -> None:
    """Install the chain room's functions (``wiring.wire()``; installing the same ones again changes nothing).

    Raises:
        ValueError: other functions are installed already.
    """
    if _installed and _installed[0] != hooks:
        raise ValueError("other chain hooks are installed already")
    _installed[:] = [hooks]


def chain() -> ChainHooks:
    """The installed hooks.

    Raises:
        ChainNotWired: none are installed.
    """
    if not _installed:
        raise ChainNotWired("the chain room is not wired: call node.exchange.wiring.wire() at start-up")
    return _installed[0]
