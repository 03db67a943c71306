"""The exchange wired together at start-up, from the top: the only module that knows every room.

The rooms stand on each other in one direction (``node/exchange/__init__.py``), so the inbox, which receives
every message, may not import the rooms that act on them, and a handover may not import the chain room that
forwards it. Instead, :func:`wire` registers each room's appliers with ``inbox.dispatch`` (:data:`APPLIERS`,
one per message type: the whole list of what a received message can do) and installs the chain room's
functions in ``handovers.chain_hooks``, and lets consent (in ``node.cases``, below the exchange) ask which node
ids are partners. ``create_app`` and the ``ccm-node`` command line call it; it does its
work once per process.
"""

from __future__ import annotations

import threading

from node.cases import consent
from node.exchange.chain import forwarding, known_withdrawals, withdrawal
from node.exchange.handovers import appliers, chain_hooks, closing
from node.exchange.inbox import dispatch
from node.exchange.inbox.dispatch import Applier
from node.exchange.keys import rotation
from node.exchange.trust import partners

#: Every message type a partner may send that changes something here, and the applier that does it.
APPLIERS: dict[str, Applier] = {
    "handover": appliers.apply_handover,
    "handover_accepted": appliers.apply_accepted,
    "handover_declined": appliers.apply_declined,
    "progress_update": appliers.apply_progress,
    "case_closed": closing.apply_closed,
    "key_rotated": rotation.apply_key_rotated,
    "consent_withdrawn": withdrawal.apply_withdrawn,
    "erasure_confirmed": withdrawal.apply_erasure_confirmed,
    "forward": forwarding.apply_forward,
    "custody_notice": forwarding.apply_custody_notice,
}

#: What the chain room lends the handovers room.
CHAIN_HOOKS = chain_hooks.ChainHooks(
    withdrawals_for=known_withdrawals.withdrawals_for,
    recheck_forward=forwarding.recheck,
    relay_progress=forwarding.relay_progress,
)

_lock = threading.Lock()
_wired: list[bool] = []


def wire() -> None:
    """Register every room's appliers and install the chain hooks (the first call in a process; later calls
    change nothing, so that a test that set the registry aside keeps it so).

    Raises:
        ValueError: another applier or other hooks are registered already (a second wiring of the rooms).
    """
    with _lock:
        if _wired:
            return
        for msg_type, func in APPLIERS.items():
            dispatch.register(msg_type, func)
        chain_hooks.install(CHAIN_HOOKS)
        consent.install_partner_check(partners.unknown_node_ids)
        _wired.append(True)
