"""The adviser's intake queue in the browser: two in-process nodes (Göteborg hands a case over to Sarajevo
through their APIs and the delivery worker, as tests/exchange/test_handovers.py does); an adviser signed in to
Sarajevo's web interface reads the summary, accepts or declines it. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from node.accounts import create_user
from node.cases.models import Case
from node.exchange.handovers.models import Handover
from node.exchange.models import OutboundMessage
from tests.exchange.conftest import gbg, make_worker, nodes, paired, sarajevo, transport, world  # noqa: F401
from tests.exchange.desks import Desk, Worker, deliver, desks, hand_over, open_case  # noqa: F401
from tests.web.conftest import PASSWORD, WebClient


def sign_in(desk: Desk, role: str, team: str, username: str) -> WebClient:
    """A browser signed in to ``desk``'s node as a new user with ``role``."""
    with desk.node.sessionmaker() as session:
        user = create_user(session, username=username, role=role, team=team, now=desk.node.clock.now(),
                           display_name=username.replace(".", " ").title(), password=PASSWORD)
        session.commit()
        session.expunge(user)
    browser = WebClient(desk.node.app.test_client(), user)
    browser.get("/login")
    answer = browser.post("/login", {"username": username, "password": PASSWORD})
    assert answer.status_code == 302, answer.get_data(as_text=True)[:300]
    browser.get("/")
    return browser


@pytest.fixture
def received(desks: tuple[Desk, Desk], make_worker: Worker) -> dict[str, Any]:  # noqa: F811
    """Göteborg's case handed over and delivered to Sarajevo; Sarajevo's adviser signed in."""
    gbg_desk, sarajevo_desk = desks
    case_id, consent_id = open_case(gbg_desk)
    hand_over(gbg_desk, case_id, consent_id)
    assert deliver(make_worker, gbg_desk) == 1
    with sarajevo_desk.node.sessionmaker() as session:
        handover_id = session.scalar(sa.select(Handover.id).where(Handover.direction == "incoming"))
    return {"gbg": gbg_desk, "sarajevo": sarajevo_desk, "handover_id": handover_id, "origin_case": case_id,
            "adviser": sign_in(sarajevo_desk, "adviser", "sarajevo", "lejla.adviser")}


def _text(browser: WebClient, url: str, status: int = 200) -> str:
    answer = browser.get(url)
    assert answer.status_code == status, answer.get_data(as_text=True)[:2000]
    return answer.get_data(as_text=True)


def test_the_queue_shows_the_pending_handover(received: dict[str, Any]) -> None:
    page = _text(received["adviser"], "/intake")
    assert "Waiting for a decision" in page and "Göteborgs-Initiativet" in page
    assert f'/intake/{received["handover_id"]}' in page and "BA" in page


def test_the_summary_reads_in_sections_with_the_signature(received: dict[str, Any]) -> None:
    page = _text(received["adviser"], f"/intake/{received['handover_id']}")
    assert "Signed by Göteborgs-Initiativet, verified." in page
    assert "Hadžić" in page and "Would like to open a bakery." in page and "Cook for six years." in page
    assert "Želim da moj sin ide u školu u Sarajevu." in page and "New passport" in page
    assert 'id="health"' not in page  # not consented: not in the summary, listed as not shared
    assert "What the consent allows" in page and "Reintegration support" in page
    assert page.count("<h1") == 1 and 'dir="auto"' in page


def test_accept_opens_the_case_and_redirects_to_it(received: dict[str, Any]) -> None:
    adviser, handover_id = received["adviser"], received["handover_id"]
    _text(adviser, f"/intake/{handover_id}")
    answer = adviser.post(f"/intake/{handover_id}/accept", {"first_meeting_at": "2026-12-01T10:00",
                                                          "office": "CLDD Sarajevo, Ferhadija 12"})
    assert answer.status_code == 302
    with received["sarajevo"].node.sessionmaker() as session:
        case = session.scalar(sa.select(Case))
        assert case is not None and case.family_name == "Hadžić"
        handover = session.get(Handover, handover_id)
        assert handover is not None and handover.status == "accepted" and handover.case_id == case.id
        assert answer.headers["Location"].endswith(f"/cases/{case.id}")
        sent = session.scalar(sa.select(OutboundMessage).where(OutboundMessage.type == "handover_accepted"))
        assert sent is not None
    again = adviser.post(f"/intake/{handover_id}/accept", {})
    assert again.status_code == 409 and "This handover was accepted already" in again.get_data(as_text=True)
    assert "Accepted" in _text(adviser, "/intake")


def test_decline_needs_a_reason_and_keeps_what_was_typed(received: dict[str, Any]) -> None:
    adviser, handover_id = received["adviser"], received["handover_id"]
    _text(adviser, f"/intake/{handover_id}/decline")
    answer = adviser.post(f"/intake/{handover_id}/decline", {"reason_code": "no_capacity", "reason": ""})
    page = answer.get_data(as_text=True)
    assert answer.status_code == 422 and "There is a problem" in page and 'id="f-reason-error"' in page
    assert 'value="no_capacity" checked' in page
    answer = adviser.post(f"/intake/{handover_id}/decline", {"reason": "Nobody free until March."})
    page = answer.get_data(as_text=True)
    assert answer.status_code == 422 and "Nobody free until March." in page
    answer = adviser.post(f"/intake/{handover_id}/decline", {"reason_code": "no_capacity",
                                                           "reason": "Nobody free until March."},
                          follow_redirects=True)
    page = answer.get_data(as_text=True)
    assert answer.status_code == 200 and "declined" in page and "Declined" in page
    with received["sarajevo"].node.sessionmaker() as session:
        handover = session.get(Handover, handover_id)
        assert handover is not None and handover.status == "declined" and handover.body is None
        assert handover.reason == "Nobody free until March."
    decided = adviser.get(f"/intake/{handover_id}/decline")
    assert decided.status_code == 409 and "This handover was declined already" in decided.get_data(as_text=True)
    assert "This handover was declined already" in _text(adviser, f"/intake/{handover_id}")


def test_a_counsellor_may_not_open_the_queue(received: dict[str, Any]) -> None:
    counsellor = sign_in(received["sarajevo"], "counsellor", "sarajevo", "haris.web")
    assert counsellor.get("/intake").status_code == 403
    assert counsellor.get(f"/intake/{received['handover_id']}").status_code == 403


def test_a_form_without_its_csrf_token_is_refused(received: dict[str, Any]) -> None:
    adviser, handover_id = received["adviser"], received["handover_id"]
    answer = adviser.post(f"/intake/{handover_id}/accept", {}, csrf=False)
    assert answer.status_code == 400
    with received["sarajevo"].node.sessionmaker() as session:
        assert session.get(Handover, handover_id).status == "pending"  # type: ignore[union-attr]


def test_an_unknown_handover_is_not_found(received: dict[str, Any]) -> None:
    assert received["adviser"].get("/intake/00000000-0000-4000-8000-000000000000").status_code == 404


