"""What leaves the node is what the counsellor saw: every granted value arrives with its value, or the preview
and the sent handover name it in ``not_carried`` with the reason (node/exchange/handovers/summary_gaps.py).

The property test builds random cases through the API, previews the handover of all categories, reads the
body the way the receiving node opens a case from it (``summary.case_data``), and checks every value.
"""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node.cases.models import HOUSEHOLD_RELATIONS, MARITAL_STATUSES
from node.exchange.handovers.summary import case_data, e164
from node.exchange.handovers.summary_gaps import tidy
from tests.exchange.desks import CASE, Desk, consent_body

ALL = ["identity", "contact", "family", "health", "background", "education", "work", "wishes", "plan"]


def _preview(gbg: Desk, case_body: dict[str, Any]) -> dict[str, Any]:
    case = gbg.ok("POST", "/cases", "counsellor", 201, json=case_body)
    consent = gbg.ok("POST", f"/cases/{case['id']}/consents", "counsellor", 201, json=consent_body(categories=ALL))
    preview: dict[str, Any] = gbg.ok("GET", f"/cases/{case['id']}/handovers/preview?recipient=ba.cldd-sarajevo"
                                            f"&consent_id={consent['id']}", "counsellor")
    preview["case_id"], preview["consent_id"] = case["id"], consent["id"]
    # the household as the node lists it (the order the summary and its field names follow)
    preview["household"] = gbg.ok("GET", f"/cases/{case['id']}/household", "counsellor")["items"]
    return preview


def test_what_a_summary_cannot_carry_is_named_in_the_preview_and_the_sent_record(desks: tuple[Desk, Desk]) -> None:
    """The outside review's case: two children counted, a milestone without a due date."""
    gbg, _ = desks
    body = copy.deepcopy(CASE)
    body["intake"]["family"]["number_of_children"] = 2
    body["plan"]["milestones"].append({"title": "Business course"})
    preview = _preview(gbg, body)
    fields = {g["field"]: g["reason"] for g in preview["not_carried"]}
    assert "number of children" in fields["family.number_of_children"]
    assert fields["plan.milestones[1]"] == ('"Business course" has no due date: a summary carries milestones '
                                            'with a due date only')
    assert preview["withheld"] == []  # every category is granted: nothing is withheld whole
    sent = gbg.ok("POST", f"/cases/{preview['case_id']}/handovers", "counsellor", 202,
                  json={"recipient": "ba.cldd-sarajevo", "consent_id": preview["consent_id"]})
    assert sent["not_carried"] == preview["not_carried"]
    listed = gbg.ok("GET", f"/handovers/{sent['id']}", "counsellor")
    assert listed["not_carried"] == preview["not_carried"]


LETTERS = st.text(st.sampled_from("abcdefghij ABC ÅÄÖåäö čćđšž ءابتثجح"), min_size=1, max_size=140).filter(
    lambda s: s.strip() != "")
DATES = st.dates(dt.date(1950, 1, 1), dt.date(2026, 11, 1)).map(dt.date.isoformat)
FUTURE = st.dates(dt.date(2027, 1, 1), dt.date(2028, 1, 1)).map(dt.date.isoformat)
LONG = st.text(st.sampled_from("ab cd\nef"), min_size=1, max_size=9000).filter(lambda s: s.strip() != "")
MEMBER = st.fixed_dictionaries({"relation": st.sampled_from(HOUSEHOLD_RELATIONS), "travelling": st.booleans()},
                               optional={"date_of_birth": DATES, "given_names": LETTERS})
MILESTONE = st.fixed_dictionaries({"title": LETTERS, "done": st.booleans()}, optional={"due_date": FUTURE})
WORDS = st.lists(st.sampled_from(["cook", "driver", "welder", "baker", "tailor"]), max_size=3, unique=True)


