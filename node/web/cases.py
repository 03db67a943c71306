"""(being written)"""

from __future__ import annotations

from flask import Blueprint


def make_blueprint() -> Blueprint:
    return Blueprint("web_cases", __name__)
