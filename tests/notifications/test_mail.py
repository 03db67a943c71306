"""Notification e-mails through a real SMTP server (aiosmtpd on 127.0.0.1, a free port): what arrives, that it
holds no personal data, the opt-out, and a refusing or absent server (nothing crashes, the e-mail goes out at a
later run). Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import datetime as dt
import socket
from collections.abc import Iterator
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from flask import Flask

from node.auth import Actor
from node.clock import FakeClock
from node.config import ConfigError, NodeConfig, SmtpConfig, load_config, write_config
from node.notifications.loop import run_notifications
from node.notifications.models import Notification
from node.notifications.services import set_email_preferences

from .rows import FAMILY, GIVEN, NOTE, Rows


class Inbox:
    """An aiosmtpd handler keeping what it is sent; ``refuse`` answers every message with a 554."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], bytes]] = []
        self.refuse = False

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # aiosmtpd's hook name
        if self.refuse:
            return "554 5.7.1 Refused for the test"
        self.messages.append((list(envelope.rcpt_tos), bytes(envelope.original_content or envelope.content)))
        return "250 OK"

    def parsed(self) -> list[tuple[list[str], Message]]:
        return [(to, message_from_bytes(raw)) for to, raw in self.messages]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def smtp_port() -> int:
    return free_port()


