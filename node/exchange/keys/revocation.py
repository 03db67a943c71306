"""Key revocation: this node revoking its keys, and accepting a partner's revocation.

**Revocation** (``ccm-node keys revoke --reason``, :func:`revoke_keys`): signed statements (SPEC.md 3.3), each
signed by every key generation being revoked, for the current keys (then replaced by fresh keys with a new card and
a new fingerprint, *not* endorsed) or for a retired generation. ``compromised`` also revokes every retired
generation still accepted (they lie in the same key directory). This node's queued messages signed with a
revoked key are given up. The statements travel outside the message flow (``revocation_sending.py``): posted to
every partner's ``/federation/v1/revocation``, or carried as a file. A partner that accepts the revocation of
a partner's current key (:func:`accept_revocations`) stops trusting it (``key_revoked``) until an administrator
checks the new fingerprint (``ccm-node partner add``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm

from node.audit import record as audit
from node.config import NodeConfig
from node.errors import Conflict, ValidationFailed
from node.exchange.models import OutboundMessage, Partner
from node.exchange.trust.key_files import KeyChange, KeyHistory, RetiredGeneration, with_revoked
from node.exchange.trust.keystore import CARD_VALIDITY, load_identity
from node.exchange.trust.models import KeyRevocation, PartnerKey
from node.exchange.trust.partner_keys import RevocationSigners, revocations
from protocol import (
    KeyFileError,
    NodeCard,
    NodeKeys,
    Revocation,
    UnknownSenderError,
    canonical_bytes,
    make_card,
    make_revocation,
    sign_json,
    strict_loads,
    verify_revocation,
)
from protocol.cards import MAX_REVOCATION_BATCH, REVOCATION_REASONS, parse_revocation_batch
from protocol.keys import check_node_id

#: This node's messages given up when their key is revoked (one in flight is left to its worker).
GIVE_UP = ("queued", "parked")


# -- this node revokes ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OwnRevocation:
    """What a revocation did; ``change`` still has to be installed (:func:`install_key_change`)."""

    kids: list[str]
    statements: list[dict[str, Any]]
    fingerprint: str | None  # the new keys' fingerprint when the current keys were revoked
    given_up: int
    change: KeyChange


def revoke_keys(session: orm.Session, config: NodeConfig, *, now: datetime, reason: str,
                kid: str | None = None) -> OwnRevocation:
    """Revoke this node's current keys (replacing them) or a retired generation (no commit).

    Args:
        session: the session this node's outbox is updated in.
        config: this node's configuration.
        now: the current time (the statements' ``revoked_at``).
        reason: ``compromised``, ``superseded`` or ``retired``.
        kid: a key id of a retired generation; None (or a current key id): the current keys.
    Returns:
        The statements to send, with the prepared key files.
    Raises:
        ValidationFailed: an unknown reason, or ``kid`` is no key of this node.
        Conflict: that generation is revoked already.
        KeyFileError: the key files cannot be read or written (or a retired private key is missing).
    """
    if reason not in REVOCATION_REASONS:
        raise ValidationFailed("the reason must be compromised, superseded or retired")
    identity = load_identity(config, now)
    current, start = identity.keys, now.replace(microsecond=0)
    history = identity.history
    targets: list[NodeKeys] = []
    new: NodeKeys | None = None
    card: NodeCard | None = None
    if kid is None or kid in (current.skid, current.ekid):
        targets.append(current)
        generation = RetiredGeneration(current.skid, current.ekid, start, start, start, reason)
        history = KeyHistory((*history.retired, generation), history.revocations)
        if reason == "compromised":  # the retired keys lie in the same directory
            for retired in identity.retired:
                if retired.generation.revoked_at is None:
                    targets.append(retired.keys)
                    history = with_revoked(history, retired.generation, start, reason)
        new = NodeKeys.generate(current.node_id)
        card = make_card(new, name=config.name, base_url=config.base_url, valid_from=start,
                         valid_until=start + CARD_VALIDITY)
    else:
        found = next((g for g in history.retired if kid in (g.skid, g.ekid)), None)
        if found is None:
            raise ValidationFailed(f"{kid} is not a key of this node (see 'ccm-node keys status')")
        if found.revoked_at is not None:
            raise Conflict(f"the key generation of {kid} is revoked already")
        private = next((r.keys for r in identity.retired if r.generation.skid == found.skid), None)
        if private is None:
            raise KeyFileError(f"the private key of {found.skid} is missing from the key directory")
        targets.append(private)
        history = with_revoked(history, found, start, reason)
    statements = [_cosigned(make_revocation(keys, revoked, revoked_at=start, reason=reason), targets)
                  for keys in targets for revoked in (keys.skid, keys.ekid)]
    history = KeyHistory(history.retired, (*history.revocations, *statements))
    given_up = _give_up_signed_by(session, {k.skid for k in targets})
    kids = [s["kid"] for s in statements]
    audit(session, actor=None, action="update", object_type="node_keys", object_id=current.node_id, case_id=None,
          now=now, detail={"key": "revoked", "kids": kids, "reason": reason, "given_up": given_up,
                           **({"kid": new.skid} if new is not None else {})})
    change = KeyChange(config.data_dir)
    change.prepare(history=history, keys=new, card=card)  # a revoked key is of no use: not kept
    return OwnRevocation(kids, statements, new.fingerprint() if new is not None else None, given_up, change)


def _cosigned(statement: dict[str, Any], signers: Sequence[NodeKeys]) -> dict[str, Any]:
    """A statement signed by every revoked generation, so that a partner that holds any one of them (e.g. one
    that never got the announcement of the newest key) can verify every statement of the batch."""
    for keys in signers:
        if keys.skid not in statement["signatures"][keys.node_id]:
            statement = sign_json(statement, keys.node_id, keys.signing_key)
    return statement


def _give_up_signed_by(session: orm.Session, skids: set[str]) -> int:
    """Mark undeliverable this node's pending messages signed with one of ``skids`` (partners refuse them)."""
    doomed = [row.id for row in session.execute(
        sa.select(OutboundMessage.id, OutboundMessage.envelope).where(OutboundMessage.status.in_(GIVE_UP)))
        if strict_loads(row.envelope).get("skid") in skids]
    if doomed:
        session.execute(sa.update(OutboundMessage).where(OutboundMessage.id.in_(doomed))
                        .values(status="undeliverable", last_error="own_key_revoked", claimed_by=None,
                                lease_until=None).execution_options(synchronize_session=False))
    return len(doomed)

# -- a partner revokes ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AcceptedRevocations:
    """The outcome of a revocation batch: the partner, the key ids newly revoked, how many were known."""

    partner: Partner
    revoked: list[str]
    known: int


def accept_revocations(session: orm.Session, data: bytes, *, now: datetime, source: str) -> AcceptedRevocations:
    """Verify and record a partner's revocation statements, all or none (no commit).

    Each statement must be signed by a key of the partner this node trusts (``RevocationSigners``); a
    statement this node holds already counts as known (so a resent batch is accepted again). When the
    partner's current key is revoked, the partner becomes ``key_revoked`` and every message still queued for it
    is given up (it is sealed to a key that may be in other hands).

    Args:
        data: a JSON array of 1..16 statements of one node (at most 64 KiB).
        now: the current time.
        source: ``federation`` or ``file``.
    Returns:
        What was recorded.
    Raises:
        OversizedError / MalformedError: not such an array.
        UnknownSenderError: the node is not a partner (nothing is stored).
        UnknownKeyError / BadSignatureError / UnsupportedVersionError: a statement does not verify.
    """
    statements = parse_revocation_batch(data)
    node_id = check_node_id(statements[0].get("node_id"))
    partner = session.scalar(sa.select(Partner).where(Partner.node_id == node_id))
    if partner is None:
        raise UnknownSenderError("not a partner")
    held = {r.kid: strict_loads(r.statement) for r in revocations(session, partner)}
    signers = RevocationSigners(session, partner, now)
    fresh: dict[str, tuple[dict[str, Any], Revocation]] = {}
    known = 0
    for statement in statements:
        kid = statement.get("kid")
        if isinstance(kid, str) and held.get(kid) == statement:
            known += 1
            continue
        verified = verify_revocation(statement, signers.for_kid(kid))
        if verified.kid in held or verified.kid in fresh:
            known += 1
            continue
        fresh[verified.kid] = (statement, verified)
    for kid, (statement, verified) in fresh.items():
        session.add(KeyRevocation(partner_id=partner.id, kid=kid, reason=verified.reason,
                                  revoked_at=verified.revoked_at, statement=canonical_bytes(statement).decode(),
                                  source=source, received_at=now))
        session.execute(sa.update(PartnerKey).where(
            PartnerKey.partner_id == partner.id, PartnerKey.revoked_at.is_(None),
            sa.or_(PartnerKey.signing_kid == kid, PartnerKey.encryption_kid == kid)).values(revoked_at=now)
            .execution_options(synchronize_session=False))
    if fresh:
        partner.keys_changed_at = now
        if {partner.signing_kid, partner.encryption_kid} & set(fresh) and partner.status != "revoked":
            partner.status = "key_revoked"
            session.execute(sa.update(OutboundMessage).where(
                OutboundMessage.partner_id == partner.id, OutboundMessage.status.in_(("queued", "sending")))
                .values(status="undeliverable", last_error="partner_key_revoked", claimed_by=None,
                        lease_until=None).execution_options(synchronize_session=False))
        partner.updated_at = now
        audit(session, actor=None, action="update", object_type="partner", object_id=partner.node_id,
              case_id=None, now=now, detail={"key": "revoked", "kids": sorted(fresh), "via": source,
                                             "reasons": sorted({v.reason for _, v in fresh.values()})})
    session.flush()
    return AcceptedRevocations(partner, sorted(fresh), known)


def revocation_batches(statements: Sequence[dict[str, Any]]) -> list[bytes]:
    """This node's statements as request bodies of at most ``MAX_REVOCATION_BATCH`` each."""
    return [canonical_bytes(list(statements[i:i + MAX_REVOCATION_BATCH]))
            for i in range(0, len(statements), MAX_REVOCATION_BATCH)]
