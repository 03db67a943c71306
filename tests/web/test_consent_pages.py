"""The consent pages in the browser (Flask test client): the case's consents with the erasure state per holder,
recording a consent, a child's safeguards, and withdrawing a consent wholly or in part."""

from __future__ import annotations

import copy
import datetime as dt
import html
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from flask import Flask

from node.auth import Actor
from node.cases.models import ChildSafeguards, Consent
from node.clock import FakeClock
from node.db import make_sessionmaker
from node.errors import ValidationFailed
from node.exchange.chain.models import ConsentWithdrawal, ErasureRequest
from node.exchange.chain.withdrawal_preview import withdrawal_preview
from node.exchange.handovers.models import Handover
from node.exchange.models import OutboundMessage
from node.exchange.trust.keystore import identity_for_app
from tests.web.conftest import WebClient

CASE: dict[str, Any] = {
    "returnee": {"given_names": "Amina", "family_name": "Hadžić", "date_of_birth": "1990-04-02",
                 "languages": ["bs", "sv"]},
    "destination_country": "BA", "destination_locality": "Sarajevo",
    "intake": {"family": {"text": "Single mother, one son.", "marital_status": "single"},
               "health": {"text": "Asthma; needs an inhaler."},
               "work": {"text": "Cook for six years.", "occupations": ["cook"]}},
}
CHILD: dict[str, Any] = {
    "returnee": {"given_names": "Omar", "family_name": "Karim", "date_of_birth": "2011-05-01",
                 "languages": ["ar"]},
    "destination_country": "IQ",
}
SARAJEVO = "ba.cldd-sarajevo"


