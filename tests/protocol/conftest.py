"""Protocol test fixtures: fixed keys and cards, a fixed clock, an in-memory directory and history."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from protocol import BoxCache, NodeCard, NodeKeys, PartnerView, make_card

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
THREAD = "case-thread-00000000001"[:22]
SAMPLES = Path(__file__).resolve().parents[2] / "protocol" / "vectors" / "sample_bodies.json"


def keys_for(node_id: str, label: str = "") -> NodeKeys:
    return NodeKeys.from_seed(node_id, (node_id + label).encode().ljust(32, b"\0")[:32])


def card_for(keys: NodeKeys, **kwargs: Any) -> NodeCard:
    params: dict[str, Any] = {
        "name": keys.node_id, "base_url": f"https://{keys.node_id}.example",
        "valid_from": NOW - timedelta(days=30), "valid_until": NOW + timedelta(days=365),
    }
    params.update(kwargs)
    return make_card(keys, **params)


class Directory:
    """In-memory partner directory."""

    def __init__(self, *cards: NodeCard, revoked: frozenset[str] = frozenset()) -> None:
        self.views = {c.node_id: PartnerView.from_cards([c], revoked) for c in cards}

    def partner(self, node_id: str) -> PartnerView | None:
        return self.views.get(node_id)


class History:
    """In-memory inbox history that records what it is told was accepted."""

    def __init__(self) -> None:
        self.ids: set[tuple[str, str]] = set()
        self.heads: dict[tuple[str, str], str] = {}

    def seen(self, sender: str, message_id: str) -> bool:
        return (sender, message_id) in self.ids

    def chain_head(self, sender: str, thread: str) -> str | None:
        return self.heads.get((sender, thread))

    def accept(self, sender: str, message_id: str, thread: str, digest: str) -> None:
        self.ids.add((sender, message_id))
        self.heads[(sender, thread)] = digest


@pytest.fixture(scope="session")
def samples() -> dict[str, Any]:
    bodies: dict[str, Any] = json.loads(SAMPLES.read_text("utf-8"))
    return bodies


@pytest.fixture(scope="session")
def se_keys() -> NodeKeys:
    return keys_for("se.gi-goteborg")


@pytest.fixture(scope="session")
def iq_keys() -> NodeKeys:
    return keys_for("iq.cldd-baghdad")


@pytest.fixture(scope="session")
def ba_keys() -> NodeKeys:
    return keys_for("ba.cldd-sarajevo")


@pytest.fixture(scope="session")
def se_card(se_keys: NodeKeys) -> NodeCard:
    return card_for(se_keys)


@pytest.fixture(scope="session")
def iq_card(iq_keys: NodeKeys) -> NodeCard:
    return card_for(iq_keys)


@pytest.fixture(scope="session")
def ba_card(ba_keys: NodeKeys) -> NodeCard:
    return card_for(ba_keys)


@pytest.fixture
def directory(se_card: NodeCard, ba_card: NodeCard) -> Directory:
    """The receiver's (iq.cldd-baghdad) directory: knows se.gi-goteborg and ba.cldd-sarajevo."""
    return Directory(se_card, ba_card)


@pytest.fixture
def history() -> History:
    return History()


@pytest.fixture(scope="session")
def boxes() -> BoxCache:
    return BoxCache()
