"""Consent across the chain between two in-process nodes (Göteborg → Sarajevo) through their JSON APIs, with the
delivery worker carrying the messages: full and partial withdrawal, revocation, retention, closing, the
disclosure record and the subject-access export. Runs on SQLite and on PostgreSQL (the ``world`` fixture)."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from node.cases.models import Case, HouseholdMember, IntakeSection
from node.exchange.chain.disclosures import flag_overdue
from node.exchange.chain.models import ConsentWithdrawal, ErasureRequest, Tombstone
from node.exchange.chain.retention import retention_loop, run_retention
from node.exchange.handovers.models import Handover
from node.exchange.models import InboundMessage, OutboundMessage
from tests.exchange.conftest import Node
from tests.exchange.desks import (
    Desk,
    Worker,
    deliver,
    hand_over,
    incoming,
    open_case,
    timeline,
)

PERSONAL = ("Amina", "Hadžić", "1990-04-02", "Storgatan", "+46701234567", "inhaler", "bakery", "Sarajevu")


def accepted_case(gbg: Desk, sarajevo: Desk, make_worker: Worker) -> dict[str, Any]:
    """A case handed over to Sarajevo, accepted there, with progress back in Göteborg."""
    case_id, consent_id = open_case(gbg)
    sent = hand_over(gbg, case_id, consent_id)
    deliver(make_worker, gbg)
    [waiting] = incoming(sarajevo)
    accepted = sarajevo.ok("POST", f"/handovers/{waiting['id']}/accept", "adviser", 201, json={})
    sarajevo.ok("POST", f"/cases/{accepted['case_id']}/progress", "adviser", 201,
                json={"note": "Met Amina at the office; the bakery course starts in March."})
    deliver(make_worker, sarajevo)
    return {"case_id": case_id, "consent_id": consent_id, "sent": sent, "incoming": waiting,
            "remote_case_id": accepted["case_id"]}


def exchange(make_worker: Worker, *desks_: Desk) -> None:
    """Deliver everything queued until both sides are quiet (withdrawal there, confirmation back)."""
    for _ in range(3):
        for desk in desks_:
            deliver(make_worker, desk)


def all_text(node: Node) -> str:
    """Every value of every table of a node's database, as text."""
    parts = []
    with node.engine.connect() as conn:
        for table in sa.inspect(node.engine).get_table_names():
            for row in conn.execute(sa.text(f'SELECT * FROM "{table}"')):  # table names from the inspector
                parts.extend(v.decode("latin-1") if isinstance(v, bytes) else str(v) for v in row)
    return "\n".join(parts)


def database_files(node: Node) -> dict[str, bytes]:
    """SQLite: the database file and its write-ahead log, as stored on disk (nothing for PostgreSQL)."""
    if node.engine.dialect.name != "sqlite":
        return {}
    path = node.engine.url.database
    assert path is not None
    files = {}
    for name in (path, path + "-wal"):
        try:
            with open(name, "rb") as fh:
                files[name] = fh.read()
        except FileNotFoundError:
            pass
    return files


def assert_no_personal_data(node: Node) -> None:
    """None of the returnee's names, date of birth, contact or story is left on the node: not in any table, and
    (SQLite) not in the bytes of the database file or its write-ahead log."""
    text = all_text(node)
    for value in PERSONAL:
        assert value not in text, f"{value!r} left in the tables of {node.node_id}"
    for name, raw in database_files(node).items():
        for value in PERSONAL:
            at = raw.find(value.encode("utf-8"))
            assert at < 0, f"{value!r} left in {name} at byte {at}: {raw[max(0, at - 200):at + 60]!r}"


