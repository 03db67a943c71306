"""Erasure at a holder: what a node does with the case data it received when the consent is withdrawn, the
handover is revoked, or the agreed retention ends (SPEC.md 9.6).

A **full** erasure removes everything the node holds of the case from that sender: the local case opened on
acceptance with everything hanging off it (returnee, household, intake, plan, stages, interventions, progress,
timeline, name-search tokens; the database cascades), the summary and consent record of a handover still
waiting for an adviser, the sender-signed inner documents of every message received in the case thread, and the
sealed copies of what this node sent back in it once they are delivered. What is left is a *tombstone*: the
handover row with its ids, times and status ``erased``, and a :class:`Tombstone` listing the message ids and
content hashes of what was erased, so the node can prove what it erased and refuse a replay.

A **partial** erasure (some categories) removes those categories: from a waiting handover's summary, or from
the local case (contact details, household, intake sections, plan; ``identity`` cannot be taken out of a case,
so withdrawing it erases the case in full). The received handover document holds every category that was
shared, so it is erased either way.

Functions here run in the caller's transaction and never commit. On SQLite the engine runs with
``secure_delete`` (node/db.py), so erased values are overwritten in the database file, not just unlinked, and
once the erasing transaction commits the write-ahead log, which still holds the pages as they were, is
checkpointed and truncated (:func:`checkpoint_after_commit`), and the erasure is appended to the erasure journal
outside the database (ids, categories, cause and time; ``node.backup.journal``), so that restoring a backup taken
before it erases again.
"""

from __future__ import annotations

import datetime as dt
import logging
import sqlite3
import uuid
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm

from node.audit import record
from node.backup import journal
from node.cases.models import Case, CasePlan, HouseholdMember, IntakeSection
from node.cases.timeline import record_event
from node.exchange.chain.models import Tombstone
from node.exchange.handovers.models import Handover
from node.exchange.models import InboundMessage, OutboundMessage
from protocol import CATEGORIES
from protocol.times import format_time

#: The intake sections of the local case that hold each category of a received summary.
CATEGORY_SECTIONS = {"family": ("family",), "health": ("health",), "background": ("background",),
                     "education": ("education",), "work": ("work", "future_work"), "wishes": ("wishes",)}
_CONTACT_COLUMNS = ("phone", "email", "address", "contact_notes")
log = logging.getLogger(__name__)
#: How long the checkpoint after an erasure waits for readers to move on (milliseconds).
CHECKPOINT_WAIT_MS = 2000
#: A delivered message's sealed bytes are no longer needed (its hash and receipt stay): blanked on erasure.
BLANK = b""


def _thread_inbound(handover: Handover) -> sa.Select[tuple[int, str, str]]:
    return sa.select(InboundMessage.id, InboundMessage.message_id, InboundMessage.message_hash).where(
        InboundMessage.sender == handover.partner_node, InboundMessage.thread == handover.thread,
        InboundMessage.inner.is_not(None))


def _erase_messages(session: orm.Session, handover: Handover, *, only_opening: bool) -> tuple[list[str], list[str]]:
    """Erase the inner documents received in the handover's thread (or only the handover's own), and the
    delivered sealed copies of what this node sent back in it. Returns (message ids, content hashes)."""
    query = _thread_inbound(handover)
    if only_opening:
        query = query.where(InboundMessage.message_id == handover.message_id)
    rows = session.execute(query.order_by(InboundMessage.id)).all()
    if rows:
        session.execute(sa.update(InboundMessage).where(InboundMessage.id.in_([r.id for r in rows]))
                        .values(inner=None).execution_options(synchronize_session=False))
    if not only_opening:
        blank_delivered(session, handover.partner_node, handover.thread)
    return [r.message_id for r in rows], [r.message_hash for r in rows]


