"""The home page: what needs the signed-in user now, and what they have shared."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template


def make_blueprint() -> Blueprint:
    blp = Blueprint("web_home", __name__)
    blp.add_url_rule("/", view_func=home, endpoint="home")
    return blp


def home() -> Any:
    return render_template("home.html")
