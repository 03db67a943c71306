"""The fast paths of a handover keep every check: a handover prepared and sealed on a reader's snapshot is
checked again under the write lock, the audit chain locks its head once per transaction and stays intact, a
body is validated once on each side, what the consent does not grant is not read, and the delivery worker's
claim walks its index in order. SQLite and PostgreSQL (on PostgreSQL the "reader" is a REPEATABLE READ
session: a snapshot, as SQLite's reader is)."""

from __future__ import annotations

import copy
import datetime as dt
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event, orm

from node import audit
from node.auth import Actor
from node.cases.models import Case, Consent
from node.db import make_reader_engine
from node.errors import Conflict, NotFound
from node.exchange.delivery.outbox import enqueue
from node.exchange.delivery.queue import DUE_QUEUED
from node.exchange.delivery.wakeup import Waker
from node.exchange.delivery.worker import DeliveryWorker, WorkerSettings
from node.exchange.handovers import send as handovers
from node.exchange.handovers.models import Handover
from node.exchange.handovers.send import ConsentNotActive
from node.exchange.models import InboundMessage, Partner
from node.exchange.trust.partners import NoAgreement, PartnerStateError
from protocol import SchemaError, check_handover
from protocol.messages import validate_body
from tests.exchange.conftest import FlaskTransport, Node, note_body, samples, thread_id
from tests.exchange.desks import Desk, Worker, consent_body, deliver, hand_over, incoming, open_case, timeline


@pytest.fixture
def desks(paired: tuple[Node, Node]) -> tuple[Desk, Desk]:
    gbg, sarajevo = Desk(paired[0]), Desk(paired[1])
    gbg.staff("anna.lindqvist", "counsellor", "gbg")
    sarajevo.staff("emina.kovac", "adviser", "sarajevo")
    return gbg, sarajevo


def counsellor(node: Node) -> Actor:
    with node.sessionmaker() as session:
        user_id = session.scalar(sa.text("SELECT id FROM users WHERE username = 'anna.lindqvist'"))
    return Actor(int(user_id), "anna.lindqvist", "counsellor", "gbg")


@pytest.fixture
def snapshot(gbg: Node) -> Iterator[Callable[[], orm.Session]]:
    """Reader sessions on one snapshot each: SQLite's own reader (``db.make_reader_engine``), or on PostgreSQL
    a REPEATABLE READ session (the reader ``send_handover`` gets there is the writing session itself)."""
    engine = make_reader_engine(gbg.engine) or gbg.engine.execution_options(isolation_level="REPEATABLE READ")
    made: list[orm.Session] = []

    def make() -> orm.Session:
        reader = orm.sessionmaker(bind=engine)()
        reader.scalar(sa.select(sa.func.count()).select_from(Case))  # the snapshot starts here
        made.append(reader)
        return reader

    yield make
    for reader in made:
        reader.close()
    if engine is not gbg.engine:
        engine.dispose()


def send(node: Node, case_id: str, consent_id: str, reader: orm.Session | None) -> dict[str, Any]:
    identity = node.identity
    with node.sessionmaker() as session:
        result = handovers.send_handover(
            session, counsellor(node), case_id, {"recipient": "ba.cldd-sarajevo", "consent_id": consent_id},
            keys=identity.keys, config=node.app.extensions["ccm"].config, now=node.clock.now(),
            boxes=identity.boxes, reader=reader)
        session.commit()
    return result


def change(node: Node, statement: Any) -> None:
    with node.sessionmaker() as session:
        session.execute(statement)
        session.commit()


# --- the handover prepared on a snapshot ------------------------------------------------------------------

def test_prepared_on_a_snapshot_the_handover_is_sent_and_delivered(desks: tuple[Desk, Desk], make_worker: Worker,
                                                                    snapshot: Callable[[], orm.Session]) -> None:
    gbg, sarajevo = desks
    case_id, consent_id = open_case(gbg)
    sent = send(gbg.node, case_id, consent_id, snapshot())
    assert sent["status"] == "queued"
    [message] = gbg.node.outbound()
    assert (message.seq, message.prev, message.type, message.case_id) == (1, None, "handover", case_id)
    assert deliver(make_worker, gbg) == 1
    [received] = sarajevo.node.inbound()
    assert received.message_id == message.message_id and sarajevo.count(Handover) == 1
    with gbg.node.sessionmaker() as session:
        actions = [e.action for e in session.scalars(sa.select(audit.AuditEntry).order_by(audit.AuditEntry.seq))]
        assert actions[-2:] == ["send", "create"] and audit.verify_chain(session)[1] == []


