"""Known rows for the notification tests, written straight into the tables (as tests/exchange/dashboard_rows.py
does): users of two teams, cases, outgoing handovers answered by a partner, progress received, erasure
requests, outbound messages failing."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm

from node.accounts import User, create_user
from node.cases.models import Case
from node.exchange.chain.models import ErasureRequest
from node.exchange.handovers.models import Handover, ProgressUpdate
from node.exchange.models import OutboundMessage, Partner

SARAJEVO = "ba.cldd-sarajevo"
#: what the e-mail must never hold: the returnee's names and a progress note
GIVEN, FAMILY = "Amina", "Hadžić"
NOTE = "Met Amina with her son; the passport application is filed."


@dataclass
class Rows:
    sessionmaker: orm.sessionmaker[orm.Session]
    users: dict[str, int] = field(default_factory=dict)
    counter: int = 0

    def user(self, name: str, role: str, team: str | None, now: dt.datetime, **fields: Any) -> int:
        with self.sessionmaker() as session:
            user = create_user(session, username=name, role=role, team=team, now=now, display_name=None)
            for key, value in fields.items():
                setattr(user, key, value)
            session.commit()
            self.users[name] = user.id
            return user.id

    def case(self, now: dt.datetime, *, team: str | None = "gbg", assigned: str | None = None) -> tuple[str, str]:
        self.counter += 1
        case_id, reference = str(uuid.uuid4()), f"GI-2026-{self.counter:04d}"
        with self.sessionmaker() as session:
            session.execute(sa.insert(Case).values(
                id=case_id, reference=reference, status="handed_over", current_stage=None,
                assigned_user_id=self.users[assigned] if assigned else None, team=team, given_names=GIVEN,
                family_name=FAMILY, date_of_birth=dt.date(1990, 1, 1), child_at_intake=False, languages=["bs"],
                destination_country="BA", created_at=now, updated_at=now, version=1))
            session.commit()
        return case_id, reference

    def partner(self, session: orm.Session, node_id: str = SARAJEVO) -> Partner:
        partner = session.scalar(sa.select(Partner).where(Partner.node_id == node_id))
        assert partner is not None
        return partner

    def handover(self, case_id: str, now: dt.datetime, *, status: str = "pending",
                 decided: dt.datetime | None = None) -> str:
        self.counter += 1
        handover_id = str(uuid.uuid4())
        with self.sessionmaker() as session:
            partner = self.partner(session)
            session.execute(sa.insert(Handover).values(
                id=handover_id, direction="outgoing", status=status, partner_id=partner.id,
                partner_node=partner.node_id, thread=f"thread{self.counter:04d}", message_id=f"msg{self.counter:04d}",
                case_id=case_id, consent_id="consent1", purpose="reintegration_support", reference="REF",
                origin_case_id=case_id, categories=["identity"], withheld=[], child=False,
                destination_country="BA", created_at=now, decided_at=decided, reason="Our office is full",
                version=1))
            session.commit()
        return handover_id

    def decide(self, handover_id: str, status: str, at: dt.datetime) -> None:
        with self.sessionmaker() as session:
            session.execute(sa.update(Handover).where(Handover.id == handover_id).values(status=status, decided_at=at))
            session.commit()

    def progress(self, case_id: str, now: dt.datetime, *, direction: str = "received") -> str:
        self.counter += 1
        update_id = str(uuid.uuid4())
        with self.sessionmaker() as session:
            session.execute(sa.insert(ProgressUpdate).values(
                id=update_id, case_id=case_id, direction=direction, partner_node=SARAJEVO,
                update_id=f"u{self.counter}", at=now, note=NOTE, stage_changes=[], interventions=[], meetings=[],
                indicators=[], created_at=now))
            session.commit()
        return update_id

    def erasure(self, handover_id: str, case_id: str, requested: dt.datetime | None,
                confirmed: dt.datetime | None = None) -> str:
        request_id = str(uuid.uuid4())
        with self.sessionmaker() as session:
            session.execute(sa.insert(ErasureRequest).values(
                id=request_id, handover_id=handover_id, case_id=case_id, consent_id="consent1",
                partner_node=SARAJEVO, holder=SARAJEVO, cause="withdrawal", requested_at=requested,
                confirmed_at=confirmed, erased_at=confirmed))
            session.commit()
        return request_id

    def failing_message(self, queued: dt.datetime, *, attempts: int = 3) -> int:
        """A message to Sarajevo still trying, and Sarajevo backing off."""
        self.counter += 1
        with self.sessionmaker() as session:
            partner = self.partner(session)
            partner.retry_interval, partner.retry_last_at = 600.0, queued
            session.execute(sa.insert(OutboundMessage).values(
                message_id=f"out{self.counter:04d}", partner_id=partner.id, recipient=partner.node_id,
                type="progress_update", thread=f"t{self.counter:04d}", seq=1, message_hash="h" * 43,
                envelope=b"{}", status="queued", attempts=attempts, created_at=queued, queued_at=queued,
                expires_at=queued + dt.timedelta(days=30), next_attempt_at=queued, last_error="connect"))
            session.commit()
            return int(session.scalar(sa.select(sa.func.max(OutboundMessage.id))) or 0)

    def delivered(self, message_id: int, at: dt.datetime) -> None:
        """The message got through: delivered, and the partner's backoff reset."""
        with self.sessionmaker() as session:
            session.execute(sa.update(OutboundMessage).where(OutboundMessage.id == message_id)
                            .values(status="delivered", delivered_at=at))
            partner = self.partner(session)
            partner.retry_interval, partner.retry_at, partner.retry_last_at = 0.0, None, None
            session.commit()

    def user_row(self, name: str) -> User:
        with self.sessionmaker() as session:
            user = session.get(User, self.users[name])
            assert user is not None
            session.expunge(user)
            return user
