"""The rows of one synthetic case (see :mod:`.demo`): the case, its stages, name tokens, household, intake,
plan, child safeguards, consent, interventions, notes and the timeline events that go with them."""

from __future__ import annotations

import datetime as dt
import random
import uuid
from dataclasses import dataclass, field
from typing import Any

from .search import name_tokens
from .services import is_child

Name = tuple[str, str | None]  # (Latin, native script or None)


@dataclass(frozen=True)
class NamePool:
    male: tuple[Name, ...]
    female: tuple[Name, ...]
    family: tuple[Name, ...]


@dataclass(frozen=True)
class Origin:
    """Where a group of returnees goes back to, and the names and languages they have."""

    country: str
    localities: tuple[str, ...]
    partner: str
    currency: str
    languages: tuple[tuple[str, ...], ...]
    pools: tuple[NamePool, ...]
    weight: int


CATEGORIES_BASE = ("identity", "contact", "education", "work", "wishes", "plan")
METHODS = ("written_signature", "written_signature", "oral_witnessed", "digital_signature")
OCCUPATIONS = ("car mechanic", "tailor", "farmer", "cook", "driver", "hairdresser", "electrician", "teacher",
               "shop assistant", "carpenter", "nurse assistant", "welder", "IT support", "baker", "mason")
SKILLS = ("welding", "bookkeeping", "driving licence B", "sewing", "customer service", "Microsoft Office",
          "cooking", "first aid", "carpentry", "English", "Swedish", "sales")
KINDS = ("education", "business_course", "job", "housing", "documents", "health", "financial_support")
PROVIDERS = {"education": "Vocational training centre", "business_course": "Start-your-own-business course",
             "job": "Local employer", "housing": "Housing office", "documents": "Civil registry",
             "health": "Primary care centre", "financial_support": "Reintegration grant"}
NOTES = ("Met the returnee at the local office; went through the plan together.",
         "Phone call: documents application submitted, waiting for the registry.",
         "Visited the training centre; a place is available from next month.",
         "The returnee reports that the family has settled in; next meeting in four weeks.",
         "Contacted the housing office about a temporary flat.")
SECTIONS_TEXT = {"family": "Lives with the family described in the household list.",
                 "education": "Schooling in the home country; some courses in Sweden.",
                 "work": "Work experience from the home country and short jobs in Sweden."}
MARITAL = ("single", "married", "married", "divorced", "widowed", "partnership")


@dataclass
class CaseRows:
    cases: list[dict[str, Any]] = field(default_factory=list)
    stages: list[dict[str, Any]] = field(default_factory=list)
    tokens: list[dict[str, Any]] = field(default_factory=list)
    household: list[dict[str, Any]] = field(default_factory=list)
    intake: list[dict[str, Any]] = field(default_factory=list)
    plans: list[dict[str, Any]] = field(default_factory=list)
    safeguards: list[dict[str, Any]] = field(default_factory=list)
    consents: list[dict[str, Any]] = field(default_factory=list)
    interventions: list[dict[str, Any]] = field(default_factory=list)
    notes: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _birth_date(rng: random.Random, on: dt.date, youngest: int, oldest: int) -> dt.date:
    return on - dt.timedelta(days=rng.randint(youngest * 366, oldest * 365 - 1))


def _person(rng: random.Random, pool: NamePool, female: bool) -> tuple[tuple[str, str | None], ...]:
    given = rng.choice(pool.female if female else pool.male)
    if rng.random() < 0.15:
        second = rng.choice(pool.female if female else pool.male)
        if second[0] != given[0]:
            native = f"{given[1]} {second[1]}" if given[1] and second[1] else given[1]
            given = (f"{given[0]} {second[0]}", native)
    return given, rng.choice(pool.family)