def open_case(client: Any, make_user: Callable[..., Any], team: str = "gbg",
              body: dict[str, Any] | None = None) -> str:
    _user, token = make_user("counsellor", team)
    response = client.post("/api/v1/cases", json=copy.deepcopy(body or CASE),
                           headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 201, response.get_json()
    case_id: str = response.get_json()["id"]
    return case_id


def consent_form(**changes: Any) -> dict[str, Any]:
    form: dict[str, Any] = {"categories": ["identity", "family", "work"], "recipients": [SARAJEVO],
                            "purpose": "reintegration_support", "method": "written_signature",
                            "valid_until": "2027-11-30", "language": "bs", "interpreter": "Selma Begović"}
    form.update(changes)
    return form


def give_consent(browser: WebClient, case_id: str, **changes: Any) -> str:
    response = browser.post(f"/cases/{case_id}/consents/new", consent_form(**changes))
    assert response.status_code == 302, shown(response)[:3000]
    return consent_ids(browser, case_id)[-1]


def consent_ids(browser: WebClient, case_id: str) -> list[str]:
    app = browser.client.application
    with make_sessionmaker(app.extensions["ccm"].engine)() as session:
        return list(session.scalars(sa.select(Consent.id).where(Consent.case_id == case_id)
                                    .order_by(Consent.created_at)))


def shown(response: Any) -> str:
    """The page's text with HTML entities read (``child's`` → ``child's``)."""
    return html.unescape(response.get_data(as_text=True))


def rows(app: Flask, model: type[Any]) -> list[Any]:
    with make_sessionmaker(app.extensions["ccm"].engine)() as session:
        found = list(session.scalars(sa.select(model)))
        session.expunge_all()
        return found


def test_record_a_consent_and_see_it_listed(app: Flask, web_client: Callable[..., WebClient],
                                            make_user: Callable[..., Any], partners: list[str]) -> None:
    browser = web_client("counsellor", "gbg")
    case_id = open_case(app.test_client(), make_user)
    page = browser.get(f"/cases/{case_id}/consents/new")
    text = shown(page)
    assert page.status_code == 200 and text.count("<h1") == 1
    assert 'value="ba.cldd-sarajevo"' in text and "Health" in text  # partners and categories to tick
    response = browser.post(f"/cases/{case_id}/consents/new", consent_form())
    assert response.status_code == 302
    listed = browser.get(response.headers["Location"])
    text = shown(listed)
    assert "The consent is recorded." in text
    assert "Active" in text and "Selma Begović" in text and "Reintegration support after return" in text
    assert "Nothing has been handed over under this consent." in text
    [consent] = rows(app, Consent)
    assert consent.recipients == [SARAJEVO] and consent.categories == ["identity", "family", "work"]


def test_a_validation_error_keeps_what_was_typed(app: Flask, web_client: Callable[..., WebClient],
                                                 make_user: Callable[..., Any], partners: list[str]) -> None:
    browser = web_client("counsellor", "gbg")
    case_id = open_case(app.test_client(), make_user)
    response = browser.post(f"/cases/{case_id}/consents/new",
                            consent_form(valid_until="2020-01-01", interpreter="Jasmin Hodžić"))
    text = shown(response)
    assert response.status_code == 422
    assert "Must not be in the past." in text
    assert 'value="Jasmin Hodžić"' in text and 'value="2020-01-01"' in text
    assert 'value="work" checked' in text and 'value="ba.cldd-sarajevo" checked' in text
    assert rows(app, Consent) == []


def test_a_consent_given_earlier_keeps_its_time(app: Flask, web_client: Callable[..., WebClient],
                                                make_user: Callable[..., Any], partners: list[str],
                                                clock: Any) -> None:
    browser = web_client("counsellor", "gbg")
    case_id = open_case(app.test_client(), make_user)
    future = (clock.now() + dt.timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    refused = browser.post(f"/cases/{case_id}/consents/new", consent_form(given_at=future))
    assert refused.status_code == 422 and "Must not be in the future." in shown(refused)
    assert f'value="{future}"' in shown(refused) and rows(app, Consent) == []
    earlier = (clock.now() - dt.timedelta(days=3)).astimezone(ZoneInfo(app.extensions["ccm"].config.timezone))
    give_consent(browser, case_id, given_at=earlier.strftime("%Y-%m-%dT%H:%M"))
    [consent] = rows(app, Consent)
    assert consent.given_at == earlier.replace(second=0, microsecond=0)


def test_no_partner_and_no_language_are_refused_in_words(app: Flask, web_client: Callable[..., WebClient],
                                                         make_user: Callable[..., Any],
                                                         partners: list[str]) -> None:
    browser = web_client("counsellor", "gbg")
    case_id = open_case(app.test_client(), make_user, body={**CASE, "returnee": {**CASE["returnee"],
                                                                                  "languages": []}})
    response = browser.post(f"/cases/{case_id}/consents/new", consent_form(recipients=[], language=""))
    text = shown(response)
    assert response.status_code == 422
    assert "Choose at least one partner organisation the returnee agreed to share with." in text
    response = browser.post(f"/cases/{case_id}/consents/new", consent_form(language=""))
    text = shown(response)
    assert response.status_code == 422
    assert "Record the language the returnee was informed in" in text
    assert 'id="f-language-error"' in text  # next to the field
    assert rows(app, Consent) == []


def test_another_teams_counsellor_gets_404_and_an_adviser_403(app: Flask, web_client: Callable[..., WebClient],
                                                             make_user: Callable[..., Any],
                                                             partners: list[str]) -> None:
    case_id = open_case(app.test_client(), make_user)
    other = web_client("counsellor", "malmo")
    for path in ("consents", "consents/new", "safeguards", "handover"):
        assert other.get(f"/cases/{case_id}/{path}").status_code == 404, path
    adviser = web_client("adviser", "gbg")
    assert adviser.get(f"/cases/{case_id}/consents/new").status_code == 403
    assert adviser.post(f"/cases/{case_id}/consents/new", consent_form()).status_code == 403
    assert adviser.get(f"/cases/{case_id}/consents").status_code == 200  # may read
    assert rows(app, Consent) == []


def test_csrf_missing_is_refused(app: Flask, web_client: Callable[..., WebClient], make_user: Callable[..., Any],
                                 partners: list[str]) -> None:
    browser = web_client("counsellor", "gbg")
    case_id = open_case(app.test_client(), make_user)
    response = browser.post(f"/cases/{case_id}/consents/new", consent_form(), csrf=False)
    assert response.status_code == 400
    assert rows(app, Consent) == []


def test_a_childs_consent_waits_for_the_safeguards(app: Flask, web_client: Callable[..., WebClient],
                                                   make_user: Callable[..., Any], partners: list[str]) -> None:
    browser = web_client("counsellor", "gbg")
    case_id = open_case(app.test_client(), make_user, body=CHILD)
    give_consent(browser, case_id, recipients=["iq.cldd-baghdad"], language="ar")
    text = shown(browser.get(f"/cases/{case_id}/consents"))
    assert "This is a child's case: record the guardian, the child's views and the best-interests " \
           "assessment before it can be handed over." in text
    assert "Not active yet" in text and f"/cases/{case_id}/safeguards" in text
    page = browser.get(f"/cases/{case_id}/safeguards")
    assert page.status_code == 200 and 'name="version" value="0"' in shown(page)
    form = {"version": "0", "guardian.name": "Layla Haddad", "guardian.relation": "appointed guardian (god man)",
            "guardian_consent_at": "2026-11-20T10:00", "child_views": "أريد أن أعيش مع جدتي.",
            "best_interests_outcome": "Return to the grandmother in Erbil is in the child's best interests.",
            "assessed_at": "2026-11-21T14:30", "assessed_by": "Social services, Göteborg"}
    response = browser.post(f"/cases/{case_id}/safeguards", form)
    assert response.status_code == 302, shown(response).split("error-summary__list")[1][:600]
    text = shown(browser.get(response.headers["Location"]))
    assert "The safeguards are complete" in text and "Not active yet" not in text and "Active" in text
    [row] = rows(app, ChildSafeguards)
    assert row.guardian_name == "Layla Haddad" and row.version == 1
    # the same page sent again from version 0: someone changed it meanwhile
    stale = browser.post(f"/cases/{case_id}/safeguards", {**form, "child_views": "Typed on a stale page."})
    text = shown(stale)
    assert stale.status_code == 409
    assert "Someone changed this case while you were editing" in text
    assert "Typed on a stale page." in text and "أريد أن أعيش مع جدتي." in text  # both versions
    assert 'name="version" value="1"' in text


def test_a_safeguards_validation_error_keeps_the_typed_text(app: Flask, web_client: Callable[..., WebClient],
                                                           make_user: Callable[..., Any]) -> None:
    browser = web_client("counsellor", "gbg")
    case_id = open_case(app.test_client(), make_user, body=CHILD)
    response = browser.post(f"/cases/{case_id}/safeguards", {
        "version": "0", "guardian.name": "Layla Haddad", "child_views": "Wants to live with the grandmother.",
        "assessed_at": "2030-01-01T10:00"})
    text = shown(response)
    assert response.status_code == 422
    assert "Wants to live with the grandmother." in text and 'value="Layla Haddad"' in text
    assert 'id="f-guardian-relation-error"' in text
    assert rows(app, ChildSafeguards) == []


def test_partial_withdrawal_shows_pending_then_confirmed_erasure(app: Flask, web_client: Callable[..., WebClient],
                                                                 make_user: Callable[..., Any],
                                                                 partners: list[str], clock: FakeClock) -> None:
    browser = web_client("counsellor", "gbg")
    case_id = open_case(app.test_client(), make_user)
    consent_id = give_consent(browser, case_id)
    sent = browser.post(f"/cases/{case_id}/handover/send", {"partner": SARAJEVO, "consent": consent_id})
    assert sent.status_code == 302, shown(sent)[:3000]
    form = browser.get(f"/cases/{case_id}/consents/{consent_id}/withdraw")
    assert form.status_code == 200 and "Withdraw a consent" in shown(form)
    chosen = {"extent": "some", "categories": ["family"], "reason": "Does not want her family details shared."}
    check = browser.post(f"/cases/{case_id}/consents/{consent_id}/withdraw", {**chosen, "step": "check"})
    text = shown(check)
    assert check.status_code == 200
    assert "Every copy at these holders will be erased, and each holder must confirm the erasure" in text
    assert SARAJEVO in text and "Family and household" in text
    assert rows(app, ConsentWithdrawal) == [] and rows(app, ErasureRequest) == []  # nothing before confirming
    assert len(rows(app, OutboundMessage)) == 1  # the handover's own message only
    clock.advance(minutes=10)  # within the session's idle time
    done = browser.post(f"/cases/{case_id}/consents/{consent_id}/withdraw", {**chosen, "step": "confirm"})
    assert done.status_code == 302, shown(done)[:3000]
    after = browser.get(done.headers["Location"])
    text = shown(after)
    assert after.status_code == 200, text.split('<main')[1][:1500]
    assert "The withdrawal is recorded. 1 holders were asked to erase their copy" in text, text.split("<main")[1][:1500]
    assert "Partly withdrawn on" in text and "Erasure pending" in text and "Waiting for confirmation since" in text
    [withdrawal] = rows(app, ConsentWithdrawal)
    assert withdrawal.scope == {"categories": ["family"]}
    # the holder's signed confirmation arrives (what the erasure_confirmed applier records)
    with make_sessionmaker(app.extensions["ccm"].engine)() as session:
        request = session.scalars(sa.select(ErasureRequest)).one()
        request.confirmed_at = request.erased_at = clock.now() + timedelta(minutes=5)
        session.commit()
    text = shown(browser.get(f"/cases/{case_id}/consents"))
    assert "Erasure confirmed" in text and "Waiting for confirmation since" not in text


def test_withdrawal_needs_a_reason_and_a_scope(app: Flask, web_client: Callable[..., WebClient],
                                               make_user: Callable[..., Any], partners: list[str]) -> None:
    browser = web_client("counsellor", "gbg")
    case_id = open_case(app.test_client(), make_user)
    consent_id = give_consent(browser, case_id)
    response = browser.post(f"/cases/{case_id}/consents/{consent_id}/withdraw", {"extent": "some", "step": "check"})
    text = shown(response)
    assert response.status_code == 422
    assert "Write the returnee's reason" in text
    assert "Choose the kinds of information or the partners to withdraw" in text
    full = browser.post(f"/cases/{case_id}/consents/{consent_id}/withdraw",
                        {"extent": "all", "reason": "Changed her mind.", "step": "confirm"})
    assert full.status_code == 302
    text = shown(browser.get(full.headers["Location"]))
    assert "Withdrawn" in text and "No partner had received anything under this consent." in text
    again = browser.post(f"/cases/{case_id}/consents/{consent_id}/withdraw",
                         {"extent": "all", "reason": "Twice.", "step": "confirm"})
    assert again.status_code in (404, 409)
    assert len(rows(app, Handover)) == 0


def test_withdrawal_preview_runs_the_withdrawal_and_keeps_nothing(app: Flask, web_client: Callable[..., WebClient],
                                                                  make_user: Callable[..., Any],
                                                                  partners: list[str]) -> None:
    browser = web_client("counsellor", "gbg")
    case_id = open_case(app.test_client(), make_user)
    consent_id = give_consent(browser, case_id, recipients=[SARAJEVO, "iq.cldd-baghdad"])
    for partner in (SARAJEVO, "iq.cldd-baghdad"):
        sent = browser.post(f"/cases/{case_id}/handover/send", {"partner": partner, "consent": consent_id})
        assert sent.status_code == 302
    ctx = app.extensions["ccm"]
    node = identity_for_app(app)
    actor = Actor(browser.user.id, browser.user.username, "counsellor", "gbg", None)
    with make_sessionmaker(ctx.engine)() as session:
        preview = withdrawal_preview(session, actor, case_id, consent_id,
                                     {"reason": "r", "scope": {"recipients": ["iq.cldd-baghdad"]}},
                                     keys=node.keys, now=ctx.clock.now())
        session.commit()
        assert preview["full"] is False and preview["scope"] == {"recipients": ["iq.cldd-baghdad"]}
        assert [h["partner"] for h in preview["holders"]] == ["iq.cldd-baghdad"]
        assert preview["holders"][0]["categories"] == ["identity", "family", "work"]
        whole = withdrawal_preview(session, actor, case_id, consent_id, {"reason": "r"}, keys=node.keys,
                                   now=ctx.clock.now())
        session.commit()
        assert whole["full"] is True and len(whole["holders"]) == 2
        with pytest.raises(ValidationFailed):
            withdrawal_preview(session, actor, case_id, consent_id,
                               {"reason": "r", "scope": {"categories": ["health"]}}, keys=node.keys,
                               now=ctx.clock.now())
        session.rollback()
    assert rows(app, ConsentWithdrawal) == [] and rows(app, ErasureRequest) == []
    assert len(rows(app, OutboundMessage)) == 2
    assert all(c.withdrawn_at is None for c in rows(app, Consent))
