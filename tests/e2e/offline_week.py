"""A partner offline for a simulated week, then back (issue #15): the scenario shared by
``tests/e2e/test_resilience.py`` and ``bench/week_offline_bench.py``.

GI Göteborg (the sender) and CLDD Sarajevo are real nodes (``ccm-node init``, partners through the card path).
Sarajevo is down. The week runs in this process on a ``FakeClock`` over Göteborg's real database:

- Göteborg's own app (``create_app`` on its data directory, the fake clock) serves a counsellor's API calls:
  twice a simulated day a case is registered, consented and handed over, and the case handed over a day
  earlier is closed (``case_closed`` on its thread); and each round one more message is queued on each of
  several other case threads (signed ``receipt`` bodies, as in ``delivery_support``): interleaved threads
  whose messages were queued days apart.
- Göteborg's delivery worker is the real ``DeliveryWorker`` with the node's own settings (production
  backoff: 10 s growing to 3600 s, jitter 0.8-1.4, horizon 14 days) and HTTP transport, run by its own loop
  (``run``); only its idle wait is replaced: instead of sleeping it moves the fake clock to the next thing due
  (the partner's ``retry_at``, a round, the daily notification sweep of ``ccm-node deliver``, the partner's
  return). Every attempt is a real connection to Sarajevo's port, refused while it is down.
- After 7 days Sarajevo starts (gunicorn, its clock moved a week on with ``CCM_CLOCK_OFFSET_SECONDS``). The
  worker keeps its schedule: the first probe after the return is at the ``retry_at`` the backoff set. Once
  that probe is delivered, the in-process worker stops and the real ``ccm-node deliver`` (default settings,
  its clock moved to where the fake clock stands) drains the rest: that is the drain time measured.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, cast

import sqlalchemy as sa
from flask.testing import FlaskClient

from node import create_app
from node.accounts import create_token, create_user
from node.clock import FakeClock
from node.config import load_config
from node.exchange.delivery.transport import DeliveryAnswer, HttpTransport
from node.exchange.delivery.worker import DeliveryWorker, load_settings
from node.exchange.models import OutboundMessage, Partner
from node.notifications.loop import run_notifications
from node.notifications.models import Notification
from node.outbound import OutboundPolicy
from tests.e2e.delivery_support import Databases, delivered, queue, sent_order, wait_for
from tests.e2e.test_story import CASE
from tests.harness import NodeProcess


@dataclass(frozen=True)
class WeekPlan:
    days: int = 7
    rounds_per_day: int = 2
    bulk_threads: int = 16  # case threads that get one more message every round
    seed: int = 15


@dataclass
class WeekResult:
    order: dict[str, list[str]] = field(default_factory=dict)  # thread → message ids, as queued
    handovers: int = 0
    closed: int = 0
    probes: int = 0  # attempts refused while Sarajevo was down
    interval_at_return: float = 0.0  # the partner's backoff interval when it came back
    back_at: datetime | None = None  # when Sarajevo came back (fake time)
    probe_at: datetime | None = None  # the first probe after that (fake time): delivered
    given_up: int = 0
    unreachable_notices: int = 0
    drain_seconds: float = 0.0  # from starting ``ccm-node deliver`` to the last receipt recorded
    drain_work_seconds: float = 0.0  # first to last ``delivered_at`` of the drain (the worker's own clock)

    @property
    def total(self) -> int:
        return sum(len(ids) for ids in self.order.values())

    @property
    def wait_after_return(self) -> timedelta:
        assert self.back_at is not None and self.probe_at is not None
        return self.probe_at - self.back_at

    def figure(self) -> str:
        return (f"drain after a week offline: {self.total} messages on {len(self.order)} case threads "
                f"({self.handovers} handovers, {self.closed} closings); {self.probes} refused probes in the week, "
                f"backoff {self.interval_at_return:.0f} s at the return; first probe "
                f"{self.wait_after_return.total_seconds() / 60:.1f} min after the partner came back "
                f"(simulated); then drained in {self.drain_seconds:.1f} s "
                f"({self.drain_work_seconds:.1f} s of delivery, "
                f"{(self.total - 1) / max(self.drain_work_seconds, 1e-3):.0f} msg/s)")


class _StopOnDelivery:
    """The HTTP transport; the first 200 (the partner is back) stops the in-process worker."""

    def __init__(self, inner: HttpTransport, stop: threading.Event) -> None:
        self.inner, self.stop = inner, stop
        self.refused = 0

    def deliver(self, base_url: str, envelope: bytes) -> DeliveryAnswer:
        answer = self.inner.deliver(base_url, envelope)
        if answer.status == 200:
            self.stop.set()
        elif answer.status is None:
            self.refused += 1
        return answer

    def close(self) -> None:
        self.inner.close()


def case_body(number: int) -> dict[str, Any]:
    """A case to register (``tests/e2e/test_story.py``'s), its returnee's family name numbered."""
    returnee: dict[str, Any] = {**cast(dict[str, Any], CASE["returnee"]), "family_name": f"Hadžić-{number:03d}"}
    return {**CASE, "returnee": returnee}


def consent_body(recipient: str, today: date) -> dict[str, Any]:
    """A written consent to share the case with ``recipient`` for a year."""
    return {"recipients": [recipient], "categories": ["identity", "contact", "work", "wishes", "plan"],
            "purpose": "reintegration_support", "method": "written_signature",
            "valid_until": (today + timedelta(days=365)).isoformat()}


class Counsellor:
    """Göteborg's API in this process, on the fake clock, as a counsellor."""

    def __init__(self, client: FlaskClient, token: str, recipient: str, clock: FakeClock) -> None:
        self.client, self.recipient, self.clock = client, recipient, clock
        self.headers = {"Authorization": f"Bearer {token}"}
        self.count = 0

    def call(self, method: str, path: str, status: int, **kwargs: Any) -> Any:
        response = self.client.open(f"/api/v1{path}", method=method, headers=self.headers, **kwargs)
        assert response.status_code == status, response.get_data(as_text=True)
        return response.get_json()

    def hand_over(self) -> str:
        self.count += 1
        case = self.call("POST", "/cases", 201, json=case_body(self.count))
        consent = self.call("POST", f"/cases/{case['id']}/consents", 201,
                            json=consent_body(self.recipient, self.clock.now().date()))
        self.call("POST", f"/cases/{case['id']}/handovers", 202,
                  json={"recipient": self.recipient, "consent_id": consent["id"]})
        return str(case["id"])

    def close(self, case_id: str) -> None:
        self.call("POST", f"/cases/{case_id}/close", 200, json={"outcome": {"code": "plan_completed"}})


def _retry_at(session_factory: Any, partner_id: int) -> datetime | None:
    with session_factory() as session:
        value: datetime | None = session.scalar(sa.select(Partner.retry_at).where(Partner.id == partner_id))
        return value


def run_week(dbs: Databases, sender: NodeProcess, partner: NodeProcess, plan: WeekPlan) -> WeekResult:
    """The week offline and the return (see the module). ``partner`` must not be running."""
    config = load_config(sender.data_dir)
    clock = FakeClock(datetime.now(UTC).replace(microsecond=0))
    app = create_app(config, clock=clock)
    ctx = app.extensions["ccm"]
    with ctx.sessionmaker() as session:
        counsellor = create_user(session, username="anna.lindqvist", role="counsellor", team="gbg",
                                 now=clock.now())
        create_user(session, username="admin.gbg", role="admin", now=clock.now())
        session.flush()
        token = create_token(session, counsellor, now=clock.now(), days=30)
        partner_id = session.scalar(sa.select(Partner.id).where(Partner.node_id == partner.node_id))
        session.commit()
    assert partner_id is not None
    anna = Counsellor(app.test_client(), token, partner.node_id, clock)
    settings = load_settings(config)  # the node's own: production backoff and horizon
    stop = threading.Event()
    transport = _StopOnDelivery(HttpTransport(policy=OutboundPolicy.from_config(config)), stop)
    worker = DeliveryWorker(sessionmaker=ctx.sessionmaker, clock=clock, settings=settings, transport=transport,
                            rng=random.Random(plan.seed), worker_id="week-worker")
    result = WeekResult()
    start = clock.now()
    step = timedelta(days=1) / plan.rounds_per_day
    rounds = [start + i * step for i in range(plan.days * plan.rounds_per_day)]
    sweeps = [start + timedelta(days=d) for d in range(1, plan.days + 1)]
    back_at = start + timedelta(days=plan.days)
    handed: list[str] = []

    def play_round(number: int) -> None:
        handed.append(anna.hand_over())
        result.handovers += 1
        if number >= plan.rounds_per_day:  # the case handed over a day earlier is closed
            anna.close(handed[number - plan.rounds_per_day])
            result.closed += 1
        queue(dbs, sender, partner, plan.bulk_threads, 1, now=clock.now(), first=number)

    def come_back() -> None:
        result.back_at = clock.now()
        result.given_up = worker.stats.given_up
        with ctx.sessionmaker() as session:
            row = session.get(Partner, partner_id)
            assert row is not None
            result.interval_at_return = row.retry_interval
            next_probe = row.retry_at or clock.now()
        # Its clock a week on, in step with Göteborg's when the next probe comes.
        partner.clock_offset = (max(next_probe, clock.now()) - datetime.now(UTC)).total_seconds()
        partner.start()

    def idle(_seconds: float) -> None:
        """Instead of sleeping: move the fake clock to the next thing due and do it."""
        now = clock.now()
        retry_at = _retry_at(ctx.sessionmaker, partner_id)
        due = [t for t in (rounds[:1] + sweeps[:1] + [retry_at, None if result.back_at else back_at])
               if t is not None and t > now]
        clock.set(min(due) if due else now + timedelta(seconds=settings.poll_interval))
        if rounds and rounds[0] <= clock.now():
            play_round(len(handed))
            rounds.pop(0)
        if sweeps and sweeps[0] <= clock.now():  # what ``ccm-node deliver`` runs every minute
            run_notifications(ctx.sessionmaker, config, clock.now())
            sweeps.pop(0)
        if result.back_at is None and clock.now() >= back_at:
            come_back()

    rounds.pop(0)
    play_round(0)
    worker.run(stop, sleep=idle)  # until the first delivery after the return
    result.probe_at = clock.now()
    result.probes = transport.refused
    with ctx.sessionmaker() as session:
        result.unreachable_notices = int(session.scalar(sa.select(sa.func.count()).select_from(Notification)
                                                        .where(Notification.kind == "partner_unreachable")) or 0)
    ctx.engine.dispose()
    result.order = sent_order(dbs, sender)

    # The drain: the real worker, default settings, on Göteborg's clock as it stands now.
    sender.clock_offset = (clock.now() - datetime.now(UTC)).total_seconds()
    began = time.monotonic()
    drainer = sender.spawn("deliver")
    wait_for(lambda: delivered(dbs, sender), result.total, "the drain after the week", sender)
    result.drain_seconds = time.monotonic() - began
    with dbs.session(sender) as session:
        first, last = session.execute(sa.select(sa.func.min(OutboundMessage.delivered_at),
                                                sa.func.max(OutboundMessage.delivered_at))
                                      .where(OutboundMessage.delivered_at > result.probe_at)).one()
    assert first is not None and last is not None
    result.drain_work_seconds = (last - first).total_seconds()
    assert sender.stop_process(drainer) == 0
    return result
