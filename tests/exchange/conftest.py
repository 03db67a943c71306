"""In-process nodes, each with its own database and keys, talking through their Flask test clients.

``FlaskTransport`` stands in for HTTP: it POSTs envelopes to the receiving app's ``/federation/v1/inbox``
through the test client, and can play a partner that is down. Every test runs on SQLite and on PostgreSQL.
Tests of delivery alone leave the handover domain's appliers out (fixture ``no_domain_appliers``): they send
bodies whose ``handover_id`` names no real handover.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import orm

from node import create_app
from node.clock import FakeClock
from node.config import config_for_tests
from node.db import make_engine, make_sessionmaker
from node.exchange.delivery.outbox import enqueue
from node.exchange.delivery.retry import RetryPolicy
from node.exchange.delivery.transport import INBOX_PATH, DeliveryAnswer
from node.exchange.delivery.worker import DeliveryWorker, WorkerSettings
from node.exchange.inbox import dispatch
from node.exchange.models import InboundMessage, OutboundMessage, Partner
from node.exchange.trust.keystore import NodeIdentity, generate_node_keys, identity_for_app
from node.exchange.trust.partners import add_partner
from node.migrate import target_metadata, upgrade

SAMPLES = Path(__file__).resolve().parents[2] / "protocol" / "vectors" / "sample_bodies.json"
AGREEMENT = "dsa-gi-cldd-2026"
NODES = {
    "gbg": ("se.gi-goteborg", "Göteborgs-Initiativet", "http://gbg.test"),
    "sarajevo": ("ba.cldd-sarajevo", "CLDD Sarajevo", "http://sarajevo.test"),
    "baghdad": ("iq.cldd-baghdad", "CLDD Baghdad", "http://baghdad.test"),
}


def samples() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SAMPLES.read_text(encoding="utf-8"))
    return data


def thread_id(label: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(label.encode()).digest()).decode()[:22]


def note_body(text: str, handover_id: str = "E4av5ZhRjMT3kWfufcUIGQ") -> dict[str, Any]:
    """A minimal valid progress_update body."""
    return {"handover_id": handover_id, "update_id": f"u-{hashlib.sha256(text.encode()).hexdigest()[:12]}",
            "at": "2026-11-20T10:00:00Z", "note": text}


@dataclass
class Node:
    key: str
    app: Flask
    engine: sa.Engine
    clock: FakeClock
    client: FlaskClient = field(init=False)

    def __post_init__(self) -> None:
        self.client = self.app.test_client()
        self.sessionmaker: orm.sessionmaker[orm.Session] = make_sessionmaker(self.engine)

    @property
    def node_id(self) -> str:
        return NODES[self.key][0]

    @property
    def base_url(self) -> str:
        return NODES[self.key][2]

    @property
    def identity(self) -> NodeIdentity:
        return identity_for_app(self.app)

    def card_bytes(self) -> bytes:
        response = self.client.get("/federation/v1/card")
        assert response.status_code == 200
        return response.data

    def trust(self, other: Node, agreement: str | None = AGREEMENT) -> Partner:
        with self.sessionmaker() as session:
            partner = add_partner(session, card_data=other.card_bytes(),
                                  fingerprint=other.identity.keys.fingerprint(), agreement=agreement,
                                  now=self.clock.now(), own_node_id=self.node_id)
            session.commit()
            return partner

    def send(self, other: Node, body: dict[str, Any], thread: str, msg_type: str = "progress_update",
             case_id: str | None = None) -> OutboundMessage:
        with self.sessionmaker() as session:
            message = enqueue(session, keys=self.identity.keys, recipient=other.node_id, msg_type=msg_type,
                              body=body, thread=thread, now=self.clock.now(), case_id=case_id,
                              boxes=self.identity.boxes)
            session.commit()
            return message

    def count(self, model: type[Any]) -> int:
        with self.sessionmaker() as session:
            return int(session.scalar(sa.select(sa.func.count()).select_from(model)) or 0)

    def outbound(self) -> list[OutboundMessage]:
        with self.sessionmaker() as session:
            return list(session.scalars(sa.select(OutboundMessage).order_by(OutboundMessage.id)))

    def inbound(self) -> list[InboundMessage]:
        with self.sessionmaker() as session:
            return list(session.scalars(sa.select(InboundMessage).order_by(InboundMessage.id)))

    def partner(self, node_id: str) -> Partner:
        with self.sessionmaker() as session:
            partner = session.scalar(sa.select(Partner).where(Partner.node_id == node_id))
            assert partner is not None
            return partner

    def post_inbox(self, data: bytes) -> Any:
        return self.client.post(INBOX_PATH, data=data, content_type="application/json")


class FlaskTransport:
    """Delivers through the receivers' test clients; base URLs in ``down`` fail like a dead host."""

    def __init__(self, nodes: dict[str, Node]) -> None:
        self.by_url = {n.base_url: n for n in nodes.values()}
        self.down: set[str] = set()
        self.calls: list[str] = []
        self.override: Callable[[str, bytes], DeliveryAnswer | None] | None = None

    def deliver(self, base_url: str, envelope: bytes) -> DeliveryAnswer:
        self.calls.append(base_url)
        if self.override is not None:
            answer = self.override(base_url, envelope)
            if answer is not None:
                return answer
        if base_url in self.down:
            return DeliveryAnswer(None, error="connection_failed")
        response = self.by_url[base_url].post_inbox(envelope)
        return DeliveryAnswer(response.status_code, response.data, None,
                              float(response.headers["Retry-After"]) if "Retry-After" in response.headers
                              else None)

    def close(self) -> None:
        """Nothing to release: the test clients hold no connections."""


