"""The fuzzing's figures at the end of the run."""

from __future__ import annotations

import sys

import pytest


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    module = sys.modules.get("tests.fuzz.test_api_schemathesis")
    calls = getattr(module, "CALLS", None)
    if calls:
        terminalreporter.write_line(
            "schemathesis: " + ", ".join(f"{n} calls on {db}" for db, n in sorted(calls.items())))
