"""The home page's work queues (``node.exchange.worklist``), called as services on two in-process nodes
(Göteborg → Sarajevo) whose cases, handovers, answers, progress and withdrawals are made through their JSON
APIs and carried by the delivery worker. Runs on SQLite and on PostgreSQL (the ``world`` fixture)."""

from __future__ import annotations

import copy
import json
from datetime import date, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from node.accounts import User, create_user
from node.audit import AuditEntry
from node.auth import Actor
from node.cases.models import Case
from node.cases.search import search_cases
from node.config import DEFAULT_STAGES
from node.errors import Forbidden
from node.exchange.worklist import needs_me_now, partner_choices, partner_condition, shared_by_me
from tests.exchange.conftest import START
from tests.exchange.desks import CASE, Desk, Worker, deliver, hand_over, incoming, open_case

CONFIRM = timedelta(hours=72)
SARAJEVO = ("ba.cldd-sarajevo", "CLDD Sarajevo")
GBG = ("se.gi-goteborg", "Göteborgs-Initiativet")
NEEDS = ("answered", "progress", "erasures", "incoming", "stages_due")
TITLES = dict(DEFAULT_STAGES)
LONG_NOTE = ("Met Amina at the office in Sarajevo with her son; the passport application is filed, the bakery "
             "course starts in March and the school has a place for him.")


def actor(desk: Desk, username: str) -> Actor:
    with desk.node.sessionmaker() as session:
        user = session.scalar(sa.select(User).where(User.username == username))
        assert user is not None
        return Actor(user.id, user.username, user.role, user.team)


def add_staff(desk: Desk, username: str, role: str, team: str) -> Actor:
    with desk.node.sessionmaker() as session:
        user = create_user(session, username=username, role=role, team=team, now=desk.node.clock.now(),
                           display_name=None)
        session.commit()
        return Actor(user.id, user.username, user.role, user.team)


def needs(desk: Desk, who: Actor, **options: Any) -> dict[str, Any]:
    with desk.node.sessionmaker() as session:
        result = needs_me_now(session, who, desk.node.clock.now(), confirm_within=CONFIRM,
                              **{"stage_titles": TITLES, **options})
        session.commit()
        return result


def shared(desk: Desk, who: Actor, **options: Any) -> dict[str, Any]:
    with desk.node.sessionmaker() as session:
        result = shared_by_me(session, who, desk.node.clock.now(), **options)
        session.commit()
        return result


def new_case(gbg: Desk, given: str) -> dict[str, Any]:
    """A case for ``given`` Hadžić with a consent for Sarajevo: ``{"id", "consent_id", "reference"}``."""
    body = copy.deepcopy(CASE)
    body["returnee"]["given_names"] = given
    case_id, consent_id = open_case(gbg, body)
    reference = gbg.ok("GET", f"/cases/{case_id}", "counsellor")["reference"]
    return {"id": case_id, "consent_id": consent_id, "reference": reference}


def sent_case(gbg: Desk, make_worker: Worker, given: str) -> dict[str, Any]:
    """A case handed over to Sarajevo and delivered there; adds ``handover_id`` (this node's handover id)."""
    case = new_case(gbg, given)
    case["handover_id"] = hand_over(gbg, case["id"], case["consent_id"])["id"]
    assert deliver(make_worker, gbg) == 1
    return case


def waiting_for(sarajevo: Desk, case: dict[str, Any]) -> str:
    """Sarajevo's id of the pending incoming handover of ``case``."""
    [item] = [h for h in incoming(sarajevo) if h["reference"] == case["reference"] and h["status"] == "pending"]
    return str(item["id"])


def accept(sarajevo: Desk, case: dict[str, Any]) -> str:
    """Sarajevo accepts ``case``; returns the id of the case opened there."""
    return str(sarajevo.ok("POST", f"/handovers/{waiting_for(sarajevo, case)}/accept", "adviser", 201,
                           json={})["case_id"])


def decline(sarajevo: Desk, case: dict[str, Any], reason: str) -> None:
    sarajevo.ok("POST", f"/handovers/{waiting_for(sarajevo, case)}/decline", "adviser",
                json={"reason": reason, "reason_code": "no_capacity"})


def ids(items: list[dict[str, Any]], key: str = "case_id") -> list[Any]:
    return [item[key] for item in items]


