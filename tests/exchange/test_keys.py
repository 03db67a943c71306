"""Keys over time, in process with a fake clock, on SQLite and PostgreSQL: a rotation in the middle of a
conversation loses nothing, the previous key is refused after the overlap, a revoked key is refused and trust
comes back only through a new fingerprint check, what a partner signed with an older key still verifies, and
every refusal changes nothing.

Göteborg and Sarajevo here have key directories of their own (made afresh for every test), so that a rotation
does not reach the other exchange tests, which share the session's apps. Messages are stored without domain
action (``no_domain_appliers``) except ``key_rotated``, whose applier is under test.
"""

from __future__ import annotations

import json
import random
import shutil
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import nacl.signing
import pytest
import sqlalchemy as sa

from node import create_app
from node.audit import AuditEntry, verify_chain
from node.config import NodeConfig, config_for_tests
from node.errors import Conflict, ValidationFailed
from node.exchange.delivery.worker import DeliveryWorker, WorkerSettings
from node.exchange.keys.revocation import revocation_batches, revoke_keys
from node.exchange.keys.revocation_sending import REVOCATION_PATH, send_revocations
from node.exchange.keys.rotation import apply_key_rotated, keys_thread, rotate_keys
from node.exchange.models import InboundMessage, OutboundMessage
from node.exchange.trust.key_files import KeyChange, install_key_change, key_change_lock, load_history, retired_key_path
from node.exchange.trust.keystore import generate_node_keys, identity_for_app
from node.exchange.trust.models import KeyRevocation, PartnerKey
from node.exchange.trust.partner_keys import signing_key_for, verify_signed_by, verify_stored_receipt
from node.exchange.trust.partners import InvalidCard, PartnerStateError, add_partner, require_sendable, set_status
from protocol import (
    BadSignatureError,
    KeyFileError,
    NodeCard,
    NodeKeys,
    RevokedKeyError,
    canonical_bytes,
    make_card,
    make_revocation,
    seal,
    sign_json,
    strict_loads,
    verify_receipt,
)
from protocol.times import format_time
from tests.exchange.conftest import (
    AGREEMENT,
    NODES,
    POLICY,
    FlaskTransport,
    Node,
    World,
    empty_database,
    note_body,
    thread_id,
)

Post = tuple[int | None, bytes, str | None]


@pytest.fixture(scope="module")
def key_apps(world: World, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Node]:
    """Göteborg and Sarajevo apps on the world's databases, with data directories of their own."""
    root = tmp_path_factory.mktemp("keys")
    made: dict[str, Node] = {}
    for key in ("gbg", "sarajevo"):
        node_id, name, url = NODES[key]
        engine = world.engines[key]
        # The world's apps registered their own data keys in these databases; a fresh data directory has none,
        # and create_app refuses it while the database names a key it lacks. Empty the databases first (as
        # ``nodes`` does before every test) instead of relying on an earlier module having done so: run alone,
        # or after a fresh ``world`` (as under pytest-xdist), the module failed at setup.
        empty_database(engine)
        config = config_for_tests(root / key, engine.url.render_as_string(hide_password=False), node_id=node_id,
                                  name=name, base_url=url)
        app = create_app(config, clock=world.clock, engine=engine)
        app.config["TESTING"] = True
        made[key] = Node(key, app, engine, world.clock)
    return made


@pytest.fixture
def pair(key_apps: dict[str, Node], nodes: dict[str, Node],
         no_domain_appliers: dict[str, Any]) -> Iterator[tuple[Node, Node]]:
    """Fresh keys for both (``nodes`` emptied the databases and reset the clock), trusting each other."""
    no_domain_appliers["key_rotated"] = apply_key_rotated
    for node in key_apps.values():
        data_dir = config(node).data_dir
        shutil.rmtree(data_dir, ignore_errors=True)
        data_dir.mkdir(mode=0o700)
        generate_node_keys(data_dir, node.node_id)
        node.app.extensions.pop("ccm_exchange", None)  # a new key file may reuse the old one's inode
    gbg, sarajevo = key_apps["gbg"], key_apps["sarajevo"]
    gbg.trust(sarajevo)
    sarajevo.trust(gbg)
    yield gbg, sarajevo


@pytest.fixture
def transport(key_apps: dict[str, Node]) -> FlaskTransport:
    return FlaskTransport(key_apps)


