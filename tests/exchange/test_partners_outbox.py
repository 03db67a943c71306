"""Trust (card + confirmed fingerprint, bounded URL fetch) and the transactional outbox."""

from __future__ import annotations

import http.server
import ipaddress
import socket
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import nacl.public
import nacl.signing
import pytest

from node.errors import ValidationFailed
from node.exchange.delivery.outbox import MessageRejected, enqueue, messages_for_case
from node.exchange.models import OutboundMessage, Partner
from node.exchange.trust.keystore import load_identity
from node.exchange.trust.partner_keys import KeyReuse
from node.exchange.trust.partners import (
    CardFetchError,
    FingerprintMismatch,
    InvalidCard,
    NoAgreement,
    PartnerExists,
    PartnerNotFound,
    PartnerStateError,
    add_partner,
    fetch_card,
    set_agreement,
    set_status,
)
from node.outbound import OutboundPolicy
from protocol import NodeKeys, canonical_bytes, make_card, sign_json, strict_loads
from tests.exchange.conftest import AGREEMENT, Node, note_body, thread_id

LOOPBACK = OutboundPolicy(allow_loopback=True)  # the card server of these tests listens on 127.0.0.1

pytestmark = pytest.mark.usefixtures("no_domain_appliers")


def _add(node: Node, card: bytes, fingerprint: str, agreement: str | None = AGREEMENT) -> Partner:
    with node.sessionmaker() as session:
        partner = add_partner(session, card_data=card, fingerprint=fingerprint, agreement=agreement,
                              now=node.clock.now(), own_node_id=node.node_id, retention_days=365)
        session.commit()
        return partner


def test_partner_is_trusted_when_the_confirmed_fingerprint_matches(gbg: Node, sarajevo: Node) -> None:
    spoken = sarajevo.identity.keys.fingerprint()  # "12345 67890 ..." as read over the phone
    partner = _add(gbg, sarajevo.card_bytes(), spoken.replace(" ", "-"))
    assert (partner.node_id, partner.status, partner.agreement_id, partner.retention_days) == (
        "ba.cldd-sarajevo", "active", AGREEMENT, 365)
    assert partner.base_url == "http://sarajevo.test" and partner.fingerprint == spoken
    assert partner.signing_kid == sarajevo.identity.keys.skid


def test_fingerprint_mismatch_is_refused_and_nothing_stored(gbg: Node, sarajevo: Node,
                                                            nodes: dict[str, Node]) -> None:
    wrong = nodes["baghdad"].identity.keys.fingerprint()
    with pytest.raises(FingerprintMismatch, match=r"does not match the card of ba\.cldd-sarajevo"):
        _add(gbg, sarajevo.card_bytes(), wrong)
    assert gbg.count(Partner) == 0


def test_card_signed_by_another_key_is_refused(gbg: Node, sarajevo: Node, nodes: dict[str, Node]) -> None:
    card = strict_loads(sarajevo.card_bytes())
    other = strict_loads(nodes["baghdad"].card_bytes())
    card["signing_key"], card["signing_kid"] = other["signing_key"], other["signing_kid"]  # a substituted key
    with pytest.raises(InvalidCard, match="not valid"):
        _add(gbg, canonical_bytes(card), sarajevo.identity.keys.fingerprint())
    assert gbg.count(Partner) == 0


def test_own_card_duplicate_partner_and_bad_agreement_are_refused(gbg: Node, sarajevo: Node) -> None:
    with pytest.raises(InvalidCard, match="own card"):
        _add(gbg, gbg.card_bytes(), gbg.identity.keys.fingerprint())
    with pytest.raises(ValidationFailed, match="agreement id"):
        _add(gbg, sarajevo.card_bytes(), sarajevo.identity.keys.fingerprint(), agreement="has spaces")
    _add(gbg, sarajevo.card_bytes(), sarajevo.identity.keys.fingerprint())
    with pytest.raises(PartnerExists):
        _add(gbg, sarajevo.card_bytes(), sarajevo.identity.keys.fingerprint())
    assert gbg.count(Partner) == 1


def _card_with(node_id: str, signing: nacl.signing.SigningKey, encryption: nacl.public.PrivateKey,
               now: datetime) -> tuple[bytes, str]:
    """A valid self-signed card of ``node_id`` with the given keys, and its fingerprint."""
    card = make_card(NodeKeys(node_id, signing, encryption), name="Elsewhere", base_url="http://elsewhere.test",
                     valid_from=now, valid_until=now + timedelta(days=365))
    return canonical_bytes(card.to_json()), card.fingerprint()


