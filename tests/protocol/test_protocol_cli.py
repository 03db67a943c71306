"""The ccm-protocol CLI, through main(argv) and once through a real process."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from protocol.cli import main

NOW = "2026-03-02T10:00:00Z"


def run(argv: list[str], stdin: bytes = b"") -> tuple[int, bytes]:
    out = io.BytesIO()
    code = main(argv, stdin=io.BytesIO(stdin), stdout=out)
    return code, out.getvalue()


@pytest.fixture
def nodes(tmp_path: Path) -> dict[str, Path]:
    paths = {}
    for name, node_id in (("se", "se.gi-goteborg"), ("iq", "iq.cldd-baghdad")):
        key, card = tmp_path / f"{name}.key", tmp_path / f"{name}.card.json"
        code, out = run(["keygen", "--node-id", node_id, "--out", str(key)])
        assert code == 0 and json.loads(out)["node_id"] == node_id
        code, _ = run(["card", "make", "--key", str(key), "--name", node_id, "--base-url",
                       f"https://{node_id}.example", "--valid-from", "2026-01-01T00:00:00Z",
                       "--out", str(card)])
        assert code == 0
        paths[f"{name}_key"], paths[f"{name}_card"] = key, card
    return paths


def test_card_show_and_verify_with_fingerprint(nodes: dict[str, Path]) -> None:
    code, out = run(["card", "show", str(nodes["se_card"])])
    shown = json.loads(out)
    assert code == 0 and shown["node_id"] == "se.gi-goteborg"
    code, out = run(["card", "verify", str(nodes["se_card"]), "--now", NOW,
                     "--fingerprint", shown["fingerprint"]])
    assert code == 0 and out.startswith(b"ok:")
    assert run(["card", "verify", str(nodes["se_card"]), "--now", NOW, "--fingerprint", "1" * 60])[0] == 1
    assert run(["card", "verify", str(nodes["se_card"]), "--now", "2028-01-01T00:00:00Z"])[0] == 1


def test_card_rotation(nodes: dict[str, Path], tmp_path: Path) -> None:
    new_key, new_card = tmp_path / "se2.key", tmp_path / "se2.card.json"
    assert run(["keygen", "--node-id", "se.gi-goteborg", "--out", str(new_key)])[0] == 0
    assert run(["card", "make", "--key", str(new_key), "--name", "GI", "--base-url", "https://gi.example",
                "--valid-from", "2026-02-01T00:00:00Z", "--previous-key", str(nodes["se_key"]),
                "--out", str(new_card)])[0] == 0
    code, out = run(["card", "verify", str(new_card), "--previous", str(nodes["se_card"]), "--now", NOW])
    assert code == 0 and b"rotation" in out


def test_canon() -> None:
    code, out = run(["canon"], b'{ "b": [1, 2.50], "a": "\\u00e9" }')
    assert (code, out) == (0, '{"a":"é","b":[1,2.5]}'.encode())
    assert run(["canon"], b'{"a":1,"a":2}')[0] == 1


def test_seal_open_verify(nodes: dict[str, Path], samples: dict[str, Any], tmp_path: Path) -> None:
    body = tmp_path / "body.json"
    body.write_text(json.dumps(samples["handover_accepted"]), "utf-8")
    code, envelope = run(["seal", "--key", str(nodes["iq_key"]), "--to", str(nodes["se_card"]), "--type",
                          "handover_accepted", "--body", str(body), "--thread", "T" * 22, "--now", NOW])
    assert code == 0
    code, out = run(["open", "--key", str(nodes["se_key"]), "--from", str(nodes["iq_card"]), "--now", NOW],
                    envelope)
    opened = json.loads(out)
    assert code == 0 and opened["body"] == samples["handover_accepted"] and "replay" in opened["not_checked"]
    code, out = run(["verify", "--card", str(nodes["iq_card"])], envelope)
    assert code == 0 and b"handover_accepted" in out
    assert run(["verify", "--card", str(nodes["se_card"])], envelope)[0] == 1
    assert run(["open", "--key", str(nodes["iq_key"]), "--from", str(nodes["iq_card"])], envelope)[0] == 1


def test_verify_signed_object(nodes: dict[str, Path]) -> None:
    assert run(["verify", "--card", str(nodes["se_card"]), str(nodes["se_card"])])[0] == 0
    assert run(["verify", "--card", str(nodes["iq_card"]), str(nodes["se_card"])])[0] == 1
    assert run(["verify", "--card", str(nodes["iq_card"])], b"[1]")[0] == 1


def test_errors_are_one_line_without_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["card", "show", str(tmp_path / "missing.json")])[0] == 1
    assert run(["canon"], b"not json")[0] == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("error: ") for line in err)
    assert "Traceback" not in "".join(err)
    key = tmp_path / "k.key"
    assert run(["keygen", "--node-id", "se.gi-goteborg", "--out", str(key)])[0] == 0
    assert run(["keygen", "--node-id", "se.gi-goteborg", "--out", str(key)])[0] == 1
    assert run(["keygen", "--node-id", "Bad Id", "--out", str(tmp_path / "x.key")])[0] == 1


def test_vectors_check() -> None:
    code, out = run(["vectors", "--check"])
    assert code == 0 and out.startswith(b"ok:")


def test_python_dash_m_protocol(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    result = subprocess.run([sys.executable, "-m", "protocol", "canon"], input=b'{"b":1,"a":2}',
                            capture_output=True, env=env, check=False, timeout=60)
    assert (result.returncode, result.stdout) == (0, b'{"a":2,"b":1}')
    result = subprocess.run([sys.executable, "-m", "protocol", "card", "show", str(tmp_path / "none")],
                            capture_output=True, env=env, check=False, timeout=60)
    assert result.returncode == 1 and result.stderr.startswith(b"error: ")
    assert b"Traceback" not in result.stderr


def test_options_are_never_abbreviated(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["keygen", "--nod", "se.gi-goteborg", "--out", str(tmp_path / "k")])
    assert exited.value.code == 2 and "--node-id" in capsys.readouterr().err
    assert not (tmp_path / "k").exists()