def test_a_consent_withdrawn_after_the_snapshot_stops_the_handover(desks: tuple[Desk, Desk],
                                                                   snapshot: Callable[[], orm.Session]) -> None:
    gbg, _ = desks
    case_id, consent_id = open_case(gbg)
    reader = snapshot()  # sees the consent active
    change(gbg.node, sa.update(Consent).where(Consent.id == consent_id).values(withdrawn_at=gbg.node.clock.now()))
    with pytest.raises(ConsentNotActive, match="withdrawn"):
        send(gbg.node, case_id, consent_id, reader)
    assert gbg.node.outbound() == [] and gbg.count(Handover) == 0


def test_a_partner_suspended_after_the_snapshot_gets_nothing(desks: tuple[Desk, Desk],
                                                             snapshot: Callable[[], orm.Session]) -> None:
    gbg, _ = desks
    case_id, consent_id = open_case(gbg)
    reader = snapshot()
    change(gbg.node, sa.update(Partner).where(Partner.node_id == "ba.cldd-sarajevo").values(status="suspended"))
    with pytest.raises(PartnerStateError, match="suspended"):
        send(gbg.node, case_id, consent_id, reader)
    change(gbg.node, sa.update(Partner).where(Partner.node_id == "ba.cldd-sarajevo").values(status="active"))
    reader = snapshot()
    change(gbg.node, sa.update(Partner).where(Partner.node_id == "ba.cldd-sarajevo").values(agreement_id=None))
    with pytest.raises(NoAgreement):
        send(gbg.node, case_id, consent_id, reader)
    assert gbg.node.outbound() == [] and gbg.count(Handover) == 0


def test_a_case_moved_to_another_team_after_the_snapshot_is_not_found(desks: tuple[Desk, Desk],
                                                                      snapshot: Callable[[], orm.Session]) -> None:
    gbg, _ = desks
    case_id, consent_id = open_case(gbg)
    reader = snapshot()
    change(gbg.node, sa.update(Case).where(Case.id == case_id).values(team="other", assigned_user_id=None))
    with pytest.raises(NotFound):
        send(gbg.node, case_id, consent_id, reader)
    assert gbg.node.outbound() == []


def test_a_case_edited_after_the_snapshot_is_sent_as_it_is_now(desks: tuple[Desk, Desk], make_worker: Worker,
                                                               snapshot: Callable[[], orm.Session]) -> None:
    gbg, sarajevo = desks
    case_id, consent_id = open_case(gbg)
    reader = snapshot()  # sees Sarajevo as the destination's locality
    change(gbg.node, sa.update(Case).where(Case.id == case_id).values(destination_locality="Mostar",
                                                                      version=Case.version + 1))
    send(gbg.node, case_id, consent_id, reader)
    assert deliver(make_worker, gbg) == 1
    with sarajevo.node.sessionmaker() as session:
        handover = session.scalar(sa.select(Handover))
        assert handover is not None and handover.body is not None
        assert handover.body["case"]["destination"] == {"country": "BA", "locality": "Mostar"}


def test_a_handover_sent_meanwhile_makes_the_second_a_conflict(desks: tuple[Desk, Desk],
                                                               snapshot: Callable[[], orm.Session]) -> None:
    gbg, _ = desks
    case_id, consent_id = open_case(gbg)
    reader = snapshot()  # sees no handover yet
    send(gbg.node, case_id, consent_id, None)
    with pytest.raises(Conflict, match=r"handed over to ba\.cldd-sarajevo already"):
        send(gbg.node, case_id, consent_id, reader)
    assert len(gbg.node.outbound()) == 1 and gbg.count(Handover) == 1


def test_the_api_sends_through_the_reader(desks: tuple[Desk, Desk]) -> None:
    gbg, _ = desks
    case_id, consent_id = open_case(gbg)
    seen: list[str] = []

    def log(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement.split(None, 1)[0].upper())

    event.listen(sa.engine.Engine, "before_cursor_execute", log)
    try:
        sent = gbg.ok("POST", f"/cases/{case_id}/handovers", "counsellor", 202,
                      json={"recipient": "ba.cldd-sarajevo", "consent_id": consent_id})
    finally:
        event.remove(sa.engine.Engine, "before_cursor_execute", log)
    assert sent["status"] == "queued" and len(gbg.node.outbound()) == 1
    if gbg.node.engine.dialect.name == "sqlite":  # the summary is read before the write lock is taken
        writing = len(seen) - seen[::-1].index("BEGIN")  # the view's own BEGIN IMMEDIATE comes last
        assert seen[:writing].count("SELECT") >= 8 and seen[writing:].count("SELECT") <= 6