def config(node: Node) -> NodeConfig:
    node_config: NodeConfig = node.app.extensions["ccm"].config
    return node_config


def rotate(node: Node, days: float = 30) -> Any:
    with key_change_lock(config(node).data_dir), node.sessionmaker() as session:
        rotation = rotate_keys(session, config(node), now=node.clock.now(), overlap=timedelta(days=days))
        install_key_change(session, rotation.change)
    return rotation


def revoke(node: Node, reason: str = "compromised", kid: str | None = None) -> Any:
    with key_change_lock(config(node).data_dir), node.sessionmaker() as session:
        revocation = revoke_keys(session, config(node), now=node.clock.now(), reason=reason, kid=kid)
        install_key_change(session, revocation.change)
    return revocation


def retired_keys(node: Node, skid: str) -> NodeKeys:
    return NodeKeys.load(retired_key_path(config(node).data_dir, skid))


def drain(node: Node, transport: FlaskTransport) -> None:
    """Deliver everything the node has queued, moving the clock to each retry."""
    worker = DeliveryWorker(sessionmaker=node.sessionmaker, clock=node.clock, transport=transport,
                            settings=WorkerSettings(parallel=1, policy=POLICY), rng=random.Random(7))
    for _ in range(20):
        worker.run(once=True)
        pending = [m for m in node.outbound() if m.status in ("queued", "sending")]
        if not pending:
            return
        node.clock.set(max(node.clock.now(), min(m.next_attempt_at for m in pending)))
    raise AssertionError("the queue did not drain")


def post_sealed(sender: Node, recipient: Node, card: NodeCard, keys: NodeKeys | None = None,
                label: str = "probe") -> Any:
    """Post a message sealed by hand, with ``keys`` (default: the sender's current ones), to ``card``."""
    sealed = seal(keys=keys or sender.identity.keys, recipient=card, msg_type="progress_update",
                  body=note_body(label), thread=thread_id(label), now=sender.clock.now(), agreement=AGREEMENT)
    return recipient.post_inbox(sealed.data)


def post_revocations(node: Node, body: bytes) -> Any:
    return node.client.post(REVOCATION_PATH, data=body, content_type="application/json")


def poster(node: Node) -> Any:
    """``send_revocations``'s ``post``, through the receiving node's test client."""
    def post(url: str, body: bytes, _timeout: float) -> Post:
        assert url == node.base_url + REVOCATION_PATH
        response = post_revocations(node, body)
        return response.status_code, response.data, None

    return post


def code(response: Any) -> tuple[int, str]:
    return response.status_code, response.get_json()["code"]


def signers(receipt: str | None, node_id: str) -> set[str]:
    return set(strict_loads(receipt or "")["signatures"][node_id])


# -- rotation -------------------------------------------------------------------------------------------------


