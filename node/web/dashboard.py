"""(being written: this module's pages are added by the #14 work in progress)"""

from __future__ import annotations

from flask import Blueprint


def make_blueprint() -> Blueprint:
    return Blueprint("web_dashboard", __name__)
