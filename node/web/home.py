"""The home page: what needs the signed-in member of staff now, and what they have shared.

Counsellors and advisers see their work queues (:mod:`node.exchange.worklist`, the same visibility as the
API); roles that read no cases (admin, coordinator) see a short page of what they can do here.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Blueprint, current_app, render_template

from node.auth import can
from node.cases.stages import titles_of
from node.db import request_session
from node.exchange import worklist

from .guard import actor


def make_blueprint() -> Blueprint:
    blp = Blueprint("web_home", __name__)
    blp.add_url_rule("/", view_func=home, endpoint="home")
    return blp


def home() -> Any:
    who = actor()
    if not can(who.role, "case.read"):
        return render_template("home.html", queues=None, shared=None)
    ctx = current_app.extensions["ccm"]
    config, now = ctx.config, ctx.clock.now()
    db = request_session()
    queues = worklist.needs_me_now(db, who, now, confirm_within=timedelta(hours=config.erasure_confirm_hours),
                                   stage_titles=titles_of(config.stages))
    shared = worklist.shared_by_me(db, who, now) if can(who.role, "handover.send") else None
    db.commit()
    return render_template("home.html", queues=queues, shared=shared, today=now.date())
