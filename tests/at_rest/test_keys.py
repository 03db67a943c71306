"""The data key at start: made once with mode 0600, checked against the database, and a missing or wrong key
is a clear error at start (never unreadable rows later); an engine without a key refuses to write; a tampered
ciphertext raises instead of reading as a wrong value."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import sqlalchemy as sa

from node import create_app
from node.at_rest import AtRestError, DataKey, data_keys_of
from node.at_rest.keys import ENV_KEY_FILE, write_key_file
from node.at_rest.models import DataKeyRecord
from node.cases.models import IntakeSection
from node.cli import main
from node.config import ConfigError, config_for_tests
from node.db import make_engine
from node.migrate import upgrade
from tests.cases.casedata import create_case, full_case


@pytest.fixture
def fresh(tmp_path: Path):  # type: ignore[no-untyped-def]
    data_dir = tmp_path / "node"
    data_dir.mkdir()
    engine = make_engine(f"sqlite:///{tmp_path / 'node.db'}")
    upgrade(engine)
    yield config_for_tests(data_dir, str(engine.url)), engine
    engine.dispose()


def test_first_start_makes_the_key_then_a_missing_or_wrong_key_stops_the_start(fresh) -> None:  # type: ignore[no-untyped-def]
    config, engine = fresh
    create_app(config, engine=engine)
    key_file = config.data_dir / "keys" / "data.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_file.parent.stat().st_mode) == 0o700
    with engine.connect() as conn:
        [kid] = conn.scalars(sa.select(DataKeyRecord.kid)).all()
    assert data_keys_of(engine.dialect) is not None and data_keys_of(engine.dialect).kids == [kid]
    saved = key_file.read_bytes()

    key_file.unlink()  # lost: no new key is made silently, the start is refused and says why
    with pytest.raises(ConfigError, match=f"no data key at .*data key\\(s\\) {kid}.*restore the key file"):
        create_app(config, engine=make_engine(str(engine.url)))
    assert not key_file.exists()

    write_key_file(key_file, [DataKey.generate()])  # another node's key, or a stale one
    with pytest.raises(ConfigError, match=f"data key\\(s\\) {kid}, which .* does not hold"):
        create_app(config, engine=make_engine(str(engine.url)))

    key_file.write_text("not a key\n")
    with pytest.raises(ConfigError, match="not a data key file"):
        create_app(config, engine=make_engine(str(engine.url)))

    key_file.write_bytes(saved)
    create_app(config, engine=make_engine(str(engine.url)))


def test_a_key_named_by_the_environment_is_used_and_never_made(fresh, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    config, engine = fresh
    mounted = tmp_path / "secrets" / "ccm-data-key"
    monkeypatch.setenv(ENV_KEY_FILE, str(mounted))
    with pytest.raises(ConfigError, match=f"no data key at {mounted} \\({ENV_KEY_FILE} names it\\)"):
        create_app(config, engine=engine)
    assert not mounted.exists()
    key = DataKey.generate()
    write_key_file(mounted, [key])
    create_app(config, engine=engine)
    assert data_keys_of(engine.dialect).current.kid == key.kid  # type: ignore[union-attr]
    assert not (config.data_dir / "keys" / "data.key").exists()


def test_the_command_line_says_it_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "n"
    assert main(["init", "--data-dir", str(data), "--node-id", "ba.cldd-sarajevo", "--name", "CLDD Sarajevo",
                 "--url", "https://sarajevo.example"]) == 0
    assert "data key (encryption at rest) in" in capsys.readouterr().out
    assert (data / "keys" / "data.key").is_file()
    engine = make_engine(f"sqlite:///{data / 'node.db'}")
    with engine.begin() as conn:  # as after the node's first start
        conn.execute(sa.insert(DataKeyRecord).values(kid="k-in-use", created_at=sa.func.current_timestamp(),
                                                     rows_reencrypted=0))
    engine.dispose()
    assert main(["--data-dir", str(data), "db", "current"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("ccm-node: data key: the database holds values encrypted with")


def test_an_engine_without_a_key_refuses_to_write_in_clear(fresh) -> None:  # type: ignore[no-untyped-def]
    _config, engine = fresh
    with pytest.raises(sa.exc.StatementError) as raised, engine.begin() as conn:
        conn.execute(sa.insert(IntakeSection).values(case_id="x", section="health", text="in clear?", data={},
                                                     updated_at=sa.func.current_timestamp(), version=1))
    assert isinstance(raised.value.orig, AtRestError)
    assert "refusing to write in clear" in str(raised.value.orig)


def test_a_tampered_ciphertext_raises_instead_of_reading(client, counsellor, engine: sa.Engine) -> None:  # type: ignore[no-untyped-def]
    case = create_case(client, counsellor, full_case())
    raw = sa.table("intake_sections", sa.column("case_id"), sa.column("section"), sa.column("text", sa.Text))
    where = (raw.c.case_id == case["id"], raw.c.section == "health")
    with engine.begin() as conn:
        stored = conn.execute(sa.select(raw.c.text).where(*where)).scalar_one()
        i = len(stored) - 5
        tampered = stored[:i] + ("A" if stored[i] != "A" else "B") + stored[i + 1:]
        conn.execute(sa.update(raw).where(*where).values(text=tampered))
        health = sa.select(IntakeSection.text).where(IntakeSection.case_id == case["id"],
                                                     IntakeSection.section == "health")
        with pytest.raises(AtRestError, match=r"intake_sections\.text: a ciphertext under key .* failed its check"):
            conn.execute(health).scalar_one()
        other = conn.execute(sa.select(raw.c.text).where(raw.c.case_id == case["id"], raw.c.section == "family")
                             ).scalar_one()
        conn.execute(sa.update(raw).where(*where).values(text=other))  # a value moved from another row's column
        assert conn.execute(health).scalar_one() == "Married, two children."  # (same column: see the limits)
    assert os.environ.get(ENV_KEY_FILE) is None
