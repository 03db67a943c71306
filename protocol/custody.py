"""The chain of custody a ``forward`` carries.

When a case moves on from the node that first received it, the ``forward`` body lists one *custody step*
per hop so far. A step is the holder's signed statement "I, ``holder``, received this case from ``from``
at ``at`` by the message whose chain-link hash is ``message_hash``", signed with ``sign_json`` by
``holder``. The first step starts at the consent's origin node; each step starts where the previous one
ended; the last ends at the node that sends the ``forward``; no node appears twice. The hop under way is
attested by the forward's own envelope, and the recipient adds its own step if it forwards the case again.

Every node on the chain can check every signature (given the holders' keys), and a node can check the
``message_hash`` of the hop it took part in against the message it sent or received.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import nacl.signing

from .errors import ChainError, UnknownKeyError
from .signing import sign_json, verify_signed_json
from .times import format_time, parse_time, require_aware

CLOCK_SKEW = timedelta(seconds=300)


def make_custody_step(holder: str, sender: str, at: datetime, message_hash: str,
                      signing_key: nacl.signing.SigningKey) -> dict[str, Any]:
    """The custody step ``holder`` signs for the hop by which it received a case.

    Args:
        holder: the node that received the case (and signs the step).
        sender: the node it received the case from (the step's ``from``).
        at: when it received it (aware datetime).
        message_hash: the chain-link hash of the message that carried the case to ``holder``.
        signing_key: ``holder``'s Ed25519 signing key.
    Returns:
        The signed step, ready for a ``forward`` body's ``chain``.
    """
    step = {"holder": holder, "from": sender, "at": format_time(at), "message_hash": message_hash}
    return sign_json(step, holder, signing_key)


def verify_custody(forward: Mapping[str, Any], sender: str, now: datetime,
                   verify_keys: Mapping[str, nacl.signing.VerifyKey]) -> None:
    """Check the custody chain of a validated ``forward`` body.

    Args:
        forward: the body, already through ``validate_body("forward", ...)``.
        sender: the node that sent the forward (the envelope's ``from``).
        now: the receiver's clock (aware).
        verify_keys: Ed25519 verify keys by node id; needs every holder on the chain.
    Raises:
        ChainError: the chain does not start at the consent's origin, has a gap, revisits a node, goes back
            in time, lies in the future, or does not end at ``sender``; or the case is forwarded to a node
            already on it.
        UnknownKeyError: no key for a holder.
        BadSignatureError: a step's signature does not verify.
    """
    require_aware(now)
    origin = forward["original_handover"]["consent"]["origin"]
    expected_from = origin
    visited = {origin}
    previous_at: datetime | None = None
    for index, step in enumerate(forward["chain"]):
        holder = step["holder"]
        if step["from"] != expected_from:
            raise ChainError(f"custody step {index} does not continue from the previous holder")
        if holder in visited:
            raise ChainError(f"custody step {index} revisits a node already on the chain")
        at = parse_time(step["at"])
        if previous_at is not None and at < previous_at:
            raise ChainError(f"custody step {index} is earlier than the step before it")
        if at > now + CLOCK_SKEW:
            raise ChainError(f"custody step {index} lies in the future")
        verify_key = verify_keys.get(holder)
        if verify_key is None:
            raise UnknownKeyError(f"no key for custody holder {holder}")
        verify_signed_json(step, holder, verify_key)
        visited.add(holder)
        expected_from = holder
        previous_at = at
    if expected_from != sender:
        raise ChainError("the custody chain does not end at the forwarding node")
    if forward["forwarded_to"] in visited:
        raise ChainError("the case is forwarded to a node already on its chain")
