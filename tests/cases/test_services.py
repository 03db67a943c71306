"""The case services called directly (a session and a fake clock), and their pure helpers."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
import sqlalchemy as sa
from marshmallow import ValidationError

from node.cases import consent, services, stages
from node.cases.models import Case, ReferenceCounter
from node.cases.schemas import CaseCreateSchema, InterventionCreateSchema
from node.cases.search import name_tokens, normalise, query_words, successor
from node.concurrency import Expected, parse_if_match
from node.config import DEFAULT_STAGES, Stage
from node.db import make_sessionmaker
from node.errors import Conflict, Forbidden, NotFound, VersionConflict
from tests.cases.casedata import minimal_case

STAGES = tuple(Stage(k, t) for k, t in DEFAULT_STAGES)


def _create(session, who, now, body=None):
    data = CaseCreateSchema().load(body or minimal_case())
    case = services.create_case(session, who.actor, data, stages=STAGES, prefix="GI", now=now)
    session.commit()
    return case


def test_normalise_and_tokens():
    assert normalise("Šehić") == "sehic"
    assert normalise("ĐURĐEVIĆ") == "durdevic"
    assert normalise("Åström") == "astrom"
    assert normalise("Ɔkyeame Akyerεko") == "okyeame akyereko"
    assert normalise("أَحْمَد") == normalise("احمد")
    assert name_tokens(["Al-Jubouri", "الجبوري", None, ""]) == {"al", "jubouri", "الجبوري", "جبوري"}
    assert name_tokens(["Đorđe"]) == {"dorde", "djordje"}
    assert name_tokens(["O'Brien-Smith"]) == {"obrien", "smith"}
    assert query_words("al jubouri") == ["jubouri"]
    assert query_words("al") == ["al"]
    assert query_words("a b c d e f g") == ["a", "b", "c", "d", "e"]


def test_successor_bounds_every_prefix():
    for prefix in ("sehic", "ج", "a\U0010ffff", "\ud7ff"[:0] + "x\ud7ff"):
        upper = successor(prefix)
        assert prefix < upper
        assert prefix + "\U0010ffff" < upper or upper == prefix[:-1] + chr(ord(prefix[-1]) + 1)
    assert successor("x\ud7ff") == "x\ue000"
    with pytest.raises(ValueError, match="empty"):
        successor("\U0010ffff")


def test_if_match_parsing():
    assert parse_if_match(None) is None
    assert parse_if_match("  ") is None
    assert parse_if_match('"3"') == Expected(3, from_header=True)
    assert parse_if_match('W/"12"') == Expected(12, from_header=True)
    assert parse_if_match("3").version == -1
    assert parse_if_match('"' + "9" * 20 + '"').version == -1


def test_is_child_counts_whole_years():
    assert services.is_child(dt.date(2008, 11, 24), dt.date(2026, 11, 23))
    assert not services.is_child(dt.date(2008, 11, 23), dt.date(2026, 11, 23))
    assert services.is_child(dt.date(2008, 2, 29), dt.date(2026, 2, 28))
    assert not services.is_child(dt.date(2008, 2, 29), dt.date(2026, 3, 1))


def test_current_stage():
    assert stages.current_stage_of([("a", "done"), ("b", "not_started"), ("c", "in_progress")]) == "c"
    assert stages.current_stage_of([("a", "done"), ("b", "not_started"), ("c", "not_started")]) == "b"
    assert stages.current_stage_of([("a", "done"), ("b", "not_applicable")]) is None


def test_schema_checks():
    with pytest.raises(ValidationError) as caught:
        InterventionCreateSchema().load(
            {"kind": "job", "amount": 5, "start_date": "2027-01-02", "end_date": "2027-01-01"}
        )
    assert set(caught.value.messages) == {"currency", "end_date"}
    loaded = CaseCreateSchema().load(
        minimal_case(returnee={"given_names": "  Amina  "}, destination_country="xk")
    )
    assert loaded["returnee"]["given_names"] == "Amina" and loaded["destination_country"] == "XK"
    with pytest.raises(ValidationError):
        CaseCreateSchema().load(minimal_case(returnee={"given_names": "   "}))


def test_create_and_read_through_the_services(db_session, counsellor, clock):
    case = _create(db_session, counsellor, clock.now())
    assert case.reference == "GI-2026-0001" and case.version == 1 and case.current_stage == "documents"
    assert services.get_case(db_session, counsellor.actor, case.id, clock.now()) is case


def test_services_check_the_role_and_visibility(db_session, counsellor, staff, clock):
    coordinator, outsider, adviser = (
        staff("coordinator"),
        staff("adviser", team="accra"),
        staff("adviser", "gbg"),
    )
    case = _create(db_session, counsellor, clock.now())
    with pytest.raises(Forbidden):
        services.get_case(db_session, coordinator.actor, case.id, clock.now())
    with pytest.raises(NotFound):
        services.get_case(db_session, outsider.actor, case.id, clock.now())
    with pytest.raises(Forbidden):
        consent.create_consent(db_session, adviser.actor, case.id, {}, clock.now())


def test_a_lost_race_is_a_conflict_and_changes_nothing(app, engine, db_session, counsellor, clock):
    case = _create(db_session, counsellor, clock.now())
    other = make_sessionmaker(engine)()
    stale = other.get(Case, case.id)
    other.commit()  # the second writer has read version 1 and holds no lock
    services.update_case(
        db_session, counsellor.actor, case.id, {"status": "closed"}, Expected(1), clock.now()
    )
    db_session.commit()
    with pytest.raises(VersionConflict):
        services.update_case(
            other, counsellor.actor, stale.id, {"status": "handed_over"}, Expected(1, True), clock.now()
        )
    other.rollback()
    with pytest.raises(Conflict):
        services.update_case(
            other, counsellor.actor, stale.id, {"status": "handed_over"}, Expected(1), clock.now()
        )
    other.close()
    db_session.expire_all()
    assert db_session.get(Case, case.id).status == "closed"


def test_reference_numbers_are_unique_under_concurrency(app, engine):
    numbers: list[int] = []
    errors: list[BaseException] = []

    def allocate() -> None:
        try:
            for _ in range(10):
                with make_sessionmaker(engine)() as session:
                    numbers.append(services.allocate_numbers(session, "GI-2030"))
                    session.commit()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=allocate) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(numbers) == list(range(1, 41))
    with make_sessionmaker(engine)() as session:
        assert session.get(ReferenceCounter, "GI-2030").last_value == 40
        assert services.allocate_numbers(session, "GI-2030", 5) == 41
        assert session.scalar(sa.select(ReferenceCounter.last_value)) == 45