def test_rotation_mid_conversation_loses_nothing(pair: tuple[Node, Node], transport: FlaskTransport) -> None:
    gbg, sarajevo = pair
    old, old_card = gbg.identity.keys, gbg.identity.card
    identity = gbg.identity
    assert gbg.identity is identity  # kept while the key files do not change
    queued = [gbg.send(sarajevo, note_body(f"before {i}"), thread_id("case-1")) for i in range(2)]
    answer = sarajevo.send(gbg, note_body("answer"), thread_id("case-2"))  # sealed to Göteborg's old key

    rotation = rotate(gbg, days=30)
    assert gbg.identity is not identity and gbg.identity.boxes is identity.boxes  # the running app reloaded
    assert gbg.identity.keys.skid == rotation.kid != old.skid and gbg.identity.card.replaces == old.skid
    assert rotation.announced == [sarajevo.node_id] and rotation.not_announced == {}
    after = gbg.send(sarajevo, note_body("after"), thread_id("case-1"))  # signed with the new key
    drain(gbg, transport)  # the old-key messages, the announcement, then the new-key message
    assert [(m.type, m.status) for m in gbg.outbound()] == [
        ("progress_update", "delivered"), ("progress_update", "delivered"), ("key_rotated", "delivered"),
        ("progress_update", "delivered")]
    announcement = gbg.outbound()[2]
    assert announcement.thread == keys_thread(gbg.node_id)
    assert [m.message_id for m in sarajevo.inbound()] == [
        queued[0].message_id, queued[1].message_id, announcement.message_id, after.message_id]

    partner = sarajevo.partner(gbg.node_id)
    assert (partner.signing_kid, partner.status, partner.fingerprint) == (
        rotation.kid, "active", gbg.identity.keys.fingerprint())
    with sarajevo.sessionmaker() as session:
        history = session.scalars(sa.select(PartnerKey).order_by(PartnerKey.id)).all()
        assert [(g.signing_kid, g.trusted_by) for g in history] == [
            (old.skid, "fingerprint"), (rotation.kid, "rotation")]
        assert history[0].accept_until == rotation.overlap_until and history[1].retired_at is None
        details = [json.loads(e.detail or "{}") for e in session.scalars(sa.select(AuditEntry))]
        assert {"key": "rotated", "previous_kid": old.skid, "kid": rotation.kid} in [
            {k: d.get(k) for k in ("key", "previous_kid", "kid")} for d in details]
        assert verify_chain(session)[1] == []

    # Sarajevo's answer was sealed to Göteborg's previous card before it learnt of the rotation, and its worker
    # now checks the receipt against the new card: Göteborg opens it with the retired key and signs with both.
    drain(sarajevo, transport)
    [delivered] = sarajevo.outbound()
    assert (delivered.status, delivered.message_id) == ("delivered", answer.message_id)
    assert signers(delivered.receipt, gbg.node_id) == {old.skid, rotation.kid}
    verify_receipt(strict_loads(delivered.receipt or ""), old_card)
    assert [m.message_id for m in gbg.inbound()] == [answer.message_id]


def test_old_key_is_refused_after_the_overlap(pair: tuple[Node, Node], transport: FlaskTransport) -> None:
    gbg, sarajevo = pair
    old, old_card = gbg.identity.keys, gbg.identity.card
    rotation = rotate(gbg, days=10)
    drain(gbg, transport)
    gbg.clock.advance(days=9, hours=23)
    # in the overlap: Sarajevo takes a message signed with the previous key, Göteborg opens one sealed to it
    assert post_sealed(gbg, sarajevo, sarajevo.identity.card, keys=old, label="late").status_code == 200
    assert post_sealed(sarajevo, gbg, old_card, label="stale card").status_code == 200
    gbg.clock.advance(hours=1)
    assert gbg.clock.now() == rotation.overlap_until
    assert code(post_sealed(gbg, sarajevo, sarajevo.identity.card, keys=old, label="too late")) == (
        401, "unknown_key")
    assert code(post_sealed(sarajevo, gbg, old_card, label="stale card, too late")) == (401, "unknown_key")
    assert post_sealed(gbg, sarajevo, sarajevo.identity.card, label="new key").status_code == 200
    assert post_sealed(sarajevo, gbg, gbg.identity.card, label="new card").status_code == 200
    assert gbg.identity.accepted_retired(gbg.clock.now()) == ()


def test_announcement_must_be_endorsed_and_come_from_the_key_it_replaces(pair: tuple[Node, Node]) -> None:
    gbg, sarajevo = pair
    rotation = rotate(gbg, days=30)
    old, new_card = retired_keys(gbg, rotation.previous_kid), gbg.identity.card
    body = {"new_card": new_card.to_json(), "effective_at": "2026-11-23T09:00:00Z",
            "overlap_until": "2026-12-23T09:00:00Z"}
    self_signed = new_card.to_json()
    self_signed["signatures"] = {gbg.node_id: {new_card.skid: self_signed["signatures"][gbg.node_id][new_card.skid]}}

    def announce(keys: NodeKeys, card: dict[str, Any], label: str) -> Any:
        sealed = seal(keys=keys, recipient=sarajevo.identity.card, msg_type="key_rotated",
                      body={**body, "new_card": card}, thread=thread_id(label), now=gbg.clock.now(),
                      agreement=AGREEMENT)
        return sarajevo.post_inbox(sealed.data)

    assert code(announce(old, self_signed, "unendorsed")) == (401, "bad_signature")
    assert code(announce(gbg.identity.keys, new_card.to_json(), "new key")) == (401, "unknown_key")
    assert sarajevo.partner(gbg.node_id).signing_kid == rotation.previous_kid
    assert sarajevo.count(InboundMessage) == 0 and sarajevo.count(PartnerKey) == 1
    assert announce(old, new_card.to_json(), "endorsed").status_code == 200
    assert sarajevo.partner(gbg.node_id).signing_kid == rotation.kid
    # the same card once more, now that it is current: it replaces nothing
    assert code(announce(old, new_card.to_json(), "again")) == (400, "malformed")


