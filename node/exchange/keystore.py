"""The node's own identity: its private keys (``DATA_DIR/keys/node.key``, mode 0600) and its signed card.

``ccm-node init`` generates the keys. The card (``DATA_DIR/keys/card.json``, public) is made from the keys and
the node's configured name and URL, self-signed, and remade when the configuration changed or the card nears
the end of its validity. A process loads its identity once: the web app keeps it in
``app.extensions["ccm_exchange"]`` (see :func:`identity_for_app`), a delivery worker holds its own.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from flask import Flask

from node.config import NodeConfig
from protocol import BoxCache, KeyFileError, NodeCard, NodeKeys, make_card, verify_card
from protocol.cards import card_from_bytes
from protocol.errors import ProtocolError

log = logging.getLogger(__name__)

KEY_DIR = "keys"
KEY_FILE = "node.key"
CARD_FILE = "card.json"
CARD_VALIDITY = timedelta(days=730)
CARD_RENEW_BEFORE = timedelta(days=60)


def key_path(data_dir: Path) -> Path:
    return data_dir / KEY_DIR / KEY_FILE


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
    """The node's current card: the stored one if it still fits, else a fresh one (stored atomically).

    Args:
        config: the node's configuration (name and base URL go on the card).
        keys: the node's keys (the card carries their public halves and is signed by them).
        now: the current time.
    Returns:
        A self-signed card valid at ``now``.
    """
    path = config.data_dir / KEY_DIR / CARD_FILE
    try:
        card = card_from_bytes(path.read_bytes())
        if _card_matches(card, keys, config, now):
            return card
    except (OSError, ProtocolError):
        pass
    start = now.replace(microsecond=0)
    card = make_card(keys, name=config.name, base_url=config.base_url, valid_from=start,
                     valid_until=start + CARD_VALIDITY)
    temporary = path.with_name(f".{CARD_FILE}.{os.getpid()}.{threading.get_ident()}")
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        temporary.write_text(json.dumps(card.to_json(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        os.replace(temporary, path)
    except OSError as exc:  # a read-only data directory: each process then signs its own card
        log.warning("cannot store the node card in %s (%s)", path, exc.strerror)
    return card


@dataclass
class NodeIdentity:
    """What the exchange needs about this node in one process: keys, card, and the shared-key cache."""

    keys: NodeKeys
    card: NodeCard
    boxes: BoxCache = field(default_factory=BoxCache)


def load_identity(config: NodeConfig, now: datetime) -> NodeIdentity:
    """Load the node's keys and card.

    Raises:
        KeyFileError: the key file is missing, too permissive or malformed.
    """
    keys = NodeKeys.load(key_path(config.data_dir))
    if keys.node_id != config.node_id:
        raise KeyFileError("key file belongs to another node id")
    return NodeIdentity(keys, load_or_make_card(config, keys, now))


_APP_LOCK = threading.Lock()


def identity_for_app(app: Flask) -> NodeIdentity:
    """The app's identity, loaded on first use and kept for the life of the process.

    Raises:
        KeyFileError: as :func:`load_identity`.
    """
    identity: NodeIdentity | None = app.extensions.get("ccm_exchange")
    if identity is None:
        with _APP_LOCK:
            identity = app.extensions.get("ccm_exchange")
            if identity is None:
                ctx = app.extensions["ccm"]
                identity = load_identity(ctx.config, ctx.clock.now())
                app.extensions["ccm_exchange"] = identity
    return identity
