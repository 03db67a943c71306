"""``ccm-node``: init, migrations, users, tokens, audit verify; errors are one line and a non-zero exit."""

from __future__ import annotations

import io
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from node.cli import main


@pytest.fixture(params=["sqlite", "postgresql"])
def node_dir(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, list[str]]:
    """An initialised node directory and the extra init args it used."""
    extra: list[str] = []
    if request.param == "postgresql":
        make: Callable[[], str] = request.getfixturevalue("make_pg_database")
        extra = ["--database-url", make()]
    data = tmp_path / "node"
    assert main(["init", "--data-dir", str(data), "--node-id", "ba.cldd-sarajevo", "--name", "CLDD Sarajevo",
                 "--url", "http://127.0.0.1:9001", *extra]) == 0
    return data, extra


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_init_creates_config_secret_and_schema(node_dir: tuple[Path, list[str]],
                                               capsys: pytest.CaptureFixture[str]) -> None:
    data, extra = node_dir
    assert (data / "node.toml").is_file()
    assert (data / "secret_key").stat().st_mode & 0o077 == 0
    code, out, _ = run(capsys, "--data-dir", str(data), "db", "current")
    assert code == 0 and "upgrade needed" not in out
    if not extra:
        mode = sqlite3.connect(data / "node.db").execute("PRAGMA journal_mode").fetchone()[0]
        assert mode == "wal"


def test_init_twice_is_refused(node_dir: tuple[Path, list[str]], capsys: pytest.CaptureFixture[str]) -> None:
    data, _ = node_dir
    code, _, err = run(capsys, "init", "--data-dir", str(data), "--node-id", "ba.cldd-sarajevo",
                       "--name", "x", "--url", "http://x")
    assert code == 2 and err.count("\n") == 1 and "already" in err


def test_users_tokens_and_audit(node_dir: tuple[Path, list[str]], capsys: pytest.CaptureFixture[str],
                                monkeypatch: pytest.MonkeyPatch) -> None:
    data, _ = node_dir
    d = ["--data-dir", str(data)]
    monkeypatch.setattr("sys.stdin", io.StringIO("a-long-password-123\n"))
    code, out, _ = run(capsys, *d, "user", "add", "amra.hodzic", "--role", "adviser", "--team", "sarajevo",
                       "--password-stdin")
    assert code == 0 and "amra.hodzic" in out
    code, out, _ = run(capsys, *d, "token", "create", "amra.hodzic")
    assert code == 0 and out.startswith("ccm_")
    code, out, _ = run(capsys, *d, "user", "list")
    assert "amra.hodzic\tadviser\tsarajevo\tactive" in out
    code, out, _ = run(capsys, *d, "audit", "verify")
    assert code == 0 and "intact" in out


@pytest.mark.parametrize(("argv", "code", "fragment"), [
    (["user", "add", "bob", "--role", "root"], 1, "invalid role"),
    (["token", "create", "nobody"], 1, "no such user"),
    (["token", "revoke", "424242"], 1, "no such token"),
    (["demo-data", "--cases", "0"], 1, "--cases"),
    (["token", "revoke", "99999999999999999999999"], 1, "no such token"),  # no integer overflow in the query
    (["serve", "--port", "99999999"], 1, "--port must be between 1 and 65535"),
    (["serve", "--workers", "0"], 1, "--workers must be between 1 and 64"),
    (["demo", "--check", "--workers", "0"], 1, "--workers must be between 1 and 64"),
    (["retention", "run", "--limit", "0"], 1, "--limit must be between 1 and 100000"),
    (["queue", "retry", "99999999999999999999999"], 1, "no message"),
    (["partner", "suspend", "99999999999999999999999"], 1, "no partner"),
])
def test_refused_commands_print_one_line(node_dir: tuple[Path, list[str]], capsys: pytest.CaptureFixture[str],
                                         argv: list[str], code: int, fragment: str) -> None:
    data, _ = node_dir
    got, _out, err = run(capsys, "--data-dir", str(data), *argv)
    assert got == code and fragment in err and err.count("\n") == 1 and "Traceback" not in err


def test_missing_data_dir_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CCM_DATA_DIR", raising=False)
    code, _, err = run(capsys, "user", "list")
    assert code == 2 and "no data directory" in err
    code, _, err = run(capsys, "--data-dir", str(tmp_path / "nope"), "user", "list")
    assert code == 2 and "ccm-node init" in err


def test_bad_node_id_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "init", "--data-dir", str(tmp_path / "n"), "--node-id", "GI Göteborg",
                       "--name", "x", "--url", "http://127.0.0.1:1")
    assert code == 1 and "invalid node id" in err
    assert not (tmp_path / "n" / "node.toml").exists()


def test_audit_verify_names_a_tampered_entry(node_dir: tuple[Path, list[str]],
                                             capsys: pytest.CaptureFixture[str]) -> None:
    import sqlalchemy as sa

    from node.config import load_config
    from node.db import make_engine

    data, _ = node_dir
    d = ["--data-dir", str(data)]
    for name in ("anna", "erik", "sara"):
        assert main([*d, "user", "add", name, "--role", "counsellor"]) == 0
    capsys.readouterr()
    engine = make_engine(load_config(data).database_url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE audit_log SET object_id = '999' WHERE seq = 2"))
    engine.dispose()
    code, _out, err = run(capsys, *d, "audit", "verify")
    assert code == 1 and "entry 2" in err and "BROKEN" in err


def test_options_are_never_abbreviated(node_dir: tuple[Path, list[str]], capsys: pytest.CaptureFixture[str]) -> None:
    """``--rol`` is not ``--role``: an abbreviation is refused, at every level of subcommands."""
    data, _ = node_dir
    with pytest.raises(SystemExit) as exited:
        main(["--data-dir", str(data), "user", "add", "nadia", "--rol", "counsellor"])
    assert exited.value.code == 2
    assert "--role" in capsys.readouterr().err
    assert run(capsys, "--data-dir", str(data), "user", "list")[1] == ""  # nothing added


def test_serve_on_a_port_in_use_is_one_line(node_dir: tuple[Path, list[str]],
                                            capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    data, _ = node_dir
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, out, err = run(capsys, "--data-dir", str(data), "serve", "--port", str(port))
    assert code == 1 and out == "" and err.count("\n") == 1
    assert f"cannot listen on 127.0.0.1:{port}: the port is in use" in err