def test_a_rotation_to_a_card_with_the_receivers_own_key_is_refused(pair: tuple[Node, Node]) -> None:
    """A partner's new card may carry no key another node holds: here the receiver's own encryption key."""
    gbg, sarajevo = pair
    old, start = sarajevo.identity.keys, sarajevo.clock.now().replace(microsecond=0)
    reusing = NodeKeys(old.node_id, nacl.signing.SigningKey.generate(), gbg.identity.keys.encryption_key)
    card = make_card(reusing, name=sarajevo.identity.card.name, base_url=sarajevo.identity.card.base_url,
                     valid_from=start, valid_until=start + timedelta(days=365), previous=old)
    body = {"new_card": card.to_json(), "effective_at": format_time(start),
            "overlap_until": format_time(start + timedelta(days=30))}
    message = sarajevo.send(gbg, body, keys_thread(old.node_id), msg_type="key_rotated")
    assert code(gbg.post_inbox(message.envelope)) == (400, "malformed")
    assert gbg.partner(sarajevo.node_id).signing_kid == old.skid and gbg.inbound() == []


def test_rotation_refusals_change_nothing(pair: tuple[Node, Node]) -> None:
    gbg, _ = pair
    before = gbg.identity.keys.skid
    with gbg.sessionmaker() as session:
        for days in (0, 400):
            with pytest.raises(ValidationFailed, match="overlap"):
                rotate_keys(session, config(gbg), now=gbg.clock.now(), overlap=timedelta(days=days))
        rotation = rotate_keys(session, config(gbg), now=gbg.clock.now())
        session.rollback()  # the caller gives up: the prepared files go
        rotation.change.discard()
    with key_change_lock(config(gbg).data_dir), pytest.raises(KeyFileError, match="another key"), \
            key_change_lock(config(gbg).data_dir):
        pass
    assert gbg.identity.keys.skid == before and gbg.count(OutboundMessage) == 0
    assert not list((config(gbg).data_dir / "keys").glob(".*.new"))
    assert load_history(config(gbg).data_dir).retired == ()
    change = KeyChange(config(gbg).data_dir)
    change.install()  # nothing prepared: nothing changes
    assert gbg.identity.keys.skid == before


# -- revocation -----------------------------------------------------------------------------------------------


def test_revoked_key_is_refused_and_trust_needs_a_new_fingerprint(pair: tuple[Node, Node]) -> None:
    gbg, sarajevo = pair
    old, old_card = gbg.identity.keys, gbg.identity.card
    signed_old = gbg.send(sarajevo, note_body("queued before"), thread_id("case-1"))
    waiting = sarajevo.send(gbg, note_body("for gbg"), thread_id("case-2"))
    revocation = revoke(gbg, "compromised")
    assert revocation.kids == [old.skid, old.ekid] and revocation.given_up == 1
    assert [(m.status, m.last_error) for m in gbg.outbound()] == [("undeliverable", "own_key_revoked")]
    assert gbg.identity.keys.skid != old.skid and gbg.identity.card.replaces is None
    assert revocation.fingerprint == gbg.identity.keys.fingerprint()

    with gbg.sessionmaker() as session:
        [outcome] = send_revocations(session, revocation.statements, post=poster(sarajevo))
    assert outcome.accepted and outcome.revoked == sorted([old.skid, old.ekid])
    assert sarajevo.partner(gbg.node_id).status == "key_revoked"
    assert [(m.message_id, m.status, m.last_error) for m in sarajevo.outbound()] == [
        (waiting.message_id, "undeliverable", "partner_key_revoked")]
    # the old key: revoked_key; the new one: unknown until checked; nothing can be sent; resuming is refused
    assert code(post_sealed(gbg, sarajevo, sarajevo.identity.card, keys=old, label="old")) == (403, "revoked_key")
    assert code(post_sealed(gbg, sarajevo, sarajevo.identity.card, label="new")) == (401, "unknown_key")
    with sarajevo.sessionmaker() as session:
        with pytest.raises(PartnerStateError, match="revoked its key"):
            require_sendable(session, gbg.node_id)
        with pytest.raises(PartnerStateError, match="new fingerprint"):
            set_status(session, gbg.node_id, "active", sarajevo.clock.now())
        with pytest.raises(InvalidCard, match="revoked that key"):  # the old card, even with its fingerprint
            add_partner(session, card_data=canonical_bytes(old_card.to_json()), fingerprint=old.fingerprint(),
                        agreement=None, now=sarajevo.clock.now(), own_node_id=sarajevo.node_id)
    with gbg.sessionmaker() as session:  # sending again is harmless
        assert send_revocations(session, revocation.statements, post=poster(sarajevo))[0].revoked == []

    sarajevo.trust(gbg)  # the administrators compared the new fingerprint
    partner = sarajevo.partner(gbg.node_id)
    assert (partner.status, partner.signing_kid, partner.agreement_id) == (
        "active", gbg.identity.keys.skid, AGREEMENT)
    assert post_sealed(gbg, sarajevo, sarajevo.identity.card, label="new").status_code == 200
    assert code(post_sealed(gbg, sarajevo, sarajevo.identity.card, keys=old, label="again"))[1] == "revoked_key"
    assert signed_old.message_id not in {m.message_id for m in sarajevo.inbound()}
    with sarajevo.sessionmaker() as session:
        assert verify_chain(session)[1] == []