def test_answers_newest_first_and_shared_by_outcome(desks: tuple[Desk, Desk], make_worker: Worker) -> None:
    gbg, sarajevo = desks
    amina, emir, lejla = (sent_case(gbg, make_worker, name) for name in ("Amina", "Emir", "Lejla"))
    gbg.node.clock.advance(hours=1)
    accept(sarajevo, amina)
    accepted_at = gbg.node.clock.now()
    gbg.node.clock.advance(hours=1)
    decline(sarajevo, emir, "No adviser free in Sarajevo until March.")
    declined_at = gbg.node.clock.now()
    assert deliver(make_worker, sarajevo) == 2
    gbg.node.clock.advance(hours=1)
    selma = new_case(gbg, "Selma")
    queued = hand_over(gbg, selma["id"], selma["consent_id"])  # not delivered yet
    anna = actor(gbg, "anna.lindqvist")

    result = needs(gbg, anna)
    assert ids(result["answered"]) == [emir["id"], amina["id"]]  # newest answer first
    first, second = result["answered"]
    assert (first["status"], first["reason_code"], first["reason"], first["answered_at"]) == (
        "declined", "no_capacity", "No adviser free in Sarajevo until March.", declined_at)
    assert (first["case_reference"], first["returnee_name"], first["partner"], first["partner_name"]) == (
        emir["reference"], "Emir Hadžić", *SARAJEVO)
    assert (first["id"], first["direction"], first["declined_at"]) == (emir["handover_id"], "outgoing", declined_at)
    assert (second["status"], second["reason"], second["answered_at"], second["accepted_at"]) == (
        "accepted", None, accepted_at, accepted_at)
    assert second["returnee_name"] == "Amina Hadžić" and second["delivery"]["status"] == "delivered"
    assert result["counts"] == {"answered": 2, "progress": 0, "erasures": 0, "incoming": 0, "stages_due": 0}
    assert (result["progress"], result["erasures"], result["incoming"]) == ([], [], [])

    by_outcome = shared(gbg, anna)
    assert ids(by_outcome["awaiting"]) == [selma["id"], lejla["id"]]  # newest sent first
    assert [h["status"] for h in by_outcome["awaiting"]] == ["queued", "delivered"]
    assert by_outcome["awaiting"][0]["id"] == queued["id"] and by_outcome["awaiting"][0]["answered_at"] is None
    assert ids(by_outcome["accepted"]) == [amina["id"]] and ids(by_outcome["declined"]) == [emir["id"]]
    assert by_outcome["declined"][0]["reason"] == "No adviser free in Sarajevo until March."
    assert by_outcome["counts"] == {"awaiting": 2, "accepted": 1, "declined": 1}

    with gbg.node.sessionmaker() as session:
        entries = list(session.scalars(sa.select(AuditEntry).where(AuditEntry.object_type == "worklist")
                                       .order_by(AuditEntry.seq)))
    assert [(e.actor_id, e.action, e.object_id) for e in entries] == [
        (anna.user_id, "read", "needs_me_now"), (anna.user_id, "read", "shared_by_me")]
    assert json.loads(entries[0].detail or "") == {"counts": result["counts"]}
    assert "Hadžić" not in (entries[0].detail or "") + (entries[1].detail or "")


def test_progress_received_newest_first_with_a_preview(desks: tuple[Desk, Desk], make_worker: Worker) -> None:
    gbg, sarajevo = desks
    amina = sent_case(gbg, make_worker, "Amina")
    remote = accept(sarajevo, amina)
    sarajevo.ok("POST", f"/cases/{remote}/progress", "adviser", 201, json={"note": LONG_NOTE})
    deliver(make_worker, sarajevo)
    long_received = gbg.node.clock.now()
    gbg.node.clock.advance(days=2)
    sarajevo.ok("POST", f"/cases/{remote}/progress", "adviser", 201, json={"note": "Called Amina."})
    assert deliver(make_worker, sarajevo) == 1
    gbg.ok("POST", f"/cases/{amina['id']}/progress", "counsellor", 201, json={"note": "Local note."})  # not received

    [short, long] = needs(gbg, actor(gbg, "anna.lindqvist"))["progress"]
    assert (short["preview"], short["truncated"], short["received_at"]) == (
        "Called Amina.", False, gbg.node.clock.now())
    assert (long["preview"], long["truncated"], long["received_at"]) == (LONG_NOTE[:120], True, long_received)
    assert len(LONG_NOTE) > 120 and len(long["preview"]) == 120
    assert (long["case_id"], long["case_reference"], long["returnee_name"], long["partner"], long["partner_name"]) == (
        amina["id"], amina["reference"], "Amina Hadžić", *SARAJEVO)
    assert long["at"] == long_received and long["handover_id"] == amina["handover_id"]


