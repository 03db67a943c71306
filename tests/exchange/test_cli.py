"""``ccm-node`` exchange commands: keys at init, card, fingerprint, partner, queue, deliver."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from node.cli import dashed_id
from node.clock import SystemClock
from node.config import allow_loopback, load_config
from node.db import make_engine, make_sessionmaker
from node.exchange.delivery.outbox import enqueue
from node.exchange.trust.keystore import load_identity
from protocol import verify_card
from protocol.cards import card_from_bytes
from tests.exchange.cli_runner import closed_port, run
from tests.exchange.conftest import note_body, thread_id


@pytest.fixture
def two(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[Path, Path]:
    gbg, sarajevo = tmp_path / "gbg", tmp_path / "sarajevo"
    code, out, _ = run(capsys, gbg, "init", "--node-id", "se.gi-goteborg", "--name", "GI", "--url",
                       "http://127.0.0.1:5000")
    assert code == 0 and "fingerprint: " in out
    assert run(capsys, sarajevo, "init", "--node-id", "ba.cldd-sarajevo", "--name", "CLDD Sarajevo", "--url",
               f"http://127.0.0.1:{closed_port()}")[0] == 0
    return gbg, sarajevo


def test_init_makes_private_keys_and_card_and_fingerprint_print_them(
        two: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    gbg, _ = two
    key_file = gbg / "keys" / "node.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE((gbg / "keys").stat().st_mode) == 0o700
    code, out, _ = run(capsys, gbg, "card")
    card = card_from_bytes(out.encode())
    identity = load_identity(load_config(gbg), card.valid_from)
    verify_card(card, card.valid_from)
    assert card.node_id == "se.gi-goteborg" and card.signing_key == identity.keys.signing_public
    code, out, _ = run(capsys, gbg, "fingerprint")
    assert code == 0 and out.strip() == card.fingerprint() and len(out.split()) == 12


def test_partner_commands(two: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    gbg, sarajevo = two
    card_file = gbg.parent / "sarajevo-card.json"
    card_file.write_text(run(capsys, sarajevo, "card")[1], encoding="utf-8")
    fingerprint = run(capsys, sarajevo, "fingerprint")[1].strip()
    wrong = run(capsys, gbg, "fingerprint")[1].strip()

    code, out, err = run(capsys, gbg, "partner", "add", "--card-file", str(card_file), "--fingerprint", wrong,
                         "--agreement", "dsa-1")
    assert code == 1 and out == "" and err.count("\n") == 1 and "does not match" in err
    assert run(capsys, gbg, "partner", "list")[1] == ""

    code, out, _ = run(capsys, gbg, "partner", "add", "--card-file", str(card_file), "--fingerprint", fingerprint)
    assert code == 0 and "trusted partner ba.cldd-sarajevo" in out and "no agreement recorded" in out
    code, _, err = run(capsys, gbg, "partner", "add", "--card-file", str(card_file), "--fingerprint", fingerprint)
    assert code == 1 and "already a partner" in err
    assert "(no agreement)" in run(capsys, gbg, "partner", "list")[1]
    assert run(capsys, gbg, "partner", "agreement", "ba.cldd-sarajevo", "dsa-1")[0] == 0
    code, out, _ = run(capsys, gbg, "partner", "list")
    assert out.split("\t")[1:4] == ["ba.cldd-sarajevo", "active", "dsa-1"]
    assert run(capsys, gbg, "partner", "suspend", "1")[1] == "partner ba.cldd-sarajevo is suspended\n"
    assert run(capsys, gbg, "partner", "resume", "ba.cldd-sarajevo")[0] == 0
    assert run(capsys, gbg, "partner", "revoke", "ba.cldd-sarajevo")[0] == 0
    code, _, err = run(capsys, gbg, "partner", "resume", "ba.cldd-sarajevo")
    assert code == 1 and "revoked" in err
    code, _, err = run(capsys, gbg, "partner", "suspend", "nobody")
    assert code == 1 and "no partner" in err
    code, _, err = run(capsys, gbg, "partner", "add", "--card-file", str(gbg / "missing.json"), "--fingerprint", "1")
    assert code == 1 and "cannot read" in err
    assert run(capsys, gbg, "audit", "verify")[0] == 0


@pytest.mark.parametrize("url", [
    "http://[::ffff:127.0.0.1]/", "http://0.0.0.0/", "http://127.1/", "http://2130706433/",
    "http://169.254.169.254/latest/meta-data/", "http://10.0.0.1/", "http://192.168.1.1/", "http://172.16.0.1/",
    "http://[fd00::1]/", "http://[fe80::1]/", "http://localhost:8701/", "http://[::1]/", "http://224.0.0.1/",
])
def test_partner_add_never_fetches_from_a_local_or_private_address(two: tuple[Path, Path], url: str,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """``ccm-node init`` allows only public addresses; nothing is fetched, nothing stored, one line."""
    gbg, _ = two
    code, out, err = run(capsys, gbg, "partner", "add", url, "--fingerprint", "1" * 60)
    assert code == 1 and out == "" and err.count("\n") == 1, err
    assert "this node does not connect to it" in err and url.rstrip("/").split("/")[2].strip("[]") in err
    assert run(capsys, gbg, "partner", "list")[1] == ""


def test_partner_add_reads_a_file_only_when_asked(two: tuple[Path, Path],
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    gbg, sarajevo = two
    card_file = gbg.parent / "sarajevo-card.json"
    card_file.write_text(run(capsys, sarajevo, "card")[1], encoding="utf-8")
    code, _, err = run(capsys, gbg, "partner", "add", str(card_file), "--fingerprint", "1")
    assert code == 1 and "is not an http:// or https:// URL" in err and "--card-file" in err
    code, _, err = run(capsys, gbg, "partner", "add", "--fingerprint", "1")
    assert code == 1 and "--card-file FILE" in err
    code, _, err = run(capsys, gbg, "partner", "add", "https://x.example", "--card-file", str(card_file),
                       "--fingerprint", "1")
    assert code == 1 and "not both" in err


def test_partner_add_names_the_url_and_the_cause(two: tuple[Path, Path],
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    gbg, _ = two
    allow_loopback(gbg)
    port = closed_port()
    code, _, err = run(capsys, gbg, "partner", "add", f"http://127.0.0.1:{port}", "--fingerprint", "1")
    assert code == 1 and err == (f"ccm-node: cannot fetch the card from http://127.0.0.1:{port}/federation/v1/card: "
                                 "connection refused (nothing listens there)\n")


def test_queue_and_deliver(two: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    gbg, sarajevo = two
    card_file = gbg.parent / "sarajevo-card.json"
    card_file.write_text(run(capsys, sarajevo, "card")[1], encoding="utf-8")
    fingerprint = run(capsys, sarajevo, "fingerprint")[1].strip()
    allow_loopback(gbg)  # Sarajevo's card names a loopback address: a test network
    run(capsys, gbg, "partner", "add", "--card-file", str(card_file), "--fingerprint", fingerprint,
        "--agreement", "dsa-1")
    assert run(capsys, gbg, "queue")[1] == "the outbox is empty\n"

    config = load_config(gbg)
    engine = make_engine(config.database_url)
    now = SystemClock().now()
    identity = load_identity(config, now)
    with make_sessionmaker(engine)() as session:
        message = enqueue(session, keys=identity.keys, recipient="ba.cldd-sarajevo",
                          msg_type="progress_update", body=note_body("x"), thread=thread_id("t"), now=now)
        session.commit()
    engine.dispose()
    code, out, _ = run(capsys, gbg, "queue")
    assert out.split("\t")[:4] == [str(message.id), "pending", "ba.cldd-sarajevo", "progress_update"]

    code, out, _ = run(capsys, gbg, "deliver", "--once")  # Sarajevo is not running: connection refused
    assert code == 0 and out == "delivered 0, retrying 1, parked 0, given up 0\n"
    code, out, _ = run(capsys, gbg, "queue")
    assert out.split("\t")[1] == "failed" and "connection_failed" in out
    assert "retry at" in run(capsys, gbg, "partner", "list")[1]
    code, out, _ = run(capsys, gbg, "queue", "retry", "--partner", "ba.cldd-sarajevo")
    assert code == 0 and "1 message(s) waiting" in out
    assert "\tok\t" in run(capsys, gbg, "partner", "list")[1]
    code, out, _ = run(capsys, gbg, "queue", "retry", "--", message.message_id)  # an id may begin with '-'
    assert code == 0 and out.endswith(": queued\n")
    code, out, _ = run(capsys, gbg, "queue", "retry", "--partner", "ba.cldd-sarajevo", "--given-up")
    assert code == 0 and "0 given-up message(s) queued again" in out
    code, _, err = run(capsys, gbg, "queue", "retry", "--given-up", "--", message.message_id)
    assert code == 1 and "--given-up goes with --partner" in err and err.count("\n") == 1
    code, _, err = run(capsys, gbg, "queue", "retry")
    assert code == 1 and "give either" in err
    code, out, err = run(capsys, gbg, "queue", "retry", "-AbCdEfGhIjKlMnOpQrStUv")  # without '--'
    assert code == 2 and not out and err == ("ccm-node: -AbCdEfGhIjKlMnOpQrStUv is not an option; an id that "
                                             "begins with '-' goes after '--', e.g. ccm-node ... queue retry -- "
                                             "-AbCdEfGhIjKlMnOpQrStUv\n")
    assert dashed_id(["queue", "retry", "--", "-AbC"]) is None and dashed_id(["--retention-days", "-5"]) is None
    assert dashed_id(["-h"]) is None and dashed_id(["keys", "status", "-x1"]) == "-x1"
    code, _, err = run(capsys, gbg, "queue", "retry", "999")
    assert code == 1 and "no message" in err
    code, _, err = run(capsys, gbg, "deliver", "--once", "--parallel", "0")
    assert code == 1 and "parallel" in err

