"""The demo network's nodes as the story sees them: who they are, their staff, and how to talk to one.

``NETWORK`` lists the four nodes of ``ccm-node demo``; a :class:`DemoNode` runs ``ccm-node`` commands on its data
directory (in this process, through the command function it is given: the real command path) and calls its
API as a member of its staff. ``demo_network.py`` starts and stops them; ``demo_story.py`` tells the story.
"""

from __future__ import annotations

import contextlib
import io
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

#: ``ccm-node``'s ``main``: arguments in, exit status out (what it prints goes to stdout and stderr).
Command = Callable[[Sequence[str]], int]


@dataclass(frozen=True)
class NodeSpec:
    key: str
    node_id: str
    name: str
    port: int
    #: (username, display name, role, team); the first counsellor and adviser act in the story
    staff: tuple[tuple[str, str, str, str | None], ...]


NETWORK = (
    NodeSpec("goteborg", "se.gi-goteborg", "Göteborgs-Initiativet", 8701, (
        ("anna.lindqvist", "Anna Lindqvist", "counsellor", "gi-counsellors"),
        ("erik.nilsson", "Erik Nilsson", "counsellor", "gi-counsellors"),
        ("amra.hodzic", "Amra Hodžić", "adviser", "gi-counsellors"),
        ("sara.coordinator", "Sara Ekström", "coordinator", None), ("admin", "Node administrator", "admin", None))),
    NodeSpec("sarajevo", "ba.cldd-sarajevo", "CLDD Sarajevo", 8702, (
        ("emina.kovac", "Emina Kovač", "adviser", "cldd-sarajevo"),
        ("haris.begic", "Haris Begić", "counsellor", "cldd-sarajevo"), ("admin", "Node administrator", "admin", None))),
    NodeSpec("baghdad", "iq.cldd-baghdad", "CLDD Baghdad", 8703, (
        ("layla.hassan", "Layla Hassan", "adviser", "cldd-baghdad"),
        ("admin", "Node administrator", "admin", None))),
    NodeSpec("accra", "gh.accra-partner", "Reintegration partner Accra", 8704, (
        ("kwame.asante", "Kwame Asante", "adviser", "accra"), ("admin", "Node administrator", "admin", None))),
)


class DemoError(Exception):
    """The network could not be set up or a step of the story did not verify."""


def run_command(command: Command, *argv: str) -> str:
    """Run a ``ccm-node`` command in this process (the real command path) and return what it printed.

    Raises:
        DemoError: it exited non-zero (with what it printed on stderr).
    """
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = command(list(argv))
    if code != 0:
        raise DemoError(f"ccm-node {' '.join(argv[2:4])}: {err.getvalue().strip()}")
    return out.getvalue()


@dataclass
class DemoNode:
    spec: NodeSpec
    data_dir: Path
    command: Command
    url: str = ""
    tokens: dict[str, str] = field(default_factory=dict)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    http: requests.Session = field(default_factory=requests.Session)

    def cli(self, *argv: str) -> str:
        return run_command(self.command, "--data-dir", str(self.data_dir), *argv)

    def user(self, role: str) -> str:
        """The first member of staff with ``role`` (who acts in the story)."""
        return next(username for username, _name, r, _team in self.spec.staff if r == role)

    def api(self, method: str, path: str, username: str, expect: int = 200, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.tokens[username]}", **kwargs.pop("headers", {})}
        response = self.http.request(method, f"{self.url}/api/v1{path}", timeout=30, headers=headers, **kwargs)
        if response.status_code != expect:
            raise DemoError(f"{self.spec.node_id}: {method} {path} answered {response.status_code} "
                            f"(expected {expect}): {response.text[:300]}")
        return response.json() if response.content else None