def blank_delivered(session: orm.Session, partner_node: str, thread: str) -> int:
    """Blank the sealed bytes of the messages delivered to a partner in a thread; returns how many."""
    result = session.execute(
        sa.update(OutboundMessage).where(OutboundMessage.recipient == partner_node, OutboundMessage.thread == thread,
                                         OutboundMessage.status.in_(("delivered", "undeliverable", "parked")),
                                         OutboundMessage.envelope != BLANK)
        .values(envelope=BLANK).execution_options(synchronize_session=False))
    return int(getattr(result, "rowcount", 0) or 0)


def checkpoint(engine: sa.Engine) -> bool:
    """SQLite: copy the write-ahead log into the database file and truncate it, so that no earlier page image
    holding erased values stays in the ``-wal`` file. Best effort: while a reader still looks at old pages the
    checkpoint cannot finish, and a later one completes it. Returns whether it completed (True elsewhere)."""
    if engine.dialect.name != "sqlite":
        return True
    raw = engine.raw_connection()  # outside any transaction: a checkpoint cannot run inside one
    conn: Any = raw.driver_connection
    try:
        conn.execute(f"PRAGMA busy_timeout={CHECKPOINT_WAIT_MS}")
        busy = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
        conn.execute("PRAGMA busy_timeout=30000")
    except sqlite3.Error as exc:
        busy = str(exc)
    finally:
        raw.close()
    if busy:
        log.info("WAL checkpoint after an erasure did not complete (%s)", busy)
    return not busy


def checkpoint_after_commit(session: orm.Session) -> None:
    """Run :func:`checkpoint` once the session's transaction commits (not a savepoint within it)."""
    bind = session.get_bind()
    engine = bind.engine if isinstance(bind, sa.Connection) else bind
    if engine.dialect.name != "sqlite":
        return
    done = False

    def _after_commit(committed: orm.Session) -> None:
        nonlocal done
        if done or committed.in_nested_transaction():  # a savepoint was released: the transaction goes on
            return
        done = True
        checkpoint(engine)

    sa.event.listen(session, "after_commit", _after_commit)


def journal_after_commit(session: orm.Session, tombstone: Tombstone, handover: Handover,
                         case_id: str | None) -> None:
    """Append the erasure to the erasure journal once the transaction commits (not if the tombstone's savepoint or
    transaction is rolled back). Ids, categories, cause and time only."""
    def make() -> dict[str, Any] | None:
        if not sa.inspect(tombstone).persistent:
            return None
        categories = (tombstone.scope or {}).get("categories")
        full = handover.status == "erased"
        return {"kind": "full" if full else "categories", "handover_id": handover.id,
                "handover_message_id": handover.message_id, "sender": handover.partner_node, "case_id": case_id,
                "categories": categories, "cause": tombstone.cause, "withdrawal_id": tombstone.withdrawal_id,
                "tombstone_id": tombstone.id, "confirmation_message_id": tombstone.confirmation_message_id,
                "erased_at": format_time(tombstone.erased_at)}

    journal.after_commit(session, make)


def _delete_case(session: orm.Session, case_id: str) -> None:
    session.flush()
    for obj in [o for o in session.identity_map.values() if getattr(o, "case_id", None) == case_id
                or (isinstance(o, Case) and o.id == case_id)]:
        session.expunge(obj)
    session.execute(sa.delete(Case).where(Case.id == case_id).execution_options(synchronize_session=False))


def _tombstone(session: orm.Session, handover: Handover, *, cause: str, scope: dict[str, Any] | None,
               now: dt.datetime, withdrawal_id: str | None, erased: tuple[list[str], list[str]]) -> Tombstone:
    message_ids, hashes = erased
    tombstone = Tombstone(id=str(uuid.uuid4()), handover_id=handover.id, withdrawal_id=withdrawal_id,
                          sender=handover.partner_node, consent_id=handover.consent_id, cause=cause, scope=scope,
                          erased_at=now, message_ids=message_ids, content_hashes=hashes)
    session.add(tombstone)
    return tombstone


