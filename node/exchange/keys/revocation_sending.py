"""How this node's revocation statements reach its partners: outside the message flow.

A revocation cannot travel as a message: the revoked key may be the one a message would be signed with, and a
partner must learn of it even if everything else from this node is refused. So ``ccm-node keys revoke`` posts
the statements (a JSON array, ``keys.revocation_batches``) to every partner's ``POST /federation/v1/revocation``
at once, each request bounded in time, and reports per partner; ``ccm-node keys revocation-send`` posts them
again (e.g. to a partner that was offline), and ``ccm-node keys revocation-file`` writes them for a partner to
import by hand (``ccm-node keys revocation-import``). The receiving side is ``keys.accept_revocations``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import orm

from node.exchange.keys.revocation import revocation_batches
from node.exchange.trust.partners import get_partner, list_partners
from node.outbound import OutboundPolicy, Post, http_poster

REVOCATION_PATH = "/federation/v1/revocation"
SEND_TIMEOUT = 10.0

@dataclass(frozen=True)
class SendOutcome:
    """What one partner answered: ``revoked`` key ids newly recorded there, or why it did not take them."""

    partner: str
    status: int | None
    revoked: list[str]
    error: str | None = None

    @property
    def accepted(self) -> bool:
        return self.status == 200


def _answer(body: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return {}
    return doc if isinstance(doc, dict) else {}


def send_revocations(session: orm.Session, statements: Sequence[dict[str, Any]], *,
                     partners: Sequence[str] | None = None, post: Post | None = None,
                     policy: OutboundPolicy | None = None, timeout: float = SEND_TIMEOUT) -> list[SendOutcome]:
    """Post revocation statements to partners, one partner after the other.

    Args:
        session: to read the partners (nothing is written).
        statements: this node's signed statements.
        partners: node ids or numbers to send to; None: every partner this node knows (whatever its status:
            a partner whose trust this node withdrew should still stop trusting a compromised key).
        post: how to post; by default HTTP(S) to the addresses ``policy`` allows.
        policy: the node's outbound policy (default: public addresses only).
        timeout: per request, to connect and to read.
    Returns:
        One outcome per partner.
    Raises:
        PartnerNotFound: a named partner does not exist.
    """
    post = post or http_poster(policy or OutboundPolicy())
    targets = [get_partner(session, ref) for ref in partners] if partners is not None else list_partners(session)
    outcomes: list[SendOutcome] = []
    for partner in targets:
        revoked: list[str] = []
        outcome: SendOutcome | None = None
        for body in revocation_batches(statements):
            status, answer, error = post(partner.base_url.rstrip("/") + REVOCATION_PATH, body, timeout)
            doc = _answer(answer)
            if status != 200:
                code = doc.get("code") if isinstance(doc.get("code"), str) else None
                outcome = SendOutcome(partner.node_id, status, revoked, error or code or f"http_{status}")
                break
            revoked += [k for k in doc.get("revoked", []) if isinstance(k, str)]
        outcomes.append(outcome or SendOutcome(partner.node_id, 200, revoked))
    return outcomes
