"""Running ``ccm-node`` in-process for the CLI tests: one command on a data directory, its exit code and
output; and a loopback port nothing listens on (a partner that is down)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from node.cli import main


def run(capsys: pytest.CaptureFixture[str], data_dir: Path, *args: str) -> tuple[int, str, str]:
    """``ccm-node --data-dir DATA_DIR ARGS...``: (exit code, stdout, stderr)."""
    code = main(["--data-dir", str(data_dir), *args])
    out, err = capsys.readouterr()
    return code, out, err


def closed_port() -> int:
    """A loopback port that was free a moment ago (nothing listens on it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
