"""Fixtures for the case domain: staff of each role with their bearer headers."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from node.accounts import User
from tests.cases.casedata import Staff


@pytest.fixture
def staff(
    make_user: Callable[..., tuple[User, str]], auth_headers: Callable[[str], dict[str, str]]
) -> Callable[..., Staff]:
    """``staff(role, team=None) -> Staff`` (a committed user with a bearer token)."""

    def make(role: str, team: str | None = None) -> Staff:
        user, token = make_user(role, team=team)
        return Staff(user, auth_headers(token))

    return make


@pytest.fixture
def counsellor(staff: Callable[..., Staff]) -> Staff:
    return staff("counsellor", team="gbg")
