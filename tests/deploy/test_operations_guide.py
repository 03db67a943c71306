"""docs/operations.md names only real things: every ``ccm-node`` command in it (``ccm`` is the guide's alias for
``sudo -u ccm ccm-node --data-dir /srv/ccm``) exists, every full command line in its code blocks parses, and the
files it tells the admin to copy exist."""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path

import pytest

from node.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "operations.md"


def _code() -> tuple[list[str], list[str]]:
    """(lines of fenced code blocks, continuations joined; inline code spans)."""
    text = GUIDE.read_text(encoding="utf-8")
    blocks = re.findall(r"^\s*```[a-z]*\n(.*?)^\s*```", text, re.MULTILINE | re.DOTALL)
    lines = []
    for block in blocks:
        lines += [line.strip() for line in re.sub(r"\\\n\s*", " ", block).splitlines() if line.strip()]
    prose = re.sub(r"^\s*```[a-z]*\n.*?^\s*```", "", text, flags=re.MULTILINE | re.DOTALL)
    inline = [" ".join(span.split()) for span in re.findall(r"`([^`]+)`", prose)]
    return lines, inline


def _commands(snippet: str) -> list[list[str]]:
    """The argument lists given to ccm-node in a shell snippet."""
    out = []
    snippet = snippet.split(" #", 1)[0]
    for segment in re.split(r"&&|\|\||[|;]", snippet):
        try:
            tokens = shlex.split(segment)
        except ValueError:
            continue
        for i, token in enumerate(tokens):
            if token == "ccm-node" or token.endswith("/bin/ccm-node") or (token == "ccm" and i == 0):
                argv = [t for t in tokens[i + 1:] if t != "&"]
                if argv and argv[0] not in ("…", "...") and "…" not in argv:
                    out.append(argv)
                break
    return out


def _subcommand_path(argv: list[str]) -> list[str]:
    """The command words of ``argv`` (e.g. ``keys revoke``), each checked against the parser."""
    parser: argparse.ArgumentParser = build_parser()
    words = [w for w, prev in zip(argv, [None, *argv], strict=False) if not w.startswith("-") and prev != "--data-dir"]
    path = []
    for word in words:
        actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not actions:
            break
        assert word in actions[0].choices, f"'ccm-node {' '.join([*path, word])}' is not a command"
        path.append(word)
        parser = actions[0].choices[word]
    return path


def test_the_guide_has_commands() -> None:
    lines, inline = _code()
    commands = [c for snippet in lines + inline for c in _commands(snippet)]
    assert len(commands) > 30


def test_every_command_named_exists() -> None:
    lines, inline = _code()
    for snippet in lines + inline:
        for argv in _commands(snippet):
            assert _subcommand_path(argv), snippet


def test_every_full_command_line_parses() -> None:
    lines, _ = _code()
    for line in lines:
        for argv in _commands(line):
            try:
                build_parser().parse_args(argv)
            except SystemExit:
                pytest.fail(f"does not parse: ccm-node {' '.join(argv)}   (from: {line})")


def test_migrations_are_db_upgrade() -> None:
    text = GUIDE.read_text(encoding="utf-8")
    assert "ccm db upgrade" in text and "ccm-node migrate" not in text


def test_files_the_guide_copies_exist() -> None:
    text = GUIDE.read_text(encoding="utf-8")
    named = set(re.findall(r"/opt/ccm/src/((?:deploy|docs)/[\w./-]+)", text))
    named |= set(re.findall(r"`(deploy/[\w./-]+)`", text))
    assert "deploy/nginx/ccm-node.conf" in named
    for path in named:
        if "*" in path or path.endswith(("-", ".env")):  # a pattern, or the file the admin writes
            continue
        assert (ROOT / path).exists(), path
    for unit in ("ccm-node-web.service", "ccm-node-deliver.service", "ccm-node-backup.service",
                 "ccm-node-backup.timer"):
        assert unit in text and (ROOT / "deploy" / "systemd" / unit).is_file()
