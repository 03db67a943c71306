"""The main navigation: the pages a signed-in user's role may open, in order."""

from __future__ import annotations

from flask import current_app, g, request
from flask_babel import lazy_gettext as _l

from node.auth import can

#: (endpoint, label, permission needed or None)
MAIN = (
    ("web_home.home", _l("Home"), None),
    ("web_cases.case_list", _l("Cases"), "case.read"),
    ("web_intake.queue", _l("Incoming handovers"), "handover.accept"),
    ("web_dashboard.dashboard", _l("Dashboard"), "report.read"),
    ("web_admin_node.status", _l("Node"), "partner.manage"),
    ("web_admin_partners.partner_list", _l("Partners"), "partner.manage"),
    ("web_admin_delivery.queue", _l("Deliveries"), "partner.manage"),
    ("web_admin_erasures.erasures", _l("Erasures"), "partner.manage"),
    ("web_admin_staff.staff_list", _l("Staff"), "user.manage"),
    ("web_admin_audit.audit_log", _l("Audit log"), "audit.verify"),
    ("web_notifications.notification_list", _l("Notifications"), None),
    ("web_account.account", _l("Account"), None),
)


def navigation() -> list[dict[str, object]]:
    actor = g.get("actor")
    if actor is None or g.web_session.second_factor_due:
        return []
    current = request.endpoint or ""
    items = []
    for endpoint, label, permission in MAIN:
        if endpoint not in current_app.view_functions:
            continue
        if permission is not None and not can(actor.role, permission):
            continue
        section = endpoint.split(".")[0]
        items.append({"endpoint": endpoint, "label": label, "current": current.split(".")[0] == section})
    return items
