"""The node's own identity in a process: its keys, its card, and its retired keys still in their overlap.

The files are described in ``key_files.py``. ``ccm-node init`` generates the keys. The card is made from the
keys and the node's configured name and URL, self-signed, and remade when the configuration changed or the
card nears the end of its validity; after a rotation, the card issued with the keys (endorsed by the previous
key) is preferred over a fresh one.

A process keeps its identity in memory (the web app in ``app.extensions["ccm_exchange"]``, see
:func:`identity_for_app`) and reloads it when ``node.key`` or ``history.json`` changed on disk (a rotation or
revocation by ``ccm-node keys``) or its card is no longer current, so running gunicorn workers pick up a
rotation with their next request. During an overlap the identity opens envelopes sealed to the previous
encryption key and signs receipts with both signing keys (:class:`NodeIdentity`).
"""

from __future__ import annotations

import functools
import logging
import os
import re
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from flask import Flask

from node.config import NodeConfig
from node.exchange.trust.key_files import (
    CARD_FILE,
    CARDS_DIR,
    HISTORY_FILE,
    KEY_DIR,
    KEY_FILE,
    KeyHistory,
    RetiredGeneration,
    card_bytes,
    key_path,
    load_history,
    retired_key_path,
)
from node.private_files import replace_private
from protocol import BoxCache, KeyFileError, NodeCard, NodeKeys, canonical_bytes, make_card, sign_json, verify_card
from protocol.canonical import strict_loads
from protocol.cards import CLOCK_SKEW, card_from_bytes
from protocol.errors import ProtocolError

log = logging.getLogger(__name__)

CARD_VALIDITY = timedelta(days=730)
CARD_RENEW_BEFORE = timedelta(days=60)
#: The receiver's key id in a canonical envelope: after "ct", "ekid", ..., "nonce", near its end.
_RKID = re.compile(rb',"rkid":"([A-Za-z0-9_-]{22})"')
_RKID_TAIL = 1024


def generate_node_keys(data_dir: Path, node_id: str) -> NodeKeys:
    """Create the node's key pair in ``DATA_DIR/keys/node.key`` (directory 0700, file 0600).

    Raises:
        KeyFileError: a key file exists already (keys are never overwritten).
    """
    directory = data_dir / KEY_DIR
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    keys = NodeKeys.generate(node_id)
    keys.save(key_path(data_dir))
    return keys


# -- the card ---------------------------------------------------------------------------------------------


def _card_matches(card: NodeCard, keys: NodeKeys, config: NodeConfig, now: datetime) -> bool:
    if (card.node_id, card.name, card.base_url, card.signing_key, card.encryption_key) != (
        keys.node_id, config.name, config.base_url, keys.signing_public, keys.encryption_public,
    ):
        return False
    if card.valid_until - CARD_RENEW_BEFORE <= now:
        return False
    try:
        verify_card(card, now)
    except ProtocolError:
        return False
    return True


def load_or_make_card(config: NodeConfig, keys: NodeKeys, now: datetime) -> NodeCard:
    """The node's current card: the stored one if it still fits, else the card issued with these keys (the
    endorsed card of a rotation), else a fresh one (stored atomically).

    Args:
        config: the node's configuration (name and base URL go on the card).
        keys: the node's keys (the card carries their public halves and is signed by them).
        now: the current time.
    Returns:
        A self-signed card valid at ``now``.
    """
    path = config.data_dir / KEY_DIR / CARD_FILE
    for candidate in (path, config.data_dir / KEY_DIR / CARDS_DIR / f"{keys.skid}.json"):
        try:
            card = card_from_bytes(candidate.read_bytes())
        except (OSError, ProtocolError):
            continue
        if _card_matches(card, keys, config, now):
            if candidate != path:
                _store_card(path, card)
            return card
    start = now.replace(microsecond=0)
    card = make_card(keys, name=config.name, base_url=config.base_url, valid_from=start,
                     valid_until=start + CARD_VALIDITY)
    _store_card(path, card)
    return card


def _store_card(path: Path, card: NodeCard) -> None:
    try:
        replace_private(path, card_bytes(card))
    except OSError as exc:  # a read-only data directory: each process then signs its own card
        log.warning("cannot store the node card in %s (%s)", path, exc.strerror)


# -- the identity in a process ----------------------------------------------------------------------------


@dataclass(frozen=True)
class RetiredKeys:
    """A previous generation's private keys with its public facts."""

    keys: NodeKeys
    generation: RetiredGeneration

    def accepted(self, now: datetime) -> bool:
        """Still in its overlap and not revoked: it opens messages sealed to it and co-signs receipts."""
        return self.generation.revoked_at is None and now < self.generation.accept_until