def test_recent_days_window(desks: tuple[Desk, Desk], make_worker: Worker) -> None:
    gbg, sarajevo = desks
    amina = sent_case(gbg, make_worker, "Amina")
    remote = accept(sarajevo, amina)
    sarajevo.ok("POST", f"/cases/{remote}/progress", "adviser", 201, json={"note": "Met Amina."})
    deliver(make_worker, sarajevo)
    anna = actor(gbg, "anna.lindqvist")

    gbg.node.clock.set(START + timedelta(days=14))  # exactly 14 days on: still inside the window
    inside = needs(gbg, anna)
    assert (ids(inside["answered"]), ids(inside["progress"])) == ([amina["id"]], [amina["id"]])
    gbg.node.clock.advance(seconds=1)
    outside = needs(gbg, anna)
    assert (outside["answered"], outside["progress"]) == ([], [])
    assert outside["counts"] == {"answered": 0, "progress": 0, "erasures": 0, "incoming": 0, "stages_due": 0}
    wider = needs(gbg, anna, recent_days=30)
    assert (ids(wider["answered"]), ids(wider["progress"])) == ([amina["id"]], [amina["id"]])
    assert ids(shared(gbg, anna)["accepted"]) == [amina["id"]]  # the outcome lists have no window


def test_unconfirmed_erasures_overdue_first(desks: tuple[Desk, Desk], make_worker: Worker) -> None:
    gbg, sarajevo = desks
    amina, emir = sent_case(gbg, make_worker, "Amina"), sent_case(gbg, make_worker, "Emir")
    accept(sarajevo, amina)
    for case in (amina, emir):
        gbg.ok("POST", f"/cases/{case['id']}/consents/{case['consent_id']}/withdraw", "counsellor",
               json={"reason": "The returnee no longer wants the partner involved."})
        gbg.node.clock.advance(hours=40)
    anna = actor(gbg, "anna.lindqvist")

    result = needs(gbg, anna)  # 80 h after the first request, 40 h after the second
    assert [(e["case_id"], e["overdue"]) for e in result["erasures"]] == [(amina["id"], True), (emir["id"], False)]
    first = result["erasures"][0]
    assert (first["holder"], first["holder_name"], first["partner"], first["partner_name"]) == (*SARAJEVO, *SARAJEVO)
    assert (first["cause"], first["confirmed"], first["requested_at"], first["case_reference"]) == (
        "withdrawal", False, START, amina["reference"])
    assert first["returnee_name"] == "Amina Hadžić" and result["counts"]["erasures"] == 2
    assert needs(gbg, anna, limit=1)["erasures"][0]["case_id"] == amina["id"]

    for _ in range(3):  # Sarajevo erases and confirms
        deliver(make_worker, gbg)
        deliver(make_worker, sarajevo)
    confirmed = needs(gbg, anna)
    assert (confirmed["erasures"], confirmed["counts"]["erasures"]) == ([], 0)


def test_intake_queue_for_advisers_only(desks: tuple[Desk, Desk], make_worker: Worker) -> None:
    gbg, sarajevo = desks
    amina = sent_case(gbg, make_worker, "Amina")
    gbg.node.clock.advance(hours=1)
    emir = sent_case(gbg, make_worker, "Emir")
    emina = actor(sarajevo, "emina.kovac")

    queue = needs(sarajevo, emina)
    assert ids(queue["incoming"], "reference") == [amina["reference"], emir["reference"]]  # oldest first
    first = queue["incoming"][0]
    assert (first["status"], first["direction"], first["partner"], first["partner_name"], first["case_id"]) == (
        "pending", "incoming", *GBG, None)
    assert first["created_at"] == START and "summary" not in first  # the summary only on the handover's page
    api_item = next(h for h in incoming(sarajevo) if h["id"] == first["id"])
    assert set(first) == set(api_item)  # the API's shape
    assert queue["counts"]["incoming"] == 2
    capped = needs(sarajevo, emina, limit=1)
    assert ids(capped["incoming"], "reference") == [amina["reference"]] and capped["counts"]["incoming"] == 2

    haris = actor(sarajevo, "haris.begic")  # a counsellor: may not accept handovers
    assert (needs(sarajevo, haris)["incoming"], needs(sarajevo, haris)["counts"]["incoming"]) == ([], 0)
    accept(sarajevo, amina)
    assert ids(needs(sarajevo, emina)["incoming"], "reference") == [emir["reference"]]