def _event(rows: CaseRows, case_id: str, when: dt.datetime, kind: str, actor: int, object_type: str,
           object_id: str | None, detail: dict[str, Any]) -> None:
    rows.events.append({"case_id": case_id, "occurred_at": when, "kind": kind, "source": "local",
                        "verified": True, "actor_id": actor, "object_type": object_type,
                        "object_id": object_id, "detail": detail})


def case_rows(rows: CaseRows, rng: random.Random, world: tuple[tuple[Origin, ...], NamePool], *, case_id: str,
              reference: str, created: dt.datetime, now: dt.datetime, assignee: int, team: str | None,
              stage_keys: tuple[str, ...]) -> None:
    """Append one synthetic case's rows to ``rows``."""
    origin_list, swedish = world
    origin = rng.choices(origin_list, weights=[o.weight for o in origin_list])[0]
    pool = rng.choice(origin.pools)
    female = rng.random() < 0.45
    child = rng.random() < 0.07
    dob = _birth_date(rng, created.date(), 10, 17) if child else _birth_date(rng, created.date(), 19, 62)
    given, family = _person(rng, pool, female)
    n = len(stage_keys)
    age_fraction = min(1.0, (now - created).days / 540)
    progress = max(0, min(n, round(age_fraction * n + rng.uniform(-1.5, 1.5))))
    ratio = progress / n
    status = ("closed" if progress == n else "in_reintegration" if ratio >= 0.75
              else "handed_over" if ratio >= 0.5 else "open")
    rows.cases.append({
        "id": case_id, "reference": reference, "status": status,
        "current_stage": stage_keys[progress] if progress < n else None, "assigned_user_id": assignee,
        "team": team, "given_names": given[0], "family_name": family[0], "given_names_native": given[1],
        "family_name_native": family[1], "date_of_birth": dob,
        "child_at_intake": is_child(dob, created.date()),
        "sex_or_gender": "female" if female else "male", "nationality": origin.country,
        "languages": list(rng.choice(origin.languages)),
        "phone": f"+46 7{rng.randint(0, 9)} {rng.randint(100, 999)} {rng.randint(10, 99)} "
                 f"{rng.randint(10, 99)}",
        "email": None, "address": None, "contact_notes": None, "destination_country": origin.country,
        "destination_locality": rng.choice(origin.localities), "destination_partner": origin.partner,
        "created_at": created, "updated_at": created, "created_by": assignee, "version": 1,
    })
    rows.tokens.extend({"token": t, "case_id": case_id} for t in sorted(name_tokens(
        (given[0], family[0], given[1], family[1]))))
    first_event = len(rows.events)
    _event(rows, case_id, created, "case.created", assignee, "case", case_id,
           {"household": 0, "sections": ["intake.family", "intake.education", "intake.work"], "child": child})
    last = _stages(rows, rng, case_id, created, now, assignee, stage_keys, progress)
    _intake(rows, rng, case_id, created, assignee, child)
    members = len(rows.household)
    _household(rows, rng, case_id, created, dob, family, pool, swedish, child)
    rows.events[first_event]["detail"]["household"] = len(rows.household) - members
    _consent(rows, rng, case_id, created, now, assignee, origin, swedish, child, family, pool)
    if rng.random() < 0.7:
        rows.plans.append({"case_id": case_id, "end_date": (created + dt.timedelta(days=540)).date(),
                           "milestones": [{"title": "Personal documents ready", "due_date": None,
                                           "done": progress > 0},
                                          {"title": "First meeting with the adviser", "due_date": None,
                                           "done": ratio >= 0.75}],
                           "updated_at": created, "updated_by": assignee, "version": 1})
    _progress(rows, rng, case_id, created, last, assignee, origin, progress)
    rows.cases[-1]["updated_at"] = max(e["occurred_at"] for e in rows.events[first_event:])