def erase_handover(session: orm.Session, handover: Handover, *, cause: str, now: dt.datetime,
                   withdrawal_id: str | None = None) -> Tombstone:
    """Erase everything this node holds of a received case (no commit).

    Args:
        handover: the incoming handover (or forward) the data came with.
        cause: ``withdrawal``, ``revocation`` or ``retention``.
        now: the time of erasure.
        withdrawal_id: the received withdrawal that asked for it.
    Returns:
        The tombstone (flushed).
    """
    case_id = handover.case_id
    checkpoint_after_commit(session)
    erased = _erase_messages(session, handover, only_opening=False)
    handover.body = handover.consent = None
    handover.custody = None
    handover.status, handover.erased_at, handover.case_id = "erased", now, None
    session.flush()
    if case_id is not None:
        _delete_case(session, case_id)
    tombstone = _tombstone(session, handover, cause=cause, scope=None, now=now, withdrawal_id=withdrawal_id,
                           erased=erased)
    session.flush()
    journal_after_commit(session, tombstone, handover, case_id)
    record(session, actor=None, action="delete", object_type="handover", object_id=handover.id, case_id=case_id,
           now=now, detail={"cause": cause, "from": handover.partner_node, "messages": len(erased[0]),
                            "case_erased": case_id is not None})
    return tombstone


def _erase_from_case(session: orm.Session, case: Case, categories: Iterable[str]) -> list[str]:
    erased: list[str] = []
    for category in categories:
        if category == "contact":
            for column in _CONTACT_COLUMNS:
                setattr(case, column, None)
        elif category == "plan":
            session.execute(sa.delete(CasePlan).where(CasePlan.case_id == case.id)
                            .execution_options(synchronize_session=False))
        if category == "family":
            session.execute(sa.delete(HouseholdMember).where(HouseholdMember.case_id == case.id)
                            .execution_options(synchronize_session=False))
        sections = CATEGORY_SECTIONS.get(category, ())
        if sections:
            session.execute(sa.delete(IntakeSection).where(IntakeSection.case_id == case.id,
                                                            IntakeSection.section.in_(sections))
                            .execution_options(synchronize_session=False))
        erased.append(category)
    return erased


def erase_categories(session: orm.Session, handover: Handover, categories: Iterable[str], *, cause: str,
                     now: dt.datetime, withdrawal_id: str | None = None) -> Tombstone:
    """Erase some categories of a received case (``identity`` among them: the whole case) (no commit).

    Returns:
        The tombstone (flushed); its scope names the categories.
    """
    wanted = [c for c in CATEGORIES if c in set(categories)]
    if "identity" in wanted:
        tombstone = erase_handover(session, handover, cause=cause, now=now, withdrawal_id=withdrawal_id)
        tombstone.scope = {"categories": wanted}
        return tombstone
    checkpoint_after_commit(session)
    erased = _erase_messages(session, handover, only_opening=True)
    if handover.body is not None:
        body = dict(handover.body)
        body["summary"] = {k: v for k, v in body["summary"].items() if k not in wanted}
        body["withheld"] = [c for c in CATEGORIES if c in set(body["withheld"]) | set(wanted)]
        handover.body = body
    handover.categories = [c for c in handover.categories if c not in wanted]
    handover.withheld = [c for c in CATEGORIES if c in set(handover.withheld) | set(wanted)]
    case = session.get(Case, handover.case_id) if handover.case_id is not None else None
    if case is not None:
        _erase_from_case(session, case, wanted)
        record_event(session, case, kind="consent.withdrawn_partially", now=now, actor=None, object_type="handover",
                     object_id=handover.id, detail={"handover_id": handover.message_id, "categories": wanted,
                                                    "partner": handover.partner_node},
                     source=handover.partner_node, verified=True)
    session.flush()
    tombstone = _tombstone(session, handover, cause=cause, scope={"categories": wanted}, now=now,
                           withdrawal_id=withdrawal_id, erased=erased)
    session.flush()
    journal_after_commit(session, tombstone, handover, handover.case_id)
    record(session, actor=None, action="delete", object_type="handover", object_id=handover.id,
           case_id=handover.case_id, now=now,
           detail={"cause": cause, "from": handover.partner_node, "categories": wanted, "messages": len(erased[0])})
    return tombstone
