"""Backups and restore (``node/backup``): a round trip, refusals that change nothing, the erasure journal, and
what the network sees after a restore. The node tests run on SQLite and on PostgreSQL (the ``world`` fixture:
Göteborg hands a case over to Sarajevo, Sarajevo is backed up and restored)."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from node.accounts import User
from node.backup import journal
from node.backup.archive import Backup, BackupError, create_backup
from node.backup.restore import RestoreResult, restore_backup
from node.cases.models import Case
from node.config import write_config
from node.exchange.chain.erasure import erase_handover
from node.exchange.chain.models import ErasureRequest, Tombstone
from node.exchange.handovers.models import Handover
from node.exchange.models import InboundMessage, OutboundMessage
from node.migrate import current_revision, downgrade, head_revision, upgrade
from tests.at_rest.conftest import raw_bytes
from tests.backup.resync_support import resync
from tests.exchange.cli_runner import run
from tests.exchange.conftest import Node
from tests.exchange.desks import Desk, Worker, deliver, timeline
from tests.exchange.test_withdrawal import accepted_case, all_text, assert_no_personal_data, database_files, exchange


def data_dir(node: Node) -> Path:
    path: Path = node.app.extensions["ccm"].config.data_dir
    return path


def backup(node: Node, out: Path) -> Backup:
    """``ccm-node backup create`` for an in-process node (its node.toml written on first use)."""
    config = node.app.extensions["ccm"].config
    if not (config.data_dir / "node.toml").exists():
        write_config(config.data_dir, config.node_id, config.name, config.base_url, config.database_url)
    return create_backup(config, node.engine, out, keys=node.identity.keys, now=node.clock.now(),
                         schema_revision=current_revision(node.engine))


def stop(node: Node) -> None:
    """What stopping the node's processes does to its database connections (the app reconnects on next use)."""
    node.engine.dispose()
    for name in ("ccm_reader", "ccm_exchange_reader"):
        held = node.app.extensions.pop(name, None)
        if held is not None and held[1] is not None:
            held[1].kw["bind"].dispose()


def restore(node: Node, file: Path, **kwargs: Any) -> RestoreResult:
    stop(node)
    return restore_backup(data_dir(node), file.read_bytes(), now=node.clock.now(), **kwargs)


def erased_confirmations(node: Node) -> int:
    with node.sessionmaker() as session:
        return int(session.scalar(sa.select(sa.func.count()).select_from(OutboundMessage)
                                  .where(OutboundMessage.type == "erasure_confirmed")) or 0)


def notes(desk: Desk, case_id: str) -> int:
    return sum(1 for e in timeline(desk, case_id, "adviser") if e["kind"] == "progress.recorded")


def test_round_trip(desks: tuple[Desk, Desk], make_worker: Worker, tmp_path: Path) -> None:
    gbg, sarajevo = desks
    story = accepted_case(gbg, sarajevo, make_worker)
    out = tmp_path / "sarajevo.ccmbackup"
    made = backup(sarajevo.node, out)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert stat.S_IMODE((data_dir(sarajevo.node) / "keys" / "backup.key").stat().st_mode) == 0o600
    manifest = made.manifest
    assert manifest["node_id"] == "ba.cldd-sarajevo" and manifest["database"] == sarajevo.node.engine.dialect.name
    assert {"node.toml", "secret_key", "keys/node.key", "erasures.journal"} <= set(manifest["members"])
    assert "keys/backup.key" not in manifest["members"]
    assert b"Amina" not in out.read_bytes()  # encrypted
    with pytest.raises(BackupError, match="exists"):
        backup(sarajevo.node, out)

    sarajevo.ok("POST", f"/cases/{story['remote_case_id']}/progress", "adviser", 201,
                json={"note": "Second meeting: the course has a place for her."})
    assert notes(sarajevo, story["remote_case_id"]) == 2
    result = restore(sarajevo.node, out)
    assert result.reapplied == [] and result.manifest == manifest
    assert notes(sarajevo, story["remote_case_id"]) == 1  # back as it was at the backup
    case = sarajevo.ok("GET", f"/cases/{story['remote_case_id']}", "adviser")
    assert case["returnee"]["given_names"] == "Amina"