def _stages(rows: CaseRows, rng: random.Random, case_id: str, created: dt.datetime, now: dt.datetime,
            actor: int, stage_keys: tuple[str, ...], progress: int) -> dt.datetime:
    span = max((now - created) / (len(stage_keys) + 1), dt.timedelta(hours=1))
    last = created
    for position, key in enumerate(stage_keys):
        status, started, completed = "not_started", None, None
        if position < progress:
            status = "not_applicable" if rng.random() < 0.06 else "done"
            started = min(now, created + span * position)
            completed = min(now, started + span * rng.uniform(0.5, 1.0))
        elif position == progress:
            status, started = "in_progress", min(now, created + span * position)
        rows.stages.append({"case_id": case_id, "stage_key": key, "position": position, "status": status,
                            "responsible": "shared", "notes": None,
                            "started_on": started.date() if started and status != "not_applicable" else None,
                            "completed_on": completed.date() if completed and status == "done" else None,
                            "updated_at": completed or started or created, "updated_by": actor,
                            "version": 1 if status == "not_started" else 2})
        if status != "not_started":
            when = completed or started or created
            last = max(last, when)
            _event(rows, case_id, when, "stage.updated", actor, "stage", key,
                   {"stage": key, "fields": ["status"], "status": {"from": "not_started", "to": status}})
    return last


def _intake(rows: CaseRows, rng: random.Random, case_id: str, created: dt.datetime, actor: int,
            child: bool) -> None:
    data = {
        "family": {"marital_status": "single" if child else rng.choice(MARITAL),
                   "number_of_children": 0 if child else rng.choice((0, 0, 1, 2, 2, 3, 4))},
        "education": {"education_level": rng.randint(1, 3) if child
                      else rng.choice((1, 2, 2, 3, 3, 3, 4, 5, 6))},
        "work": {"occupations": [] if child else rng.sample(OCCUPATIONS, rng.randint(1, 2)),
                 "skills": rng.sample(SKILLS, rng.randint(1, 3))},
    }
    for section, structured in data.items():
        rows.intake.append({"case_id": case_id, "section": section, "text": SECTIONS_TEXT[section],
                            "data": structured, "updated_at": created, "updated_by": actor, "version": 1})


def _household(rows: CaseRows, rng: random.Random, case_id: str, created: dt.datetime, dob: dt.date,
               family: tuple[str, str | None], pool: NamePool, swedish: NamePool, child: bool) -> None:
    members: list[tuple[str, str | None, dt.date]] = []
    if child:
        if rng.random() < 0.5:
            members.append(("sibling", _person(rng, pool, rng.random() < 0.5)[0][0],
                            _birth_date(rng, created.date(), 3, 17)))
    else:
        if rng.random() < 0.55:
            members.append(("spouse", _person(rng, pool, rng.random() < 0.5)[0][0],
                            _birth_date(rng, created.date(), 19, 60)))
        for _ in range(rng.choice((0, 0, 1, 2, 3))):
            born_in_sweden = rng.random() < 0.3
            name = rng.choice((swedish if born_in_sweden else pool).female + (swedish if born_in_sweden
                                                                               else pool).male)[0]
            earliest = max(dob + dt.timedelta(days=18 * 366), created.date() - dt.timedelta(days=17 * 365))
            days = max(1, (created.date() - earliest).days)
            members.append(("child", name, earliest + dt.timedelta(days=rng.randrange(days))))
    for relation, given, born in members:
        rows.household.append({"id": _uuid(rng), "case_id": case_id, "relation": relation,
                               "given_names": given, "family_name": family[0], "date_of_birth": born,
                               "travelling": rng.random() < 0.8, "created_at": created, "updated_at": created,
                               "version": 1})


