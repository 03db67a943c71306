"""bench/handover_profile.py runs end to end on a few handovers and prints what issue #16 reads from it: the
stages, where the sending API's time goes (the request floor measured on its bench-only route, the driver's
statements and commit) and the budget lines. The figures themselves are the benchmark's to print, not a test's
to judge."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_profile_prints_the_stages_the_floor_and_the_budget() -> None:
    done = subprocess.run([sys.executable, "-m", "bench.handover_profile", "--backend", "sqlite", "--handovers", "3"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    for stage in ("api", r"api\+", "floor", "inbox", "bare", r"inbox\+", r"bare\+", "record"):
        assert re.search(rf"^  {stage} +\d+\.\d\d ms CPU, +\d+\.\d\d ms wall, +\d+\.\d statements per handover$",
                         out, re.MULTILINE), (stage, out)
    floor = re.search(r"^  request floor +(\d+\.\d\d) ms", out, re.MULTILINE)
    commit = re.search(r"^  driver: commit +(\d+\.\d\d) ms +1\.0 commit\(s\)", out, re.MULTILINE)
    queries = re.search(r"^  driver: queries +(\d+\.\d\d) ms +(\d+\.\d) statements", out, re.MULTILINE)
    core = re.search(r"^  SQLAlchemy Core +(\d+\.\d\d) ms", out, re.MULTILINE)
    assert floor and commit and queries and core, out
    assert float(floor.group(1)) > 0 and float(commit.group(1)) > 0 and float(queries.group(2)) >= 10
    assert re.search(r"^-- where the inbox's time above the bare inbox's goes .*= -?\d+\.\d\d ms\)$", out,
                     re.MULTILINE), out
    assert re.search(r"^  driver: queries +-?\d+\.\d\d ms +12\.0 more statements", out, re.MULTILINE), out
    assert re.search(r"^  sending API +\d+\.\d\d ms CPU per handover +budget ≤ 3\.00 ms: (ok|OVER BUDGET)$", out,
                     re.MULTILINE), out
    assert re.search(r"^  inbox +\d+\.\d\d ms CPU per handover = \d+\.\d\d × the bare inbox's", out, re.MULTILINE), out
