"""README's worked API example, run as written: from an empty node to a handover delivered to a partner.

The script is docs/examples/first-handover.sh; README.md shows it verbatim (checked here too, so that the two
cannot drift apart).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.harness import ROOT, Network

pytestmark = pytest.mark.slow
SCRIPT = ROOT / "docs" / "examples" / "first-handover.sh"


def test_readme_shows_the_script_verbatim() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    body = SCRIPT.read_text(encoding="utf-8")
    assert body.strip() in readme


def test_the_worked_example_delivers_a_handover(tmp_path: Path) -> None:
    net = Network(tmp_path, lambda: None)
    try:
        gbg = net.add("se.gi-goteborg", "Göteborgs-Initiativet")
        sarajevo = net.add("ba.cldd-sarajevo", "CLDD Sarajevo")
        net.connect(gbg, sarajevo, "dsa-gi-cldd-2026")
        token = gbg.user("anna.lindqvist", "counsellor", team="gi-counsellors")
        gbg.start()
        sarajevo.start()
        gbg.spawn("deliver", "--poll-seconds", "0.1")
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("CCM_")},
               "GBG_URL": gbg.url, "GBG_TOKEN": token, "PARTNER": sarajevo.node_id}
        run = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=180,
                             check=False)
        assert run.returncode == 0, run.stdout + run.stderr
        lines = run.stdout.splitlines()
        assert lines[0].startswith("case ") and lines[1].startswith("consent ")
        assert lines[2] == "['family', 'health', 'background', 'education', 'wishes']"  # what stays home
        assert lines[-1] == "status delivered"
    finally:
        net.stop_all()
