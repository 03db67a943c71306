"""Synthetic demo cases: realistic enough to show and to benchmark, fast enough for 100,000 in minutes.

Returnees going back to Bosnia and Herzegovina (Bosnian names with č ć đ š ž), Iraq (Arabic names in Arabic
script with a Latin transliteration) and Ghana (Akan/Twi, Ewe and Ga names); Swedish names for appointed
guardians, interpreters and children born in Sweden. Older cases are further along: every stage is reached,
and some cases are closed. About one case in fourteen is a child's, most with complete safeguards.

Rows are generated from a seeded ``random.Random`` (same seed, same data, ids included) and written with
Core bulk inserts in batches; there is one audit entry for the whole run instead of one per row.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm

from node.accounts import User
from node.audit import record

from .demo_names import (
    ARABIC_FAMILY,
    ARABIC_GIVEN_FEMALE,
    ARABIC_GIVEN_MALE,
    BOSNIAN_FAMILY,
    BOSNIAN_GIVEN_FEMALE,
    BOSNIAN_GIVEN_MALE,
    EWE_FAMILY,
    EWE_GIVEN_FEMALE,
    EWE_GIVEN_MALE,
    GA_FAMILY,
    GA_GIVEN_FEMALE,
    GA_GIVEN_MALE,
)
from .demo_rows import CaseRows, Name, NamePool, Origin, case_rows
from .models import (
    Case,
    CaseEvent,
    CaseNameToken,
    CasePlan,
    CaseStage,
    ChildSafeguards,
    Consent,
    HouseholdMember,
    IntakeSection,
    Intervention,
    ProgressNote,
)
from .services import allocate_numbers, format_reference

BATCH = 1000
SPAN_DAYS = 730

def _latin(names: Iterable[str]) -> tuple[Name, ...]:
    """Names without a native-script form (Faker's weighted name tables are mappings: their keys)."""
    return tuple((name, None) for name in names)


def _pairs(pairs: Sequence[tuple[str, str]]) -> tuple[Name, ...]:
    return tuple((latin, native) for native, latin in pairs)


def origins() -> tuple[Origin, ...]:
    from faker.providers.person.tw_GH import Provider as Twi

    akan = NamePool(_latin(Twi.first_names_male), _latin(Twi.first_names_female), _latin(Twi.last_names))
    return (
        Origin("BA", ("Sarajevo", "Tuzla", "Zenica", "Mostar", "Bihać", "Banja Luka", "Goražde"),
               "ba.cldd-sarajevo", "BAM", (("bs", "sv"), ("bs",), ("bs", "de"), ("hr", "sv")),
               (NamePool(_latin(BOSNIAN_GIVEN_MALE), _latin(BOSNIAN_GIVEN_FEMALE), _latin(BOSNIAN_FAMILY)),),
               30),
        Origin("IQ", ("Baghdad", "Erbil", "Dohuk", "Sulaymaniyah", "Basra", "Mosul", "Kirkuk"),
               "iq.cldd-baghdad", "IQD", (("ar",), ("ar", "sv"), ("ar", "ckb"), ("ar", "kmr", "sv")),
               (NamePool(_pairs(ARABIC_GIVEN_MALE), _pairs(ARABIC_GIVEN_FEMALE), _pairs(ARABIC_FAMILY)),),
               40),
        Origin("GH", ("Accra", "Kumasi", "Tamale", "Ho", "Cape Coast", "Tema", "Koforidua"),
               "gh.accra-reintegration", "GHS", (("tw", "en"), ("ee", "en"), ("gaa", "en"), ("en",)),
               (akan, NamePool(_latin(EWE_GIVEN_MALE), _latin(EWE_GIVEN_FEMALE), _latin(EWE_FAMILY)),
                NamePool(_latin(GA_GIVEN_MALE), _latin(GA_GIVEN_FEMALE), _latin(GA_FAMILY))), 30),
    )


def swedish_names() -> NamePool:
    from faker.providers.person.sv_SE import Provider as Swedish

    return NamePool(_latin(Swedish.first_names_male), _latin(Swedish.first_names_female),
                    _latin(Swedish.last_names))


def _insert(session: orm.Session, model: type[Any], rows: list[dict[str, Any]]) -> None:
    if rows:
        session.execute(sa.insert(model.__table__), rows)


_TABLES: tuple[tuple[str, type[Any]], ...] = (
    ("cases", Case), ("stages", CaseStage), ("tokens", CaseNameToken), ("household", HouseholdMember),
    ("intake", IntakeSection), ("plans", CasePlan), ("safeguards", ChildSafeguards), ("consents", Consent),
    ("interventions", Intervention), ("notes", ProgressNote), ("events", CaseEvent),
)


def generate_demo_cases(session: orm.Session, *, count: int, now: dt.datetime, seed: int,
                        counsellor_ids: list[int], stage_keys: tuple[str, ...], prefix: str) -> int:
    """Create ``count`` synthetic cases, spread over the two years before ``now``, oldest first.

    Args:
        counsellor_ids: staff the cases are assigned to (round robin; each case gets its assignee's team).
        stage_keys: the node's configured stages.
        prefix: the node's reference prefix.
    Returns:
        The number of cases created (flushed, not committed).
    Raises:
        ValueError: no counsellors, no stages, or a negative count.
    """
    if not counsellor_ids or not stage_keys or count < 0:
        raise ValueError("demo data needs counsellors, stages and a non-negative count")
    rng = random.Random(seed)  # noqa: S311 - synthetic data, reproducible by design
    teams = dict(session.execute(sa.select(User.id, User.team).where(User.id.in_(counsellor_ids))).all())
    world = (origins(), swedish_names())
    start = now - dt.timedelta(days=SPAN_DAYS)
    step = dt.timedelta(days=SPAN_DAYS) / max(count, 1)
    made = 0
    while made < count:
        size = min(BATCH, count - made)
        created = [start + step * (made + i + rng.random()) for i in range(size)]
        numbers = _reserve(session, prefix, created)
        batch = CaseRows()
        for i, when in enumerate(created):
            assignee = counsellor_ids[(made + i) % len(counsellor_ids)]
            case_rows(batch, rng, world, case_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                      reference=numbers[i], created=when, now=now, assignee=assignee,
                      team=teams.get(assignee), stage_keys=stage_keys)
        for name, model in _TABLES:
            _insert(session, model, getattr(batch, name))
        made += size
    session.flush()
    record(session, actor=None, action="create", object_type="demo_data", object_id=None, case_id=None,
           now=now, detail={"cases": count, "seed": seed})
    return made


def _reserve(session: orm.Session, prefix: str, created: list[dt.datetime]) -> list[str]:
    """References for cases created at ``created`` (ascending): numbers reserved per year in one go."""
    per_year = Counter(when.year for when in created)
    next_number = {year: allocate_numbers(session, f"{prefix}-{year}", n)
                   for year, n in sorted(per_year.items())}
    references = []
    for when in created:
        references.append(format_reference(prefix, when.year, next_number[when.year]))
        next_number[when.year] += 1
    return references