def test_full_withdrawal_erases_at_the_receiver_and_is_confirmed(desks: tuple[Desk, Desk],
                                                                 make_worker: Worker) -> None:
    gbg, sarajevo = desks
    story = accepted_case(gbg, sarajevo, make_worker)
    assert "Amina" in all_text(sarajevo.node)  # the receiver holds the case before the withdrawal
    result = gbg.ok("POST", f"/cases/{story['case_id']}/consents/{story['consent_id']}/withdraw", "counsellor",
                    json={"reason": "The returnee no longer wants the partner involved."})
    assert result["status"] == "withdrawn" and result["withdrawal"]["scope"] is None
    [request] = result["erasure_requests"]
    assert request["partner"] == "ba.cldd-sarajevo" and request["sent"] and not request["confirmed"]

    exchange(make_worker, gbg, sarajevo)

    with sarajevo.node.sessionmaker() as session:
        handover = session.scalar(sa.select(Handover))
        assert handover is not None and handover.status == "erased" and handover.case_id is None
        assert handover.body is None and handover.consent is None
        assert session.get(Case, story["remote_case_id"]) is None
        assert session.scalar(sa.select(sa.func.count()).select_from(InboundMessage)
                              .where(InboundMessage.inner.is_not(None))) == 0
        [tombstone] = session.scalars(sa.select(Tombstone)).all()
        assert tombstone.cause == "withdrawal" and handover.message_id in tombstone.message_ids
        assert len(tombstone.message_ids) == len(tombstone.content_hashes) >= 2
        withdrawal = session.scalar(sa.select(ConsentWithdrawal))
        assert withdrawal is not None and withdrawal.consent_id == story["consent_id"]
    assert_no_personal_data(sarajevo.node)
    assert sarajevo.call("GET", f"/cases/{story['remote_case_id']}", "adviser").status_code == 404

    [disclosure] = gbg.ok("GET", f"/cases/{story['case_id']}/disclosures", "counsellor")["items"]
    assert disclosure["recipient"] == "ba.cldd-sarajevo" and disclosure["delivered_at"] is not None
    assert disclosure["consent_id"] == story["consent_id"] and disclosure["erasure"] == "confirmed"
    [confirmed] = disclosure["erasure_requests"]
    assert confirmed["confirmed"] and confirmed["erased_messages"] == len(tombstone.message_ids)
    kinds = [e["kind"] for e in timeline(gbg, story["case_id"])]
    assert "consent.withdrawn" in kinds and "partner.erasure_confirmed" in kinds
    event = next(e for e in timeline(gbg, story["case_id"]) if e["kind"] == "partner.erasure_confirmed")
    assert event["source"] == "ba.cldd-sarajevo" and event["verified"]


def test_withdrawal_of_a_waiting_handover_erases_its_summary(desks: tuple[Desk, Desk], make_worker: Worker) -> None:
    gbg, sarajevo = desks
    case_id, consent_id = open_case(gbg)
    hand_over(gbg, case_id, consent_id)
    deliver(make_worker, gbg)
    [waiting] = incoming(sarajevo)
    gbg.ok("POST", f"/cases/{case_id}/consents/{consent_id}/withdraw", "counsellor", json={"reason": "Changed mind."})
    exchange(make_worker, gbg, sarajevo)
    shown = sarajevo.ok("GET", f"/handovers/{waiting['id']}", "adviser")
    assert shown["status"] == "erased" and "summary" not in shown
    answer = sarajevo.call("POST", f"/handovers/{waiting['id']}/accept", "adviser", json={})
    assert answer.status_code == 409
    assert_no_personal_data(sarajevo.node)


def test_partial_withdrawal_erases_only_those_categories(desks: tuple[Desk, Desk], make_worker: Worker) -> None:
    gbg, sarajevo = desks
    story = accepted_case(gbg, sarajevo, make_worker)
    remote = story["remote_case_id"]
    with sarajevo.node.sessionmaker() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(HouseholdMember)) == 1
    result = gbg.ok("POST", f"/cases/{story['case_id']}/consents/{story['consent_id']}/withdraw", "counsellor",
                    json={"reason": "Not the family details.", "scope": {"categories": ["wishes", "family"]}})
    assert result["status"] == "active" and result["withdrawal"]["scope"] == {"categories": ["family", "wishes"]}
    exchange(make_worker, gbg, sarajevo)

    case = sarajevo.ok("GET", f"/cases/{remote}", "adviser")
    assert case["returnee"]["given_names"] == "Amina"  # the rest of the case stays
    with sarajevo.node.sessionmaker() as session:
        sections = set(session.scalars(sa.select(IntakeSection.section).where(IntakeSection.case_id == remote)))
        assert "family" not in sections and "wishes" not in sections and {"education", "work"} <= sections
        assert session.scalar(sa.select(sa.func.count()).select_from(HouseholdMember)) == 0
        handover = session.scalar(sa.select(Handover))
        assert handover is not None and handover.status == "accepted"
        assert "family" not in handover.categories and "family" in handover.withheld
        [tombstone] = session.scalars(sa.select(Tombstone)).all()
        assert tombstone.scope == {"categories": ["family", "wishes"]}
    assert "Sarajevu" not in all_text(sarajevo.node)  # the wishes text is gone, with the received document
    [disclosure] = gbg.ok("GET", f"/cases/{story['case_id']}/disclosures", "counsellor")["items"]
    assert disclosure["erasure"] == "confirmed"
    assert disclosure["erasure_requests"][0]["scope"] == {"categories": ["family", "wishes"]}