def test_what_the_consent_does_not_grant_is_not_even_read(desks: tuple[Desk, Desk], make_worker: Worker) -> None:
    gbg, sarajevo = desks
    case_id, consent_id = open_case(gbg, consent=consent_body(categories=["contact"]))
    tables: list[str] = []

    def log(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        tables.extend(t for t in ("household_members", "intake_sections", "case_plans", "case_stages",
                                  "interventions") if f"FROM {t}" in statement)

    event.listen(sa.engine.Engine, "before_cursor_execute", log)
    try:
        preview = gbg.ok("GET", f"/cases/{case_id}/handovers/preview", "counsellor",
                         query_string={"recipient": "ba.cldd-sarajevo", "consent_id": consent_id})
        hand_over(gbg, case_id, consent_id)
    finally:
        event.remove(sa.engine.Engine, "before_cursor_execute", log)
    assert tables == []  # the case has a household, intake sections and a plan: none of it was read
    assert preview["categories"] == ["contact"]
    assert deliver(make_worker, gbg) == 1
    [received] = incoming(sarajevo)
    assert received["categories"] == ["contact"]


# --- the reader itself --------------------------------------------------------------------------------------

def test_the_sqlite_reader_sees_a_snapshot_never_writes_and_never_blocks_a_writer(gbg: Node) -> None:
    reader_engine = make_reader_engine(gbg.engine)
    if gbg.engine.dialect.name != "sqlite":
        assert reader_engine is None  # PostgreSQL reads never block writers: no second engine
        return
    assert reader_engine is not None
    try:
        with orm.Session(reader_engine) as reader:
            count = sa.select(sa.func.count()).select_from(audit.AuditEntry)
            assert reader.scalar(count) == 0
            with gbg.sessionmaker() as session:  # BEGIN IMMEDIATE while the reader's snapshot is open
                audit.record(session, actor=None, action="read", object_type="case", object_id=None,
                             case_id=None, now=gbg.clock.now())
                session.commit()
            assert reader.scalar(count) == 0  # its snapshot
            reader.rollback()
            assert reader.scalar(count) == 1  # a new one
            with pytest.raises(sa.exc.OperationalError, match=r"readonly|read-only|query_only"):
                reader.execute(sa.text("DELETE FROM audit_log"))
    finally:
        reader_engine.dispose()


# --- the audit chain ----------------------------------------------------------------------------------------

def test_one_transaction_locks_the_audit_head_once_and_the_chain_stays_intact(gbg: Node) -> None:
    heads: list[str] = []

    def log(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "FROM audit_head" in statement:
            heads.append(statement)

    event.listen(gbg.engine, "before_cursor_execute", log)
    try:
        with gbg.sessionmaker() as session:
            for i in range(3):
                audit.record(session, actor=None, action="read", object_type="case", object_id=f"c{i}",
                             case_id=None, now=gbg.clock.now())
            session.commit()
        assert len(heads) == 1
        with gbg.sessionmaker() as session:  # a new transaction locks it again
            audit.record(session, actor=None, action="read", object_type="case", object_id="c3", case_id=None,
                         now=gbg.clock.now())
            session.commit()
        assert len(heads) == 2
    finally:
        event.remove(gbg.engine, "before_cursor_execute", log)
    with gbg.sessionmaker() as session:
        assert audit.verify_chain(session) == (4, [])


def test_a_rolled_back_savepoint_takes_its_entries_and_the_chain_goes_on(gbg: Node) -> None:
    with gbg.sessionmaker() as session:
        audit.record(session, actor=None, action="read", object_type="case", object_id="kept", case_id=None,
                     now=gbg.clock.now())
        savepoint = session.begin_nested()
        audit.record(session, actor=None, action="read", object_type="case", object_id="dropped", case_id=None,
                     now=gbg.clock.now())
        savepoint.rollback()
        audit.record(session, actor=None, action="read", object_type="case", object_id="after", case_id=None,
                     now=gbg.clock.now())
        session.commit()
    with gbg.sessionmaker() as session:
        entries = session.scalars(sa.select(audit.AuditEntry).order_by(audit.AuditEntry.seq))
        kept = [(e.seq, e.object_id) for e in entries]
        assert kept == [(1, "kept"), (2, "after")]
        assert audit.verify_chain(session) == (2, [])


def test_a_savepoint_that_made_the_head_and_rolled_back_leaves_no_trace(gbg: Node) -> None:
    with gbg.sessionmaker() as session:
        savepoint = session.begin_nested()
        audit.record(session, actor=None, action="read", object_type="case", object_id="dropped", case_id=None,
                     now=gbg.clock.now())
        savepoint.rollback()
        entry = audit.record(session, actor=None, action="read", object_type="case", object_id="first",
                             case_id=None, now=gbg.clock.now())
        session.commit()
        assert entry.seq == 1 and entry.prev_hash == audit.GENESIS_HASH
    with gbg.sessionmaker() as session:
        assert audit.verify_chain(session) == (1, [])


# --- one validation per side --------------------------------------------------------------------------------

def test_a_body_validated_by_open_envelope_is_not_validated_again_but_its_consent_still_is() -> None:
    from tests.protocol.test_consent import GI, NOW

    body = samples()["handover"]
    assert validate_body("handover", body) == body  # what open_envelope returns is what it validated
    check_handover(body, "iq.cldd-baghdad", NOW, GI.signing_key.verify_key, validated=True)
    loose = {**copy.deepcopy(body), "unknown_member": 1}
    with pytest.raises(SchemaError):
        check_handover(loose, "iq.cldd-baghdad", NOW, GI.signing_key.verify_key)
    check_handover(loose, "iq.cldd-baghdad", NOW, GI.signing_key.verify_key, validated=True)  # trusted
    with pytest.raises(Exception, match="does not name this recipient"):
        check_handover(body, "ba.cldd-sarajevo", NOW, GI.signing_key.verify_key, validated=True)
    later = NOW + dt.timedelta(days=3650)
    with pytest.raises(Exception, match="expired"):
        check_handover(body, "iq.cldd-baghdad", later, GI.signing_key.verify_key, validated=True)


def test_a_message_queued_as_validated_is_accepted_by_the_receiver(paired: tuple[Node, Node],
                                                                   make_worker: Worker) -> None:
    gbg, sarajevo = paired
    body = {"handover_id": "E4av5ZhRjMT3kWfufcUIGQ", "update_id": "u-1", "at": "2026-11-20T10:00:00Z",
            "note": "Validated by the caller."}
    validate_body("progress_update", body)
    with gbg.sessionmaker() as session:
        enqueue(session, keys=gbg.identity.keys, recipient=sarajevo.node_id, msg_type="progress_update",
                body=body, thread=thread_id("validated"), now=gbg.clock.now(), boxes=gbg.identity.boxes,
                validated=True)
        session.commit()
    worker = make_worker(gbg)
    worker.run(once=True)
    # The receiver validates it and its applier refuses a progress update outside a handover it sent: the
    # receiver's checks ran (nothing stored), the sender parked the message on the answer.
    assert sarajevo.count(InboundMessage) == 0
    [message] = gbg.outbound()
    assert message.status == "parked" and message.last_error == "malformed"


# --- the claim ----------------------------------------------------------------------------------------------

def test_the_claim_walks_its_index_in_order_without_a_sort(gbg: Node) -> None:
    statement = str(DUE_QUEUED.compile(dialect=gbg.engine.dialect))
    with gbg.engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        assert raw is not None
        cursor = raw.cursor()
        if gbg.engine.dialect.name == "sqlite":
            cursor.execute("EXPLAIN QUERY PLAN " + statement, (*["x"] * statement.count("?"),))
            plan = " ".join(str(row[-1]) for row in cursor.fetchall())
            assert "ix_outbound_messages_claim" in plan and "TEMP B-TREE FOR ORDER BY" not in plan
        else:
            cursor.execute("SET LOCAL enable_seqscan = off")
            params = {"now": dt.datetime.now(dt.UTC), "limit": 20, "status_1": "queued", "status_2": "active",
                      "seq_1": 1, "status_3": "delivered"}
            cursor.execute("EXPLAIN " + statement, params)
            plan = " ".join(str(row[0]) for row in cursor.fetchall())
            assert "ix_outbound_messages_claim" in plan and "Sort" not in plan
        conn.rollback()


def test_a_handover_its_acceptance_and_progress_read_by_index_not_by_scan(desks: tuple[Desk, Desk],
                                                                         make_worker: Worker) -> None:
    """Every statement of a handover sent, received and accepted, and of progress sent back and received, is
    planned without a table scan. SQLite's planner has no statistics: given two indexes it takes the one with
    more equality columns, so a lookup by (partner, thread, direction) or (case, partner, direction) needs a
    three-column index, or it walks the prefix (direction, partner) of uq_handovers_message, or (direction,
    status) of the queues' indexes, and reads every handover of the partner or in the status (migration 0015)."""
    gbg, sarajevo = desks
    if gbg.node.engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL plans from its statistics")
    case_id, consent_id = open_case(gbg)
    seen: list[tuple[Any, str, Any]] = []

    def note(conn: Any, _cursor: Any, statement: str, params: Any, *_args: Any) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "UPDATE", "DELETE")):
            seen.append((conn.connection.dbapi_connection, statement, params))

    event.listen(sa.engine.Engine, "before_cursor_execute", note)
    try:
        hand_over(gbg, case_id, consent_id)
        assert deliver(make_worker, gbg) == 1
        [waiting] = incoming(sarajevo)
        new_case = sarajevo.ok("POST", f"/handovers/{waiting['id']}/accept", "adviser", 201, json={})["case_id"]
        assert deliver(make_worker, sarajevo) == 1
        sarajevo.ok("POST", f"/cases/{new_case}/progress", "adviser", 201, json={"note": "Passport filed."})
        assert deliver(make_worker, sarajevo) == 1
        assert [e for e in timeline(gbg, case_id) if e["kind"] == "partner.progress"]
    finally:
        event.remove(sa.engine.Engine, "before_cursor_execute", note)
    plans = {}
    for raw, statement, params in seen:
        if statement not in plans:
            plans[statement] = [str(row[-1]) for row in raw.execute("EXPLAIN QUERY PLAN " + statement, params)]
    looked_up = [(s, p) for s, p in plans.items() if "FROM handovers" in s and ("thread" in s or "case_id" in s)]
    assert len(looked_up) >= 2, list(plans)  # the send's open-handover check, the receipt's thread lookup
    for statement, plan in plans.items():
        scans = [step for step in plan if step.startswith("SCAN ") and "CONSTANT ROW" not in step]
        assert not scans, (statement, plan)
        if "handovers.thread = " not in statement and "handovers.case_id = " not in statement:
            continue  # the lists (incoming, by status) walk the queues' indexes, as they should
        handover_steps = [step for step in plan if step.startswith("SEARCH handovers")]
        assert all("ix_handovers_thread" in step or "ix_handovers_case" in step or "PRIMARY KEY" in step
                   or "sqlite_autoindex_handovers_1" in step for step in handover_steps), (statement, plan)