@pytest.mark.parametrize(("reused", "message"), [
    ("signing", r"signing key of the card of iq\.elsewhere \(\S+\) is the signing key of partner "
                r"ba\.cldd-sarajevo"),
    ("encryption", r"encryption key of the card of iq\.elsewhere \(\S+\) is the encryption key of partner "
                   r"ba\.cldd-sarajevo"),
])
def test_a_card_with_another_partners_key_is_refused(gbg: Node, sarajevo: Node, reused: str,
                                                      message: str) -> None:
    _add(gbg, sarajevo.card_bytes(), sarajevo.identity.keys.fingerprint())
    theirs = sarajevo.identity.keys
    signing = theirs.signing_key if reused == "signing" else nacl.signing.SigningKey.generate()
    encryption = theirs.encryption_key if reused == "encryption" else nacl.public.PrivateKey.generate()
    card, fingerprint = _card_with("iq.elsewhere", signing, encryption, gbg.clock.now())
    with pytest.raises(KeyReuse, match=message):
        _add(gbg, card, fingerprint)
    assert gbg.count(Partner) == 1


def test_a_partners_card_trusted_again_may_not_take_another_partners_key(gbg: Node, sarajevo: Node,
                                                                         nodes: dict[str, Node]) -> None:
    """Refreshing a known partner's card (partner add again, e.g. after it revoked its key) checks it too."""
    baghdad = nodes["baghdad"]
    _add(gbg, sarajevo.card_bytes(), sarajevo.identity.keys.fingerprint())
    _add(gbg, baghdad.card_bytes(), baghdad.identity.keys.fingerprint())
    card, fingerprint = _card_with(sarajevo.node_id, baghdad.identity.keys.signing_key,
                                   nacl.public.PrivateKey.generate(), gbg.clock.now())
    with pytest.raises(KeyReuse, match=r"is the signing key of partner iq\.cldd-baghdad"):
        _add(gbg, card, fingerprint)
    assert gbg.partner(sarajevo.node_id).signing_kid == sarajevo.identity.keys.skid


def test_a_card_with_one_key_for_both_uses_is_refused(gbg: Node) -> None:
    signing = nacl.signing.SigningKey.generate()
    card = strict_loads(_card_with("iq.elsewhere", signing, nacl.public.PrivateKey.generate(), gbg.clock.now())[0])
    unsigned = {k: v for k, v in card.items() if k != "signatures"}
    unsigned["encryption_key"], unsigned["encryption_kid"] = card["signing_key"], card["signing_kid"]
    one_key = sign_json(unsigned, "iq.elsewhere", signing)
    with pytest.raises(InvalidCard, match="not valid \\(malformed\\)"):
        _add(gbg, canonical_bytes(one_key), "0" * 60)
    assert gbg.count(Partner) == 0


def test_a_card_with_this_nodes_own_key_is_refused(gbg: Node) -> None:
    own = gbg.identity.keys
    card, fingerprint = _card_with("iq.elsewhere", own.signing_key, nacl.public.PrivateKey.generate(),
                                   gbg.clock.now())
    with gbg.sessionmaker() as session, pytest.raises(KeyReuse, match="is a key of this node"):
        add_partner(session, card_data=card, fingerprint=fingerprint, agreement=AGREEMENT, now=gbg.clock.now(),
                    own_node_id=gbg.node_id, own_kids=gbg.identity.own_kids)
    assert gbg.count(Partner) == 0


def test_expired_card_is_refused(gbg: Node, sarajevo: Node) -> None:
    card = sarajevo.card_bytes()
    gbg.clock.advance(days=800)
    with pytest.raises(InvalidCard, match="expired"):
        _add(gbg, card, sarajevo.identity.keys.fingerprint())


def test_card_is_renewed_when_the_configuration_changes(gbg: Node) -> None:
    config = gbg.app.extensions["ccm"].config
    first = load_identity(config, gbg.clock.now()).card
    again = load_identity(config, gbg.clock.now() + timedelta(days=1)).card
    assert again == first  # stored card reused
    renewed = load_identity(config, gbg.clock.now() + timedelta(days=700)).card
    assert renewed.valid_from > first.valid_from and renewed.signing_key == first.signing_key


# -- the outbox -------------------------------------------------------------------------------------------


