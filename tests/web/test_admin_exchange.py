"""The node administrator's exchange pages: the node, partners (add with the fingerprint comparison, suspend,
resume, revoke, agreement) and the delivery queue (retry, bundle export and import). Runs on SQLite and
PostgreSQL; the admin signs in with a known TOTP secret."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from io import BytesIO
from typing import Any

import pyotp
import pytest
import sqlalchemy as sa
from flask import Flask

from node.accounts import User
from node.audit import AuditEntry
from node.clock import FakeClock
from node.db import make_sessionmaker
from node.exchange.delivery.outbox import enqueue
from node.exchange.models import OutboundMessage, Partner
from node.exchange.trust.keystore import identity_for_app
from protocol import NodeKeys, canonical_bytes, make_card, seal_bundle
from protocol.cards import card_from_bytes
from tests.web.conftest import PASSWORD, WebClient

SECRET = pyotp.random_base32()
PARTNER = "ba.cldd-sarajevo"
AGREEMENT = "dsa-gbg-sarajevo-2026"


def read(engine: sa.Engine, query: Any) -> Any:
    with make_sessionmaker(engine)() as session:
        return session.scalars(query).all()


@pytest.fixture
def admin(app: Flask, make_web_user: Callable[..., User], clock: FakeClock) -> WebClient:
    user = make_web_user("admin", totp_secret=SECRET)
    browser = WebClient(app.test_client(), user)
    browser.get("/login")
    assert browser.post("/login", {"username": user.username, "password": PASSWORD}).status_code == 302
    browser.get("/login/code")
    answer = browser.post("/login/code", {"code": pyotp.TOTP(SECRET).at(clock.now())})
    assert answer.status_code == 302, browser.text(answer)[:500]
    assert browser.get("/").status_code == 200
    return browser


@pytest.fixture
def partner_keys() -> NodeKeys:
    return NodeKeys.generate(PARTNER)


@pytest.fixture
def partner_card(partner_keys: NodeKeys, clock: FakeClock) -> bytes:
    now = clock.now()
    card = make_card(partner_keys, name="CLDD Sarajevo", base_url="https://sarajevo.example",
                     valid_from=now - timedelta(days=1), valid_until=now + timedelta(days=700))
    return canonical_bytes(card.to_json())


def _upload(browser: WebClient, card: bytes) -> Any:
    return browser.post("/admin/partners/compare", {"card_file": (BytesIO(card), "sarajevo.card.json")},
                        content_type="multipart/form-data")


def _hidden_card(html: str) -> str:
    return html.split('name="card" value="')[1].split('"')[0]


def _trusted(browser: WebClient, card: bytes, engine: sa.Engine) -> None:
    page = browser.text(_upload(browser, card))
    fingerprint = card_from_bytes(card).fingerprint()
    answer = browser.post("/admin/partners/trust", {"card": _hidden_card(page), "fingerprint": fingerprint,
                                                    "agreement": AGREEMENT})
    assert answer.status_code == 302, browser.text(answer)[:2000]


def _audit(engine: sa.Engine, action: str, object_type: str) -> list[AuditEntry]:
    return list(read(engine, sa.select(AuditEntry).where(AuditEntry.action == action,
                                                         AuditEntry.object_type == object_type)))


def _queue(app: Flask, engine: sa.Engine, clock: FakeClock, **changes: Any) -> OutboundMessage:
    """A message queued for the partner (as the handover services queue one), then ``changes`` applied."""
    identity = identity_for_app(app)
    thread = changes.pop("thread", "E4av5ZhRjMT3kWfufcUIGQ")
    with make_sessionmaker(engine)() as session:
        queued = enqueue(session, keys=identity.keys, recipient=PARTNER, msg_type="progress_update",
                         body={"handover_id": "E4av5ZhRjMT3kWfufcUIGQ", "update_id": "u-1",
                               "at": "2026-11-20T10:00:00Z", "note": "a note"},
                         thread=thread, now=clock.now(), boxes=identity.boxes)
        session.flush()
        message = session.scalars(sa.select(OutboundMessage)
                                  .where(OutboundMessage.message_id == queued.message_id)).one()
        for key, value in changes.items():
            setattr(message, key, value)
        session.commit()
        session.expunge(message)
    return message


def test_every_page_opens_for_the_admin(admin: WebClient, app: Flask, engine: sa.Engine,
                                        partner_card: bytes) -> None:
    node = admin.text(admin.get("/admin/node"))
    fingerprint = identity_for_app(app).keys.fingerprint()
    assert all(f'<span class="fingerprint__group">{group}</span>' in node for group in fingerprint.split())
    assert "Database" in node and "Healthy" in node and "Delivery worker" in node and "Free on its disk" in node
    card = admin.get("/admin/node/card")
    assert card.headers["Content-Disposition"].startswith("attachment;")
    assert card.get_data() == app.test_client().get("/federation/v1/card").get_data()
    assert "no partners yet" in admin.text(admin.get("/admin/partners"))
    assert "Card address" in admin.text(admin.get("/admin/partners/add"))
    assert "Deliveries" in admin.text(admin.get("/admin/deliveries"))
    _trusted(admin, partner_card, engine)
    listing = admin.text(admin.get("/admin/partners"))
    assert "CLDD Sarajevo" in listing and AGREEMENT in listing
    detail = admin.text(admin.get(f"/admin/partners/{PARTNER}"))
    assert "Key history" in detail and "Current" in detail and "Last contact" in detail
    assert admin.get("/admin/partners/nobody.here").status_code == 404


def test_a_counsellor_gets_403(web_client: Callable[..., WebClient], app: Flask) -> None:
    browser = web_client("counsellor", "gbg")
    for url in ("/admin/node", "/admin/node/card", "/admin/partners", "/admin/partners/add",
                f"/admin/partners/{PARTNER}", "/admin/deliveries"):
        assert browser.get(url).status_code == 403, url
    for url in (f"/admin/partners/{PARTNER}/suspend", "/admin/partners/trust", "/admin/partners/compare",
                "/admin/deliveries/1/retry", "/admin/deliveries/export", "/admin/deliveries/import"):
        assert browser.post(url, {}).status_code == 403, url


def test_adding_from_a_file_with_a_wrong_fingerprint_saves_nothing(admin: WebClient, engine: sa.Engine,
                                                                   partner_card: bytes) -> None:
    page = admin.text(_upload(admin, partner_card))
    fingerprint = card_from_bytes(partner_card).fingerprint()
    assert f'<span class="fingerprint__group">{fingerprint.split()[0]}</span>' in page
    wrong = NodeKeys.generate(PARTNER).fingerprint()
    answer = admin.post("/admin/partners/trust", {"card": _hidden_card(page), "fingerprint": wrong,
                                                  "agreement": AGREEMENT})
    assert answer.status_code == 422
    text = admin.text(answer)
    assert 'id="f-fingerprint-error"' in text and "This is not the fingerprint of this card" in text
    assert f'value="{wrong}"' in text  # what was typed stays
    assert read(engine, sa.select(Partner)) == []
    empty = admin.post("/admin/partners/trust", {"card": _hidden_card(page), "fingerprint": ""})
    assert empty.status_code == 422 and read(engine, sa.select(Partner)) == []


def test_adding_with_the_right_fingerprint_trusts_and_audits(admin: WebClient, engine: sa.Engine,
                                                             partner_card: bytes) -> None:
    page = admin.text(_upload(admin, partner_card))
    spoken = card_from_bytes(partner_card).fingerprint().replace(" ", "-")  # typed with dashes
    answer = admin.post("/admin/partners/trust", {"card": _hidden_card(page), "fingerprint": spoken,
                                                  "agreement": AGREEMENT})
    assert answer.status_code == 302 and answer.headers["Location"] == f"/admin/partners/{PARTNER}"
    [partner] = read(engine, sa.select(Partner))
    assert partner.node_id == PARTNER and partner.agreement_id == AGREEMENT and partner.status == "active"
    [entry] = _audit(engine, "create", "partner")
    assert entry.object_id == PARTNER and entry.actor_username == admin.user.username
    again = admin.post("/admin/partners/trust", {"card": _hidden_card(page), "fingerprint": spoken})
    assert again.status_code == 409 and "a partner already" in admin.text(again)


def test_a_partner_waiting_for_a_resync_after_a_restore_says_so(admin: WebClient, engine: sa.Engine,
                                                                partner_card: bytes, clock: FakeClock) -> None:
    _trusted(admin, partner_card, engine)
    assert "Resync pending" not in admin.text(admin.get("/admin/partners"))
    with make_sessionmaker(engine)() as session:  # what ccm-node backup restore does
        session.execute(sa.update(Partner).values(resync_since=clock.now() - timedelta(hours=1)))
        session.commit()
    listed = admin.text(admin.get("/admin/partners"))
    assert "Resync pending" in listed
    page = admin.text(admin.get(f"/admin/partners/{PARTNER}"))
    assert "restored from a backup and is getting back in step" in page


def test_a_bad_agreement_a_bad_file_and_a_tampered_card_are_field_errors(admin: WebClient, engine: sa.Engine,
                                                                         partner_card: bytes) -> None:
    page = admin.text(_upload(admin, partner_card))
    answer = admin.post("/admin/partners/trust", {"card": _hidden_card(page), "agreement": "has spaces",
                                                  "fingerprint": card_from_bytes(partner_card).fingerprint()})
    assert answer.status_code == 422 and 'id="f-agreement-error"' in admin.text(answer)
    bad = _upload(admin, b'{"not": "a card"}')
    assert bad.status_code == 422 and "not a valid node card" in admin.text(bad)
    huge = _upload(admin, b" " * 70_000)
    assert huge.status_code == 422 and "too large" in admin.text(huge)
    tampered = admin.post("/admin/partners/trust", {"card": "bm90IGEgY2FyZA==", "fingerprint": "1"})
    assert tampered.status_code == 422 and "Read it again" in admin.text(tampered)
    assert read(engine, sa.select(Partner)) == []


@pytest.mark.parametrize("url", ["http://169.254.169.254/", "http://10.0.0.1:8080/federation/v1/card",
                                 "ftp://example.org/card"])
def test_a_card_url_this_node_does_not_connect_to_is_a_field_error(admin: WebClient, url: str) -> None:
    answer = admin.post("/admin/partners/compare", {"card_url": url})
    assert answer.status_code == 422
    text = admin.text(answer)
    assert 'id="f-card_url-error"' in text
    assert ("private, loopback or link-local" in text) or ("starting with https://" in text)
    assert f'value="{url}"' in text


def test_a_card_is_never_read_by_a_plain_link(admin: WebClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """Reading a card makes this node connect out: only a form with its CSRF token may ask for it."""
    from node.web import admin_partners

    seen: list[str] = []
    monkeypatch.setattr(admin_partners, "fetch_card", lambda url, policy: seen.append(url) or b"")
    plain_link = admin.get("/admin/partners/compare", query_string={"card_url": "https://x.example"})
    assert plain_link.status_code in (404, 405)
    assert admin.post("/admin/partners/compare", {"card_url": "https://x.example"}, csrf=False).status_code == 400
    assert seen == []


def test_a_card_url_is_read_into_the_compare_step(admin: WebClient, app: Flask, engine: sa.Engine,
                                                  partner_card: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    from node.web import admin_partners

    seen: list[str] = []
    monkeypatch.setattr(admin_partners, "fetch_card", lambda url, policy: seen.append(url) or partner_card)
    page = admin.post("/admin/partners/compare", {"card_url": "https://sarajevo.example"})
    assert page.status_code == 200 and seen == ["https://sarajevo.example"]
    assert "Compare the fingerprint" in admin.text(page) and PARTNER in admin.text(page)
    own = app.test_client().get("/federation/v1/card").get_data()
    monkeypatch.setattr(admin_partners, "fetch_card", lambda url, policy: own)
    mine = admin.post("/admin/partners/compare", {"card_url": "https://me.example"})
    assert mine.status_code == 422 and "this node&#39;s own card" in admin.text(mine)


def test_suspend_resume_revoke_change_the_status_and_are_audited(admin: WebClient, app: Flask, engine: sa.Engine,
                                                                 clock: FakeClock, partner_card: bytes) -> None:
    _trusted(admin, partner_card, engine)
    _queue(app, engine, clock)
    status = lambda: read(engine, sa.select(Partner.status))[0]  # noqa: E731
    assert admin.post(f"/admin/partners/{PARTNER}/suspend").status_code == 302 and status() == "suspended"
    assert "Resume" in admin.text(admin.get(f"/admin/partners/{PARTNER}"))
    assert admin.post(f"/admin/partners/{PARTNER}/resume").status_code == 302 and status() == "active"
    confirm = admin.get(f"/admin/partners/{PARTNER}/revoke")
    assert confirm.status_code == 200 and "1 message(s) still waiting" in admin.text(confirm)
    unconfirmed = admin.post(f"/admin/partners/{PARTNER}/revoke", {})
    assert unconfirmed.status_code == 422 and status() == "active"
    assert admin.post(f"/admin/partners/{PARTNER}/revoke", {"confirm": "1"}).status_code == 302
    assert status() == "revoked"
    assert read(engine, sa.select(OutboundMessage.status)) == ["undeliverable"]
    for action in ("suspend", "resume", "revoke"):
        [entry] = _audit(engine, action, "partner")
        assert entry.object_id == PARTNER and entry.actor_username == admin.user.username
    refused = admin.post(f"/admin/partners/{PARTNER}/resume")
    assert refused.status_code == 409 and status() == "revoked"


def test_recording_an_agreement(admin: WebClient, engine: sa.Engine, partner_card: bytes) -> None:
    _trusted(admin, partner_card, engine)
    bad = admin.post(f"/admin/partners/{PARTNER}/agreement", {"agreement": "no spaces please"})
    assert bad.status_code == 422 and 'id="f-agreement-error"' in admin.text(bad)
    assert admin.post(f"/admin/partners/{PARTNER}/agreement", {"agreement": "dsa-2027"}).status_code == 302
    assert read(engine, sa.select(Partner.agreement_id)) == ["dsa-2027"]
    assert [e.detail for e in _audit(engine, "update", "partner")][-1] == '{"agreement":"dsa-2027","via":"web"}'


def test_retry_a_failing_message_and_a_partner(admin: WebClient, app: Flask, engine: sa.Engine, clock: FakeClock,
                                               partner_card: bytes) -> None:
    _trusted(admin, partner_card, engine)
    message = _queue(app, engine, clock, status="parked", last_error="bad_receipt", attempts=3)
    _queue_failing = _queue(app, engine, clock, last_error="connection_failed", attempts=2,
                            thread="x" * 22, next_attempt_at=clock.now() + timedelta(hours=1))
    page = admin.text(admin.get("/admin/deliveries"))
    assert "The partner&#39;s node could not be reached" in page
    assert "The partner&#39;s receipt could not be verified" in page
    assert "bad_receipt" not in page and message.message_id in page
    answer = admin.post(f"/admin/deliveries/{message.id}/retry")
    assert answer.status_code == 302
    retried = read(engine, sa.select(OutboundMessage).where(OutboundMessage.id == message.id))[0]
    assert retried.status == "queued" and retried.last_error is None
    [entry] = _audit(engine, "retry", "message")
    assert entry.object_id == message.message_id
    with make_sessionmaker(engine)() as session:  # the partner is backing off after the failures
        session.execute(sa.update(Partner).values(retry_interval=600.0, retry_at=clock.now() + timedelta(hours=1)))
        session.commit()
    assert admin.post(f"/admin/deliveries/partners/{PARTNER}/retry").status_code == 302
    later = read(engine, sa.select(OutboundMessage).where(OutboundMessage.id == _queue_failing.id))[0]
    assert later.next_attempt_at <= clock.now()
    assert [e.object_id for e in _audit(engine, "retry", "partner")] == [PARTNER]
    assert read(engine, sa.select(Partner.retry_at)) == [None]
    assert admin.post("/admin/deliveries/999999/retry").status_code == 409


def test_bundle_export_is_a_download_and_a_bad_import_is_a_clear_error(admin: WebClient, app: Flask,
                                                                       engine: sa.Engine, clock: FakeClock,
                                                                       partner_card: bytes,
                                                                       partner_keys: NodeKeys) -> None:
    _trusted(admin, partner_card, engine)
    nothing = admin.post("/admin/deliveries/export", {"partner": PARTNER})
    assert nothing.status_code == 302
    message = _queue(app, engine, clock)
    download = admin.post("/admin/deliveries/export", {"partner": PARTNER})
    assert download.status_code == 200
    assert download.headers["Content-Disposition"].startswith(f'attachment; filename="{PARTNER}.')
    assert json.loads(download.get_data())  # the sealed bundle file
    exports = _audit(engine, "export", "bundle")
    assert {e.actor_username for e in exports} == {None, admin.user.username}
    assert read(engine, sa.select(OutboundMessage.status)) == ["queued"]  # the messages stay queued
    assert message.message_id
    unknown = admin.post("/admin/deliveries/export", {"partner": "nobody.here"})
    assert unknown.status_code == 409 and 'id="f-partner-error"' in admin.text(unknown)

    bad = admin.post("/admin/deliveries/import", {"bundle_file": (BytesIO(b"not a bundle"), "x.bundle.json")},
                     content_type="multipart/form-data")
    assert bad.status_code == 422
    assert "The bundle was refused, nothing was imported" in admin.text(bad)
    assert 'id="f-bundle_file-error"' in admin.text(bad)
    assert _audit(engine, "import", "bundle") == []

    own = card_from_bytes(app.test_client().get("/federation/v1/card").get_data())
    sealed = seal_bundle(keys=partner_keys, recipient=own, envelopes=[b'{"not":"an envelope"}'], now=clock.now())
    summary = admin.post("/admin/deliveries/import", {"bundle_file": (BytesIO(sealed), "in.bundle.json")},
                         content_type="multipart/form-data")
    assert summary.status_code == 200, admin.text(summary)[:2000]
    text = admin.text(summary)
    assert "Bundle imported" in text and "No receipts to carry back" in text
    [entry] = _audit(engine, "import", "bundle")
    assert entry.actor_username == admin.user.username and '"refused":1' in (entry.detail or "")
    assert admin.get("/admin/deliveries/receipts/" + "A" * 43).status_code == 404
