"""``ccm-node keys``: rotate, status, revoke, the revocation file carried to a partner, what the partner's
administrator sees (``keys partners``, ``partner list``) and how trust comes back (``partner add``)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from node.config import allow_loopback
from tests.exchange.cli_runner import closed_port, run


def refused(capsys: pytest.CaptureFixture[str], data_dir: Path, *args: str) -> str:
    """Run a command that must be refused: exit 1, one line on stderr, nothing on stdout."""
    code, out, err = run(capsys, data_dir, *args)
    assert (code, out, err.count("\n")) == (1, "", 1), (code, out, err)
    return err


def _card(capsys: pytest.CaptureFixture[str], node: Path) -> Path:
    path = node.parent / f"{node.name}-card-{len(list(node.parent.glob(node.name + '-card-*')))}.json"
    path.write_text(run(capsys, node, "card")[1], encoding="utf-8")
    return path


def _trust(capsys: pytest.CaptureFixture[str], node: Path, other: Path) -> tuple[int, str, str]:
    fingerprint = run(capsys, other, "fingerprint")[1].strip()
    return run(capsys, node, "partner", "add", "--card-file", str(_card(capsys, other)), "--fingerprint", fingerprint,
               "--agreement", "dsa-1")


@pytest.fixture
def two(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[Path, Path]:
    """Göteborg and Sarajevo as data directories (SQLite), partners of each other, neither running."""
    gbg, sarajevo = tmp_path / "gbg", tmp_path / "sarajevo"
    for path, node_id, name in ((gbg, "se.gi-goteborg", "GI"), (sarajevo, "ba.cldd-sarajevo", "CLDD Sarajevo")):
        assert run(capsys, path, "init", "--node-id", node_id, "--name", name, "--url",
                   f"http://127.0.0.1:{closed_port()}")[0] == 0
        allow_loopback(path)  # both on this machine
    assert _trust(capsys, gbg, sarajevo)[0] == 0 and _trust(capsys, sarajevo, gbg)[0] == 0
    return gbg, sarajevo


def test_rotate_and_status(two: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    gbg, _ = two
    fingerprint = run(capsys, gbg, "fingerprint")[1].strip()
    code, out, _ = run(capsys, gbg, "keys", "status")
    assert code == 0 and f"fingerprint\t{fingerprint}" in out and "previous" not in out
    assert "between 1 hour and 365 days" in refused(capsys, gbg, "keys", "rotate", "--overlap-days", "0")

    code, out, _ = run(capsys, gbg, "keys", "rotate", "--overlap-days", "10")
    assert code == 0 and "rotated keys" in out and "announced to 1 partner(s)" in out and "ba.cldd-sarajevo" in out
    new_fingerprint = run(capsys, gbg, "fingerprint")[1].strip()
    assert new_fingerprint != fingerprint and f"new fingerprint: {new_fingerprint}" in out
    code, out, _ = run(capsys, gbg, "keys", "status")
    assert "previous\tsigning" in out and "retired, still accepted until" in out
    queued = run(capsys, gbg, "queue")[1]
    assert "\tkey_rotated\t" in queued and "pending" in queued
    assert "not a key of this node" in refused(capsys, gbg, "keys", "revoke", "--reason", "superseded",
                                                "--kid", "A" * 22)
    assert run(capsys, gbg, "audit", "verify")[0] == 0
    (gbg / "keys" / "history.json").write_text("{", encoding="utf-8")
    assert "key history file is malformed" in refused(capsys, gbg, "keys", "status")
    (gbg / "keys" / "history.json").unlink()
    shutil.rmtree(gbg / "keys")
    assert "key directory" in refused(capsys, gbg, "keys", "rotate")


def test_revocation_by_file_and_trust_again(two: tuple[Path, Path], capsys: pytest.CaptureFixture[str],
                                            tmp_path: Path) -> None:
    gbg, sarajevo = two
    code, out, _ = run(capsys, sarajevo, "keys", "revoke", "--reason", "compromised")
    assert code == 0 and "revoked key id(s)" in out and "new fingerprint:" in out
    assert "se.gi-goteborg: NOT delivered (connection refused" in out  # Göteborg is not running
    code, out, err = run(capsys, sarajevo, "keys", "revocation-send", "--timeout", "2")
    assert code == 1 and "NOT delivered" in out and "did not take" in err
    statements = tmp_path / "revocation.json"
    code, out, _ = run(capsys, sarajevo, "keys", "revocation-file", "--out", str(statements))
    assert code == 0 and "wrote 2 revocation statement(s)" in out
    assert "exists" in refused(capsys, sarajevo, "keys", "revocation-file", "--out", str(statements))

    code, out, _ = run(capsys, gbg, "keys", "revocation-import", str(statements))
    assert code == 0 and "2 key id(s) newly revoked" in out and "NOT TRUSTED" in out
    code, out, _ = run(capsys, gbg, "keys", "revocation-import", str(statements))
    assert "0 key id(s) newly revoked, 2 known already" in out
    listed = run(capsys, gbg, "partner", "list")[1]
    assert "\tkey_revoked\t" in listed
    assert "NOT TRUSTED: ba.cldd-sarajevo revoked its current key" in listed and "partner add" in listed
    code, out, _ = run(capsys, gbg, "keys", "partners")
    assert "REVOKED by the partner (compromised)" in out and "NOT TRUSTED" in out
    assert "new fingerprint" in refused(capsys, gbg, "partner", "resume", "ba.cldd-sarajevo")
    junk = tmp_path / "junk.json"
    junk.write_text("[1, 2", encoding="utf-8")
    assert "malformed" in refused(capsys, gbg, "keys", "revocation-import", str(junk))
    assert "cannot read" in refused(capsys, gbg, "keys", "revocation-import", str(tmp_path / "missing.json"))

    code, out, _ = _trust(capsys, gbg, sarajevo)  # the new card, its new fingerprint read out
    assert code == 0 and "trusted partner ba.cldd-sarajevo" in out
    assert "\tactive\tdsa-1\t" in run(capsys, gbg, "partner", "list")[1]
    code, out, _ = run(capsys, gbg, "keys", "partners", "ba.cldd-sarajevo")
    assert out.count("by fingerprint") == 2 and "\tcurrent" in out and "NOT TRUSTED" not in out
    for node in (gbg, sarajevo):
        assert run(capsys, node, "audit", "verify")[0] == 0