def test_compromise_revokes_the_retired_keys_too(pair: tuple[Node, Node], transport: FlaskTransport) -> None:
    gbg, sarajevo = pair
    first = gbg.identity.keys
    rotate(gbg, days=30)  # the announcement (signed with the first key) waits in the queue
    second = gbg.identity.keys
    revocation = revoke(gbg, "compromised")
    assert set(revocation.kids) == {first.skid, first.ekid, second.skid, second.ekid}
    assert revocation.given_up == 1 and gbg.identity.accepted_retired(gbg.clock.now()) == ()
    with gbg.sessionmaker() as session:
        outcomes = send_revocations(session, revocation.statements, post=poster(sarajevo))
    # Sarajevo never saw the second key: it records its revocation (signed by itself) all the same
    assert outcomes[0].accepted and set(outcomes[0].revoked) == set(revocation.kids)
    assert sarajevo.partner(gbg.node_id).status == "key_revoked"


def test_a_retired_generation_is_revoked_alone(pair: tuple[Node, Node], transport: FlaskTransport) -> None:
    gbg, sarajevo = pair
    first = gbg.identity.keys
    rotate(gbg, days=30)
    drain(gbg, transport)
    current = gbg.identity.keys
    with pytest.raises(ValidationFailed, match="not a key of this node"):
        revoke(gbg, "superseded", kid="A" * 22)
    with pytest.raises(ValidationFailed, match="reason"):
        revoke(gbg, "bored", kid=first.skid)
    revocation = revoke(gbg, "superseded", kid=first.ekid)
    assert revocation.kids == [first.skid, first.ekid] and revocation.fingerprint is None
    assert gbg.identity.keys.skid == current.skid and gbg.identity.accepted_retired(gbg.clock.now()) == ()
    with pytest.raises(Conflict, match="revoked already"):
        revoke(gbg, "superseded", kid=first.skid)
    with gbg.sessionmaker() as session:
        send_revocations(session, revocation.statements, post=poster(sarajevo))
    assert sarajevo.partner(gbg.node_id).status == "active"  # its current key is fine
    assert code(post_sealed(gbg, sarajevo, sarajevo.identity.card, keys=first, label="old")) == (403, "revoked_key")
    assert post_sealed(gbg, sarajevo, sarajevo.identity.card, label="current").status_code == 200


