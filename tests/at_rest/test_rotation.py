"""Rotating the data key survives being killed midway, and migration 0012 encrypts a database that already has
rows (and its downgrade gives them back in clear). Both on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from node.accounts import User
from node.at_rest import data_keys_of
from node.at_rest.cipher import prefix
from node.at_rest.keys import parse_key_file
from node.at_rest.models import DataKeyRecord
from node.at_rest.rotation import encrypted_columns, rotate_data_key
from node.at_rest.startup import open_data_keys
from node.cases.models import IntakeSection, ProgressNote
from node.cli import main
from node.db import make_engine
from node.exchange.models import InboundMessage
from node.migrate import current_revision, downgrade, target_metadata, upgrade
from tests.at_rest.conftest import raw_bytes
from tests.cases.casedata import create_case, full_case


class Killed(Exception):
    pass


def _raw_values(engine: sa.Engine) -> list[tuple[str, str]]:
    values = []
    with engine.connect() as conn:
        for spec in encrypted_columns(target_metadata()):
            column = sa.cast(sa.column(spec.column), sa.Text) if spec.kind == "json" else sa.column(spec.column)
            for (value,) in conn.execute(sa.select(column).select_from(sa.table(spec.table))
                                         .where(sa.column(spec.column).is_not(None))):
                raw = value if isinstance(value, str) else bytes(value).decode("latin-1")
                if raw != "null":
                    values.append((spec.context, raw.lstrip('"')))
    return values


def test_rotation_killed_midway_resumes_and_retires_the_old_key(client, counsellor, engine: sa.Engine,  # type: ignore[no-untyped-def]
                                                                clock) -> None:
    cases = [create_case(client, counsellor, full_case()) for _ in range(3)]
    for case in cases:
        client.post(f"/api/v1/cases/{case['id']}/notes", headers=counsellor.headers, json={"text": "Slept badly."})
    keys = data_keys_of(engine.dialect)
    assert keys is not None and keys.path is not None
    old = keys.all[0].kid
    with engine.begin() as conn:  # (the tables are emptied between tests: the key is registered at start)
        conn.execute(sa.insert(DataKeyRecord).values(kid=old, created_at=clock.now(), rows_reencrypted=0))
    before = _raw_values(engine)
    assert len(before) > 12 and all(raw.startswith(prefix(old)) for _, raw in before)

    batches: list[int] = []

    def kill_after_three(rows: int) -> None:
        batches.append(rows)
        if len(batches) == 3:
            raise Killed

    with pytest.raises(Killed):
        rotate_data_key(engine, keys, target_metadata(), now=clock.now, batch_size=2, grace_seconds=0,
                        after_batch=kill_after_three)
    [new, kept] = parse_key_file(keys.path.read_text())
    assert kept.kid == old and new.kid != old  # the old key stays until no value needs it
    midway = _raw_values(engine)
    assert sum(raw.startswith(prefix(new.kid)) for _, raw in midway) == sum(batches) >= 3  # three batches done
    assert client.get(f"/api/v1/cases/{cases[0]['id']}/intake/health", headers=counsellor.headers
                      ).get_json()["text"] == "Diabetes type 2, needs insulin."  # readable midway

    slept: list[float] = []
    result = rotate_data_key(engine, keys, target_metadata(), now=clock.now, batch_size=2, grace_seconds=30,
                             sleep=lambda s: (slept.append(s), clock.advance(seconds=s)))
    assert (result.kid, result.started, result.retired) == (new.kid, False, (old,))
    assert result.rows == len(before) - sum(batches) and slept == [30]
    after = _raw_values(engine)
    assert len(after) == len(before) and all(raw.startswith(prefix(new.kid)) for _, raw in after)
    assert [k.kid for k in parse_key_file(keys.path.read_text())] == [new.kid]
    with engine.connect() as conn:
        rows = {r.kid: r for r in conn.execute(sa.select(DataKeyRecord))}
    assert rows[old].retired_at is not None and rows[new.kid].retired_at is None
    assert rows[new.kid].rows_reencrypted == len(before)
    for case in cases:  # all readable, through the API, under the new key
        assert client.get(f"/api/v1/cases/{case['id']}/intake/health", headers=counsellor.headers
                          ).get_json()["text"] == "Diabetes type 2, needs insulin."
    assert keys.current.kid == new.kid


TZ_NOW = dt.datetime(2026, 11, 1, 9, 0, tzinfo=dt.UTC)
TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


def _plain_rows(conn: sa.Connection) -> None:
    def table(name: str, *columns: str) -> sa.TableClause:
        return sa.table(name, *(sa.column(c) for c in columns))

    conn.execute(table("cases", "id", "reference", "status", "given_names", "family_name", "date_of_birth",
                       "child_at_intake", "languages", "destination_country", "created_at", "updated_at",
                       "version", "contact_notes").insert().values(
        id="c1", reference="GI-2026-0001", status="open", given_names="Amina", family_name="Hadžić",
        date_of_birth=dt.date(1990, 4, 2), child_at_intake=False, languages=sa.cast('["bs"]', sa.JSON),
        destination_country="BA", created_at=TZ_NOW, updated_at=TZ_NOW, version=1,
        contact_notes="Call after six"))
    conn.execute(sa.table("intake_sections", sa.column("case_id"), sa.column("section"), sa.column("text"),
                          sa.column("data", sa.JSON), sa.column("updated_at"), sa.column("version")).insert().values(
        case_id="c1", section="health", text="Asthma", data={"conditions": ["asthma"]}, updated_at=TZ_NOW,
        version=1))
    conn.execute(sa.table("progress_notes", sa.column("id"), sa.column("case_id"), sa.column("text"),
                          sa.column("stage_changes", sa.JSON), sa.column("created_at")).insert().values(
        id="n1", case_id="c1", text="Felt better", stage_changes=None, created_at=TZ_NOW))
    conn.execute(table("partners", "id", "node_id", "name", "base_url", "card", "signing_key", "signing_kid",
                       "encryption_key", "encryption_kid", "fingerprint", "status", "created_at", "updated_at",
                       "retry_interval").insert().values(
        id=1, node_id="ba.cldd-sarajevo", name="CLDD", base_url="https://x.example", card="{}", signing_key="k",
        signing_kid="k", encryption_key="k", encryption_kid="k", fingerprint="f", status="active",
        created_at=TZ_NOW, updated_at=TZ_NOW, retry_interval=0.0))
    conn.execute(sa.table("inbound_messages", *(sa.column(c) for c in (
        "partner_id", "sender", "message_id", "type", "thread", "seq", "message_hash", "envelope_hash",
        "received_at", "receipt")), sa.column("inner", sa.LargeBinary)).insert().values(
        partner_id=1, sender="ba.cldd-sarajevo", message_id="m1", type="progress_update", thread="t1", seq=1,
        message_hash="h", envelope_hash="e", received_at=TZ_NOW, receipt="{}", inner=b'{"note":"Felt better"}'))
    conn.execute(table("users", "id", "username", "display_name", "role", "active", "created_at", "totp_secret",
                       "totp_required").insert().values(
        id=1, username="ada.admin", display_name="Ada", role="admin", active=True, created_at=TZ_NOW,
        totp_secret=TOTP_SECRET, totp_required=True))


@pytest.fixture(params=["sqlite", "postgresql"])
def old_database(request: pytest.FixtureRequest, tmp_path: Path) -> sa.Engine:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'old.db'}"
    else:
        make: Callable[[], str] = request.getfixturevalue("make_pg_database")
        url = make()
    engine = make_engine(url)
    request.addfinalizer(engine.dispose)
    upgrade(engine, "0011_notifications")
    with engine.begin() as conn:
        _plain_rows(conn)
    return engine


def test_upgrading_a_database_with_rows_encrypts_them_and_downgrading_decrypts(old_database: sa.Engine,
                                                                               tmp_path: Path) -> None:
    engine = old_database
    with pytest.raises(RuntimeError, match="needs the node's data key"):
        upgrade(engine)  # no key bound: refused as a whole
    assert current_revision(engine) == "0011_notifications"

    keys = open_data_keys(tmp_path / "node", engine, now=TZ_NOW)  # what 'ccm-node db upgrade' does first
    upgrade(engine)
    kid = keys.current.kid
    stored = _raw_values(engine)
    assert {context for context, _ in stored} == {"cases.contact_notes", "intake_sections.text",
                                                  "intake_sections.data", "progress_notes.text",
                                                  "inbound_messages.inner", "users.totp_secret"}  # (0014)
    assert all(raw.startswith(prefix(kid)) for _, raw in stored)
    with engine.connect() as conn:
        assert conn.execute(sa.select(IntakeSection.text, IntakeSection.data)).one() == ("Asthma",
                                                                                         {"conditions": ["asthma"]})
        assert conn.execute(sa.select(ProgressNote.text)).scalar_one() == "Felt better"
        assert conn.execute(sa.select(InboundMessage.inner)).scalar_one() == b'{"note":"Felt better"}'
        assert conn.scalars(sa.select(DataKeyRecord.kid)).all() == [kid]
        assert conn.execute(sa.select(User.totp_secret)).scalar_one() == TOTP_SECRET
    assert TOTP_SECRET.encode() not in raw_bytes(engine)

    downgrade(engine, "0011_notifications")
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT totp_secret FROM users")).scalar_one() == TOTP_SECRET
        assert conn.execute(sa.text("SELECT text FROM intake_sections")).scalar_one() == "Asthma"
        assert conn.execute(sa.text("SELECT contact_notes FROM cases")).scalar_one() == "Call after six"


def test_data_rotate_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "n"
    assert main(["init", "--data-dir", str(data), "--node-id", "ba.cldd-sarajevo", "--name", "CLDD Sarajevo",
                 "--url", "https://sarajevo.example"]) == 0
    first = parse_key_file((data / "keys" / "data.key").read_text())[0].kid
    capsys.readouterr()
    assert main(["--data-dir", str(data), "keys", "data-rotate", "--grace-seconds", "0"]) == 0
    out = capsys.readouterr().out
    [now] = parse_key_file((data / "keys" / "data.key").read_text())
    assert f"new data key {now.kid}: 0 value(s) re-encrypted; retired key(s): {first}" in out
    assert main(["--data-dir", str(data), "keys", "data-rotate", "--batch-size", "0"]) == 1
    assert capsys.readouterr().err.strip() == "ccm-node: --batch-size must be between 1 and 100000"