@pytest.fixture
def inbox(smtp_port: int) -> Iterator[Inbox]:
    handler = Inbox()
    controller = Controller(handler, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    yield handler
    controller.stop()


@pytest.fixture
def config(app: Flask, smtp_port: int) -> NodeConfig:
    base: NodeConfig = app.extensions["ccm"].config
    return dataclasses.replace(base, base_url="https://gi.example.se", smtp=SmtpConfig(
        host="127.0.0.1", port=smtp_port, from_address="ccm@gi.example.se", starttls=False, timeout_seconds=5))


def accepted_handover(rows: Rows, clock: FakeClock, **case: Any) -> tuple[str, str]:
    case_id, reference = rows.case(clock.now(), **case)
    handover = rows.handover(case_id, clock.now())
    rows.progress(case_id, clock.now() - dt.timedelta(days=30))  # too old for the sweep: no e-mail
    rows.decide(handover, "accepted", clock.now())
    return case_id, reference


def emailed(rows: Rows, name: str) -> list[dt.datetime | None]:
    with rows.sessionmaker() as session:
        return list(session.scalars(sa.select(Notification.emailed_at).where(
            Notification.user_id == rows.users[name]).order_by(Notification.id)))


def test_the_email_arrives_with_the_reference_and_a_link_and_no_personal_data(
        rows: Rows, clock: FakeClock, config: NodeConfig, inbox: Inbox) -> None:
    case_id, reference = accepted_handover(rows, clock, team="gbg", assigned=None)
    result, mail = run_notifications(rows.sessionmaker, config, clock.now())
    assert result.inserted == {"handover_accepted": 3}  # anna, bo, cai
    assert len(mail.sent) == 1 and mail.failed == []  # bo opted out, cai has no address
    [(to, message)] = inbox.parsed()
    assert to == ["anna@gi.example"]
    assert message["Subject"] == "CCM: a handover was accepted"
    assert message["From"] == "ccm@gi.example.se"
    body = message.get_payload(decode=True).decode()
    assert reference in body and f"https://gi.example.se/cases/{case_id}" in body
    raw = inbox.messages[0][1].decode("utf-8", "replace")
    for personal in (GIVEN, FAMILY, NOTE, "Our office is full", "anna", "Anna"):
        assert personal not in raw.replace("anna@gi.example", ""), personal
    assert emailed(rows, "anna") == [clock.now()]
    assert emailed(rows, "bo") == [None] and emailed(rows, "cai") == [None]
    # the next run sends nothing again
    _, again = run_notifications(rows.sessionmaker, config, clock.advance(minutes=1))
    assert again.sent == [] and len(inbox.messages) == 1


def test_an_opt_out_is_respected(rows: Rows, clock: FakeClock, config: NodeConfig, inbox: Inbox) -> None:
    with rows.sessionmaker() as session:
        anna = rows.user_row("anna")
        set_email_preferences(session, Actor(anna.id, anna.username, anna.role, anna.team),
                              {"email": "anna@gi.example", "notify_email": False}, clock.now())
        session.commit()
    accepted_handover(rows, clock, assigned="anna")
    result, mail = run_notifications(rows.sessionmaker, config, clock.now())
    assert result.total == 1 and mail.sent == [] and inbox.messages == []
    assert emailed(rows, "anna") == [None]


def test_a_partner_problem_links_to_the_notifications_page(rows: Rows, clock: FakeClock, config: NodeConfig,
                                                           inbox: Inbox) -> None:
    rows.failing_message(clock.now())
    clock.advance(days=2)
    _, mail = run_notifications(rows.sessionmaker, config, clock.now())
    assert len(mail.sent) == 1  # admin1 has an address, admin2 none
    [(to, message)] = inbox.parsed()
    assert to == ["admin1@gi.example"] and message["Subject"] == "CCM: a partner is unreachable"
    body = message.get_payload(decode=True).decode()
    assert "https://gi.example.se/notifications" in body and "ba.cldd-sarajevo" in body


def test_a_refusing_server_leaves_the_email_for_the_next_run(rows: Rows, clock: FakeClock, config: NodeConfig,
                                                             inbox: Inbox, caplog: pytest.LogCaptureFixture) -> None:
    accepted_handover(rows, clock, assigned="anna")
    inbox.refuse = True
    _, mail = run_notifications(rows.sessionmaker, config, clock.now())
    assert mail.sent == [] and len(mail.failed) == 1 and inbox.messages == []
    assert emailed(rows, "anna") == [None]
    assert "anna@gi.example" not in caplog.text and "SMTP" in caplog.text
    inbox.refuse = False
    _, later = run_notifications(rows.sessionmaker, config, clock.advance(minutes=1))
    assert later.sent == mail.failed and len(inbox.messages) == 1
    assert emailed(rows, "anna") == [clock.now()]


def test_a_closed_server_is_no_crash_and_the_email_goes_out_once_it_is_back(
        rows: Rows, clock: FakeClock, config: NodeConfig, smtp_port: int, caplog: pytest.LogCaptureFixture) -> None:
    _, reference = accepted_handover(rows, clock, assigned="anna")
    _, mail = run_notifications(rows.sessionmaker, config, clock.now())  # nothing listens on the port
    assert mail.sent == [] and len(mail.failed) == 1
    assert "cannot reach the SMTP server (ConnectionRefusedError)" in caplog.text
    assert "anna@gi.example" not in caplog.text and reference not in caplog.text
    handler = Inbox()
    controller = Controller(handler, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    try:
        _, later = run_notifications(rows.sessionmaker, config, clock.advance(minutes=5))
    finally:
        controller.stop()
    assert later.sent == mail.failed and len(handler.messages) == 1


def test_no_smtp_section_sends_nothing_and_old_rows_are_not_mailed(rows: Rows, clock: FakeClock, config: NodeConfig,
                                                                   inbox: Inbox) -> None:
    accepted_handover(rows, clock, assigned="anna")
    _, mail = run_notifications(rows.sessionmaker, dataclasses.replace(config, smtp=None), clock.now())
    assert mail.sent == [] and mail.failed == []
    clock.advance(days=3)  # the server is configured only now: the old notification is not e-mailed any more
    _, later = run_notifications(rows.sessionmaker, config, clock.now())
    assert later.sent == [] and inbox.messages == []


def test_the_smtp_section_of_node_toml(tmp_path: Path) -> None:
    write_config(tmp_path / "n", "se.gi-goteborg", "GI", "https://gi.example.se")
    toml = tmp_path / "n" / "node.toml"
    assert load_config(tmp_path / "n").smtp is None
    toml.write_text(toml.read_text() + '\n[smtp]\nhost = "mail.gi.example.se"\nfrom = "ccm@gi.example.se"\n'
                    'username = "ccm"\npassword_file = "smtp_password"\n')
    (tmp_path / "n" / "smtp_password").write_text("s3cret\n")
    smtp = load_config(tmp_path / "n").smtp
    assert smtp is not None and (smtp.host, smtp.port, smtp.starttls) == ("mail.gi.example.se", 587, True)
    assert smtp.from_address == "ccm@gi.example.se" and smtp.username == "ccm" and smtp.password() == "s3cret"
    toml.write_text(toml.read_text() + "port = 0\n")
    with pytest.raises(ConfigError, match=r"\[smtp\] port"):
        load_config(tmp_path / "n")