@st.composite
def cases(draw: st.DrawFn) -> dict[str, Any]:
    body = copy.deepcopy(CASE)
    body["returnee"]["given_names"] = draw(LETTERS)
    body["returnee"]["family_name"] = draw(LETTERS)
    body["returnee"]["contact"]["phone"] = draw(st.sampled_from(["+46 70 123 45 67", "070-123 45 67", None]))
    body["household"] = draw(st.lists(MEMBER, max_size=4))
    body["intake"] = {
        "family": {"text": draw(st.none() | LONG),
                   "marital_status": draw(st.none() | st.sampled_from(MARITAL_STATUSES)),
                   "number_of_children": draw(st.none() | st.integers(0, 6))},
        "health": {"text": draw(st.none() | LONG)},
        "work": {"text": draw(st.none() | LONG), "occupations": draw(WORDS), "skills": draw(WORDS)},
        "future_work": {"text": draw(st.none() | LETTERS), "occupations": draw(WORDS), "skills": draw(WORDS)},
        "wishes": {"text": draw(LETTERS)},
    }
    body["plan"] = {"end_date": draw(st.none() | FUTURE), "milestones": draw(st.lists(MILESTONE, max_size=4))}
    return body


def _check(sent: dict[str, Any], received: dict[str, Any], gaps: set[str]) -> None:
    """Every value the counsellor entered: as it arrives, or named in ``gaps``."""
    def same(field: str, entered: Any, arrived: Any) -> None:
        assert entered == arrived or field in gaps, (field, entered, arrived)

    returnee, got = sent["returnee"], received["returnee"]
    for name in ("given_names", "family_name"):
        same(f"identity.{name}", tidy(returnee[name]), got[name])
    phone = returnee["contact"]["phone"]
    if phone is not None:
        same("contact.phone", e164(phone) or phone, got["contact"]["phone"])
    intake = received["intake"]
    family = sent["intake"]["family"]
    if family["text"] is not None:
        same("family.text", family["text"].strip(), intake["family"]["text"])
    if family["marital_status"] is not None:
        same("family.marital_status", family["marital_status"], intake.get("family", {}).get("marital_status"))
    if family["marital_status"] == "other":
        assert "family.marital_status" in gaps
    if family["number_of_children"] is not None:
        assert "family.number_of_children" in gaps  # no field for it: named, never silently lost
    for i, (member, arrived) in enumerate(zip(sent["listed_household"], received["household"], strict=True)):
        same(f"family.household[{i}].relation", member["relation"], arrived["relation"])
        born = member["date_of_birth"]
        assert (arrived["travelling"], arrived["date_of_birth"]) == (
            member["travelling"], dt.date.fromisoformat(born) if born else None)
        if member.get("given_names"):
            assert f"family.household[{i}].name" in gaps
    for section, field in (("health", "health.text"), ("work", "work.text"), ("wishes", "wishes.text")):
        if sent["intake"][section]["text"] is not None:
            same(field, sent["intake"][section]["text"].strip(), intake[section]["text"])
    for name in ("occupations", "skills"):
        same(f"work.{name}", sent["intake"]["work"][name], intake.get("work", {}).get(name, []))
    future = sent["intake"]["future_work"]
    if future["text"] is not None:
        same("future_work.text", future["text"].strip(), intake["future_work"]["text"])
    for name in ("occupations", "skills"):
        if future[name]:
            assert f"future_work.{name}" in gaps
    milestones = received.get("plan", {}).get("milestones", [])
    arrived_iter = iter(milestones)
    for i, milestone in enumerate(sent["plan"]["milestones"]):
        if "due_date" not in milestone:
            assert f"plan.milestones[{i}]" in gaps
            continue
        arrived = next(arrived_iter)
        assert (arrived["title"], arrived["due_date"].isoformat(), arrived["done"]) == (
            tidy(milestone["title"]), milestone["due_date"], milestone["done"])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(body=cases())
def test_every_granted_value_arrives_or_is_named(desks: tuple[Desk, Desk], body: dict[str, Any]) -> None:
    gbg, _ = desks
    preview = _preview(gbg, body)
    data, _born = case_data(preview["body"], preview["body"]["consent"])
    _check({**body, "listed_household": preview["household"]}, data, {g["field"] for g in preview["not_carried"]})
