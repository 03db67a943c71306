"""The requester's side of a resync: ask each partner that is out of step, page by page, and apply the answers.

A partner is out of step when ``Partner.resync_since`` is set (``ccm-node backup restore`` sets it for every
partner to an hour before the backup was taken). :func:`resync_partner` signs a ``resync_request`` for the next
page (``Partner.resync_after``), posts it outside any transaction, verifies the signed answer against the
request and the partner's card (``protocol.verify_answer``), and records the page in one transaction
(``rechain.record_page``); after the last page it re-chains what is still to be sent (``rechain.rechain``),
clears ``resync_since`` and lets delivery to that partner go on. A failure (the partner unreachable, a refusal,
an answer that does not verify) grows the partner's backoff like a failed delivery and is tried again.

:func:`resync_loop` runs it beside the delivery worker (``ccm-node deliver``), every few seconds for the
partners whose backoff allows it. ``ccm-node partner resync-skip`` gives up on a partner that cannot answer
(an older node without the endpoint): its messages then go as they are.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy import orm

from node.audit import record as audit
from node.clock import Clock
from node.config import NodeConfig
from node.db import by_key
from node.exchange.delivery.queue import reset_backoff
from node.exchange.delivery.retry import RetryPolicy, record_failure
from node.exchange.delivery.worker import problem_code
from node.exchange.models import Partner
from node.exchange.resync.rechain import rechain, record_page
from node.exchange.trust.keystore import NodeIdentity
from node.exchange.trust.partners import partner_card
from node.outbound import OutboundPolicy, Post, http_poster
from protocol import canonical_bytes, strict_loads
from protocol.errors import ProtocolError
from protocol.resync import MAX_ANSWER_BYTES, MAX_LOOKBACK, ResyncRequest, make_request, verify_answer
from protocol.times import parse_time

log = logging.getLogger(__name__)

RESYNC_PATH = "/federation/v1/resync"
#: How often the loop looks for partners out of step.
RESYNC_EVERY = timedelta(seconds=5)
#: Per request, to connect and to read (an answer page is at most 2 MiB).
RESYNC_TIMEOUT = 30.0
#: The most pages one call asks for before it lets the loop look at the other partners.
MAX_PAGES_PER_TURN = 50


@dataclass
class ResyncOutcome:
    """What one call did for one partner."""

    partner: str
    done: bool = False
    pages: int = 0
    requeued_there: int = 0
    marked: int = 0
    recovered: int = 0
    resealed: int = 0
    error: str | None = None


def out_of_step(session: orm.Session, now: datetime) -> list[int]:
    """Ids of the active partners waiting for a resync whose backoff allows a try now."""
    return list(session.scalars(sa.select(Partner.id).where(
        Partner.resync_since.is_not(None), Partner.status == "active",
        sa.or_(Partner.retry_at.is_(None), Partner.retry_at <= now)).order_by(Partner.id)))


def mark_out_of_step(session: orm.Session, since: datetime) -> int:
    """Mark every partner as out of step since ``since`` (the restore; no commit). Returns how many."""
    result = session.execute(sa.update(Partner).values(resync_since=since, resync_after=None)
                             .execution_options(synchronize_session=False))
    return int(getattr(result, "rowcount", 0) or 0)


def _fail(sessions: orm.sessionmaker[orm.Session], partner_id: int, outcome: ResyncOutcome, error: str,
          started: datetime, clock: Clock, rng: random.Random, policy: RetryPolicy) -> ResyncOutcome:
    outcome.error = error
    with sessions() as session, session.begin():
        partner = by_key(session, Partner, partner_id)
        if partner is not None:
            record_failure(partner, now=clock.now(), attempt_started=started, policy=policy, rng=rng)
    log.warning("resync with %s failed (%s); trying again later", outcome.partner, error)
    return outcome


def resync_partner(sessions: orm.sessionmaker[orm.Session], partner_id: int, *, identity: NodeIdentity,
                   clock: Clock, post: Post, rng: random.Random | None = None,
                   policy: RetryPolicy | None = None) -> ResyncOutcome:
    """Ask one partner for the next pages and apply them (see the module's description).

    Returns:
        What was done; ``done`` when the partner is in step again, ``error`` when a try failed.
    """
    rng = rng or random.Random()  # noqa: S311 - jitter, not a secret
    policy = policy or RetryPolicy()
    keys = identity.keys
    outcome = ResyncOutcome(partner="")
    for _ in range(MAX_PAGES_PER_TURN):
        now = clock.now()
        with sessions() as session:
            partner = by_key(session, Partner, partner_id)
            if partner is None or partner.resync_since is None:
                outcome.done = True
                return outcome
            outcome.partner = partner.node_id
            since = max(partner.resync_since, now - MAX_LOOKBACK + timedelta(hours=1))
            doc = make_request(keys, partner.node_id, since=min(since, now), now=now, after=partner.resync_after)
            card, url = partner_card(partner), partner.base_url.rstrip("/") + RESYNC_PATH
        request = ResyncRequest(doc["id"], keys.node_id, card.node_id, parse_time(doc["created"]),
                                parse_time(doc["since"]), doc["after"])
        status, body, error = post(url, canonical_bytes(doc), RESYNC_TIMEOUT)
        if status != 200:
            code = problem_code(body)
            return _fail(sessions, partner_id, outcome, error or code or f"http_{status}", now, clock, rng, policy)
        try:
            answer = verify_answer(strict_loads(body), card, request=request, now=clock.now())
        except ProtocolError as exc:
            return _fail(sessions, partner_id, outcome, f"answer refused: {exc.code}", now, clock, rng, policy)
        try:
            with sessions() as session, session.begin():
                partner = by_key(session, Partner, partner_id)
                if partner is None or partner.resync_since is None:
                    outcome.done = True
                    return outcome
                recorded = record_page(session, partner, answer, clock.now())
                outcome.pages += 1
                outcome.requeued_there += answer.requeued
                outcome.marked += recorded.marked
                outcome.recovered += recorded.recovered
                if answer.next is not None:
                    partner.resync_after = answer.next
                    continue
                outcome.resealed = rechain(session, partner, identity, clock.now())
                partner.resync_since, partner.resync_after = None, None
                reset_backoff(session, partner, clock.now())
                audit(session, actor=None, action="import", object_type="resync", object_id=partner.node_id,
                      case_id=None, now=clock.now(),
                      detail={"pages": outcome.pages, "marked_delivered": outcome.marked,
                              "recovered": outcome.recovered, "resealed": outcome.resealed,
                              "requeued_by_partner": outcome.requeued_there})
        except ProtocolError as exc:
            return _fail(sessions, partner_id, outcome, f"answer refused: {exc.code}", now, clock, rng, policy)
        outcome.done = True
        log.info("resync with %s done: %d page(s), %d message(s) of ours recorded as delivered (%d recovered), "
                 "%d sealed again on a new link, %d queued again by the partner", outcome.partner, outcome.pages,
                 outcome.marked + outcome.recovered, outcome.recovered, outcome.resealed, outcome.requeued_there)
        return outcome
    return outcome


def run_resync(sessions: orm.sessionmaker[orm.Session], *, identity: NodeIdentity, clock: Clock,
               post: Post, partner_ids: Sequence[int] | None = None) -> Sequence[ResyncOutcome]:
    """One turn: every partner out of step whose backoff allows it (or ``partner_ids``, found so by the
    caller), one after the other."""
    if partner_ids is None:
        with sessions() as session:
            partner_ids = out_of_step(session, clock.now())
    return [resync_partner(sessions, partner_id, identity=identity, clock=clock, post=post)
            for partner_id in partner_ids]


def resync_loop(stop: threading.Event, *, sessionmaker: orm.sessionmaker[orm.Session], config: NodeConfig,
                clock: Clock, every: timedelta = RESYNC_EVERY, post: Post | None = None) -> None:
    """Run :func:`run_resync` now, then every ``every`` until ``stop`` is set (the delivery worker's companion
    thread; with ``stop`` already set it runs once). Keys are loaded only when a partner is out of step."""
    from node.exchange.trust.keystore import load_identity

    post = post or http_poster(OutboundPolicy.from_config(config), limit=MAX_ANSWER_BYTES + 1)
    while True:
        try:
            with sessionmaker() as session:
                waiting = out_of_step(session, clock.now())
            if waiting:
                run_resync(sessionmaker, identity=load_identity(config, clock.now()), clock=clock, post=post,
                           partner_ids=waiting)
        except Exception as exc:  # a database or key file problem must not stop the delivery worker
            log.warning("resync run failed: %s", type(exc).__name__)
        if stop.wait(every.total_seconds()):
            return
