"""The story the demo network is seeded with, told through the nodes' own HTTP APIs and verified step by step.

Göteborg's counsellor opens cases (intake), records consent, and hands them over; each handover must come back
with a signed receipt (delivered); the advisers in Sarajevo, Baghdad and Accra find them in their incoming
queue and accept or decline them; Göteborg must see the answer; progress recorded by the advisers must reach
Göteborg's timeline as verified partner events and show in the partner's stages. One case stays at intake,
one handover waits for an adviser, one is declined, and one is a child's case with its safeguards.
"""

from __future__ import annotations

import copy
import datetime as dt
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from .demo_nodes import DemoError, DemoNode

T = TypeVar("T")
WAIT_SECONDS = 60.0
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


class Network(Protocol):
    """What the story needs of the network (``demo_network.Network``): its nodes by key."""

    def node(self, key: str) -> DemoNode: ...


def _day(days: int) -> str:
    return (NOW + dt.timedelta(days=days)).date().isoformat()


def _time(days: int) -> str:
    return (NOW + dt.timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Story:
    body: dict[str, Any]
    to: str  # the receiving node's key, or "" for a case that stays at intake
    outcome: str  # accept, decline, pending, intake
    categories: tuple[str, ...] = ("identity", "contact", "family", "education", "work", "wishes", "plan")
    safeguards: dict[str, Any] | None = None
    progress: dict[str, Any] | None = None


def _case(given: str, family: str, born: str, country: str, locality: str, languages: list[str],
          intake: dict[str, Any], **returnee: Any) -> dict[str, Any]:
    return {"returnee": {"given_names": given, "family_name": family, "date_of_birth": born,
                         "languages": languages, **returnee},
            "destination_country": country, "destination_locality": locality, "intake": intake,
            "plan": {"end_date": _day(240), "milestones": [
                {"title": "Personal documents ready", "due_date": _day(60)},
                {"title": "First meeting with the adviser", "due_date": _day(75)}]}}


STORIES = (
    Story(_case("Amina", "Hadžić", "1988-03-14", "BA", "Sarajevo", ["bs", "sv"], {
        "family": {"text": "Single mother with a son of eleven; they travel together.", "marital_status": "single"},
        "health": {"text": "Asthma, well controlled."},
        "work": {"text": "Cook in a school kitchen in Göteborg for six years.", "occupations": ["cook"]},
        "future_work": {"text": "Wants to open a small bakery in Novo Sarajevo."},
        "wishes": {"text": "Želim da moj sin završi školu u Sarajevu."}},
        contact={"phone": "+46 70 123 45 67"}, nationality="BA"), "sarajevo", "accept",
        progress={"note": "First meeting held at the CLDD office; ID card application filed at the MUP.",
                  "stages": [("documents", "in_progress"), ("housing", "in_progress")],
                  "interventions": [{"kind": "business_course", "provider": "Start-up course, Sarajevo",
                                     "status": "planned"}]}),
    Story(_case("Karim", "al-Husseini", "1985-07-02", "IQ", "Erbil", ["ar-IQ", "ku", "sv"], {
        "family": {"text": "Married, two children; the family returns together.", "marital_status": "married"},
        "education": {"text": "Vocational training as an electrician.", "education_level": 4},
        "work": {"text": "Electrician for eight years.", "occupations": ["electrician"]},
        "wishes": {"text": "أريد أن أبدأ عملي الخاص وأن يذهب أطفالي إلى المدرسة."}},
        given_names_native="كريم", family_name_native="الحسيني", nationality="IQ"), "baghdad", "accept",
        progress={"note": "Karim arrived in Erbil; the family stays with relatives for now.",
                  "stages": [("arrival", "done")], "meetings": [{"kind": "in_person"}]}),
    Story(_case("Kwame", "Mensah", "1979-11-20", "GH", "Kumasi", ["tw", "en"], {
        "work": {"text": "Warehouse worker; forklift licence.", "occupations": ["warehouse worker"]},
        "wishes": {"text": "To farm cocoa with his brother near Kumasi."}}, nationality="GH"), "accra", "pending"),
    Story(_case("Nermin", "Softić", "1992-05-09", "BA", "Tuzla", ["bs"], {
        "wishes": {"text": "Return to Tuzla and work in construction."}}), "sarajevo", "decline"),
    Story(_case("Emir", "Mehmedović", "2011-08-30", "BA", "Sarajevo", ["bs", "sv"], {
        "family": {"text": "Unaccompanied; his grandmother in Sarajevo will care for him."},
        "wishes": {"text": "Emir wants to live with his grandmother and go to school in Sarajevo."}}),
        "sarajevo", "pending", safeguards={
            "guardian": {"name": "Karin Berg", "relation": "appointed guardian (god man)"},
            "guardian_consent_at": _time(-30),
            "child_views": "Emir wants to go back and live with his grandmother; he misses his school friends.",
            "best_interests_outcome": "Return to the grandmother is in Emir's best interests.",
            "assessed_at": _time(-20), "assessed_by": "Göteborgs stad, socialtjänsten"}),
    Story(_case("Fatima", "Saleh", "1990-02-17", "IQ", "Dohuk", ["ar", "ku"], {
        "wishes": {"text": "Still deciding whether to return."}}), "", "intake"),
)


class StepFailed(DemoError):
    """A step of the story did not verify."""


def wait_for(what: str, probe: Callable[[], T | None], seconds: float = WAIT_SECONDS) -> T:
    """Poll ``probe`` until it returns something; raise :class:`StepFailed` after ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise StepFailed(f"{what}: not seen within {seconds:g} s")
        time.sleep(0.2)


def _handover(gbg: DemoNode, case_id: str) -> dict[str, Any]:
    items: list[dict[str, Any]] = gbg.api("GET", f"/cases/{case_id}/handovers", gbg.user("counsellor"))["items"]
    return items[-1]


def _delivered(gbg: DemoNode, case_id: str) -> dict[str, Any] | None:
    handover = _handover(gbg, case_id)
    return handover if handover["delivered_at"] else None


def _incoming(node: DemoNode, reference: str) -> dict[str, Any] | None:
    items = node.api("GET", "/handovers?direction=incoming", node.user("adviser"))["items"]
    return next((h for h in items if h["reference"] == reference), None)


def _open(gbg: DemoNode, receiver: DemoNode | None, story: Story) -> Iterator[tuple[str, dict[str, Any]]]:
    anna = gbg.user("counsellor")
    case = gbg.api("POST", "/cases", anna, 201, json=copy.deepcopy(story.body))
    yield f"intake: {case['reference']} opened at {gbg.spec.node_id}", case
    if receiver is None:
        return
    if story.safeguards is not None:
        gbg.api("PUT", f"/cases/{case['id']}/child-safeguards", anna, 200, json=story.safeguards,
                headers={"If-Match": '"0"'})
    consent = gbg.api("POST", f"/cases/{case['id']}/consents", anna, 201, json={
        "recipients": [receiver.spec.node_id], "categories": list(story.categories),
        "purpose": "reintegration_support", "method": "written_signature", "valid_until": _day(365)})
    if consent["status"] != "active":
        raise StepFailed(f"consent for {case['reference']} is {consent['status']}")
    yield f"consent: {case['reference']} may go to {receiver.spec.node_id} ({len(story.categories)} categories)", case
    extra = {"best_interests_outcome": "in_best_interests"} if story.safeguards else {}
    sent = gbg.api("POST", f"/cases/{case['id']}/handovers", anna, 202,
                   json={"recipient": receiver.spec.node_id, "consent_id": consent["id"], **extra})
    if sent["status"] != "queued" or "health" not in sent["withheld"]:
        raise StepFailed(f"handover of {case['reference']}: {sent['status']}, withheld {sent['withheld']}")
    yield f"handover: {case['reference']} queued for {receiver.spec.node_id}, withheld {sent['withheld']}", case


def _decide(receiver: DemoNode, story: Story, reference: str) -> tuple[str, str | None]:
    waiting = wait_for(f"{reference} in {receiver.spec.node_id}'s incoming queue",
                       lambda: _incoming(receiver, reference))
    adviser = receiver.user("adviser")
    detail = receiver.api("GET", f"/handovers/{waiting['id']}", adviser)
    if "health" in detail.get("summary", {}) or not detail.get("consent", {}).get("signatures"):
        raise StepFailed(f"{reference} at {receiver.spec.node_id}: summary outside the consent or unsigned")
    if story.outcome == "accept":
        accepted = receiver.api("POST", f"/handovers/{waiting['id']}/accept", adviser, 201,
                                json={"first_meeting_at": _time(75)})
        return f"accept: {receiver.spec.node_id} opened {accepted['reference']} for {reference}", accepted["case_id"]
    if story.outcome == "decline":
        receiver.api("POST", f"/handovers/{waiting['id']}/decline", adviser, 200, json={
            "reason": "No adviser free in Tuzla until spring; please ask again in March.",
            "reason_code": "no_capacity"})
        return f"decline: {receiver.spec.node_id} declined {reference} (no_capacity)", None
    return f"waiting: {reference} is in {receiver.spec.node_id}'s incoming queue", None


def _progress(receiver: DemoNode, gbg: DemoNode, case_id: str, origin_case: str, story: Story) -> str:
    assert story.progress is not None
    adviser = receiver.user("adviser")
    plan = story.progress
    body: dict[str, Any] = {"note": plan["note"],
                            "stage_changes": [{"key": k, "status": s} for k, s in plan.get("stages", [])]}
    if plan.get("interventions"):
        body["interventions"] = plan["interventions"]
    if plan.get("meetings"):
        body["meetings"] = [{"at": _time(-1), **m} for m in plan["meetings"]]
    sent = receiver.api("POST", f"/cases/{case_id}/progress", adviser, 201, json=body)
    if sent["shared_with"] != gbg.spec.node_id:
        raise StepFailed(f"progress on {case_id} was not sent to {gbg.spec.node_id}: {sent.get('not_shared')}")
    anna = gbg.user("counsellor")

    def arrived() -> dict[str, Any] | None:
        events = gbg.api("GET", f"/cases/{origin_case}/timeline", anna)["items"]
        return next((e for e in events if e["kind"] == "partner.progress"
                     and e["source"] == receiver.spec.node_id and e["verified"]), None)

    wait_for(f"progress from {receiver.spec.node_id} on Göteborg's timeline", arrived)
    stages = gbg.api("GET", f"/cases/{origin_case}/partner-stages", anna)["items"]
    expected = {(k, s) for k, s in plan.get("stages", [])}
    if {(s["key"], s["status"]) for s in stages} != expected:
        raise StepFailed(f"partner stages at Göteborg: {stages}")
    return (f"progress back: {receiver.spec.node_id} → {gbg.spec.node_id}, verified on the timeline, "
            f"{len(expected)} partner stage(s)")


def seed_demo(network: Network) -> Iterator[str]:
    """Tell the story through the APIs, verifying each step.

    Yields:
        One line per verified step.
    Raises:
        StepFailed, DemoError: a step did not verify.
    """
    gbg = network.node("goteborg")
    opened: list[tuple[Story, DemoNode, dict[str, Any]]] = []
    for story in STORIES:
        receiver = network.node(story.to) if story.to else None
        opened_case: dict[str, Any] = {}
        for line, opened_case in _open(gbg, receiver, story):  # noqa: B007 - the last one is kept
            yield line
        if receiver is not None:
            opened.append((story, receiver, opened_case))
    for _story, receiver, case in opened:
        shown = wait_for(f"signed receipt for {case['reference']}", lambda case=case: _delivered(gbg, case["id"]))
        yield f"receipt: {case['reference']} delivered to {receiver.spec.node_id} at {shown['delivered_at']}"
    accepted: list[tuple[Story, DemoNode, dict[str, Any], str]] = []
    for story, receiver, case in opened:
        line, new_case = _decide(receiver, story, case["reference"])
        yield line
        if new_case is not None:
            accepted.append((story, receiver, case, new_case))
    for story, _receiver, case in opened:
        if story.outcome in ("accept", "decline"):
            status = "accepted" if story.outcome == "accept" else "declined"
            wait_for(f"{case['reference']} {status} at Göteborg",
                     lambda case=case, status=status: _handover(gbg, case["id"])["status"] == status)
            yield f"answer: Göteborg sees {case['reference']} {status}"
    for story, receiver, case, new_case in accepted:
        yield _progress(receiver, gbg, new_case, case["id"], story)


def synthetic_cases(network: Network, count: int = 200) -> None:
    """Bulk synthetic cases for Göteborg's lists and reports (not part of the verified story)."""
    network.node("goteborg").cli("demo-data", "--cases", str(count))
