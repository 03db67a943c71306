"""What is known of keys over time, as the administrator reads it: this node's current and previous keys
(``ccm-node keys status``, the node page) and a partner's key history (``ccm-node keys partners``, the partner
page). Both the command line and the web pages word these facts; the facts are decided here once.

A generation's ``state`` is one of ``current``, ``overlap`` (retired, still accepted until ``until``),
``retired`` (its overlap ended) and ``revoked`` (``reason``; for a partner's key, when its statement was
received).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import orm

from node.exchange.models import Partner
from node.exchange.trust.keystore import CARD_RENEW_BEFORE, NodeIdentity
from node.exchange.trust.partner_keys import generations, revocations


@dataclass(frozen=True)
class KeyState:
    """One key generation and where it stands."""

    signing_kid: str
    encryption_kid: str
    state: str
    retired_at: datetime | None = None
    until: datetime | None = None
    revoked_at: datetime | None = None
    reason: str | None = None
    trusted_at: datetime | None = None
    trusted_by: str | None = None


@dataclass(frozen=True)
class OwnKeys:
    """This node's keys: the current ones, the card, the previous generations, the revocations issued."""

    signing_kid: str
    encryption_kid: str
    fingerprint: str
    card_valid_until: datetime
    card_renewed_from: datetime
    previous: tuple[KeyState, ...]
    revocations_issued: int


def own_keys(identity: NodeIdentity, now: datetime) -> OwnKeys:
    """This node's key status (what ``ccm-node keys status`` prints).

    Keys rotate only when an administrator runs ``ccm-node keys rotate``; the card is remade automatically
    from ``card_renewed_from`` on.
    """
    previous = []
    for generation in identity.history.retired:
        if generation.revoked_at is not None:
            state = "revoked"
        elif now < generation.accept_until:
            state = "overlap"
        else:
            state = "retired"
        previous.append(KeyState(generation.skid, generation.ekid, state, retired_at=generation.retired_at,
                                 until=generation.accept_until, revoked_at=generation.revoked_at,
                                 reason=generation.reason))
    return OwnKeys(identity.keys.skid, identity.keys.ekid, identity.keys.fingerprint(),
                   identity.card.valid_until, identity.card.valid_until - CARD_RENEW_BEFORE, tuple(previous),
                   len(identity.history.revocations))


def partner_key_history(session: orm.Session, partner: Partner, now: datetime) -> Sequence[KeyState]:
    """A partner's key generations, oldest first (what ``ccm-node keys partners PARTNER`` prints)."""
    revoked = {r.kid: r for r in revocations(session, partner)}
    states = []
    for g in generations(session, partner):
        revocation = revoked.get(g.signing_kid) or revoked.get(g.encryption_kid)
        if revocation is not None:
            state = "revoked"
        elif g.retired_at is None:
            state = "current"
        elif g.accept_until is not None and now < g.accept_until:
            state = "overlap"
        else:
            state = "retired"
        states.append(KeyState(g.signing_kid, g.encryption_kid, state, retired_at=g.retired_at,
                               until=g.accept_until, revoked_at=revocation.received_at if revocation else None,
                               reason=revocation.reason if revocation else None, trusted_at=g.trusted_at,
                               trusted_by=g.trusted_by))
    return states
