"""The consent administration commands of ``ccm-node`` on a real data directory: subject-access export,
custody, erasure follow-up and retention; refusals are one line and exit 1."""

from __future__ import annotations

import io
import json
import stat
from pathlib import Path

import pytest
import sqlalchemy as sa

from node.cases.models import Case
from node.config import load_config
from node.db import make_engine
from tests.exchange.cli_runner import run


@pytest.fixture
def node(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> tuple[Path, str]:
    data_dir = tmp_path / "gbg"
    assert run(capsys, data_dir, "init", "--node-id", "se.gi-goteborg", "--name", "GI", "--url",
               "http://127.0.0.1:5000")[0] == 0
    monkeypatch.setattr("sys.stdin", io.StringIO("a long enough password\n"))
    assert run(capsys, data_dir, "user", "add", "anna.lindqvist", "--role", "counsellor", "--team", "gbg",
               "--password-stdin")[0] == 0
    assert run(capsys, data_dir, "demo-data", "--cases", "3", "--seed", "7")[0] == 0
    engine = make_engine(load_config(data_dir).database_url)
    with engine.connect() as conn:
        reference = conn.execute(sa.select(Case.reference).order_by(Case.reference).limit(1)).scalar_one()
    engine.dispose()
    return data_dir, reference


def test_case_export_writes_everything_with_the_disclosure_record(node: tuple[Path, str], tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    data_dir, reference = node
    out_file = tmp_path / "export.json"
    code, out, _ = run(capsys, data_dir, "case", "export", reference, "--out", str(out_file))
    assert code == 0 and str(out_file) in out
    assert stat.S_IMODE(out_file.stat().st_mode) == 0o600
    document = json.loads(out_file.read_text(encoding="utf-8"))
    assert document["case"]["reference"] == reference
    assert {"disclosures", "received_from", "withdrawals", "consents", "timeline"} <= set(document)
    code, _, err = run(capsys, data_dir, "case", "export", reference, "--out", str(out_file))
    assert code == 1 and "--force" in err and len(err.strip().splitlines()) == 1
    code, out, _ = run(capsys, data_dir, "case", "export", reference.lower())  # to stdout, any case
    assert code == 0 and json.loads(out)["case"]["reference"] == reference
    code, _, err = run(capsys, data_dir, "case", "export", "GI-1999-9999")
    assert code == 1 and "GI-1999-9999" in err and len(err.strip().splitlines()) == 1


def test_custody_erasures_and_retention_on_a_quiet_node(node: tuple[Path, str],
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    data_dir, reference = node
    code, out, _ = run(capsys, data_dir, "custody", "show", reference)
    assert code == 0 and out.strip().endswith("verified") and "origin se.gi-goteborg" in out
    code, out, _ = run(capsys, data_dir, "custody", "show", reference, "--json")
    assert code == 0 and json.loads(out)["verified"] is True
    code, _, err = run(capsys, data_dir, "custody", "show", "nope")
    assert code == 1 and "no case nope" in err
    assert run(capsys, data_dir, "erasures")[1].strip() == "no unconfirmed erasure requests"
    assert run(capsys, data_dir, "erasures", "--overdue")[1].strip() == "no overdue erasure requests"
    code, out, _ = run(capsys, data_dir, "retention", "run")
    assert code == 0 and out.startswith("erased 0 received case(s)")