@dataclass
class World:
    """The apps of one database flavour, built once per session (building an app takes ~0.1 s)."""

    clock: FakeClock
    engines: dict[str, sa.Engine]
    apps: dict[str, Flask]


START = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    clock = FakeClock(START)
    engines: dict[str, sa.Engine] = {}
    apps: dict[str, Flask] = {}
    root = tmp_path_factory.mktemp(f"exchange-{request.param}")
    for key, (node_id, name, url) in NODES.items():
        if request.param == "sqlite":
            database_url = f"sqlite:///{root / f'{key}.db'}"
        else:
            make: Callable[[], str] = request.getfixturevalue("make_pg_database")
            database_url = make()
        engines[key] = make_engine(database_url)
        upgrade(engines[key])
        data_dir = root / key
        data_dir.mkdir()
        generate_node_keys(data_dir, node_id)
        config = config_for_tests(data_dir, database_url, node_id=node_id, name=name, base_url=url)
        apps[key] = create_app(config, clock=clock, engine=engines[key])
        apps[key].config["TESTING"] = True
    yield World(clock, engines, apps)
    for engine in engines.values():
        engine.dispose()


def empty_database(engine: sa.Engine) -> None:
    """Delete every row (the data key registry too), as `nodes` does before every test."""
    with engine.begin() as conn:
        for table in reversed(target_metadata().sorted_tables):
            conn.execute(table.delete())


@pytest.fixture
def no_domain_appliers(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Messages are stored and acknowledged only (the handover domain's appliers are set aside); a test may
    register its own applier in the returned dict. Modules that test delivery alone use it for every test."""
    appliers: dict[str, Any] = {}
    monkeypatch.setattr(dispatch, "_APPLIERS", appliers)
    return appliers


@pytest.fixture
def nodes(world: World) -> dict[str, Node]:
    """Göteborg, Sarajevo and Baghdad with empty databases, at the same fake time."""
    world.clock.set(START)
    made: dict[str, Node] = {}
    for key in NODES:
        empty_database(world.engines[key])
        made[key] = Node(key, world.apps[key], world.engines[key], world.clock)
    return made


@pytest.fixture
def gbg(nodes: dict[str, Node]) -> Node:
    return nodes["gbg"]


@pytest.fixture
def sarajevo(nodes: dict[str, Node]) -> Node:
    return nodes["sarajevo"]


@pytest.fixture
def paired(gbg: Node, sarajevo: Node) -> tuple[Node, Node]:
    """Göteborg and Sarajevo trust each other under the same agreement."""
    gbg.trust(sarajevo)
    sarajevo.trust(gbg)
    return gbg, sarajevo


@pytest.fixture
def transport(nodes: dict[str, Node]) -> FlaskTransport:
    return FlaskTransport(nodes)


POLICY = RetryPolicy(min_interval=10.0, max_interval=600.0, horizon=timedelta(days=14))


@pytest.fixture
def make_worker(transport: FlaskTransport, world: World) -> Callable[..., DeliveryWorker]:
    clock = world.clock

    def make(node: Node, parallel: int = 1, policy: RetryPolicy = POLICY, seed: int = 7) -> DeliveryWorker:
        return DeliveryWorker(sessionmaker=node.sessionmaker, clock=clock, transport=transport,
                              settings=WorkerSettings(parallel=parallel, policy=policy),
                              rng=random.Random(seed), worker_id=f"test-{node.key}")

    return make


from tests.exchange.desks import desks  # noqa: E402, F401  (the fixture, for every exchange test module)