def test_visibility_and_roles(desks: tuple[Desk, Desk], make_worker: Worker) -> None:
    gbg, sarajevo = desks
    amina = sent_case(gbg, make_worker, "Amina")
    remote = accept(sarajevo, amina)
    sarajevo.ok("POST", f"/cases/{remote}/progress", "adviser", 201, json={"note": "Met Amina."})
    deliver(make_worker, sarajevo)
    gbg.ok("POST", f"/cases/{amina['id']}/consents/{amina['consent_id']}/withdraw", "counsellor",
           json={"reason": "Changed her mind."})

    team_adviser = needs(gbg, actor(gbg, "amra.hodzic"))  # same team as the case
    assert team_adviser["counts"] == {"answered": 1, "progress": 1, "erasures": 1, "incoming": 0, "stages_due": 0}
    assert ids(team_adviser["answered"]) == [amina["id"]]

    other_team = add_staff(gbg, "malin.berg", "counsellor", "malmo")
    empty = needs(gbg, other_team)
    assert {key: empty[key] for key in NEEDS} == {key: [] for key in NEEDS}
    assert empty["counts"] == {"answered": 0, "progress": 0, "erasures": 0, "incoming": 0, "stages_due": 0}
    none_shared = shared(gbg, other_team)
    assert none_shared == {"awaiting": [], "accepted": [], "declined": [],
                           "counts": {"awaiting": 0, "accepted": 0, "declined": 0}}

    for role in ("coordinator", "admin"):
        who = add_staff(gbg, f"{role}.one", role, "gbg")
        with pytest.raises(Forbidden):
            needs(gbg, who)
        with pytest.raises(Forbidden):
            shared(gbg, who)


def test_caps_and_counts(desks: tuple[Desk, Desk], make_worker: Worker) -> None:
    gbg, sarajevo = desks
    cases = []
    for name in ("Amina", "Emir", "Lejla"):
        cases.append(sent_case(gbg, make_worker, name))
        gbg.node.clock.advance(minutes=10)
        accept(sarajevo, cases[-1])
    deliver(make_worker, sarajevo)
    anna = actor(gbg, "anna.lindqvist")

    capped = needs(gbg, anna, limit=2)
    assert ids(capped["answered"]) == [cases[2]["id"], cases[1]["id"]] and capped["counts"]["answered"] == 3
    outcome = shared(gbg, anna, limit=1)
    assert ids(outcome["accepted"]) == [cases[2]["id"]] and outcome["counts"]["accepted"] == 3
    nothing = needs(gbg, anna, limit=0)
    assert nothing["answered"] == [] and nothing["counts"]["answered"] == 3


def test_partner_filter_of_the_case_list(desks: tuple[Desk, Desk], make_worker: Worker) -> None:
    gbg, _ = desks
    amina = sent_case(gbg, make_worker, "Amina")
    kept = new_case(gbg, "Emir")  # never handed over
    anna = actor(gbg, "anna.lindqvist")
    stage_keys = gbg.node.app.extensions["ccm"].config.stage_keys

    def search(who: Actor, node_id: str | None, **filters: Any) -> dict[str, Any]:
        extra = [partner_condition(node_id)] if node_id else []
        with gbg.node.sessionmaker() as session:
            page = search_cases(session, who, filters, stage_keys=stage_keys, now=gbg.node.clock.now(),
                                extra=extra, extra_names=["partner"] if node_id else [])
            page["ids"] = [case.id for case in page["items"]]
            page["audit"] = json.loads(session.scalars(sa.select(AuditEntry.detail)
                                                       .order_by(AuditEntry.seq.desc())).first() or "")
            session.commit()
        return page

    with gbg.node.sessionmaker() as session:
        assert partner_choices(session) == [SARAJEVO]
    unfiltered = search(anna, None)
    assert (unfiltered["total"], set(unfiltered["ids"])) == (2, {amina["id"], kept["id"]})
    assert unfiltered["audit"]["filters"] == []
    to_sarajevo = search(anna, SARAJEVO[0])
    assert (to_sarajevo["total"], to_sarajevo["ids"]) == (1, [amina["id"]])
    assert to_sarajevo["audit"] == {"results": 1, "returned": 1, "filters": ["partner"]}
    with_name = search(anna, SARAJEVO[0], q="emir")
    assert (with_name["total"], with_name["audit"]["filters"]) == (0, ["partner", "q"])
    assert search(anna, "iq.cldd-baghdad")["total"] == 0
    assert search(add_staff(gbg, "malin.berg", "counsellor", "malmo"), SARAJEVO[0])["total"] == 0


