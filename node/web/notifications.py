"""A signed-in user's notifications: what happened to their cases (a handover answered, progress received, an
erasure confirmed or overdue) and, for admins, partners unreachable for over a day; marking them read; and the
user's notification e-mail address and opt-out.

Before the list renders, the sweep runs (``node.notifications.sweep``: a few indexed queries, idempotent), so
the page is current even between the delivery worker's sweeps. Every view works on the user's own rows only
(``node.notifications.services``); another user's notification is a 404.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Blueprint, current_app, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy.exc import SQLAlchemyError

from node.db import request_session
from node.errors import ValidationFailed
from node.notifications import services
from node.notifications.sweep import sweep

from .forms import form_errors, read_form
from .guard import actor

#: what each kind of notification says in the list
KIND_LABELS = {
    "handover_accepted": _l("A partner accepted the handover"),
    "handover_declined": _l("A partner declined the handover"),
    "progress_received": _l("Progress arrived from a partner"),
    "erasure_confirmed": _l("A partner confirmed the erasure"),
    "erasure_overdue": _l("An erasure is overdue: not confirmed in time"),
    "partner_unreachable": _l("Deliveries to a partner have failed for more than a day"),
}


def make_blueprint() -> Blueprint:
    blp = Blueprint("web_notifications", __name__)
    blp.add_url_rule("/notifications", endpoint="notification_list", view_func=notification_list, methods=["GET"])
    blp.add_url_rule("/notifications/<int:notification_id>/read", endpoint="mark_read", view_func=read_one,
                     methods=["POST"])
    blp.add_url_rule("/notifications/read", endpoint="mark_all_read", view_func=read_all, methods=["POST"])
    blp.add_url_rule("/notifications/email", endpoint="email", view_func=email, methods=["POST"])
    return blp


def _now() -> dt.datetime:
    now: dt.datetime = current_app.extensions["ccm"].clock.now()
    return now


def unread_for_badge() -> int | None:
    """The signed-in user's unread count for the menu's badge (one indexed COUNT), None for nobody."""
    signed_in = g.get("actor")
    if signed_in is None or g.web_session.second_factor_due:
        return None
    try:
        return services.unread_count(request_session(), signed_in.user_id)
    except SQLAlchemyError:  # a busy or failed database: the page (often its error page) shows without it
        return None


def _page(*, values: dict[str, Any] | None = None, errors: dict[str, list[str]] | None = None,
          status: int = 200) -> Any:
    db = request_session()
    config = current_app.extensions["ccm"].config
    sweep(db, _now(), confirm_within=dt.timedelta(hours=config.erasure_confirm_hours))
    db.commit()
    items = services.list_notifications(db, actor())
    preferences = values if values is not None else services.email_preferences(db, actor())
    db.commit()
    partners_page = "web_admin_partners.partner_list" in current_app.view_functions
    return render_template("notifications/list.html", items=items, kinds=KIND_LABELS,
                           unread=sum(1 for i in items if not i["read"]), values=preferences,
                           errors=errors or {}, partners_page=partners_page,
                           smtp_configured=config.smtp is not None), status


def notification_list() -> Any:
    return _page()


def read_one(notification_id: int) -> Any:
    db = request_session()
    services.mark_read(db, actor(), notification_id, _now())  # NotFound: not the user's (the 404 page)
    db.commit()
    return redirect(url_for("web_notifications.notification_list"))


def read_all() -> Any:
    db = request_session()
    count = services.mark_all_read(db, actor(), _now())
    db.commit()
    if count:
        flash(_("All notifications are marked as read."), "success")
    return redirect(url_for("web_notifications.notification_list"))


def email() -> Any:
    values = read_form(request.form, flags=("notify_email",))
    db = request_session()
    try:
        services.set_email_preferences(db, actor(), values, _now())
        db.commit()
    except ValidationFailed as exc:
        db.rollback()
        return _page(values={"email": values.get("email", ""), "notify_email": values["notify_email"]},
                     errors=form_errors(exc), status=422)
    flash(_("Your e-mail settings are saved."), "success")
    return redirect(url_for("web_notifications.notification_list"))
