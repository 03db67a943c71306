"""The node administrator's delivery queue: what waits, fails, is paused or was given up (the error in words),
"retry now" per message and per partner, and store-and-forward by file: a partner's bundle exported as a
download, a partner's bundle (or the receipts for ours) imported from an upload.

The services are those of ``ccm-node queue`` and ``ccm-node bundle`` (``queue.retry_message``,
``queue.retry_partner``, ``bundles.export_bundle``, ``bundle_import.import_file``). The receipts bundle an
import makes is kept in ``DATA_DIR/bundles/receipts/`` (0600; signed receipts, no case data) so that it can be
downloaded to carry back; importing the same bundle again makes it again (nothing is received twice).
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from node.audit import record
from node.db import request_session
from node.errors import NodeError, NotFound
from node.exchange.delivery.bundles import bundle_id, export_bundle
from node.exchange.delivery.queue import QueueError, retry_message, retry_partner
from node.exchange.delivery.queue_overview import SECTIONS, queue_overview
from node.exchange.inbox.bundle_import import BundleImport, import_file
from node.exchange.trust.keystore import NodeIdentity, identity_for_app
from node.exchange.trust.partner_overview import partner_figures
from node.exchange.trust.partners import NoAgreement, PartnerNotFound, PartnerStateError, list_partners
from node.private_files import replace_private
from protocol import ProtocolError
from protocol.bundle import MAX_BUNDLE_BYTES

from .admin_exchange_labels import label_helpers
from .forms import FORM
from .guard import actor, permitted

PERMISSION = "partner.manage"
RECEIPTS_DIR = ("bundles", "receipts")
_BUNDLE_ID = re.compile(r"^[A-Za-z0-9_-]{43}$")
#: why a bundle file was refused whole, by protocol code
BUNDLE_REFUSALS = {
    "unknown_sender": _l("It comes from a node that is not an active partner of this node."),
    "wrong_recipient": _l("It was made for another node."),
    "bad_signature": _l("Its signature does not check out: it may have been changed."),
    "decryption_failed": _l("It cannot be opened with this node's keys."),
    "unknown_key": _l("It is signed with a key this node does not know for that partner."),
    "revoked_key": _l("It is signed with a key the partner revoked."),
    "expired": _l("It has expired."),
    "not_yet_valid": _l("It is not valid yet (check the clocks)."),
    "oversized": _l("It is too large."),
}
BUNDLE_DAMAGED = _l("It is not a bundle file, or it is damaged.")


def make_blueprint() -> Blueprint:
    blp = Blueprint("web_admin_delivery", __name__)
    blp.add_url_rule("/admin/deliveries", endpoint="queue", view_func=queue, methods=["GET"])
    blp.add_url_rule("/admin/deliveries/<int:message>/retry", endpoint="retry", view_func=retry,
                     methods=["POST"])
    blp.add_url_rule("/admin/deliveries/partners/<node_id>/retry", endpoint="retry_partner",
                     view_func=retry_partner_now, methods=["POST"])
    blp.add_url_rule("/admin/deliveries/export", endpoint="export", view_func=export, methods=["POST"])
    blp.add_url_rule("/admin/deliveries/import", endpoint="import_bundle", view_func=import_upload,
                     methods=["POST"])
    blp.add_url_rule("/admin/deliveries/receipts/<receipt_id>", endpoint="receipts", view_func=receipts,
                     methods=["GET"])
    return blp


def clock_now() -> dt.datetime:
    now: dt.datetime = current_app.extensions["ccm"].clock.now()
    return now


def node_identity() -> NodeIdentity:
    return identity_for_app(current_app._get_current_object())  # type: ignore[attr-defined]


def _audit(db: Any, action: str, object_type: str, object_id: str, detail: dict[str, Any] | None = None) -> None:
    record(db, actor=actor(), action=action, object_type=object_type, object_id=object_id, case_id=None,
           now=clock_now(), detail={"via": "web", **(detail or {})})


def _queue_page(*, errors: dict[str, list[str]] | None = None, values: dict[str, Any] | None = None,
                status: int = 200) -> Any:
    db = request_session()
    overview = queue_overview(db, clock_now())
    partners = partner_figures(db, list_partners(db))
    db.commit()
    waiting = [p for p in partners if p.queue_depth or p.failing]
    sendable = [p for p in partners if p.status == "active" and p.agreement_id]
    return render_template("admin/delivery_queue.html", overview=overview, sections=SECTIONS, waiting=waiting,
                           sendable=sendable, errors=errors or {}, values=values or {}, **label_helpers()), status


@permitted(PERMISSION)
def queue() -> Any:
    return _queue_page()


@permitted(PERMISSION)
def retry(message: int) -> Any:
    db = request_session()
    try:
        retried = retry_message(db, str(message), clock_now())
        _audit(db, "retry", "message", retried.message_id, {"status": retried.status})
        db.commit()
    except QueueError:
        db.rollback()
        return _queue_page(status=409, errors={FORM: [
            _("This message cannot be sent again: it was delivered already, it expired, or its partner was "
              "revoked.")]})
    flash(_("Message %(id)s will be sent again now.", id=retried.message_id), "success")
    return redirect(url_for("web_admin_delivery.queue"))


@permitted(PERMISSION)
def retry_partner_now(node_id: str) -> Any:
    db = request_session()
    partner, waiting = retry_partner(db, node_id, clock_now())
    _audit(db, "retry", "partner", partner.node_id, {"waiting": waiting})
    db.commit()
    flash(_("Deliveries to %(node)s are tried again now (%(count)s waiting).", node=partner.node_id,
            count=waiting), "success")
    if request.form.get("back") == "queue":
        return redirect(url_for("web_admin_delivery.queue"))
    return redirect(url_for("web_admin_partners.partner", node_id=partner.node_id))


@permitted(PERMISSION)
def export() -> Any:
    """A file with every message ready to go to the partner (``ccm-node bundle export``)."""
    node_id = request.form.get("partner", "").strip()
    values = {"partner": node_id}
    if not node_id:
        return _queue_page(status=422, values=values, errors={"partner": [_("Choose a partner.")]})
    identity = node_identity()
    now = clock_now()
    db = request_session()
    try:
        bundle = export_bundle(db, keys=identity.keys, partner=node_id, now=now, boxes=identity.boxes)
    except (PartnerNotFound, NoAgreement, PartnerStateError):
        db.rollback()
        return _queue_page(status=409, values=values, errors={"partner": [
            _("Nothing can be sent to this partner: it is not active or has no data-sharing agreement.")]})
    if bundle.data is None:
        db.rollback()
        flash(_("Nothing to export: no message is ready to go to %(node)s.", node=node_id), "warning")
        return redirect(url_for("web_admin_delivery.queue"))
    _audit(db, "export", "bundle", bundle_id(bundle.data), {"to": bundle.partner, "messages": bundle.count,
                                                             "left": bundle.left})
    db.commit()
    filename = f"{bundle.partner}.{now:%Y%m%d-%H%M%S}.bundle.json"
    return Response(bundle.data, mimetype="application/json",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def _receipts_path(identifier: str) -> Path:
    data_dir: Path = current_app.extensions["ccm"].config.data_dir
    return data_dir.joinpath(*RECEIPTS_DIR, f"{identifier}.json")


def _keep_receipts(result: BundleImport) -> None:
    if result.receipts is None:
        return
    replace_private(_receipts_path(result.bundle_id), result.receipts)


def _refused(message: str) -> Any:
    return _queue_page(status=422, errors={"bundle_file": [message]})


@permitted(PERMISSION)
def import_upload() -> Any:
    """A partner's bundle, or the receipts bundle for ours (``ccm-node bundle import``)."""
    upload = request.files.get("bundle_file")
    if upload is None or not upload.filename:
        return _refused(_("Choose the bundle file to import."))
    data = upload.stream.read(MAX_BUNDLE_BYTES + 1)
    if len(data) > MAX_BUNDLE_BYTES:
        return _refused(_("The bundle was refused, nothing was imported: %(why)s", why=BUNDLE_REFUSALS["oversized"]))
    identity = node_identity()
    db = request_session()
    try:
        result = import_file(db, data=data, keys=identity.keys, now=clock_now(), boxes=identity.boxes,
                             checkpoint=db.commit, identity=identity)
        _audit(db, "import", "bundle", result.bundle_id, {"from": result.sender, "kind": result.kind,
                                                          **dict(result.summary())})
        db.commit()
    except (ProtocolError, NodeError) as exc:
        db.rollback()
        code = getattr(exc, "code", "")
        return _refused(_("The bundle was refused, nothing was imported: %(why)s",
                          why=BUNDLE_REFUSALS.get(code, BUNDLE_DAMAGED)))
    _keep_receipts(result)
    refusals = sorted(result.refusals().items())
    return render_template("admin/delivery_import.html", result=result, refusals=refusals, **label_helpers())


@permitted(PERMISSION)
def receipts(receipt_id: str) -> Any:
    """The receipts bundle of an import (named by the imported bundle's id), to carry back to the partner."""
    if not _BUNDLE_ID.match(receipt_id):
        raise NotFound("No such receipts file.")
    try:
        data = _receipts_path(receipt_id).read_bytes()
    except OSError:
        raise NotFound("No such receipts file.") from None
    filename = f"receipts.{receipt_id[:12]}.json"
    return Response(data, mimetype="application/json",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})
