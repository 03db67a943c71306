"""``ccm-node bundle export|import`` on two initialised nodes (SQLite and PostgreSQL): files, modes, counts,
refusals as one line on stderr."""

from __future__ import annotations

import stat
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from node.clock import SystemClock
from node.config import load_config
from node.db import make_engine, make_sessionmaker
from node.exchange.delivery.outbox import enqueue
from node.exchange.models import InboundMessage, OutboundMessage
from node.exchange.trust.keystore import load_identity
from tests.exchange.cli_runner import run
from tests.exchange.conftest import note_body, thread_id

pytestmark = pytest.mark.usefixtures("no_domain_appliers")
GBG, SARAJEVO = "se.gi-goteborg", "ba.cldd-sarajevo"


def rows(data_dir: Path, model: type[InboundMessage] | type[OutboundMessage]) -> list[str]:
    engine = make_engine(load_config(data_dir).database_url)
    try:
        with make_sessionmaker(engine)() as session:
            return [f"{r.message_id}:{getattr(r, 'status', 'in')}" for r in session.scalars(
                sa.select(model).order_by(model.id))]
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def pair(request: pytest.FixtureRequest, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[Path, Path]:
    """Göteborg and Sarajevo initialised and trusting each other; two messages queued for Sarajevo."""
    gbg, sarajevo = tmp_path / "gbg", tmp_path / "sarajevo"
    for data_dir, node_id in ((gbg, GBG), (sarajevo, SARAJEVO)):
        extra: list[str] = []
        if request.param == "postgresql":
            make: Callable[[], str] = request.getfixturevalue("make_pg_database")
            extra = ["--database-url", make()]
        assert run(capsys, data_dir, "init", "--node-id", node_id, "--name", node_id, "--url",
                   "http://127.0.0.1:9", *extra)[0] == 0
    for me, other in ((gbg, sarajevo), (sarajevo, gbg)):
        card_file = tmp_path / f"{other.name}.card.json"
        card_file.write_text(run(capsys, other, "card")[1], encoding="utf-8")
        fingerprint = run(capsys, other, "fingerprint")[1].strip()
        assert run(capsys, me, "partner", "add", "--card-file", str(card_file), "--fingerprint", fingerprint,
                   "--agreement", "dsa-1")[0] == 0
    config = load_config(gbg)
    engine = make_engine(config.database_url)
    now = SystemClock().now()
    identity = load_identity(config, now)
    with make_sessionmaker(engine)() as session:
        for text in ("first", "second"):
            enqueue(session, keys=identity.keys, recipient=SARAJEVO, msg_type="progress_update",
                    body=note_body(text), thread=thread_id("case"), now=now)
        session.commit()
    engine.dispose()
    return gbg, sarajevo


def test_the_round_trip_by_file(pair: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gbg, sarajevo = pair
    stick = tmp_path / "stick"
    stick.mkdir()
    bundle = stick / "to-sarajevo.ccm"
    code, out, err = run(capsys, gbg, "bundle", "export", "--to", SARAJEVO, "--out", str(bundle))
    assert code == 0 and err == "" and out.startswith(f"exported 2 message(s) for {SARAJEVO} to {bundle} (")
    assert stat.S_IMODE(bundle.stat().st_mode) == 0o600
    code, _, err = run(capsys, gbg, "bundle", "export", "--to", SARAJEVO, "--out", str(bundle))
    assert code == 1 and err == f"ccm-node: {bundle} exists: choose another --out or add --force\n"
    assert run(capsys, gbg, "bundle", "export", "--to", SARAJEVO, "--out", str(bundle), "--force")[0] == 0
    assert stat.S_IMODE(bundle.stat().st_mode) == 0o600

    code, out, err = run(capsys, sarajevo, "bundle", "import", str(bundle))
    receipts = stick / "to-sarajevo.receipts.json"
    assert code == 0 and err == "" and out.splitlines() == [
        f"bundle from {GBG} (2 item(s)): accepted 2, duplicates 0, refused 0",
        f"receipts for 2 message(s) written to {receipts}: carry it back to {GBG} and run "
        f"'ccm-node bundle import {receipts.name}' there"]
    assert stat.S_IMODE(receipts.stat().st_mode) == 0o600
    assert len(rows(sarajevo, InboundMessage)) == 2

    code, out, _ = run(capsys, sarajevo, "bundle", "import", str(bundle))  # again: nothing changes
    again = stick / "to-sarajevo.receipts-2.json"
    assert code == 0 and out.splitlines()[0] == f"bundle from {GBG} (2 item(s)): accepted 0, duplicates 2, refused 0"
    assert str(again) in out and len(rows(sarajevo, InboundMessage)) == 2

    code, out, err = run(capsys, gbg, "bundle", "import", str(receipts))
    assert code == 0 and err == "" and out == (
        f"receipts from {SARAJEVO} (2 item(s)): delivered 2, already delivered 0, not pending 0, refused 0\n")
    assert [r.split(":")[1] for r in rows(gbg, OutboundMessage)] == ["delivered", "delivered"]
    code, out, _ = run(capsys, gbg, "bundle", "import", str(again), "--receipts-out", str(stick / "x"))
    assert code == 0 and out.splitlines() == [
        f"receipts from {SARAJEVO} (2 item(s)): delivered 0, already delivered 2, not pending 0, refused 0",
        "note: --receipts-out ignored: this was a receipts bundle"]
    code, out, _ = run(capsys, gbg, "bundle", "export", "--to", SARAJEVO, "--out", str(stick / "empty.ccm"))
    assert code == 0 and out == f"nothing to export: no message is ready to go to {SARAJEVO}\n"
    assert not (stick / "empty.ccm").exists()
    assert run(capsys, gbg, "audit", "verify")[0] == 0 and run(capsys, sarajevo, "audit", "verify")[0] == 0


def test_refusals_are_one_line_and_import_nothing(pair: tuple[Path, Path], tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    gbg, sarajevo = pair
    bundle = tmp_path / "bundle.ccm"
    assert run(capsys, gbg, "bundle", "export", "--to", SARAJEVO, "--out", str(bundle))[0] == 0
    data = bundle.read_bytes()
    position = data.index(b'"sig":"') + 20
    tampered = tmp_path / "tampered.ccm"
    other = b"B" if data[position : position + 1] == b"A" else b"A"  # still base64url: the signature fails
    tampered.write_bytes(data[:position] + other + data[position + 1 :])
    for args, message in [
        (("bundle", "import", str(tampered)), "bundle refused, nothing imported: bad_signature: "),
        (("bundle", "import", str(tmp_path / "missing.ccm")), f"cannot read {tmp_path / 'missing.ccm'}: "),
        (("bundle", "import", str(bundle), "--receipts-out", str(bundle)), f"{bundle} exists: "),
        (("bundle", "export", "--to", "de.nobody", "--out", str(tmp_path / "n.ccm")), "de.nobody is not a partner"),
    ]:
        code, out, err = run(capsys, sarajevo if args[1] == "import" else gbg, *args)
        assert code == 1 and out == "" and err.count("\n") == 1 and err.startswith(f"ccm-node: {message}"), err
    code, _, err = run(capsys, gbg, "bundle", "import", str(bundle))  # our own bundle, addressed to Sarajevo
    assert code == 1 and err.startswith("ccm-node: bundle refused, nothing imported: wrong_recipient")
    assert rows(sarajevo, InboundMessage) == [] and not list(tmp_path.glob("*.receipts*"))
    assert not (tmp_path / "n.ccm").exists()

    receipts_out = tmp_path / "receipts.json"
    code, out, _ = run(capsys, sarajevo, "bundle", "import", str(bundle), "--receipts-out", str(receipts_out))
    assert code == 0 and f"written to {receipts_out}" in out
    assert run(capsys, sarajevo, "partner", "suspend", GBG)[0] == 0
    code, _, err = run(capsys, sarajevo, "bundle", "import", str(bundle))
    assert code == 1 and err.startswith("ccm-node: bundle refused, nothing imported: unknown_sender")