def test_withdrawal_for_one_recipient_erases_the_whole_copy(desks: tuple[Desk, Desk], make_worker: Worker) -> None:
    gbg, sarajevo = desks
    story = accepted_case(gbg, sarajevo, make_worker)
    result = gbg.ok("POST", f"/cases/{story['case_id']}/consents/{story['consent_id']}/withdraw", "counsellor",
                    json={"reason": "Not this partner.", "scope": {"recipients": ["ba.cldd-sarajevo"]}})
    assert result["status"] == "active" and len(result["erasure_requests"]) == 1
    exchange(make_worker, gbg, sarajevo)
    assert sarajevo.call("GET", f"/cases/{story['remote_case_id']}", "adviser").status_code == 404
    assert_no_personal_data(sarajevo.node)


def test_revocation_of_a_handover_sent_in_error(desks: tuple[Desk, Desk], make_worker: Worker) -> None:
    gbg, sarajevo = desks
    story = accepted_case(gbg, sarajevo, make_worker)
    revoked = gbg.ok("POST", f"/handovers/{story['sent']['id']}/revoke", "counsellor",
                     json={"reason": "Sent to the wrong office."})
    assert revoked["status"] == "revoked" and revoked["erasure_request"]["cause"] == "revocation"
    again = gbg.call("POST", f"/handovers/{story['sent']['id']}/revoke", "counsellor", json={"reason": "x"})
    assert again.status_code == 409
    exchange(make_worker, gbg, sarajevo)
    with sarajevo.node.sessionmaker() as session:
        tombstone = session.scalar(sa.select(Tombstone))
        assert tombstone is not None and tombstone.cause == "revocation"
    assert_no_personal_data(sarajevo.node)
    [disclosure] = gbg.ok("GET", f"/cases/{story['case_id']}/disclosures", "counsellor")["items"]
    assert disclosure["status"] == "revoked" and disclosure["erasure"] == "confirmed"
    # the consent is untouched: the case can be handed over again
    again_sent = hand_over(gbg, story["case_id"], story["consent_id"])
    assert again_sent["status"] == "queued"


def test_retention_end_erases_and_tells_the_sender(desks: tuple[Desk, Desk], make_worker: Worker) -> None:
    gbg, sarajevo = desks
    story = accepted_case(gbg, sarajevo, make_worker)
    clock = sarajevo.node.clock
    with sarajevo.node.sessionmaker() as session:
        handover = session.scalar(sa.select(Handover))
        assert handover is not None and handover.retain_until is not None
        retain_until = handover.retain_until
    keys = sarajevo.node.identity.keys
    assert run_retention(sarajevo.node.sessionmaker, keys=keys, now=clock.now()).erased == []
    clock.set(clock.now().replace(year=retain_until.year, month=retain_until.month, day=retain_until.day)
              + timedelta(days=1))
    run = run_retention(sarajevo.node.sessionmaker, keys=keys, now=clock.now())
    assert len(run.erased) == 1 and run.not_told == []
    assert run_retention(sarajevo.node.sessionmaker, keys=keys, now=clock.now()).erased == []  # once
    exchange(make_worker, sarajevo, gbg)
    assert_no_personal_data(sarajevo.node)
    gbg.staff("lars.berg", "counsellor", "gbg")  # two years on: the first counsellor's token has expired
    [disclosure] = gbg.ok("GET", f"/cases/{story['case_id']}/disclosures", "counsellor")["items"]
    [report] = disclosure["erasure_requests"]
    assert report["cause"] == "retention" and report["confirmed"] and report["requested_at"] is None


