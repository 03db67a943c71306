"""Handing a case over in the browser (Flask test client): choose the partner and consent, preview exactly what
would leave the node (stores nothing), send (queued), follow the status; refusals in words, never a 500."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from flask import Flask

from node.accounts import create_user
from node.db import make_sessionmaker
from node.exchange.handovers.models import Handover
from node.exchange.models import OutboundMessage, Partner
from tests.exchange.conftest import (  # noqa: F401 - two in-process nodes, as the exchange tests use them
    Node,
    gbg,
    make_worker,
    nodes,
    paired,
    sarajevo,
    transport,
    world,
)
from tests.exchange.desks import Desk, Worker, deliver, desks, incoming  # noqa: F401 - desks: the fixture
from tests.exchange.desks import open_case as open_desk_case
from tests.web.conftest import PASSWORD, WebClient
from tests.web.test_consent_pages import CHILD, SARAJEVO, give_consent, open_case, rows, shown

BAGHDAD = "iq.cldd-baghdad"


def test_preview_shows_the_summary_and_withheld_and_stores_nothing(
        app: Flask, web_client: Callable[..., WebClient], make_user: Callable[..., Any], partners: list[str]) -> None:
    browser = web_client("counsellor", "gbg")
    case_id = open_case(app.test_client(), make_user)
    consent_id = give_consent(browser, case_id)
    choose = browser.get(f"/cases/{case_id}/handover")
    text = shown(choose)
    assert choose.status_code == 200 and text.count("<h1") == 1 and f'value="{consent_id}"' in text
    page = browser.get(f"/cases/{case_id}/handover/preview?partner={SARAJEVO}&consent={consent_id}")
    text = shown(page)
    assert page.status_code == 200, text.split("<main")[1][:2000]
    assert "What will leave this node" in text
    assert "Amina" in text and "Hadžić" in text and "Cook for six years." in text  # the summary, readable
    assert "Withheld: not in the consent" in text and "Health" in text  # health is withheld
    assert "Asthma" not in text  # ... and its content is not shown as leaving
    assert "{&#34;" not in text and '{"' not in text  # not raw JSON
    assert rows(app, Handover) == [] and rows(app, OutboundMessage) == []


def test_send_queues_the_handover_and_the_status_page_says_so(
        app: Flask, web_client: Callable[..., WebClient], make_user: Callable[..., Any], partners: list[str]) -> None:
    browser = web_client("counsellor", "gbg")
    case_id = open_case(app.test_client(), make_user)
    consent_id = give_consent(browser, case_id)
    sent = browser.post(f"/cases/{case_id}/handover/send", {"partner": SARAJEVO, "consent": consent_id})
    assert sent.status_code == 302, shown(sent)[:2000]
    [handover] = rows(app, Handover)
    assert sent.headers["Location"].endswith(f"/handovers/{handover.id}")
    assert handover.partner_node == SARAJEVO and handover.consent_id == consent_id
    status = browser.get(sent.headers["Location"])
    text = shown(status)
    assert status.status_code == 200 and text.count("<h1") == 1
    assert "Queued: waiting to be delivered" in text and "The case summary is queued" in text
    assert f"/cases/{case_id}" in text  # breadcrumbs back to the case
    # a second handover to the same partner while the first is pending: refused in words
    again = browser.post(f"/cases/{case_id}/handover/send", {"partner": SARAJEVO, "consent": consent_id})
    assert again.status_code == 409
    assert "handed over to ba.cldd-sarajevo already" in shown(again)
    assert len(rows(app, Handover)) == 1


def test_the_support_asked_for_is_previewed_and_sent(
        app: Flask, web_client: Callable[..., WebClient], make_user: Callable[..., Any], partners: list[str]) -> None:
    browser = web_client("counsellor", "gbg")
    case_id = open_case(app.test_client(), make_user)
    consent_id = give_consent(browser, case_id)
    asked = (f"/cases/{case_id}/handover/preview?partner={SARAJEVO}&consent={consent_id}"
             "&support=reception&support=coaching&support_note.reception=Arrives+by+bus+on+Monday"
             "&support_note.coaching=")
    text = shown(browser.get(asked))
    assert "Reception on arrival: <span dir=\"auto\">Arrives by bus on Monday</span>" in text and "Coaching" in text
    assert 'name="support_note.reception" value="Arrives by bus on Monday"' in text
    bad = browser.get(f"/cases/{case_id}/handover/preview?partner={SARAJEVO}&consent={consent_id}&support=spaceship")
    assert bad.status_code == 422 and "Choose the kinds of support from the list" in shown(bad)
    assert 'id="support-reception"' in shown(bad)  # the form again, with the partner and consent kept
    sent = browser.post(f"/cases/{case_id}/handover/send", {
        "partner": SARAJEVO, "consent": consent_id, "support": ["reception", "coaching"],
        "support_note.reception": "Arrives by bus on Monday"})
    assert sent.status_code == 302, shown(sent)[:2000]
    assert len(rows(app, Handover)) == 1  # (what the partner receives: the two-node test below)


def test_a_handover_sent_in_error_is_taken_back(
        app: Flask, web_client: Callable[..., WebClient], make_user: Callable[..., Any], partners: list[str]) -> None:
    browser = web_client("counsellor", "gbg")
    case_id = open_case(app.test_client(), make_user)
    consent_id = give_consent(browser, case_id)
    sent = browser.post(f"/cases/{case_id}/handover/send", {"partner": SARAJEVO, "consent": consent_id})
    status_url = sent.headers["Location"]
    assert "/revoke" in shown(browser.get(status_url))
    form = browser.get(status_url + "/revoke")
    assert form.status_code == 200 and "Take the handover back" in shown(form)
    empty = browser.post(status_url + "/revoke", {"reason": "  "})
    assert empty.status_code == 422 and "Say why the handover is taken back" in shown(empty)
    assert browser.post(status_url + "/revoke", {"reason": "Sent to the wrong partner."}, csrf=False).status_code == 400
    [handover] = rows(app, Handover)
    assert handover.status == "pending"
    done = browser.post(status_url + "/revoke", {"reason": "Sent to the wrong partner."})
    assert done.status_code == 302 and done.headers["Location"].endswith(status_url.split("/", 3)[-1])
    [handover] = rows(app, Handover)
    assert handover.status == "revoked"
    text = shown(browser.get(status_url))
    assert "is asked to erase it" in text and "/revoke" not in text
    again = browser.get(status_url + "/revoke")
    assert "cannot be taken back" in shown(again)
    adviser = web_client("adviser", "gbg")
    assert adviser.get(status_url + "/revoke").status_code == 403


def test_refusals_come_back_in_words(app: Flask, web_client: Callable[..., WebClient],
                                     make_user: Callable[..., Any], partners: list[str]) -> None:
    browser = web_client("counsellor", "gbg")
    case_id = open_case(app.test_client(), make_user)
    consent_id = give_consent(browser, case_id)
    nothing = browser.get(f"/cases/{case_id}/handover/preview")
    assert nothing.status_code == 422
    assert "Choose the partner organisation to hand the case over to." in shown(nothing)
    outside = browser.get(f"/cases/{case_id}/handover/preview?partner={BAGHDAD}&consent={consent_id}")
    assert outside.status_code == 422
    assert "The consent does not name iq.cldd-baghdad" in shown(outside)
    with make_sessionmaker(app.extensions["ccm"].engine)() as session:
        session.scalars(sa.select(Partner).where(Partner.node_id == SARAJEVO)).one().status = "suspended"
        session.commit()
    suspended = browser.post(f"/cases/{case_id}/handover/send", {"partner": SARAJEVO, "consent": consent_id})
    assert suspended.status_code == 409
    assert "partner ba.cldd-sarajevo is suspended: nothing can be sent to it" in shown(suspended)
    withdrawn = browser.post(f"/cases/{case_id}/consents/{consent_id}/withdraw",
                             {"extent": "all", "reason": "Changed her mind.", "step": "confirm"})
    assert withdrawn.status_code == 302
    refused = browser.post(f"/cases/{case_id}/handover/send", {"partner": BAGHDAD, "consent": consent_id})
    assert refused.status_code == 409
    assert "The consent was withdrawn: nothing can be handed over under it." in shown(refused)
    assert rows(app, Handover) == []


def test_a_childs_case_is_refused_without_safeguards_and_sent_after(
        app: Flask, web_client: Callable[..., WebClient], make_user: Callable[..., Any], partners: list[str]) -> None:
    browser = web_client("counsellor", "gbg")
    case_id = open_case(app.test_client(), make_user, body=CHILD)
    consent_id = give_consent(browser, case_id, recipients=[BAGHDAD], language="ar", categories=["identity"])
    why = "This is a child's case: record the guardian, the child's views and the best-interests assessment " \
          "before it can be handed over."
    choose = browser.get(f"/cases/{case_id}/handover")
    assert why in shown(choose) and f"/cases/{case_id}/safeguards" in shown(choose)
    refused = browser.post(f"/cases/{case_id}/handover/send", {
        "partner": BAGHDAD, "consent": consent_id, "best_interests_outcome": "in_best_interests"})
    assert refused.status_code == 409
    assert why in shown(refused)
    assert rows(app, Handover) == []
    saved = browser.post(f"/cases/{case_id}/safeguards", {
        "version": "0", "guardian.name": "Layla Haddad", "guardian.relation": "appointed guardian",
        "guardian_consent_at": "2026-11-20T10:00", "child_views": "Wants to live with his grandmother.",
        "best_interests_outcome": "In the child's best interests.", "assessed_at": "2026-11-21T14:30",
        "assessed_by": "Social services"})
    assert saved.status_code == 302
    unconfirmed = browser.get(f"/cases/{case_id}/handover/preview?partner={BAGHDAD}&consent={consent_id}")
    assert unconfirmed.status_code == 422
    assert "confirm the outcome of the best-interests assessment" in shown(unconfirmed)
    query = f"partner={BAGHDAD}&consent={consent_id}&best_interests_outcome=in_best_interests"
    preview = browser.get(f"/cases/{case_id}/handover/preview?{query}")
    assert preview.status_code == 200 and "Omar" in shown(preview)
    sent = browser.post(f"/cases/{case_id}/handover/send", {
        "partner": BAGHDAD, "consent": consent_id, "best_interests_outcome": "in_best_interests"})
    assert sent.status_code == 302, shown(sent).split("<main")[1][:2000]
    [handover] = rows(app, Handover)
    assert handover.child and handover.partner_node == BAGHDAD


def test_roles_visibility_and_csrf(app: Flask, web_client: Callable[..., WebClient], make_user: Callable[..., Any],
                                   partners: list[str]) -> None:
    owner = web_client("counsellor", "gbg")
    case_id = open_case(app.test_client(), make_user)
    consent_id = give_consent(owner, case_id)
    form = {"partner": SARAJEVO, "consent": consent_id}
    assert owner.post(f"/cases/{case_id}/handover/send", form, csrf=False).status_code == 400
    other = web_client("counsellor", "malmo")
    assert other.get(f"/cases/{case_id}/handover/preview?partner={SARAJEVO}&consent={consent_id}").status_code == 404
    assert other.post(f"/cases/{case_id}/handover/send", form).status_code == 404
    adviser = web_client("adviser", "gbg")
    assert adviser.get(f"/cases/{case_id}/handover").status_code == 403
    assert rows(app, Handover) == []
    sent = owner.post(f"/cases/{case_id}/handover/send", form)
    assert other.get(sent.headers["Location"]).status_code == 404
    assert owner.get("/handovers/not-a-handover").status_code == 404


# --- across two nodes: the partner's answers and confirmations as the counsellor sees them ----------------------

def _sign_in(node: Node, team: str = "gbg") -> WebClient:
    with node.sessionmaker() as session:
        user = create_user(session, username="web.counsellor", role="counsellor", team=team, now=node.clock.now(),
                           display_name="Web Counsellor", password=PASSWORD)
        session.commit()
        session.expunge(user)
    browser = WebClient(node.app.test_client(), user)
    browser.get("/login")
    assert browser.post("/login", {"username": user.username, "password": PASSWORD}).status_code == 302
    browser.get("/")  # the signed-in session's form token
    return browser


def test_accepted_then_withdrawn_and_erasure_confirmed_across_two_nodes(
        desks: tuple[Desk, Desk], make_worker: Worker) -> None:  # noqa: F811 - the fixtures imported above
    origin, partner = desks
    browser = _sign_in(origin.node)
    case_id, consent_id = open_desk_case(origin)
    sent = browser.post(f"/cases/{case_id}/handover/send", {"partner": SARAJEVO, "consent": consent_id,
                                                            "support": ["reception"],
                                                            "support_note.reception": "Arrives on Monday"})
    assert sent.status_code == 302, shown(sent)[:2000]
    status_url = sent.headers["Location"]
    assert "Queued: waiting to be delivered" in shown(browser.get(status_url))
    deliver(make_worker, origin)
    assert "Delivered: waiting for the partner's answer" in shown(browser.get(status_url))
    [waiting] = incoming(partner)
    received = partner.ok("GET", f"/handovers/{waiting['id']}", "adviser")
    assert received["requested_support"] == [{"kind": "reception", "note": "Arrives on Monday"}]
    partner.ok("POST", f"/handovers/{waiting['id']}/accept", "adviser", 201, json={})
    deliver(make_worker, partner)
    text = shown(browser.get(status_url))
    assert "Accepted by the partner" in text and "The partner accepted the case" in text
    withdrawn = browser.post(f"/cases/{case_id}/consents/{consent_id}/withdraw", {
        "extent": "some", "categories": ["family"], "reason": "Family stays private.", "step": "confirm"})
    assert withdrawn.status_code == 302
    text = shown(browser.get(f"/cases/{case_id}/consents"))
    assert "Erasure pending" in text and "Waiting for confirmation since" in text
    for desk in (origin, partner, origin):
        deliver(make_worker, desk)
    text = shown(browser.get(f"/cases/{case_id}/consents"))
    assert "Erasure confirmed" in text and "Waiting for confirmation since" not in text


def test_a_declined_handover_shows_the_reason(
        desks: tuple[Desk, Desk], make_worker: Worker) -> None:  # noqa: F811 - the fixtures imported above
    origin, partner = desks
    browser = _sign_in(origin.node)
    case_id, consent_id = open_desk_case(origin)
    sent = browser.post(f"/cases/{case_id}/handover/send", {"partner": SARAJEVO, "consent": consent_id})
    deliver(make_worker, origin)
    [waiting] = incoming(partner)
    partner.ok("POST", f"/handovers/{waiting['id']}/decline", "adviser",
                json={"reason": "Our office in Sarajevo has no capacity until March.", "reason_code": "no_capacity"})
    deliver(make_worker, partner)
    text = shown(browser.get(sent.headers["Location"]))
    assert "Declined by the partner" in text
    assert "Our office in Sarajevo has no capacity until March." in text and "No capacity to take the case" in text
