"""The dashboard (``/dashboard``, ``report.read``): the node's figures as charts, each with a table of the same
numbers.

Roles that read no case (coordinator, administrator) see the whole node
(:func:`node.exchange.dashboard_figures.node_figures`); counsellors and advisers see their own caseload, the
cases they may see (:func:`~node.exchange.dashboard_figures.caseload`). Only counts: no names, no references.
The view turns the figures into chart structures (:mod:`node.web.charts`) with the labels of the page's
language; the templates draw them.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import flask_babel
from flask import Blueprint, current_app, render_template
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from node.auth import can
from node.cases.stages import titles_of
from node.db import request_session
from node.exchange.dashboard_figures import NO_STAGE, caseload, node_figures

from . import charts
from .guard import actor, permitted

BUCKET_LABELS = {"under_1_day": _l("Less than a day"), "1_3_days": _l("1–3 days"), "3_7_days": _l("3–7 days"),
                 "1_2_weeks": _l("1–2 weeks"), "over_2_weeks": _l("More than 2 weeks")}
ERASURE_LABELS = {"confirmed": _l("Confirmed"), "waiting": _l("Waiting for confirmation"),
                  "overdue": _l("Overdue")}
ERASURE_CSS = {"confirmed": "chart__bar--ok", "waiting": "chart__bar--warn", "overdue": "chart__bar--bad"}
SERIES_LABELS = {"outgoing": {"sent": _l("Sent"), "accepted": _l("Accepted"), "declined": _l("Declined")},
                 "incoming": {"sent": _l("Received"), "accepted": _l("Accepted"), "declined": _l("Declined")}}


def make_blueprint() -> Blueprint:
    blp = Blueprint("web_dashboard", __name__)
    blp.add_url_rule("/dashboard", endpoint="dashboard", view_func=dashboard, methods=["GET"])
    return blp


def _rtl() -> bool:
    locale = flask_babel.get_locale()
    return locale is not None and locale.text_direction == "rtl"


def stage_rows(counts: list[tuple[str, int]], titles: dict[str, str]) -> list[tuple[str, str, int]]:
    """``(key, title, n)``: the configured title, the key of a stage no longer configured, and a words for
    the cases with no stage left."""
    return [(key, _("No stage left to do") if key == NO_STAGE else titles.get(key, key), n) for key, n in counts]


@permitted("report.read")
def dashboard() -> Any:
    who = actor()
    ctx = current_app.extensions["ccm"]
    config, now = ctx.config, ctx.clock.now()
    zone = ZoneInfo(config.timezone)
    titles = titles_of(config.stages)
    db = request_session()
    if can(who.role, "case.read"):
        figures = caseload(db, who, now, stage_keys=config.stage_keys, zone=zone)
        db.commit()
        return render_template("dashboard/caseload.html", figures=figures, **_caseload_charts(figures, titles))
    figures = node_figures(db, who, now, stage_keys=config.stage_keys, zone=zone,
                           confirm_within=timedelta(hours=config.erasure_confirm_hours))
    db.commit()
    return render_template("dashboard/node.html", figures=figures, **_node_charts(figures, titles))


def _caseload_charts(figures: dict[str, Any], titles: dict[str, str]) -> dict[str, Any]:
    rtl = _rtl()
    stages = stage_rows(figures["cases_by_stage"], titles)
    due = [("overdue", _("Overdue"), figures["overdue"])]
    due += [(day.isoformat(), flask_babel.format_date(day, "EEE d MMM"), n) for day, n in figures["due"]]
    return {"stages": stages, "due": due,
            "stage_chart": charts.bar_chart("chart-my-stages", _("My open cases per stage"), stages, rtl=rtl),
            "due_chart": charts.bar_chart("chart-due", _("Stages due, by day"), due, rtl=rtl,
                                          css={"overdue": "chart__bar--bad"})}


def _node_charts(figures: dict[str, Any], titles: dict[str, str]) -> dict[str, Any]:
    rtl = _rtl()
    stages = stage_rows(figures["cases_by_stage"], titles)
    months = figures["months"]
    month_names = [flask_babel.format_date(m, "MMM") for m in months]
    month_rows = [flask_babel.format_date(m, "MMM y") for m in months]
    lines, acceptance = {}, {}
    for direction, labels in SERIES_LABELS.items():
        series = [(key, str(labels[key]), figures["handovers"][direction][key]) for key in labels]
        title = _("Handovers sent per month") if direction == "outgoing" else _("Handovers received per month")
        lines[direction] = charts.line_chart(f"chart-handovers-{direction}", title, month_names, series, rtl=rtl)
        buckets = [(key, str(BUCKET_LABELS[key]), n) for key, n in figures["acceptance"][direction]["buckets"]]
        acceptance[direction] = {
            "rows": buckets, "count": figures["acceptance"][direction]["count"],
            "median": figures["acceptance"][direction]["median_days"],
            "chart": charts.column_chart(f"chart-acceptance-{direction}",
                                         _("Time from handover to acceptance"), buckets, rtl=rtl)}
    delivery = figures["delivery"]
    deepest = max((p["queued"] for p in delivery), default=0)
    erasures = [(key, str(label), figures["erasures"][key]) for key, label in ERASURE_LABELS.items()]
    return {"stages": stages, "stage_chart": charts.bar_chart("chart-stages", _("Open cases per stage"), stages,
                                                              rtl=rtl),
            "month_rows": month_rows, "lines": lines, "acceptance": acceptance,
            "queue_bars": [charts.mini_bar(p["queued"], deepest, rtl=rtl) for p in delivery],
            "erasures": erasures,
            "erasure_chart": charts.bar_chart("chart-erasures", _("Erasures asked of partners"), erasures, rtl=rtl,
                                              css=ERASURE_CSS)}