def test_enqueue_is_part_of_the_callers_transaction(paired: tuple[Node, Node]) -> None:
    gbg, sarajevo = paired
    with gbg.sessionmaker() as session:
        enqueue(session, keys=gbg.identity.keys, recipient=sarajevo.node_id, msg_type="progress_update",
                body=note_body("x"), thread=thread_id("t"), now=gbg.clock.now())
        session.rollback()
    assert gbg.count(OutboundMessage) == 0
    with gbg.sessionmaker() as session:
        message = enqueue(session, keys=gbg.identity.keys, recipient=sarajevo.node_id,
                          msg_type="progress_update", body=note_body("x"), thread=thread_id("t"),
                          now=gbg.clock.now(), case_id="case-9")
        session.commit()
    assert (message.status, message.attempts, message.recipient, message.type, message.case_id) == (
        "queued", 0, "ba.cldd-sarajevo", "progress_update", "case-9")
    assert message.expires_at == gbg.clock.now() + timedelta(days=30)
    assert strict_loads(message.envelope)["id"] == message.message_id
    assert sarajevo.post_inbox(message.envelope).status_code == 200  # what was stored is what goes


def test_each_partner_and_thread_is_its_own_chain(nodes: dict[str, Node]) -> None:
    gbg, sarajevo, baghdad = nodes["gbg"], nodes["sarajevo"], nodes["baghdad"]
    gbg.trust(sarajevo)
    gbg.trust(baghdad)
    a1 = gbg.send(sarajevo, note_body("a1"), thread_id("A"), case_id="c1")
    b1 = gbg.send(sarajevo, note_body("b1"), thread_id("B"), case_id="c2")
    a2 = gbg.send(sarajevo, note_body("a2"), thread_id("A"), case_id="c1")
    x1 = gbg.send(baghdad, note_body("x1"), thread_id("A"), case_id="c1")
    assert [(m.seq, m.prev) for m in (a1, b1, a2, x1)] == [
        (1, None), (1, None), (2, a1.message_hash), (1, None)]
    with gbg.sessionmaker() as session:
        assert [m.message_id for m in messages_for_case(session, "c1")] == [
            a1.message_id, a2.message_id, x1.message_id]


def test_a_partner_that_cannot_receive_is_refused_with_a_clear_message(gbg: Node, sarajevo: Node) -> None:
    def send() -> None:
        gbg.send(sarajevo, note_body("x"), thread_id("t"))

    with pytest.raises(PartnerNotFound, match="not a partner"):
        send()
    gbg.trust(sarajevo, agreement=None)
    with pytest.raises(NoAgreement, match=r"no data-sharing agreement is recorded for partner ba\.cldd-sar"):
        send()
    with gbg.sessionmaker() as session:
        set_agreement(session, "ba.cldd-sarajevo", AGREEMENT, gbg.clock.now())
        set_status(session, "ba.cldd-sarajevo", "suspended", gbg.clock.now())
        session.commit()
    with pytest.raises(PartnerStateError, match="suspended"):
        send()
    with gbg.sessionmaker() as session:
        set_status(session, "ba.cldd-sarajevo", "active", gbg.clock.now())
        session.commit()
    send()
    with gbg.sessionmaker() as session:
        set_status(session, "ba.cldd-sarajevo", "revoked", gbg.clock.now())
        session.commit()
        with pytest.raises(PartnerStateError, match="revoked"):
            set_status(session, "ba.cldd-sarajevo", "active", gbg.clock.now())
    assert gbg.count(OutboundMessage) == 1


def test_a_body_outside_its_schema_is_rejected_with_field_errors(paired: tuple[Node, Node]) -> None:
    gbg, sarajevo = paired
    with pytest.raises(MessageRejected) as caught:
        gbg.send(sarajevo, {"handover_id": "short", "note": "x"}, thread_id("t"))
    assert caught.value.status == 422 and caught.value.errors
    assert gbg.count(OutboundMessage) == 0


# -- fetching a card by URL -------------------------------------------------------------------------------


class _CardServer(http.server.ThreadingHTTPServer):
    routes: dict[str, Any]
    hits = 0


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _CardServer

    def do_GET(self) -> None:
        self.server.hits += 1
        route = self.server.routes.get(self.path)
        if route is None:
            self.send_response(404)
            self.end_headers()
            return
        status, body, delay, headers = route
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        try:
            for i in range(0, len(body), 64):
                self.wfile.write(body[i:i + 64])
                self.wfile.flush()
                time.sleep(delay)
        except (BrokenPipeError, ConnectionResetError):
            return  # the client gave up, as it should

    def log_message(self, *args: Any) -> None:
        return