# --- waking the delivery worker -----------------------------------------------------------------------------

def test_a_waker_wakes_on_a_committed_message_not_on_a_rolled_back_one(paired: tuple[Node, Node]) -> None:
    gbg, sarajevo = paired
    stop = threading.Event()
    waker = Waker(gbg.engine, stop)
    if gbg.engine.dialect.name != "postgresql":  # SQLite: no channel between processes; stop still ends a wait
        waiting = threading.Thread(target=waker.wait, args=(30.0,))
        waiting.start()
        stop.set()
        waiting.join(5)
        assert not waiting.is_alive()
        return
    waker.listen()
    try:
        with gbg.sessionmaker() as session:
            enqueue(session, keys=gbg.identity.keys, recipient=sarajevo.node_id, msg_type="progress_update",
                    body=note_body("rolled back"), thread=thread_id("rolled back"), now=gbg.clock.now())
            session.rollback()
        started = time.monotonic()
        waker.wait(0.5)
        assert time.monotonic() - started >= 0.45  # nothing committed: the whole wait
        waiting = threading.Thread(target=waker.wait, args=(30.0,))
        started = time.monotonic()
        waiting.start()
        gbg.send(sarajevo, note_body("committed"), thread_id("committed"))
        waiting.join(10)
        assert not waiting.is_alive() and time.monotonic() - started < 10
        waiting = threading.Thread(target=waker.wait, args=(30.0,))
        waiting.start()
        stop.set()  # looked at every STOP_CHECK seconds
        waiting.join(5)
        assert not waiting.is_alive()
    finally:
        waker.close()


def test_an_idle_worker_delivers_a_new_message_long_before_its_next_poll(
        paired: tuple[Node, Node], transport: FlaskTransport, no_domain_appliers: dict[str, Any]) -> None:
    gbg, sarajevo = paired
    if gbg.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no notification channel: the worker polls")
    worker = DeliveryWorker(sessionmaker=gbg.sessionmaker, clock=gbg.clock, transport=transport,
                            settings=WorkerSettings(parallel=2, poll_interval=30.0), worker_id="test-wake")
    stop = threading.Event()
    running = threading.Thread(target=worker.run, args=(stop,))
    running.start()
    try:
        for label in ("first", "second"):
            message = gbg.send(sarajevo, note_body(label), thread_id(label))
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not any(
                    m.message_id == message.message_id and m.status == "delivered" for m in gbg.outbound()):
                time.sleep(0.05)
            assert time.monotonic() < deadline, f"the {label} message waited for the poll"
    finally:
        stop.set()
        running.join(10)
    assert not running.is_alive() and worker.stats.delivered == 2
