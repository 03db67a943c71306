"""Store-and-forward by file: a partner's bundle imported, and the receipts bundle for ours.

At the partner, ``import_file`` verifies the bundle as a whole (sender known and active, signature, before
decryption; any failure refuses it whole) and then hands each envelope to ``inbox.receive`` exactly as the
federation inbox does, each in its own savepoint: one refused envelope is reported with its protocol code and
does not undo the others. An envelope already received (over HTTP or from an earlier bundle) is answered with
the receipt stored the first time, so importing a bundle twice changes nothing. The receipts are sealed into a
receipts bundle for the way back.

At the sender, importing the receipts bundle verifies each receipt as the delivery worker does
(``verify_receipt`` against the partner's card, for the message id and content hash it sent) and records it
with the worker's own ``queue.record_outcomes``. Whichever comes first, the receipts or the link, the other
finds the work done: the worker's retransmission is answered with the stored receipt (nothing is applied
twice), and a receipt for a message already delivered changes nothing.

Exporting a bundle is delivery's: ``delivery/bundles.py``.
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import orm
from sqlalchemy.exc import IntegrityError

from node.audit import record as audit
from node.exchange.delivery.bundles import bundle_id
from node.exchange.delivery.queue import PENDING, Claim, Outcome, record_outcomes
from node.exchange.delivery.retry import RetryPolicy, Verdict
from node.exchange.inbox.receive import receive
from node.exchange.models import OutboundMessage, Partner
from node.exchange.trust.directory import DatabaseDirectory
from node.exchange.trust.partners import partner_card
from protocol import (
    BUNDLE,
    RECEIPTS,
    BoxCache,
    MalformedError,
    NodeKeys,
    OpenedBundle,
    ProtocolError,
    UnknownSenderError,
    canonical_bytes,
    open_bundle,
    seal_receipts,
    strict_loads,
    verify_receipt,
)

if TYPE_CHECKING:
    from node.exchange.trust.keystore import NodeIdentity

log = logging.getLogger(__name__)

#: The ``worker_id`` receipts imported from a file are recorded under (a receipt counts whoever holds a claim).
IMPORT_WORKER = "bundle-import"
#: Outcomes of one item of an imported bundle.
ACCEPTED, DUPLICATE, REFUSED = "accepted", "duplicate", "refused"
#: Outcomes of one receipt of an imported receipts bundle.
DELIVERED, ALREADY_DELIVERED, NOT_PENDING = "delivered", "already_delivered", "not_pending"
_LOOKUP_CHUNK = 500
#: Envelopes imported between two checkpoints (commits) of a large import (about a second of work).
CHECKPOINT_EVERY = 200


@dataclass(frozen=True)
class ItemResult:
    """What became of one item: its position in the bundle, the message id when known, outcome, error code."""

    index: int
    message_id: str | None
    outcome: str
    code: str | None = None


@dataclass(frozen=True)
class BundleImport:
    """An imported bundle (``kind`` ``ccm_bundle``) or receipts bundle (``ccm_receipts``)."""

    kind: str
    sender: str
    bundle_id: str
    results: tuple[ItemResult, ...]
    receipts: bytes | None = field(default=None, repr=False)  # the receipts bundle to carry back, if any

    def counts(self) -> Counter[str]:
        """How many items had each outcome."""
        return Counter(r.outcome for r in self.results)

    def refusals(self) -> Counter[str]:
        """How many items were refused with each protocol code."""
        return Counter(r.code or "refused" for r in self.results if r.outcome == REFUSED)

    def summary(self) -> list[tuple[str, int]]:
        """Every outcome an import of this kind reports, in the order it is reported, with its count."""
        names = (ACCEPTED, DUPLICATE, REFUSED) if self.kind == BUNDLE else (DELIVERED, ALREADY_DELIVERED,
                                                                            NOT_PENDING, REFUSED)
        counts = self.counts()
        return [(name, counts.get(name, 0)) for name in names]

    @property
    def acknowledged(self) -> int:
        """How many messages the receipts bundle acknowledges (accepted now or earlier)."""
        return sum(1 for r in self.results if r.outcome in (ACCEPTED, DUPLICATE))

def _receive_in_savepoint(session: orm.Session, index: int, item: bytes, *, sender: str, keys: NodeKeys,
                          now: datetime, boxes: BoxCache | None) -> tuple[ItemResult, bytes | None]:
    savepoint = session.begin_nested()
    try:
        answer = receive(session, data=item, keys=keys, now=now, boxes=boxes)
        if answer.message.sender != sender:
            raise UnknownSenderError("envelope from another node than the bundle's sender")
        session.flush()  # a conflict surfaces here, inside the savepoint
    except ProtocolError as exc:
        savepoint.rollback()
        return ItemResult(index, None, REFUSED, exc.code), None
    except IntegrityError:
        savepoint.rollback()
        raise
    savepoint.commit()
    return ItemResult(index, answer.message.message_id, DUPLICATE if answer.duplicate else ACCEPTED), answer.receipt


def _receive_one(session: orm.Session, index: int, item: bytes, *, sender: str, keys: NodeKeys, now: datetime,
                 boxes: BoxCache | None) -> tuple[ItemResult, bytes | None]:
    """One envelope through the inbox, in a savepoint: (its result, the receipt answered, if any)."""
    try:
        return _receive_in_savepoint(session, index, item, sender=sender, keys=keys, now=now, boxes=boxes)
    except IntegrityError:
        # A concurrent delivery stored this message or chain link first: the second look answers it as a
        # retransmission or broken_chain (see inbox.receive).
        return _receive_in_savepoint(session, index, item, sender=sender, keys=keys, now=now, boxes=boxes)


def _import_envelopes(session: orm.Session, opened: OpenedBundle, partner: Partner, *, keys: NodeKeys,
                      now: datetime, boxes: BoxCache | None, checkpoint: Callable[[], object] | None,
                      every: int, identity: NodeIdentity | None) -> tuple[list[ItemResult], bytes | None]:
    results: list[ItemResult] = []
    receipts: list[dict[str, Any]] = []
    for index, item in enumerate(opened.envelopes):
        item_keys = identity.keys_for_envelope(item, now) if identity is not None else keys
        result, receipt = _receive_one(session, index, item, sender=opened.sender, keys=item_keys, now=now,
                                       boxes=boxes)
        results.append(result)
        if receipt is not None:
            if identity is not None:  # during a key overlap: signed by every key the partner may hold for us
                receipt = identity.cosign_receipt(receipt, now)
            receipts.append(strict_loads(receipt))
        if checkpoint is not None and (index + 1) % every == 0:
            checkpoint()
    sealed = None
    if receipts:
        sealed = seal_receipts(keys=keys, recipient=partner_card(partner), receipts=receipts, now=now,
                               boxes=boxes)
    return results, sealed


def _chunks(values: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(values), _LOOKUP_CHUNK):
        yield values[start : start + _LOOKUP_CHUNK]


def _import_receipts(session: orm.Session, opened: OpenedBundle, partner: Partner, *,
                     now: datetime) -> list[ItemResult]:
    ids = sorted({r["message_id"] for r in opened.receipts if isinstance(r.get("message_id"), str)})
    sent: dict[str, OutboundMessage] = {}
    for chunk in _chunks(ids):
        sent.update((m.message_id, m) for m in session.scalars(sa.select(OutboundMessage).where(
            OutboundMessage.partner_id == partner.id, OutboundMessage.message_id.in_(chunk))))
    card = partner_card(partner)
    results: list[ItemResult] = []
    outcomes: list[Outcome] = []
    recorded: set[str] = set()
    for index, receipt in enumerate(opened.receipts):
        named = receipt.get("message_id")
        message = sent.get(named) if isinstance(named, str) else None
        try:
            if message is None:
                raise MalformedError("receipt for no message sent to this partner")
            verify_receipt(receipt, card, sender=opened.recipient, message_id=message.message_id,
                           content_hash=message.message_hash)
        except ProtocolError as exc:
            results.append(ItemResult(index, None, REFUSED, exc.code))
            continue
        if message.status == "delivered" or message.message_id in recorded:
            results.append(ItemResult(index, message.message_id, ALREADY_DELIVERED))
            continue
        if message.status not in PENDING:  # parked or given up meanwhile: the receipt is not recorded
            results.append(ItemResult(index, message.message_id, NOT_PENDING))
            continue
        recorded.add(message.message_id)
        claim = Claim(message.id, message.message_id, partner.id, message.recipient, partner.base_url,
                      partner.card, message.message_hash, message.envelope, now)
        outcomes.append(Outcome(claim, Verdict.DELIVERED, receipt=canonical_bytes(receipt).decode("utf-8")))
        results.append(ItemResult(index, message.message_id, DELIVERED))
    # The worker's own recording: marks the messages delivered with their receipts (the random source and the
    # policy only serve failures, of which there are none here).
    record_outcomes(session, outcomes, worker_id=IMPORT_WORKER, now=now, policy=RetryPolicy(),
                    rng=random.Random(0))  # noqa: S311 - unused jitter source
    return results


def import_file(session: orm.Session, *, data: bytes, keys: NodeKeys, now: datetime,
                boxes: BoxCache | None = None, kind: str | None = None,
                checkpoint: Callable[[], object] | None = None, checkpoint_every: int = CHECKPOINT_EVERY,
                identity: NodeIdentity | None = None) -> BundleImport:
    """Verify a bundle or receipts bundle file and process its items, in the caller's transaction (no commit).

    Args:
        session: the caller's session; roll it back on any exception.
        data: the file's bytes.
        keys: this node's keys.
        now: the current time.
        boxes: the process's shared-key cache.
        kind: ``ccm_bundle`` or ``ccm_receipts`` to accept only that kind; None for either.
        checkpoint: called (e.g. ``session.commit``) after every ``checkpoint_every`` envelopes of a bundle,
            once the bundle as a whole is verified, so that a large import does not hold the database's
            write lock throughout; an import cut short is completed by importing the file again.
        checkpoint_every: how many envelopes between checkpoints.
        identity: this node's identity (``keystore``): during a key rotation's overlap each envelope is opened
            with the key pair it is sealed to and each receipt signed by every key the partner may hold.
    Returns:
        Each item's result, and for a bundle the receipts bundle to carry back (None if nothing was accepted).
    Raises:
        ProtocolError: the bundle is refused whole (nothing was processed): the subclass of the first failing
            check of ``protocol.open_bundle`` (e.g. ``unknown_sender`` for an unknown or suspended partner,
            before any decryption), or ``malformed`` for a kind other than ``kind``.
    """
    directory = DatabaseDirectory(session)
    try:
        open_keys = identity.keys_for_envelope(data, now) if identity is not None else keys
        opened = open_bundle(data, keys=open_keys, directory=directory, now=now, boxes=boxes)
    except ProtocolError as exc:
        log.info("bundle refused whole: %s (%s)", exc.code, exc.message)
        raise
    partner = directory.found
    if partner is None:  # cannot happen: open_bundle asked the directory for the sender
        raise UnknownSenderError("sender not known")
    if kind is not None and opened.kind != kind:
        raise MalformedError(f"a {opened.kind} file, not a {kind}")
    identifier = bundle_id(data)
    if opened.kind == BUNDLE:
        results, receipts = _import_envelopes(session, opened, partner, keys=keys, now=now, boxes=boxes,
                                              checkpoint=checkpoint, every=max(1, checkpoint_every),
                                              identity=identity)
    else:
        results, receipts = _import_receipts(session, opened, partner, now=now), None
    outcome = BundleImport(opened.kind, opened.sender, identifier, tuple(results), receipts)
    detail: dict[str, Any] = {"from": opened.sender, "kind": opened.kind, "items": opened.count,
                              **outcome.counts()}
    audit(session, actor=None, action="receive", object_type="bundle", object_id=identifier, case_id=None,
          now=now, detail=detail)
    return outcome


def import_bundle(session: orm.Session, *, data: bytes, keys: NodeKeys, now: datetime,
                  boxes: BoxCache | None = None) -> BundleImport:
    """``import_file`` for a bundle of envelopes only (see there)."""
    return import_file(session, data=data, keys=keys, now=now, boxes=boxes, kind=BUNDLE)


def import_receipts(session: orm.Session, *, data: bytes, keys: NodeKeys, now: datetime,
                    boxes: BoxCache | None = None) -> BundleImport:
    """``import_file`` for a receipts bundle only (see there)."""
    return import_file(session, data=data, keys=keys, now=now, boxes=boxes, kind=RECEIPTS)