def _consent(rows: CaseRows, rng: random.Random, case_id: str, created: dt.datetime, now: dt.datetime,
             actor: int, origin: Origin, swedish: NamePool, child: bool, family: tuple[str, str | None],
             pool: NamePool) -> None:
    if child and rng.random() < 0.85:
        guardian = _person(rng, swedish, rng.random() < 0.6)
        complete = rng.random() < 0.8
        assessed = min(now, created + dt.timedelta(days=rng.randint(5, 40)))
        rows.safeguards.append({
            "case_id": case_id, "guardian_name": f"{guardian[0][0]} {guardian[1][0]}",
            "guardian_relation": "appointed guardian (god man)",
            "guardian_organisation": "Överförmyndarnämnden",
            "guardian_contact": None, "guardian_consent_at": min(now, created + dt.timedelta(days=3)),
            "child_views": "The child wants to return and live with relatives; heard with an interpreter.",
            "best_interests_outcome": "Return with family reunification is in the child's best interests."
            if complete else None,
            "assessed_at": assessed if complete else None,
            "assessed_by": "Social services, Göteborg" if complete else None,
            "updated_at": created, "updated_by": actor, "version": 1})
    if rng.random() >= 0.85:
        return
    consent_id = _uuid(rng)
    given_at = min(now, created + dt.timedelta(days=rng.randint(1, 14)))
    categories = list(CATEGORIES_BASE) + (["family"] if rng.random() < 0.7 else []) + (
        ["health"] if rng.random() < 0.35 else [])
    withdrawn = given_at + dt.timedelta(days=rng.randint(10, 200)) if rng.random() < 0.05 else None
    withdrawn = withdrawn if withdrawn and withdrawn <= now else None
    interpreter = None
    if rng.random() < 0.4:
        person = _person(rng, swedish, rng.random() < 0.5)
        interpreter = f"{person[0][0]} {person[1][0]}"
    rows.consents.append({
        "id": consent_id, "case_id": case_id, "categories": categories, "recipients": [origin.partner],
        "purpose": "reintegration_support",
        "valid_until": (given_at + dt.timedelta(days=rng.choice((365, 540, 730)))).date(),
        "method": rng.choice(METHODS), "language": rng.choice(origin.languages)[0],
        "interpreter": interpreter,
        "given_at": given_at, "recorded_by": actor, "created_at": given_at, "withdrawn_at": withdrawn,
        "withdrawal_reason": "The returnee changed their mind about sharing." if withdrawn else None,
        "withdrawn_by": actor if withdrawn else None})
    _event(rows, case_id, given_at, "consent.given", actor, "consent", consent_id,
           {"consent_id": consent_id, "categories": categories, "recipients": [origin.partner]})
    if withdrawn:
        _event(rows, case_id, withdrawn, "consent.withdrawn", actor, "consent", consent_id,
               {"consent_id": consent_id, "recipients": [origin.partner]})


def _progress(rows: CaseRows, rng: random.Random, case_id: str, created: dt.datetime, last: dt.datetime,
              actor: int, origin: Origin, progress: int) -> None:
    if progress >= 3:
        for kind in rng.sample(KINDS, rng.randint(1, 3)):
            item_id = _uuid(rng)
            when = created + (last - created) * rng.uniform(0.3, 1.0)
            money = kind in ("financial_support", "business_course")
            rows.interventions.append({
                "id": item_id, "case_id": case_id, "kind": kind, "provider": PROVIDERS[kind],
                "status": rng.choice(("planned", "in_progress", "completed")) if progress > 4 else "proposed",
                "start_date": when.date(), "end_date": None,
                "amount_cents": rng.randint(100, 3000) * 100 if money else None,
                "currency": origin.currency if money else None, "notes": None, "author_id": actor,
                "created_at": when, "updated_at": when, "version": 1})
            _event(rows, case_id, when, "intervention.added", actor, "intervention", item_id,
                   {"kind": kind, "status": rows.interventions[-1]["status"]})
    if progress >= 2:
        for _ in range(rng.randint(0, 3)):
            note_id = _uuid(rng)
            when = created + (last - created) * rng.uniform(0.1, 1.0)
            rows.notes.append({"id": note_id, "case_id": case_id, "text": rng.choice(NOTES),
                               "stage_changes": None, "author_id": actor, "created_at": when})
            _event(rows, case_id, when, "note.added", actor, "progress_note", note_id, {"stages": []})