@pytest.fixture
def card_server() -> Iterator[_CardServer]:
    server = _CardServer(("127.0.0.1", 0), _Handler)
    server.routes = {}
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_card_fetched_by_url_is_trusted_after_the_fingerprint_check(card_server: _CardServer, gbg: Node,
                                                                    sarajevo: Node) -> None:
    card_server.routes["/federation/v1/card"] = (200, sarajevo.card_bytes(), 0, {})
    base = f"http://127.0.0.1:{card_server.server_address[1]}"
    data = fetch_card(base, policy=LOOPBACK)  # a bare base URL gets the card path
    _add(gbg, data, sarajevo.identity.keys.fingerprint())
    assert gbg.partner("ba.cldd-sarajevo").name == "CLDD Sarajevo"


@pytest.mark.parametrize(("route", "message"), [
    ((200, b"x" * 70_000, 0, {}), "larger than 65536 bytes"),
    ((200, b"x" * 70_000, 0, {"Content-Length": "70000"}), "larger than 65536 bytes"),
    ((200, b"x" * 2_000, 0.05, {}), "longer than 0.3 s"),
    ((302, b"", 0, {"Location": "http://169.254.169.254/"}), "HTTP 302"),
    ((500, b"", 0, {}), "HTTP 500"),
])
def test_card_fetch_is_bounded(card_server: _CardServer, route: tuple[Any, ...], message: str) -> None:
    card_server.routes["/card.json"] = route
    started = time.monotonic()
    with pytest.raises(CardFetchError, match=message):
        fetch_card(f"http://127.0.0.1:{card_server.server_address[1]}/card.json", policy=LOOPBACK, timeout=0.3)
    assert time.monotonic() - started < 2


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.org/card", "gopher://x"])
def test_only_http_urls_are_fetched(url: str) -> None:
    with pytest.raises(CardFetchError, match="only http"):
        fetch_card(url, policy=LOOPBACK)


def test_unreachable_card_url_fails_cleanly() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(CardFetchError, match=f"cannot fetch the card from http://127.0.0.1:{port}/federation/v1/card: "
                                             "connection refused"):
        fetch_card(f"http://127.0.0.1:{port}/", policy=LOOPBACK, timeout=1)


@pytest.mark.parametrize(("host", "reason"), [
    ("[::ffff:127.0.0.1]", "loopback"), ("0.0.0.0", "unspecified"), ("127.1", "loopback"),
    ("2130706433", "loopback"), ("169.254.169.254", "link-local"), ("10.1.2.3", "private"),
    ("192.168.0.10", "private"), ("172.20.0.1", "private"), ("100.64.0.1", "non-public"), ("[fc00::5]", "private"),
    ("[fe80::1]", "link-local"), ("224.0.0.251", "multicast"), ("[::]", "unspecified"), ("[::1]", "loopback"),
    ("[2002:7f00:1::]", "loopback"), ("[64:ff9b::a00:1]", "private"),
])
def test_a_card_is_never_fetched_from_a_local_private_or_special_address(card_server: _CardServer, host: str,
                                                                          reason: str) -> None:
    """Refused before any connection: the card server on 127.0.0.1 is never asked (strict policy)."""
    card_server.routes["/federation/v1/card"] = (200, b"{}", 0, {})
    with pytest.raises(CardFetchError, match=f"a {reason} address: this node does not connect to it"):
        fetch_card(f"http://{host}:{card_server.server_address[1]}/", policy=OutboundPolicy())
    assert card_server.hits == 0


def test_a_name_is_checked_by_the_address_it_resolves_to(card_server: _CardServer,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A public-looking name whose DNS answer is a loopback address is refused before any connection."""
    real = socket.getaddrinfo

    def resolve(host: str, *args: Any, **kwargs: Any) -> Any:
        return real("127.0.0.1" if host == "card.partner.example" else host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    card_server.routes["/federation/v1/card"] = (200, b"{}", 0, {})
    with pytest.raises(CardFetchError, match=r"card\.partner\.example is 127\.0\.0\.1, a loopback address"):
        fetch_card(f"http://card.partner.example:{card_server.server_address[1]}/", policy=OutboundPolicy())
    assert card_server.hits == 0


def test_allow_networks_opens_exactly_those(card_server: _CardServer, sarajevo: Node) -> None:
    card_server.routes["/federation/v1/card"] = (200, sarajevo.card_bytes(), 0, {})
    url = f"http://127.0.0.1:{card_server.server_address[1]}/"
    assert fetch_card(url, policy=OutboundPolicy(allow_networks=(ipaddress.ip_network("127.0.0.0/24"),)))
    with pytest.raises(CardFetchError, match="loopback"):
        fetch_card(url, policy=OutboundPolicy(allow_networks=(ipaddress.ip_network("10.0.0.0/8"),)))