@dataclass
class NodeIdentity:
    """What the exchange needs about this node in one process: keys, card, retired keys, the shared-key cache."""

    keys: NodeKeys
    card: NodeCard
    boxes: BoxCache = field(default_factory=BoxCache)
    retired: tuple[RetiredKeys, ...] = ()
    history: KeyHistory = field(default_factory=KeyHistory)
    stamp: tuple[Any, ...] = ()

    @property
    def own_kids(self) -> frozenset[str]:
        """Every key id this node has held: current, retired and revoked (no partner's card may carry one)."""
        return frozenset({self.keys.skid, self.keys.ekid,
                          *(kid for g in self.history.retired for kid in (g.skid, g.ekid))})

    def accepted_retired(self, now: datetime) -> tuple[NodeKeys, ...]:
        """The retired keys still accepted at ``now`` (their overlap has not ended; not revoked)."""
        return tuple(r.keys for r in self.retired if r.accepted(now))

    def keys_for_envelope(self, data: bytes, now: datetime) -> NodeKeys:
        """The key pair a received envelope is sealed to: the current one, or a retired one still in its
        overlap when the envelope's ``rkid`` names it (a partner that has not yet taken our new card). Only a
        hint for choosing the key: ``open_envelope`` verifies everything, and any other ``rkid`` gets the
        current keys (and is refused there)."""
        if not self.retired:
            return self.keys
        match = _RKID.search(data, max(0, len(data) - _RKID_TAIL))
        if match is None:
            return self.keys
        rkid = match.group(1).decode("ascii")
        return next((k for k in self.accepted_retired(now) if k.ekid == rkid), self.keys)

    def cosign_receipt(self, receipt: bytes, now: datetime) -> bytes:
        """A receipt signed by every key a partner may hold for us during an overlap (current and retired),
        so that it verifies whichever of our cards the partner has; unchanged outside an overlap.

        Args:
            receipt: the canonical receipt this node signed (``inbox.receive``).
            now: the current time.
        Returns:
            Its canonical bytes with the missing signatures added.
        """
        signers = (self.keys, *self.accepted_retired(now))
        if len(signers) == 1:
            return receipt
        doc = strict_loads(receipt)
        present = doc.get("signatures", {}).get(self.keys.node_id, {})
        for keys in signers:
            if keys.skid not in present:
                doc = sign_json(doc, keys.node_id, keys.signing_key)
        return canonical_bytes(doc)


@functools.lru_cache(maxsize=64)
def _watched(data_dir: Path) -> tuple[str, str]:
    return str(data_dir / KEY_DIR / KEY_FILE), str(data_dir / KEY_DIR / HISTORY_FILE)


def key_stamp(data_dir: Path) -> tuple[Any, ...]:
    """What changes when the key files change (inode, size, modification time of node.key and history)."""
    stamp: list[Any] = []
    for path in _watched(data_dir):
        try:
            st = os.stat(path)
            stamp.append((st.st_ino, st.st_size, st.st_mtime_ns))
        except OSError:
            stamp.append(None)
    return tuple(stamp)


def load_identity(config: NodeConfig, now: datetime, boxes: BoxCache | None = None) -> NodeIdentity:
    """Load the node's keys, card and retired keys.

    Args:
        config: the node's configuration.
        now: the current time.
        boxes: a shared-key cache to keep (on a reload).
    Raises:
        KeyFileError: a key file is missing, too permissive or malformed, or belongs to another node.
    """
    stamp = key_stamp(config.data_dir)
    keys = NodeKeys.load(key_path(config.data_dir))
    if keys.node_id != config.node_id:
        raise KeyFileError("key file belongs to another node id")
    history = load_history(config.data_dir)
    retired: list[RetiredKeys] = []
    for generation in history.retired:
        if generation.skid == keys.skid or generation.revoked_at is not None:
            continue
        try:
            old = NodeKeys.load(retired_key_path(config.data_dir, generation.skid))
        except KeyFileError as exc:
            log.warning("retired key %s cannot be loaded (%s)", generation.skid, exc.message)
            continue
        retired.append(RetiredKeys(old, generation))
    return NodeIdentity(keys, load_or_make_card(config, keys, now), boxes or BoxCache(), tuple(retired), history,
                        stamp)


_APP_LOCK = threading.Lock()


def _card_current(card: NodeCard, now: datetime) -> bool:
    """Whether a process may keep serving its card (valid now, not yet due for renewal)."""
    return card.valid_from - CLOCK_SKEW <= now < card.valid_until - CARD_RENEW_BEFORE


def identity_for_app(app: Flask) -> NodeIdentity:
    """The app's identity, loaded on first use and again when the key files changed or the card nears its end.

    Raises:
        KeyFileError: as :func:`load_identity`.
    """
    ctx = app.extensions["ccm"]
    identity: NodeIdentity | None = app.extensions.get("ccm_exchange")
    stamp = key_stamp(ctx.config.data_dir)
    if identity is not None and identity.stamp == stamp and _card_current(identity.card, ctx.clock.now()):
        return identity
    with _APP_LOCK:
        current: NodeIdentity | None = app.extensions.get("ccm_exchange")
        if current is None or current is identity:
            current = load_identity(ctx.config, ctx.clock.now(), current.boxes if current else None)
            app.extensions["ccm_exchange"] = current
    return current
