"""What a consent withdrawal would do, before it is recorded: the scope as :func:`withdrawal.withdraw` checks it,
and every holder that would be asked to erase its copy (the partner a handover went to, and the nodes it passed
the case on to). The web interface shows it on the confirmation step.

Like a handover's preview, it runs the very same steps as the withdrawal (``withdraw``), inside a savepoint
that is rolled back: what it shows is exactly what confirming would do, and nothing is stored.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm

from node.auth import Actor
from node.exchange.chain.models import ErasureRequest
from node.exchange.chain.withdrawal import withdraw
from node.exchange.handovers.models import Handover
from node.exchange.models import Partner
from protocol import BoxCache, NodeKeys


def withdrawal_preview(session: orm.Session, actor: Actor, case_id: str, consent_id: str, data: dict[str, Any], *,
                       keys: NodeKeys, now: dt.datetime, boxes: BoxCache | None = None) -> dict[str, Any]:
    """The effect of withdrawing ``consent_id`` with ``data`` (the withdrawal's body); writes nothing.

    Returns:
        ``{"full": bool, "scope": dict | None, "holders": [{"handover_id", "partner", "partner_name",
        "categories", "onward": [node ids]}]}``; ``categories`` are what that holder erases of its copy.
    Raises:
        Same as :func:`withdrawal.withdraw` (Forbidden, NotFound, Conflict, ValidationFailed).
    """
    savepoint = session.begin_nested()
    try:
        result = withdraw(session, actor, case_id, consent_id, data, keys=keys, now=now, boxes=boxes)
        scope = result["withdrawal"]["scope"]
        requests = result["erasure_requests"]
        handovers = {h.id: h for h in session.scalars(sa.select(Handover).where(
            Handover.id.in_({r["handover_id"] for r in requests})))} if requests else {}
        onward: dict[str, list[str]] = {}
        for asked in session.scalars(sa.select(ErasureRequest).where(
                ErasureRequest.withdrawal_id == result["withdrawal"]["id"],
                ErasureRequest.holder != ErasureRequest.partner_node).order_by(ErasureRequest.holder)):
            onward.setdefault(asked.handover_id, []).append(asked.holder)
        chosen = (scope or {}).get("categories")
        holders: list[dict[str, Any]] = []
        for request in requests:  # one per handover: the partner's (onward holders ride on its message)
            handover = handovers[request["handover_id"]]
            holders.append({"handover_id": handover.id, "partner": handover.partner_node,
                            "categories": [c for c in handover.categories if chosen is None or c in chosen],
                            "onward": onward.get(handover.id, [])})
        names = {row.node_id: row.name for row in session.execute(
            sa.select(Partner.node_id, Partner.name).where(Partner.node_id.in_({h["partner"] for h in holders})))}
    finally:
        savepoint.rollback()
    for holder in holders:
        holder["partner_name"] = names.get(holder["partner"])
    return {"full": scope is None, "scope": scope, "holders": holders}
