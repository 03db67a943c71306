"""The audit log is hash-chained; editing, deleting or reordering an entry is detected and named."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy import orm

from node import audit
from node.auth import Actor
from node.clock import FakeClock

ACTOR = Actor(1, "anna", "counsellor", "team-a", "192.0.2.10")


def _fill(session: orm.Session, clock: FakeClock, n: int = 6) -> None:
    for i in range(n):
        audit.record(session, actor=ACTOR, action="read", object_type="case", object_id=f"c{i}",
                     case_id=f"case-{i}", now=clock.advance(seconds=1), detail={"fields": ["health"]})
    session.commit()


def test_intact_chain_verifies(db_session: orm.Session, clock: FakeClock) -> None:
    _fill(db_session, clock)
    count, problems = audit.verify_chain(db_session)
    assert (count, problems) == (6, [])


def test_entries_are_contiguous_and_linked(db_session: orm.Session, clock: FakeClock) -> None:
    _fill(db_session, clock, 3)
    rows = list(db_session.scalars(sa.select(audit.AuditEntry).order_by(audit.AuditEntry.seq)))
    assert [r.seq for r in rows] == [1, 2, 3]
    assert rows[0].prev_hash == audit.GENESIS_HASH
    assert rows[1].prev_hash == rows[0].entry_hash and rows[2].prev_hash == rows[1].entry_hash
    assert rows[0].remote_addr == "192.0.2.10" and rows[0].actor_username == "anna"


def test_edited_entry_is_named(db_session: orm.Session, clock: FakeClock) -> None:
    _fill(db_session, clock)
    db_session.execute(sa.text("UPDATE audit_log SET action = 'update' WHERE seq = 3"))
    db_session.commit()
    _, problems = audit.verify_chain(db_session)
    assert [(p.seq, p.kind) for p in problems] == [(3, "edited")]


def test_edited_entry_with_recomputed_hash_breaks_the_next_link(db_session: orm.Session,
                                                                clock: FakeClock) -> None:
    _fill(db_session, clock)
    entry = db_session.get(audit.AuditEntry, 2)
    assert entry is not None
    entry.object_id = "forged"
    entry.entry_hash = audit.compute_hash(entry)
    db_session.commit()
    _, problems = audit.verify_chain(db_session)
    assert [(p.seq, p.kind) for p in problems] == [(3, "reordered")]


def test_deleted_entry_is_named(db_session: orm.Session, clock: FakeClock) -> None:
    _fill(db_session, clock)
    db_session.execute(sa.text("DELETE FROM audit_log WHERE seq = 4"))
    db_session.commit()
    _, problems = audit.verify_chain(db_session)
    assert problems[0].kind == "deleted" and "entry 4 missing" in problems[0].message


def test_deleted_tail_is_detected(db_session: orm.Session, clock: FakeClock) -> None:
    _fill(db_session, clock)
    db_session.execute(sa.text("DELETE FROM audit_log WHERE seq >= 5"))
    db_session.commit()
    _, problems = audit.verify_chain(db_session)
    assert [(p.seq, p.kind) for p in problems] == [(5, "truncated")]


def test_reordered_entries_are_detected(db_session: orm.Session, clock: FakeClock) -> None:
    _fill(db_session, clock)
    # Swap entries 2 and 3 (move 2 out of the way first: seq is the primary key).
    db_session.execute(sa.text("UPDATE audit_log SET seq = 1000 WHERE seq = 2"))
    db_session.execute(sa.text("UPDATE audit_log SET seq = 2 WHERE seq = 3"))
    db_session.execute(sa.text("UPDATE audit_log SET seq = 3 WHERE seq = 1000"))
    db_session.commit()
    _, problems = audit.verify_chain(db_session)
    assert {p.seq for p in problems} >= {2, 3}
    assert all(p.kind in {"edited", "reordered"} for p in problems)


def test_audit_never_holds_unknown_actions(db_session: orm.Session, clock: FakeClock) -> None:
    import pytest

    with pytest.raises(ValueError, match="unknown audit action"):
        audit.record(db_session, actor=None, action="peek", object_type="case", object_id=None, case_id=None,
                     now=clock.now())
