"""Working an accepted case in the browser: progress with its preview of what flows back to the origin, the
progress list, and interventions (add, change, a stale version). Plus ``preview_progress`` called directly."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from node.auth import Actor
from node.cases.models import Intervention
from node.exchange.handovers.models import ProgressUpdate
from node.exchange.handovers.progress import preview_progress
from node.exchange.models import OutboundMessage
from tests.exchange.conftest import gbg, make_worker, nodes, paired, sarajevo, transport, world  # noqa: F401
from tests.exchange.desks import Desk, desks  # noqa: F401
from tests.web.test_intake_queue import WebClient, received, sign_in  # noqa: F401


@pytest.fixture
def accepted(received: dict[str, Any]) -> dict[str, Any]:  # noqa: F811
    adviser: WebClient = received["adviser"]
    adviser.get(f"/intake/{received['handover_id']}")
    answer = adviser.post(f"/intake/{received['handover_id']}/accept", {})
    assert answer.status_code == 302
    case_id = answer.headers["Location"].rsplit("/", 1)[1]
    return {**received, "case_id": case_id}


def _progress(desk: Desk) -> tuple[int, int]:
    with desk.node.sessionmaker() as session:
        updates = session.scalar(sa.select(sa.func.count()).select_from(ProgressUpdate)) or 0
        messages = session.scalar(sa.select(sa.func.count()).select_from(OutboundMessage)
                                  .where(OutboundMessage.type == "progress_update")) or 0
    return updates, messages


FORM = {"note": "Amina came to the office; passport application filed.",
        "stage_changes.0.key": "", "stage_changes.0.status": "in_progress",
        "interventions.0.kind": "business_course", "interventions.0.provider": "Bakery course Sarajevo",
        "meetings.0.at": "2026-11-23T08:00", "meetings.0.kind": "in_person"}


def _form(accepted: dict[str, Any]) -> dict[str, Any]:
    page = accepted["adviser"].get(f"/cases/{accepted['case_id']}/progress")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "What you record is sent back to them" in text and "Göteborgs-Initiativet" in text
    first = text.split('name="stage_changes.0.key" value="', 1)[1].split('"', 1)[0]
    # the form has a row per existing intervention first (from the summary: none here), then the new one
    return {**FORM, "stage_changes.0.key": first}


def test_preview_shows_what_flows_back_and_stores_nothing(accepted: dict[str, Any]) -> None:
    adviser, sarajevo_desk = accepted["adviser"], accepted["sarajevo"]
    form = _form(accepted)
    answer = adviser.post(f"/cases/{accepted['case_id']}/progress", {**form, "action": "preview"})
    page = answer.get_data(as_text=True)
    assert answer.status_code == 200 and "This is exactly what Göteborgs-Initiativet will receive" in page
    assert "passport application filed" in page and "Bakery course Sarajevo" in page and "In progress" in page
    assert _progress(sarajevo_desk) == (0, 0)
    answer = adviser.post(f"/cases/{accepted['case_id']}/progress", {**form, "action": "send"})
    assert answer.status_code == 302
    assert _progress(sarajevo_desk) == (1, 1)
    page = adviser.get(f"/cases/{accepted['case_id']}/progress").get_data(as_text=True)
    assert "Progress recorded and queued for Göteborgs-Initiativet." in page
    assert "Recorded here, sent to Göteborgs-Initiativet" in page and "Queued" in page


def test_progress_errors_stay_on_their_row(accepted: dict[str, Any]) -> None:
    form = _form(accepted) | {"note": "", "interventions.0.kind": "", "meetings.0.kind": "", "action": "preview"}
    answer = accepted["adviser"].post(f"/cases/{accepted['case_id']}/progress", form)
    page = answer.get_data(as_text=True)
    assert answer.status_code == 422 and 'id="f-meetings-0-kind-error"' in page
    assert "Bakery course Sarajevo" in page  # typed text kept
    assert _progress(accepted["sarajevo"]) == (0, 0)


def test_preview_progress_builds_the_message_without_storing(accepted: dict[str, Any]) -> None:
    desk = accepted["sarajevo"]
    user = accepted["adviser"].user
    who = Actor(user.id, user.username, user.role, user.team, None)
    with desk.node.sessionmaker() as session:
        result = preview_progress(session, who, accepted["case_id"], {
            "note": "First meeting held.", "interventions": [{"kind": "housing", "provider": "Municipality"}]},
            now=desk.node.clock.now())
        assert result["origin"] == "se.gi-goteborg" and result["origin_name"] == "Göteborgs-Initiativet"
        body = result["body"]
        assert body["note"] == "First meeting held." and "update_id" not in body
        assert body["interventions"] == [{"kind": "housing", "provider": "Municipality", "status": "proposed"}]
        assert not session.new and not session.dirty
    assert _progress(desk) == (0, 0)


def test_a_local_case_says_nothing_is_sent(accepted: dict[str, Any]) -> None:
    desk = accepted["gbg"]
    counsellor = sign_in(desk, "counsellor", "gbg", "anna.web")
    case_id = accepted["origin_case"]
    page = counsellor.get(f"/cases/{case_id}/progress").get_data(as_text=True)
    assert "nothing is sent anywhere" in page
    answer = counsellor.post(f"/cases/{case_id}/progress", {"note": "Called her.", "action": "preview"})
    assert answer.status_code == 200 and "nothing is sent anywhere" in answer.get_data(as_text=True)


def test_another_teams_counsellor_gets_404(accepted: dict[str, Any]) -> None:
    other = sign_in(accepted["sarajevo"], "counsellor", "tuzla", "other.team")
    assert other.get(f"/cases/{accepted['case_id']}/progress").status_code == 404
    assert other.get(f"/cases/{accepted['case_id']}/interventions").status_code == 404


def test_interventions_add_change_and_stale_version(accepted: dict[str, Any]) -> None:
    adviser, case_id = accepted["adviser"], accepted["case_id"]
    url = f"/cases/{case_id}/interventions"
    adviser.get(url)
    bad = adviser.post(url, {"kind": "job", "provider": "Bakery Ćevabdžinica", "amount": "100"})
    assert bad.status_code == 422 and "Bakery Ćevabdžinica" in bad.get_data(as_text=True)
    assert adviser.post(url, {"kind": "job", "status": "planned", "provider": "Bakery Ćevabdžinica"}).status_code == 302
    with accepted["sarajevo"].node.sessionmaker() as session:
        item = next((i for i in session.scalars(sa.select(Intervention))  # provider: encrypted at rest
                     if i.provider == "Bakery Ćevabdžinica"), None)
        assert item is not None
        item_id, version = item.id, item.version
    page = adviser.get(f"{url}/{item_id}").get_data(as_text=True)
    assert f'name="version" value="{version}"' in page
    changed = adviser.post(f"{url}/{item_id}", {"kind": "job", "status": "in_progress", "provider": "Bakery",
                                               "version": str(version)})
    assert changed.status_code == 302
    stale = adviser.post(f"{url}/{item_id}", {"kind": "job", "status": "completed", "provider": "Typed by me",
                                             "version": str(version)})
    page = stale.get_data(as_text=True)
    assert stale.status_code == 409 and "Someone changed this intervention" in page
    assert "Typed by me" in page and ">Bakery<" in page  # both versions
    assert adviser.post(f"{url}/{item_id}", {"kind": "job", "version": str(version + 1)},
                        csrf=False).status_code == 400
