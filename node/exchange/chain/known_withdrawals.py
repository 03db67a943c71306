"""The withdrawals known for a consent, as the protocol's ``consent_withdrawn`` bodies.

Read wherever a consent is checked: sending or receiving a handover (through ``handovers.chain_hooks``),
forwarding, and recording a withdrawal (``withdrawal.py``). The rows are ``consent_withdrawals``
(``models.ConsentWithdrawal``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm

from node.exchange.chain.models import ConsentWithdrawal
from protocol.times import format_time


def withdrawal_body(consent_id: str, withdrawn_at: dt.datetime, scope: dict[str, Any] | None, *, revocation: bool,
               reason: str | None = None) -> dict[str, Any]:
    """A withdrawal as the protocol's ``consent_withdrawn`` body (SPEC.md 9.6)."""
    body: dict[str, Any] = {"consent_id": consent_id, "withdrawn_at": format_time(withdrawn_at),
                            "revocation": revocation}
    if scope is not None:
        body["scope"] = scope
    if reason:
        body["reason"] = reason
    return body


_KNOWN = sa.select(ConsentWithdrawal).where(  # built once: every handover sent or received asks
    ConsentWithdrawal.origin == sa.bindparam("origin"), ConsentWithdrawal.consent_id == sa.bindparam("consent_id"),
    ConsentWithdrawal.revocation.is_(False))


def withdrawals_for(session: orm.Session, origin: str, consent_id: str) -> list[dict[str, Any]]:
    """The withdrawals known for a consent, as the protocol's ``consent_withdrawn`` bodies (for ``minimise``
    and ``check_handover``): revocations of one handover are left out, they take back that handover only."""
    rows = session.scalars(_KNOWN, {"origin": origin, "consent_id": consent_id})
    return [withdrawal_body(r.consent_id, r.withdrawn_at, r.scope, revocation=False) for r in rows]
