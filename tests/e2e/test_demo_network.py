"""``ccm-node demo --check``: the four-node network runs the seeded story headless and verifies every step."""

from __future__ import annotations

import socket
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.harness import ROOT

pytestmark = pytest.mark.slow


def test_demo_network_check(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "PYTHONUNBUFFERED": "1"}
    result = subprocess.run([sys.executable, "-m", "node.cli", "demo", "--check", "--base-dir",
                             str(tmp_path / "demo")], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=240, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert "demo check: every step verified" in out
    for step in ("receipt: GI-", "accept: ba.cldd-sarajevo", "decline: ba.cldd-sarajevo", "progress back: "
                 "iq.cldd-baghdad", "waiting: GI-", "audit chain gh.accra-partner",
                 "web gh.accra-partner: http://127.0.0.1:"):
        assert step in out, step
    for config in (tmp_path / "demo").glob("*/node.toml"):  # every node stopped: nothing listens any more
        port = int(tomllib.loads(config.read_text(encoding="utf-8"))["node"]["url"].rsplit(":", 1)[1])
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
    assert len(list((tmp_path / "demo").glob("*/node.toml"))) == 4