def test_case_closed_from_either_side(desks: tuple[Desk, Desk], make_worker: Worker) -> None:
    gbg, sarajevo = desks
    story = accepted_case(gbg, sarajevo, make_worker)
    closed = sarajevo.ok("POST", f"/cases/{story['remote_case_id']}/close", "adviser",
                         json={"outcome": {"code": "plan_completed", "text": "Bakery open since June."}})
    assert closed["notified"] == ["se.gi-goteborg"] and closed["status"] == "closed"
    assert sarajevo.call("POST", f"/cases/{story['remote_case_id']}/close", "adviser",
                         json={"outcome": {"code": "other"}}).status_code == 409
    exchange(make_worker, sarajevo, gbg)
    event = next(e for e in timeline(gbg, story["case_id"]) if e["kind"] == "partner.case_closed")
    assert event["detail"]["outcome"] == "plan_completed" and event["verified"]
    gbg.ok("POST", f"/cases/{story['case_id']}/close", "counsellor", json={"outcome": {"code": "plan_completed"}})
    exchange(make_worker, gbg, sarajevo)
    kinds = [e["kind"] for e in timeline(sarajevo, story["remote_case_id"], "adviser")]
    assert "case.closed" in kinds and "partner.case_closed" in kinds


def test_unconfirmed_erasure_is_flagged_overdue(desks: tuple[Desk, Desk], make_worker: Worker) -> None:
    gbg, sarajevo = desks
    story = accepted_case(gbg, sarajevo, make_worker)
    gbg.ok("POST", f"/cases/{story['case_id']}/consents/{story['consent_id']}/withdraw", "counsellor",
           json={"reason": "Withdrawn."})
    [disclosure] = gbg.ok("GET", f"/cases/{story['case_id']}/disclosures", "counsellor")["items"]
    assert disclosure["erasure"] == "requested"
    gbg.node.clock.advance(hours=73)  # Sarajevo's answer has not come (nothing delivered)
    [disclosure] = gbg.ok("GET", f"/cases/{story['case_id']}/disclosures", "counsellor")["items"]
    assert disclosure["erasure"] == "overdue" and disclosure["erasure_requests"][0]["overdue"]
    with gbg.node.sessionmaker() as session:
        assert len(flag_overdue(session, gbg.node.clock.now(), timedelta(hours=72))) == 1
        assert flag_overdue(session, gbg.node.clock.now(), timedelta(hours=72)) == []  # flagged once
        session.commit()
    exchange(make_worker, gbg, sarajevo)
    [disclosure] = gbg.ok("GET", f"/cases/{story['case_id']}/disclosures", "counsellor")["items"]
    assert disclosure["erasure"] == "confirmed"


def test_subject_export_holds_the_disclosure_record(desks: tuple[Desk, Desk], make_worker: Worker) -> None:
    gbg, sarajevo = desks
    story = accepted_case(gbg, sarajevo, make_worker)
    exported = gbg.ok("GET", f"/cases/{story['case_id']}/export", "counsellor")
    [disclosure] = exported["disclosures"]
    assert disclosure["recipient"] == "ba.cldd-sarajevo" and disclosure["categories"]
    assert exported["case"]["returnee"]["given_names"] == "Amina" and exported["received_from"] == []
    remote = sarajevo.call("GET", f"/cases/{story['remote_case_id']}/export", "adviser")
    assert remote.status_code == 403  # advisers may not export; a counsellor of the team may
    exported_there = sarajevo.ok("GET", f"/cases/{story['remote_case_id']}/export", "counsellor")
    [origin] = exported_there["received_from"]
    assert origin["sender"] == "se.gi-goteborg" and origin["consent_id"] == story["consent_id"]