def test_a_tampered_file_is_refused_before_anything_is_touched(desks: tuple[Desk, Desk], make_worker: Worker,
                                                              tmp_path: Path) -> None:
    gbg, sarajevo = desks
    accepted_case(gbg, sarajevo, make_worker)
    out = tmp_path / "sarajevo.ccmbackup"
    backup(sarajevo.node, out)
    good = out.read_bytes()
    sarajevo.ok("POST", "/cases", "counsellor", 201, json={
        "returnee": {"given_names": "Kenan", "family_name": "Mujić", "date_of_birth": "1985-01-01",
                     "nationality": "BA"}, "destination_country": "BA"})
    before_text = all_text(sarajevo.node)
    stop(sarajevo.node)  # (closing the last connection checkpoints the write-ahead log)
    before_files = database_files(sarajevo.node)
    journal_before = (data_dir(sarajevo.node) / "erasures.journal").read_bytes() \
        if (data_dir(sarajevo.node) / "erasures.journal").exists() else None
    body_flip = bytearray(good)
    body_flip[-100] ^= 1
    header_edit = good.replace(b'"node_id":"ba.cldd-sarajevo"', b'"node_id":"ba.cldd-sarajevx"', 1)
    for data, reason in ((bytes(body_flip), "signature"), (header_edit, "signature"),
                         (good[: len(good) // 2], "signature"), (b"PK\x03\x04 not a backup", "not a CCM backup"),
                         (good.split(b"\n", 2)[0] + b"\n{", "malformed")):
        bad = tmp_path / "bad.ccmbackup"
        bad.write_bytes(data)
        with pytest.raises(BackupError, match=reason):
            restore(sarajevo.node, bad)
    assert database_files(sarajevo.node) == before_files
    assert all_text(sarajevo.node) == before_text
    after = data_dir(sarajevo.node) / "erasures.journal"
    assert (after.read_bytes() if after.exists() else None) == journal_before


def test_a_wrong_key_or_another_nodes_backup_is_refused(desks: tuple[Desk, Desk], make_worker: Worker,
                                                        tmp_path: Path) -> None:
    gbg, sarajevo = desks
    accepted_case(gbg, sarajevo, make_worker)
    out = tmp_path / "sarajevo.ccmbackup"
    backup(sarajevo.node, out)
    before = all_text(sarajevo.node)
    wrong = tmp_path / "wrong.key"
    wrong.write_text(base64.urlsafe_b64encode(os.urandom(32)).decode() + "\n")
    with pytest.raises(BackupError, match="does not decrypt with this backup key"):
        restore(sarajevo.node, out, key_file=wrong)
    short = tmp_path / "short.key"
    short.write_text("c2hvcnQ\n")
    with pytest.raises(BackupError, match="not a backup key"):
        restore(sarajevo.node, out, key_file=short)
    theirs = tmp_path / "gbg.ccmbackup"
    backup(gbg.node, theirs)
    with pytest.raises(BackupError, match=r"backup of se\.gi-goteborg, this is ba\.cldd-sarajevo"):
        restore(sarajevo.node, theirs)
    assert all_text(sarajevo.node) == before


def test_an_erasure_after_the_backup_holds_after_the_restore(desks: tuple[Desk, Desk], make_worker: Worker,
                                                            tmp_path: Path) -> None:
    gbg, sarajevo = desks
    story = accepted_case(gbg, sarajevo, make_worker)
    out = tmp_path / "sarajevo.ccmbackup"
    made = backup(sarajevo.node, out)
    gbg.ok("POST", f"/cases/{story['case_id']}/consents/{story['consent_id']}/withdraw", "counsellor",
           json={"reason": "The returnee no longer wants the partner involved."})
    exchange(make_worker, gbg, sarajevo)
    assert_no_personal_data(sarajevo.node)
    path = journal.journal_path(data_dir(sarajevo.node))
    lines = journal.read(path)
    assert len(lines) == made.manifest["journal"]["length"] + 1
    line = lines[-1]
    assert line["kind"] == "full" and line["cause"] == "withdrawal" and line["case_id"] == story["remote_case_id"]
    assert line["confirmation_message_id"] is not None
    assert b"Amina" not in path.read_bytes() and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert erased_confirmations(sarajevo.node) == 1

    result = restore(sarajevo.node, out)  # back to before the withdrawal, then the erasure again
    assert result.journal_lines_after_backup == 1 and result.reapplied == [line["handover_id"]]
    assert_no_personal_data(sarajevo.node)
    with sarajevo.node.sessionmaker() as session:
        handover = session.get(Handover, line["handover_id"])
        assert handover is not None and handover.status == "erased" and handover.body is None
        assert session.get(Case, story["remote_case_id"]) is None
        [tombstone] = session.scalars(sa.select(Tombstone)).all()
        assert tombstone.confirmation_message_id == line["confirmation_message_id"]
    assert erased_confirmations(sarajevo.node) == 0  # the partner has the one sent at the time
    assert len(journal.read(path)) == len(lines)  # making it again is not a new erasure

    exchange(make_worker, gbg, sarajevo)  # nothing more to say to each other about it
    assert erased_confirmations(sarajevo.node) == 0
    with gbg.node.sessionmaker() as session:
        [request] = session.scalars(sa.select(ErasureRequest)).all()
        assert request.confirmed_at is not None
        assert session.scalar(sa.select(sa.func.count()).select_from(InboundMessage)
                              .where(InboundMessage.type == "erasure_confirmed")) == 1
    assert sarajevo.call("GET", f"/cases/{story['remote_case_id']}", "adviser").status_code == 404


def test_a_message_sent_again_after_a_restore_is_not_applied_twice(desks: tuple[Desk, Desk], make_worker: Worker,
                                                                   tmp_path: Path) -> None:
    gbg, sarajevo = desks
    story = accepted_case(gbg, sarajevo, make_worker)
    sarajevo.ok("POST", f"/cases/{story['remote_case_id']}/progress", "adviser", 201,
                json={"note": "Second meeting: the course has a place for her."})
    out = tmp_path / "sarajevo.ccmbackup"
    backup(sarajevo.node, out)  # the progress update queued, not yet delivered
    assert deliver(make_worker, sarajevo) == 1
    received = gbg.node.count(InboundMessage)
    progress = [e for e in timeline(gbg, story["case_id"]) if e["kind"] == "partner.progress"]

    restore(sarajevo.node, out)
    [queued] = [m for m in sarajevo.node.outbound() if m.status == "queued"]
    assert deliver(make_worker, sarajevo) == 0  # nothing goes to Göteborg before the resync
    [outcome] = resync(sarajevo.node, gbg.node)  # Göteborg lists it as received, with its receipt
    assert outcome.done and outcome.marked == 1 and outcome.recovered == 0
    assert deliver(make_worker, sarajevo) == 0
    assert gbg.node.count(InboundMessage) == received
    assert [e for e in timeline(gbg, story["case_id"]) if e["kind"] == "partner.progress"] == progress
    [again] = [m for m in sarajevo.node.outbound() if m.message_id == queued.message_id]
    assert again.status == "delivered" and again.receipt is not None


def test_the_journal_keeps_only_committed_erasures_and_shows_an_edit(desks: tuple[Desk, Desk],
                                                                     make_worker: Worker) -> None:
    gbg, sarajevo = desks
    story = accepted_case(gbg, sarajevo, make_worker)
    path = journal.journal_path(data_dir(sarajevo.node))
    before = len(journal.read(path))
    with sarajevo.node.sessionmaker() as session:
        with session.begin():
            savepoint = session.begin_nested()
            handover = session.scalar(sa.select(Handover).where(Handover.case_id == story["remote_case_id"]))
            assert handover is not None
            erase_handover(session, handover, cause="withdrawal", now=sarajevo.node.clock.now())
            savepoint.rollback()
        session.begin()
        handover = session.scalar(sa.select(Handover).where(Handover.case_id == story["remote_case_id"]))
        assert handover is not None
        erase_handover(session, handover, cause="withdrawal", now=sarajevo.node.clock.now())
        session.rollback()
    assert len(journal.read(path)) == before  # nothing was erased, nothing journalled
    with sarajevo.node.sessionmaker() as session, session.begin():
        handover = session.scalar(sa.select(Handover).where(Handover.case_id == story["remote_case_id"]))
        assert handover is not None
        erase_handover(session, handover, cause="retention", now=sarajevo.node.clock.now())
    lines = journal.read(path)
    assert len(lines) == before + 1 and lines[-1]["cause"] == "retention"
    edited = path.read_bytes().replace(b'"cause":"retention"', b'"cause":"withdrawal"')
    with pytest.raises(journal.JournalError, match=f"line {before + 1}"):
        journal.parse(edited)


def test_the_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``ccm-node backup create|restore`` on a node made by ``ccm-node init`` (SQLite): refusals are one line
    and exit 1; a restore into a new directory needs the backup key."""
    node = tmp_path / "node"
    assert run(capsys, node, "init", "--node-id", "ba.cldd-sarajevo", "--name", "CLDD", "--url",
               "https://cldd.example")[0] == 0
    out = tmp_path / "b.ccmbackup"
    code, stdout, _ = run(capsys, node, "backup", "create", "--out", str(out))
    assert code == 0 and "a new backup key was made" in stdout and stat.S_IMODE(out.stat().st_mode) == 0o600
    code, _, err = run(capsys, node, "backup", "create", "--out", str(out))
    assert code == 1 and "exists" in err and err.count("\n") == 1
    assert run(capsys, node, "backup", "create", "--out", str(out), "--force")[0] == 0
    fresh = tmp_path / "new-machine"
    code, _, err = run(capsys, fresh, "backup", "restore", str(out))
    assert code == 1 and "--key-file" in err and not fresh.exists()
    tampered = tmp_path / "t.ccmbackup"
    tampered.write_bytes(out.read_bytes()[:-1] + b"x")
    code, _, err = run(capsys, node, "backup", "restore", str(tampered))
    assert code == 1 and "signature" in err and err.count("\n") == 1
    key = node / "keys" / "backup.key"
    code, stdout, err = run(capsys, fresh, "backup", "restore", str(out), "--key-file", str(key))
    assert code == 0, err
    assert "restored the backup of ba.cldd-sarajevo" in stdout
    assert (fresh / "node.toml").is_file() and (fresh / "keys" / "node.key").is_file()
    assert (fresh / "keys" / "backup.key").read_bytes() == key.read_bytes()  # the next backups use it too
    assert run(capsys, fresh, "fingerprint")[1] == run(capsys, node, "fingerprint")[1]
    code, stdout, _ = run(capsys, fresh, "db", "current")
    assert code == 0 and "upgrade needed" not in stdout
    assert run(capsys, node, "backup", "restore", str(out))[0] == 0  # onto the node itself, stopped


def test_a_backup_from_an_older_version_is_migrated_with_the_data_key(desks: tuple[Desk, Desk], tmp_path: Path) -> None:
    """A backup taken before migration 0014 holds the staff's TOTP secrets in clear; the restore binds the data
    key before it migrates, so they come back encrypted (and readable)."""
    _gbg, sarajevo = desks
    secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
    with sarajevo.node.sessionmaker() as session:
        user = session.scalars(sa.select(User).order_by(User.id)).first()
        assert user is not None
        user.totp_secret = secret
        session.commit()
    downgrade(sarajevo.node.engine, "0013_resync")  # the older version's database
    out = tmp_path / "old.ccmbackup"
    assert backup(sarajevo.node, out).manifest["schema_revision"] == "0013_resync"
    upgrade(sarajevo.node.engine)
    restore(sarajevo.node, out)
    assert current_revision(sarajevo.node.engine) == head_revision(sarajevo.node.engine)
    with sarajevo.node.sessionmaker() as session:
        assert session.scalar(sa.select(User.totp_secret).where(User.totp_secret.is_not(None))) == secret
    assert secret.encode() not in raw_bytes(sarajevo.node.engine)