def set_stage(desk: Desk, case_id: str, key: str, **changes: Any) -> dict[str, Any]:
    """Change a stage of ``case_id`` through the API (``due_on`` as an ISO date or None)."""
    version = desk.ok("GET", f"/cases/{case_id}/stages/{key}", "counsellor")["version"]
    result: dict[str, Any] = desk.ok("PATCH", f"/cases/{case_id}/stages/{key}", "counsellor",
                                     headers={"If-Match": f'"{version}"'}, json=changes)
    return result


def due(result: dict[str, Any]) -> list[tuple[str, str, bool]]:
    return [(item["case_reference"], item["stage_key"], item["overdue"]) for item in result["stages_due"]]


def test_stages_due_overdue_first_within_a_week(desks: tuple[Desk, Desk]) -> None:
    gbg, _ = desks  # today is 2026-11-23: the queue reaches 2026-11-30
    amina, emir, lejla, selma = (new_case(gbg, name) for name in ("Amina", "Emir", "Lejla", "Selma"))
    set_stage(gbg, amina["id"], "documents", due_on="2026-11-20", status="in_progress")
    set_stage(gbg, amina["id"], "housing", due_on="2026-11-30")  # the last day of the window
    set_stage(gbg, emir["id"], "documents", due_on="2026-12-01")  # one day beyond it
    set_stage(gbg, emir["id"], "housing", due_on="2026-11-23")  # due today: not overdue yet
    set_stage(gbg, lejla["id"], "documents", due_on="2026-11-10", status="done")
    set_stage(gbg, lejla["id"], "education", due_on="2026-11-21", status="not_applicable")
    set_stage(gbg, lejla["id"], "journey", due_on="2026-11-22")
    set_stage(gbg, lejla["id"], "journey", status="done")  # done after the due date was set
    set_stage(gbg, selma["id"], "housing", due_on="2026-11-24")
    with gbg.node.sessionmaker() as session:  # a closed case's stages are due no more
        session.execute(sa.update(Case.__table__).where(Case.__table__.c.id == selma["id"]).values(status="closed"))
        session.commit()
    set_stage(gbg, new_case(gbg, "Mirza")["id"], "arrival", due_on=None)  # no due date: never in the queue
    anna = actor(gbg, "anna.lindqvist")

    result = needs(gbg, anna)
    assert due(result) == [(amina["reference"], "documents", True), (emir["reference"], "housing", False),
                           (amina["reference"], "housing", False)]
    assert result["stages_due"][0] == {
        "case_id": amina["id"], "case_reference": amina["reference"], "returnee_name": "Amina Hadžić",
        "stage_key": "documents", "stage_title": "Personal documents in the country of origin",
        "due_on": date(2026, 11, 20), "overdue": True, "status": "in_progress"}
    assert result["stages_due"][1]["status"] == "not_started"
    assert result["counts"]["stages_due"] == 3
    capped = needs(gbg, anna, limit=1)
    assert due(capped) == [(amina["reference"], "documents", True)] and capped["counts"]["stages_due"] == 3

    untitled = needs(gbg, anna, stage_titles={"documents": "Papers"})  # a key without a title shows the key
    assert [item["stage_title"] for item in untitled["stages_due"]] == ["Papers", "housing", "housing"]

    gbg.node.clock.advance(days=1)  # 2026-11-24: the window reaches 2026-12-01, and today's is overdue
    later = needs(gbg, anna)
    assert due(later) == [(amina["reference"], "documents", True), (emir["reference"], "housing", True),
                          (amina["reference"], "housing", False), (emir["reference"], "documents", False)]

    set_stage(gbg, amina["id"], "documents", due_on=None)  # a cleared due date leaves the queue
    set_stage(gbg, emir["id"], "housing", status="done")
    assert due(needs(gbg, anna)) == [(amina["reference"], "housing", False), (emir["reference"], "documents", False)]

    with gbg.node.sessionmaker() as session:
        entry = session.scalars(sa.select(AuditEntry).where(AuditEntry.object_type == "worklist")
                                .order_by(AuditEntry.seq.desc())).first()
    assert entry is not None and json.loads(entry.detail or "")["counts"]["stages_due"] == 2


def test_stages_due_by_visibility(desks: tuple[Desk, Desk]) -> None:
    gbg, _ = desks
    amina = new_case(gbg, "Amina")
    set_stage(gbg, amina["id"], "documents", due_on="2026-11-25")

    team_adviser = needs(gbg, actor(gbg, "amra.hodzic"))  # the case's team
    assert due(team_adviser) == [(amina["reference"], "documents", False)]
    other_team = needs(gbg, add_staff(gbg, "malin.berg", "counsellor", "malmo"))
    assert (other_team["stages_due"], other_team["counts"]["stages_due"]) == ([], 0)
