"""The words the pages use for the domain's stored values (statuses, roles), in the user's language.

One place, so the case list, the case page, the home page and the intake queue call a status the same thing.
Templates get them as globals: ``case_status_names``, ``stage_status_names``, ``status_names`` (handovers),
``consent_status_names``, ``intervention_status_names``, ``role_names``. A value missing here is shown as
stored.
"""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l

ROLE_NAMES = {"admin": _l("Administrator"), "counsellor": _l("Counsellor"), "adviser": _l("Adviser"),
              "coordinator": _l("Coordinator")}
CASE_STATUS_NAMES = {"open": _l("Open"), "handed_over": _l("Handed over"),
                     "in_reintegration": _l("In reintegration"), "closed": _l("Closed")}
STAGE_STATUS_NAMES = {"not_started": _l("Not started"), "in_progress": _l("In progress"), "done": _l("Done"),
                      "not_applicable": _l("Not applicable")}
#: a handover as ``node.exchange.handovers.status.present`` gives its status
HANDOVER_STATUS_NAMES = {"queued": _l("Queued for delivery"), "delivered": _l("Delivered, awaiting an answer"),
                         "parked": _l("Delivery paused (partner suspended)"),
                         "undeliverable": _l("Could not be delivered"), "pending": _l("Waiting for an answer"),
                         "accepted": _l("Accepted"), "declined": _l("Declined"), "revoked": _l("Revoked"),
                         "erased": _l("Erased"), "closed": _l("Closed")}
CONSENT_STATUS_NAMES = {"pending": _l("Not yet valid"), "active": _l("Active"), "expired": _l("Expired"),
                        "withdrawn": _l("Withdrawn")}
INTERVENTION_STATUS_NAMES = {"proposed": _l("Proposed"), "planned": _l("Planned"), "in_progress": _l("In progress"),
                             "completed": _l("Completed"), "cancelled": _l("Cancelled")}


def label_globals() -> dict[str, Any]:
    return {"role_names": ROLE_NAMES, "case_status_names": CASE_STATUS_NAMES,
            "stage_status_names": STAGE_STATUS_NAMES, "status_names": HANDOVER_STATUS_NAMES,
            "consent_status_names": CONSENT_STATUS_NAMES, "intervention_status_names": INTERVENTION_STATUS_NAMES}
