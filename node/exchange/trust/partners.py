"""Partners and trust: a partner is trusted only when an administrator confirmed its card's fingerprint.

The card comes from a file or a URL. A URL fetch is bounded (http(s) only, no redirects, a total time limit
and a size limit) and the card must be self-signed by the key the confirmed fingerprint names: the
fingerprint is computed from the card's node id and signing key and compared with the one read out of band.
Nothing is stored on any mismatch.

``partner add`` with a card of a node that is a partner already trusts it again when the card carries other
keys than the ones held (or the partner is ``key_revoked`` or ``revoked``): that is how an administrator
restores trust after the partner revoked its key, with a new fingerprint check. Keys over time (rotation,
revocation) are in the keys room (``node/exchange/keys/``) and ``partner_keys.py``.
"""

from __future__ import annotations

import functools
import hmac
import http.client
import time
import urllib.parse
from collections.abc import Collection, Sequence
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import orm

from node.audit import record as audit
from node.errors import Conflict, NodeError, NotFound, ValidationFailed
from node.exchange.models import OutboundMessage, Partner
from node.exchange.trust.partner_keys import card_text, check_key_reuse, install_card, revoked_kids
from node.outbound import AddressRefused, OutboundPolicy, describe, open_connection
from protocol import NodeCard, b64encode, verify_card
from protocol.cards import card_from_bytes
from protocol.envelope import check_agreement
from protocol.errors import MalformedError, ProtocolError

MAX_CARD_BYTES = 65_536
FETCH_TIMEOUT = 10.0
CARD_PATH = "/federation/v1/card"


class CardFetchError(NodeError):
    """The card could not be read. ``reason`` says why in one word (``not_http``, ``address_refused``,
    ``unreachable``, ``http_error``, ``too_large``, ``too_slow``, ``unreadable``), for a page that words it."""

    status = 502
    code = "card_fetch_failed"

    def __init__(self, detail: str = "", reason: str = "unreachable") -> None:
        super().__init__(detail)
        self.reason = reason


class InvalidCard(ValidationFailed):
    code = "invalid_card"


class OwnCard(InvalidCard):
    code = "own_card"


class FingerprintMismatch(NodeError):
    status = 422
    code = "fingerprint_mismatch"


class PartnerExists(Conflict):
    code = "partner_exists"


class PartnerNotFound(NotFound):
    code = "unknown_partner"


class PartnerStateError(Conflict):
    """The partner is in a state that does not allow this (suspended, revoked, no agreement)."""

    code = "partner_unavailable"

    def __init__(self, detail: str, partner: str) -> None:
        super().__init__(detail)
        self.partner = partner


class NoAgreement(PartnerStateError):
    code = "no_agreement"