def test_bad_withdrawals_are_refused_with_field_errors(desks: tuple[Desk, Desk]) -> None:
    gbg = desks[0]
    case_id, consent_id = open_case(gbg)
    path = f"/cases/{case_id}/consents/{consent_id}/withdraw"
    outside = gbg.call("POST", path, "counsellor", json={"reason": "x", "scope": {"categories": ["health"]}})
    assert outside.status_code == 422 and "scope.categories" in outside.get_json()["errors"]
    unknown = gbg.call("POST", path, "counsellor", json={"reason": "x", "scope": {"categories": ["shoe_size"]}})
    assert unknown.status_code == 422
    empty = gbg.call("POST", path, "counsellor", json={"reason": "x", "scope": {}})
    assert empty.status_code == 422
    stranger = gbg.call("POST", path, "counsellor", json={"reason": "x", "scope": {"recipients": ["gh.nobody"]}})
    assert stranger.status_code == 422 and "scope.recipients" in stranger.get_json()["errors"]
    assert gbg.call("POST", path, "adviser", json={"reason": "x"}).status_code == 403
    with gbg.node.sessionmaker() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(ConsentWithdrawal)) == 0
        assert session.scalar(sa.select(sa.func.count()).select_from(ErasureRequest)) == 0
    gbg.ok("POST", path, "counsellor", json={"reason": "Withdrawn."})
    assert gbg.call("POST", path, "counsellor", json={"reason": "again"}).status_code == 409
    bad_close = gbg.call("POST", f"/cases/{case_id}/close", "counsellor", json={"outcome": {"code": "happy"}})
    assert bad_close.status_code == 422
    with gbg.node.sessionmaker() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(OutboundMessage)) == 0  # nothing was sent


def test_an_acceptance_crossing_a_revocation_is_taken_not_refused(desks: tuple[Desk, Desk],
                                                                  make_worker: Worker) -> None:
    gbg, sarajevo = desks
    case_id, consent_id = open_case(gbg)
    sent = hand_over(gbg, case_id, consent_id)
    deliver(make_worker, gbg)
    [waiting] = incoming(sarajevo)
    sarajevo.ok("POST", f"/handovers/{waiting['id']}/accept", "adviser", 201, json={})  # not delivered yet
    gbg.ok("POST", f"/handovers/{sent['id']}/revoke", "counsellor", json={"reason": "Wrong office."})
    exchange(make_worker, gbg, sarajevo)
    with sarajevo.node.sessionmaker() as session, gbg.node.sessionmaker() as origin:
        for node_session in (session, origin):
            statuses = set(node_session.scalars(sa.select(OutboundMessage.status)))
            assert statuses == {"delivered"}
        handover = origin.scalar(sa.select(Handover))
        assert handover is not None and handover.status == "revoked" and handover.decided_at is not None
    [disclosure] = gbg.ok("GET", f"/cases/{case_id}/disclosures", "counsellor")["items"]
    assert disclosure["erasure"] == "confirmed"
    assert_no_personal_data(sarajevo.node)


def test_a_later_handover_under_a_partly_withdrawn_consent_leaves_those_categories_out(
        desks: tuple[Desk, Desk], make_worker: Worker) -> None:
    gbg, sarajevo = desks
    story = accepted_case(gbg, sarajevo, make_worker)
    gbg.ok("POST", f"/cases/{story['case_id']}/consents/{story['consent_id']}/withdraw", "counsellor",
           json={"reason": "Not the wishes.", "scope": {"categories": ["wishes"]}})
    gbg.ok("POST", f"/handovers/{story['sent']['id']}/revoke", "counsellor", json={"reason": "Send it again."})
    exchange(make_worker, gbg, sarajevo)
    again = hand_over(gbg, story["case_id"], story["consent_id"])
    assert "wishes" not in again["categories"] and "wishes" in again["withheld"]
    exchange(make_worker, gbg, sarajevo)
    with sarajevo.node.sessionmaker() as session:
        statuses = sorted(session.scalars(sa.select(Handover.status).where(Handover.direction == "incoming")))
        assert statuses == ["erased", "pending"]  # the new one was checked against the withdrawal, and taken


def test_the_delivery_workers_retention_thread_runs_once_with_stop_set(desks: tuple[Desk, Desk],
                                                                       make_worker: Worker) -> None:
    gbg, sarajevo = desks
    accepted_case(gbg, sarajevo, make_worker)
    clock = sarajevo.node.clock
    clock.advance(days=731)
    stop = threading.Event()
    stop.set()
    retention_loop(stop, sessionmaker=sarajevo.node.sessionmaker, config=sarajevo.node.app.extensions["ccm"].config,
                   clock=clock)
    with sarajevo.node.sessionmaker() as session:
        assert session.scalar(sa.select(Handover.status).where(Handover.direction == "incoming")) == "erased"
