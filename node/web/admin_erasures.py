"""The node admin's erasures and retention page: erasure requests partners have not confirmed (overdue ones
highlighted, as ``ccm-node erasures``), the last retention runs, and "Run retention now" (as
``ccm-node retention run``). Case references, partners and times only: never a case's data.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from node.db import request_session
from node.exchange.chain.followup import retention_runs, run_retention_recorded, unconfirmed_erasures
from node.exchange.trust.keystore import identity_for_app

from .guard import actor, permitted

PERMISSION = "partner.manage"


def make_blueprint() -> Blueprint:
    blp = Blueprint("web_admin_erasures", __name__)
    blp.add_url_rule("/admin/erasures", endpoint="erasures", view_func=erasures, methods=["GET"])
    blp.add_url_rule("/admin/erasures/retention", endpoint="run_retention", view_func=run_retention_now,
                     methods=["POST"])
    return blp


@permitted(PERMISSION)
def erasures() -> Any:
    ctx = current_app.extensions["ccm"]
    overdue_only = request.args.get("overdue") == "1"
    within = dt.timedelta(hours=ctx.config.erasure_confirm_hours)
    db = request_session()
    listing = unconfirmed_erasures(db, ctx.clock.now(), within, overdue_only=overdue_only)
    runs = retention_runs(db)
    db.commit()  # the overdue flags (audited)
    return render_template("admin/erasures.html", rows=listing.rows, runs=runs, overdue_only=overdue_only,
                           hours=ctx.config.erasure_confirm_hours)


@permitted(PERMISSION)
def run_retention_now() -> Any:
    ctx = current_app.extensions["ccm"]
    now = ctx.clock.now()
    identity = identity_for_app(current_app._get_current_object())  # type: ignore[attr-defined]
    run = run_retention_recorded(ctx.sessionmaker, actor(), keys=identity.keys, now=now)
    if run.not_told:
        flash(_("Retention run: %(erased)s received case(s) erased; %(not_told)s sender(s) could not be told "
                "(partner suspended or revoked).", erased=len(run.erased), not_told=len(run.not_told)), "warning")
    else:
        flash(_("Retention run: %(erased)s received case(s) erased.", erased=len(run.erased)), "success")
    return redirect(url_for("web_admin_erasures.erasures"))