def fetch_card(url: str, *, policy: OutboundPolicy, timeout: float = FETCH_TIMEOUT,
               max_bytes: int = MAX_CARD_BYTES) -> bytes:
    """Fetch a node card over HTTP(S), bounded in time and size. A bare base URL gets ``/federation/v1/card``.

    The connection goes only to an address ``policy`` allows (``node.outbound``: public addresses, unless the
    node's configuration allows more), checked after the name is resolved and again once connected; redirects
    are not followed.

    Args:
        url: ``http(s)://host[:port][/path]``.
        policy: the addresses this node may connect to (``OutboundPolicy.from_config``).
        timeout: the total time allowed, in seconds.
        max_bytes: the largest card accepted.
    Returns:
        The response body.
    Raises:
        CardFetchError: naming the URL and the cause: not an http(s) URL, an address this node does not
            connect to, unreachable, an HTTP error or redirect, too large, too slow.
    """
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CardFetchError(f"{url!r} is not an http:// or https:// URL: only http and https URLs are fetched "
                             "(to read a card from a file, use --card-file FILE)", "not_http")
    if parts.path in ("", "/"):
        url = url.rstrip("/") + CARD_PATH
    deadline = time.monotonic() + timeout
    try:
        connection, target = open_connection(url, timeout=timeout, policy=policy)
        try:
            connection.request("GET", target, headers={"Accept": "application/json",
                                                       "User-Agent": "ccm-exchange/1"})
            response = connection.getresponse()
            if response.status != 200:
                raise CardFetchError(f"cannot fetch the card from {url}: it answered HTTP {response.status} "
                                     "(redirects are not followed)", "http_error")
            declared = response.getheader("Content-Length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise CardFetchError(f"the card at {url} is larger than {max_bytes} bytes", "too_large")
            body = bytearray()
            while chunk := response.read1(8192):
                body += chunk
                if len(body) > max_bytes:
                    raise CardFetchError(f"the card at {url} is larger than {max_bytes} bytes", "too_large")
                if time.monotonic() > deadline:
                    raise CardFetchError(f"fetching the card from {url} took longer than {timeout:g} s",
                                         "too_slow")
        finally:
            connection.close()
    except CardFetchError:
        raise
    except (OSError, http.client.HTTPException, ValueError) as exc:
        reason = "address_refused" if isinstance(exc, AddressRefused) else "unreachable"
        raise CardFetchError(f"cannot fetch the card from {url}: {describe(exc)}", reason) from None
    return bytes(body)


def read_card_file(path: str) -> bytes:
    """The card bytes from a file the administrator named (``partner add --card-file FILE``).

    Raises:
        CardFetchError: the file is unreadable or too large.
    """
    try:
        if Path(path).stat().st_size > MAX_CARD_BYTES:
            raise CardFetchError(f"the card file {path} is larger than {MAX_CARD_BYTES} bytes", "too_large")
        return Path(path).read_bytes()
    except OSError as exc:
        raise CardFetchError(f"cannot read {path}: {exc.strerror}", "unreadable") from None


def normalise_fingerprint(text: str) -> str:
    """Digits only (an administrator may type groups with spaces or dashes)."""
    return "".join(ch for ch in text if ch.isdigit())


def read_card(card_data: bytes, *, now: datetime, own_node_id: str) -> NodeCard:
    """A partner's card, checked as :func:`add_partner` checks it before the fingerprint comparison (the
    administrator's page shows its fingerprint next to the one the partner reads out).

    Raises:
        InvalidCard: not a valid, self-signed card valid now; ``OwnCard``: this node's own card.
    """
    try:
        card = card_from_bytes(card_data)
        verify_card(card, now)
    except ProtocolError as exc:
        raise InvalidCard(f"the card is not valid ({exc.code})") from None
    if card.node_id == own_node_id:
        raise OwnCard("this is this node's own card")
    return card


def add_partner(
    session: orm.Session,
    *,
    card_data: bytes,
    fingerprint: str,
    agreement: str | None,
    now: datetime,
    own_node_id: str,
    retention_days: int | None = None,
    own_kids: Collection[str] = (),
) -> Partner:
    """Trust a partner: verify its card, compare the confirmed fingerprint, store it (no commit).

    Args:
        card_data: the card's JSON bytes.
        fingerprint: the fingerprint the administrator confirmed out of band (spaces ignored).
        agreement: the data-sharing agreement id; None stores a partner that can receive nothing yet.
        now: the current time.
        own_node_id: this node's id (a node does not trust itself).
        retention_days: how long data received from the partner is kept, if agreed.
        own_kids: every key id of this node (a partner's card may carry none of them).
    Returns:
        The new partner row (flushed), or the existing one trusted again with the card's keys.
    Raises:
        InvalidCard: not a valid, self-signed card valid now, this node's own card, or a revoked key.
        FingerprintMismatch: the card's fingerprint is not the confirmed one.
        PartnerExists: the node is already a partner with these keys.
        KeyReuse: a key of the card is another partner's or this node's (``partner_keys.check_key_reuse``).
        ValidationFailed: a malformed agreement id or retention.
    """
    card = read_card(card_data, now=now, own_node_id=own_node_id)
    expected = normalise_fingerprint(card.fingerprint())
    if not hmac.compare_digest(normalise_fingerprint(fingerprint).encode(), expected.encode()):
        raise FingerprintMismatch(f"the fingerprint does not match the card of {card.node_id}: not trusted, "
                                  "nothing stored")
    _check_agreement(agreement)
    if retention_days is not None and not 1 <= retention_days <= 3650:
        raise ValidationFailed("retention days must be between 1 and 3650")
    existing = session.scalar(sa.select(Partner).where(Partner.node_id == card.node_id))
    if existing is not None and existing.signing_kid == card.skid and existing.status not in ("key_revoked",
                                                                                              "revoked"):
        raise PartnerExists(f"{card.node_id} is already a partner")
    check_key_reuse(session, card, partner_id=existing.id if existing is not None else None, own_kids=own_kids)
    if existing is not None:
        return _trust_again(session, existing, card, agreement=agreement, retention_days=retention_days, now=now)
    partner = Partner(
        node_id=card.node_id, name=card.name, base_url=card.base_url, card=card_text(card),
        signing_key=b64encode(card.signing_key), signing_kid=card.skid,
        encryption_key=b64encode(card.encryption_key), encryption_kid=card.ekid,
        fingerprint=card.fingerprint(), agreement_id=agreement, retention_days=retention_days,
        status="active", created_at=now, updated_at=now, retry_interval=0.0,
    )
    session.add(partner)
    session.flush()
    install_card(session, partner, card, trusted_by="fingerprint", now=now, previous_until=None)
    return partner


def _trust_again(session: orm.Session, partner: Partner, card: NodeCard, *, agreement: str | None,
                 retention_days: int | None, now: datetime) -> Partner:
    """Trust a known partner again with a card whose fingerprint the administrator just confirmed: after it
    revoked its key, after this node revoked it, or with keys it rotated to while this node missed the
    announcement. The previous keys are no longer accepted.

    Raises:
        InvalidCard: the card's key is one the partner revoked.
    """
    try:
        verify_card(card, now, revoked=revoked_kids(session, partner.id))
    except ProtocolError as exc:
        raise InvalidCard(f"the card is not valid ({exc.code}): {partner.node_id} revoked that key; ask for "
                          "its new card") from None
    previous = (partner.status, partner.signing_kid)
    install_card(session, partner, card, trusted_by="fingerprint", now=now, previous_until=None)
    partner.status = "active"
    partner.keys_changed_at = now
    if agreement is not None:
        partner.agreement_id = agreement
    if retention_days is not None:
        partner.retention_days = retention_days
    session.flush()
    audit(session, actor=None, action="update", object_type="partner", object_id=partner.node_id, case_id=None,
          now=now, detail={"key": "trusted_again", "kid": card.skid, "previous_kid": previous[1],
                           "previous_status": previous[0]})
    return partner


def _check_agreement(agreement: str | None) -> None:
    try:
        check_agreement(agreement)
    except MalformedError:
        raise ValidationFailed("an agreement id is 1-64 letters, digits or . _ : - (starting with a letter "
                               "or digit)") from None


def unknown_node_ids(session: orm.Session, node_ids: Sequence[str]) -> list[str]:
    """The ones of ``node_ids`` that are not partners of this node (whatever their status), in their order."""
    known = set(session.scalars(sa.select(Partner.node_id).where(Partner.node_id.in_(set(node_ids)))))
    return [n for n in node_ids if n not in known]


def get_partner(session: orm.Session, ref: str) -> Partner:
    """A partner by node id or by its number in ``partner list``.

    Raises:
        PartnerNotFound: no such partner.
    """
    query = sa.select(Partner).where(Partner.node_id == ref)
    if ref.isascii() and ref.isdigit() and len(ref) <= 18:  # a row number (fits a 64-bit integer)
        query = sa.select(Partner).where(Partner.id == int(ref))
    partner = session.scalar(query)
    if partner is None:
        raise PartnerNotFound(f"no partner {ref!r}")
    return partner


def list_partners(session: orm.Session) -> Sequence[Partner]:
    return session.scalars(sa.select(Partner).order_by(Partner.node_id)).all()


def set_status(session: orm.Session, ref: str, status: str, now: datetime) -> Partner:
    """Suspend, resume or revoke a partner (no commit). Revocation is final; it also gives up every message
    still queued for the partner (``undeliverable``).

    Raises:
        PartnerNotFound: no such partner.
        PartnerStateError: resuming or suspending a revoked partner.
    """
    partner = get_partner(session, ref)
    if partner.status == "revoked" and status != "revoked":
        raise PartnerStateError(f"{partner.node_id} is revoked; trust it again with a new 'partner add'",
                                partner.node_id)
    if partner.status == "key_revoked" and status != "revoked":
        raise PartnerStateError(f"{partner.node_id} revoked its own key: trust it again only after checking its "
                                "new fingerprint ('ccm-node partner add NEW_CARD --fingerprint ...')",
                                partner.node_id)
    partner.status = status
    partner.updated_at = now
    if status == "revoked":
        session.execute(
            sa.update(OutboundMessage)
            .where(OutboundMessage.partner_id == partner.id,
                   OutboundMessage.status.in_(("queued", "sending")))
            .values(status="undeliverable", last_error="partner_revoked", claimed_by=None, lease_until=None)
        )
    session.flush()
    return partner


def set_agreement(session: orm.Session, ref: str, agreement: str, now: datetime) -> Partner:
    """Record the data-sharing agreement signed with a partner (no commit).

    Raises:
        PartnerNotFound: no such partner.
        ValidationFailed: a malformed agreement id.
    """
    _check_agreement(agreement)
    partner = get_partner(session, ref)
    partner.agreement_id = agreement
    partner.updated_at = now
    session.flush()
    return partner


_BY_NODE_ID = sa.select(Partner).where(Partner.node_id == sa.bindparam("node_id"))  # built once: every send asks


def require_sendable(session: orm.Session, node_id: str) -> Partner:
    """The partner a message is about to be sent to, if it may receive one.

    Raises:
        PartnerNotFound: not a partner.
        PartnerStateError: suspended or revoked.
        NoAgreement: no data-sharing agreement is recorded for it.
    """
    partner = session.scalar(_BY_NODE_ID, {"node_id": node_id})
    if partner is None:
        raise PartnerNotFound(f"{node_id} is not a partner of this node")
    if partner.status == "key_revoked":
        raise PartnerStateError(f"partner {node_id} revoked its key: nothing can be sent to it until an "
                                "administrator checked its new fingerprint ('ccm-node partner add')", node_id)
    if partner.status != "active":
        raise PartnerStateError(f"partner {node_id} is {partner.status}: nothing can be sent to it",
                                node_id)
    if partner.agreement_id is None:
        raise NoAgreement(f"no data-sharing agreement is recorded for partner {node_id}: nothing can be sent "
                          f"to it until an administrator records one ('ccm-node partner agreement {node_id} "
                          "AGREEMENT_ID')", node_id)
    return partner


def partner_card(partner: Partner) -> NodeCard:
    """The partner's stored card (verified when it was added)."""
    return _parsed_card(partner.card)


@functools.lru_cache(maxsize=256)
def _parsed_card(text: str) -> NodeCard:
    # By the card's text: a partner's new card (a rotation, a new fingerprint check) is another key here, and
    # whether a partner may be sent to is its status, checked apart. NodeCard is frozen; callers only read it.
    return card_from_bytes(text.encode("utf-8"))
