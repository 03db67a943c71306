"""Fixtures for tests with real node processes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.e2e.web_support import (  # the browser tests' fixtures: one browser and one pair of nodes a session
    base_url,
    browser_type_launch_args,
    screenshot,
    screenshot_dir,
    web_network,
)
from tests.harness import Network

__all__ = ["base_url", "browser_type_launch_args", "screenshot", "screenshot_dir", "web_network"]


@pytest.fixture(params=["sqlite", "postgresql"])
def network(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Network]:
    if request.param == "postgresql":
        make: Callable[[], str] = request.getfixturevalue("make_pg_database")
        net = Network(tmp_path, make)
    else:
        net = Network(tmp_path, lambda: None)
    yield net
    net.stop_all()