def test_revocation_endpoint_refusals_store_nothing(pair: tuple[Node, Node], nodes: dict[str, Node],
                                                    transport: FlaskTransport) -> None:
    gbg, sarajevo = pair
    old = gbg.identity.keys
    statement = make_revocation(old, old.skid, revoked_at=gbg.clock.now(), reason="compromised")
    stranger = nodes["baghdad"].identity.keys
    unknown = make_revocation(stranger, stranger.skid, revoked_at=gbg.clock.now(), reason="retired")
    forged = sign_json({k: v for k, v in statement.items() if k != "signatures"}, gbg.node_id, stranger.signing_key)
    rotate(gbg, days=1)
    drain(gbg, transport)
    gbg.clock.advance(days=2)
    # a key past its overlap, stolen later, may revoke itself but not the current key
    stolen = make_revocation(old, gbg.identity.keys.skid, revoked_at=gbg.clock.now(), reason="compromised")
    refused = [
        (unknown, 404, "unknown_sender"),
        (forged, 401, "unknown_key"),
        ({**statement, "reason": "superseded"}, 401, "bad_signature"),
        ({**statement, "extra": 1}, 400, "malformed"),
    ]
    for doc, status, expected in refused:
        assert code(post_revocations(sarajevo, canonical_bytes([doc]))) == (status, expected)
    assert code(post_revocations(sarajevo, canonical_bytes([statement, stolen]))) == (401, "unknown_key")
    assert code(post_revocations(sarajevo, b'{"not": "a list"}')) == (400, "malformed")
    assert code(post_revocations(sarajevo, canonical_bytes([statement] * 17))) == (400, "malformed")
    assert code(post_revocations(sarajevo, canonical_bytes([statement, unknown]))) == (400, "malformed")
    assert code(post_revocations(sarajevo, b"[" + b" " * 70_000 + b"]")) == (413, "oversized")
    assert sarajevo.client.get(REVOCATION_PATH).status_code == 405
    assert sarajevo.count(KeyRevocation) == 0 and sarajevo.partner(gbg.node_id).status == "active"
    assert len(revocation_batches([statement] * 17)) == 2
    assert post_revocations(sarajevo, canonical_bytes([statement])).status_code == 200  # self-revocation


# -- what older keys signed -----------------------------------------------------------------------------------


def test_stored_receipt_signed_by_an_old_key_still_verifies(pair: tuple[Node, Node],
                                                            transport: FlaskTransport) -> None:
    gbg, sarajevo = pair
    first_card = sarajevo.identity.card
    gbg.send(sarajevo, note_body("kept"), thread_id("case-1"))
    drain(gbg, transport)
    rotate(sarajevo, days=1)
    drain(sarajevo, transport)  # Göteborg takes Sarajevo's new card
    gbg.clock.advance(days=30)  # long after the overlap
    message = gbg.outbound()[0]
    new_card = NodeCard.from_json(json.loads(gbg.partner(sarajevo.node_id).card))
    with pytest.raises(BadSignatureError):  # the current card alone cannot check it
        verify_receipt(strict_loads(message.receipt or ""), new_card)
    partner = gbg.partner(sarajevo.node_id)
    with gbg.sessionmaker() as session:
        receipt = verify_stored_receipt(session, message)
        assert (receipt.message_id, receipt.recipient) == (message.message_id, sarajevo.node_id)
        verify_key = verify_signed_by(session, partner, strict_loads(message.receipt or ""))
        assert bytes(verify_key) == first_card.signing_key
        # what the consent check of a handover signed before the rotation is given (protocol.check_handover)
        assert signing_key_for(session, partner, strict_loads(message.receipt or "")) == verify_key
        assert bytes(signing_key_for(session, partner, {"signatures": {}})) == new_card.signing_key
    # a later revocation of that key does not undo a receipt received before it ...
    statement = make_revocation(retired_keys(sarajevo, first_card.skid), first_card.skid,
                                revoked_at=gbg.clock.now(), reason="retired")
    assert post_revocations(gbg, canonical_bytes([statement])).status_code == 200
    with gbg.sessionmaker() as session:
        assert verify_stored_receipt(session, message).message_id == message.message_id
        # ... but does for one this node got only after it
        message.delivered_at = gbg.clock.now() + timedelta(seconds=1)
        with pytest.raises(RevokedKeyError):
            verify_stored_receipt(session, message)
        with pytest.raises(RevokedKeyError):
            verify_signed_by(session, partner, strict_loads(message.receipt or ""))


def test_identity_for_app_reloads_only_when_the_key_files_change(pair: tuple[Node, Node]) -> None:
    gbg, _ = pair
    first = identity_for_app(gbg.app)
    assert identity_for_app(gbg.app) is first
    (config(gbg).data_dir / "keys" / "card.json").unlink()  # the card is not what is watched
    assert identity_for_app(gbg.app) is first
    revoke(gbg, "retired")
    second = identity_for_app(gbg.app)
    assert second is not first and second.keys.skid != first.keys.skid and second.retired == ()
