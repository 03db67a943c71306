"""The node administrator's partner pages: the list, adding a partner from its card (URL or file) with the
fingerprint comparison, a partner's page (figures, last error, key history), suspending, resuming, revoking
and recording the data-sharing agreement.

Adding is two steps. The card is read first (``GET /admin/partners/compare?card_url=...`` fetches it under
the node's outbound policy; ``POST`` takes an uploaded file), checked with ``partners.read_card`` and shown
with its fingerprint beside a field for the fingerprint the partner reads out on the phone. The card's bytes
travel in the compare form; trusting (``POST /admin/partners/trust``) calls ``partners.add_partner``, which
checks the card again and refuses a fingerprint that does not match (nothing is stored). The services are
those of ``ccm-node partner``; every change is audited with the signed-in administrator.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from node.audit import record
from node.db import request_session
from node.errors import ValidationFailed
from node.exchange.delivery.queue_overview import queue_overview
from node.exchange.keys.status import partner_key_history
from node.exchange.models import Partner
from node.exchange.trust.keystore import identity_for_app
from node.exchange.trust.partner_keys import KeyReuse
from node.exchange.trust.partner_overview import partner_figures
from node.exchange.trust.partners import (
    MAX_CARD_BYTES,
    CardFetchError,
    FingerprintMismatch,
    InvalidCard,
    OwnCard,
    PartnerExists,
    PartnerStateError,
    add_partner,
    fetch_card,
    get_partner,
    list_partners,
    read_card,
    set_agreement,
    set_status,
)
from node.outbound import OutboundPolicy
from protocol import NodeCard

from .admin_exchange_labels import CARD_FETCH_ERRORS, label_helpers
from .forms import FORM
from .guard import actor, permitted

PERMISSION = "partner.manage"
AGREEMENT_RULE = _l("An agreement id is 1 to 64 letters, digits or . _ : - and starts with a letter or digit.")
#: (status the service sets, audit action, confirmation shown)
CHANGES = {
    "suspend": ("suspended", "suspend", _l("Partner %(node)s is suspended: nothing is sent to it or accepted from it "
                                           "until you resume it.")),
    "resume": ("active", "resume", _l("Partner %(node)s is active again.")),
    "revoke": ("revoked", "revoke", _l("Partner %(node)s is revoked. Messages still waiting for it were given up.")),
}


def make_blueprint() -> Blueprint:
    blp = Blueprint("web_admin_partners", __name__)
    blp.add_url_rule("/admin/partners", endpoint="partner_list", view_func=partner_list, methods=["GET"])
    blp.add_url_rule("/admin/partners/add", endpoint="add", view_func=add, methods=["GET"])
    blp.add_url_rule("/admin/partners/compare", endpoint="compare", view_func=compare, methods=["POST"])
    blp.add_url_rule("/admin/partners/trust", endpoint="trust", view_func=trust, methods=["POST"])
    blp.add_url_rule("/admin/partners/<node_id>", endpoint="partner", view_func=partner, methods=["GET"])
    for action in ("suspend", "resume"):
        blp.add_url_rule(f"/admin/partners/<node_id>/{action}", endpoint=action, view_func=change_status,
                         methods=["POST"], defaults={"action": action})
    blp.add_url_rule("/admin/partners/<node_id>/revoke", endpoint="revoke", view_func=revoke,
                     methods=["GET", "POST"])
    blp.add_url_rule("/admin/partners/<node_id>/agreement", endpoint="agreement", view_func=agreement,
                     methods=["POST"])
    return blp


def clock_now() -> dt.datetime:
    now: dt.datetime = current_app.extensions["ccm"].clock.now()
    return now


def _audit(db: Any, action: str, node_id: str, detail: dict[str, Any] | None = None) -> None:
    record(db, actor=actor(), action=action, object_type="partner", object_id=node_id, case_id=None,
           now=clock_now(), detail={"via": "web", **(detail or {})})


@permitted(PERMISSION)
def partner_list() -> Any:
    db = request_session()
    figures = partner_figures(db, list_partners(db))
    db.commit()
    return render_template("admin/partners.html", partners=figures, **label_helpers())


@permitted(PERMISSION)
def add() -> Any:
    return render_template("admin/partner_add.html", values={}, errors={}, **label_helpers())


def _add_refused(field: str, message: str, values: dict[str, Any] | None = None) -> Any:
    return render_template("admin/partner_add.html", values=values or {}, errors={field: [message]},
                           **label_helpers()), 422


def _read_upload() -> bytes | None:
    """The uploaded card file, or None when it is missing, empty or larger than a card can be."""
    upload = request.files.get("card_file")
    if upload is None or not upload.filename:
        return None
    data = upload.stream.read(MAX_CARD_BYTES + 1)
    return data if 0 < len(data) <= MAX_CARD_BYTES else b""


@permitted(PERMISSION)
def compare() -> Any:
    """Step two: the card read (from its URL or an uploaded file) and checked, its fingerprint shown."""
    config = current_app.extensions["ccm"].config
    # Both ways are POSTed forms with their CSRF token: another site cannot make an admin's browser start a
    # fetch from this node.
    from_url = "card_url" in request.form
    if from_url:
        url = request.form.get("card_url", "").strip()
        values = {"card_url": url}
        if not url:
            return _add_refused("card_url", _("Give the address of the partner's card."), values)
        try:
            data = fetch_card(url, policy=OutboundPolicy.from_config(config))
        except CardFetchError as exc:
            return _add_refused("card_url", str(CARD_FETCH_ERRORS.get(exc.reason, CARD_FETCH_ERRORS["unreachable"])),
                                values)
    else:
        uploaded = _read_upload()
        if uploaded is None:
            return _add_refused("card_file", _("Choose the card file the partner sent you."))
        if not uploaded:
            return _add_refused("card_file", str(CARD_FETCH_ERRORS["too_large"]))
        data = uploaded
    try:
        card = read_card(data, now=clock_now(), own_node_id=config.node_id)
    except InvalidCard as exc:
        field = "card_url" if from_url else "card_file"
        return _add_refused(field, _("This is this node's own card.") if isinstance(exc, OwnCard) else
                            _("This is not a valid node card (it is damaged, expired or not signed by its key)."),
                            {"card_url": request.form.get("card_url", "")})
    return _compare_page(card, data, values={}, errors={})


def _compare_page(card: NodeCard, data: bytes, *, values: dict[str, Any], errors: dict[str, list[str]],
                  status: int = 200) -> Any:
    db = request_session()
    existing = db.scalar(sa.select(Partner.status).where(Partner.node_id == card.node_id))
    db.commit()
    return render_template("admin/partner_compare.html", card=card, existing=existing, values=values,
                           errors=errors, card_data=base64.b64encode(data).decode("ascii"),
                           **label_helpers()), status


@permitted(PERMISSION)
def trust() -> Any:
    """Trust the partner if the fingerprint typed is the card's; otherwise the compare step again, nothing saved."""
    config = current_app.extensions["ccm"].config
    try:
        data = base64.b64decode(request.form.get("card", ""), validate=True)
        if not data or len(data) > MAX_CARD_BYTES:
            raise ValueError("no card")
        card = read_card(data, now=clock_now(), own_node_id=config.node_id)
    except (ValueError, binascii.Error, InvalidCard):
        return _add_refused(FORM, _("The card was lost or changed on the way. Read it again."))
    fingerprint = request.form.get("fingerprint", "").strip()
    agreement_id = request.form.get("agreement", "").strip() or None
    values = {"fingerprint": fingerprint, "agreement": agreement_id or ""}
    if not fingerprint:
        return _compare_page(card, data, values=values, status=422, errors={
            "fingerprint": [_("Type the fingerprint the partner's administrator reads out to you.")]})
    db = request_session()
    existed = db.scalar(sa.select(Partner.id).where(Partner.node_id == card.node_id)) is not None
    identity_kids = _own_kids()
    try:
        added = add_partner(db, card_data=data, fingerprint=fingerprint, agreement=agreement_id, now=clock_now(),
                            own_node_id=config.node_id, own_kids=identity_kids)
        _audit(db, "update" if existed else "create", added.node_id,
               {"agreement": added.agreement_id, "kid": added.signing_kid})
        db.commit()
    except FingerprintMismatch:
        db.rollback()
        return _compare_page(card, data, values=values, status=422, errors={"fingerprint": [
            _("This is not the fingerprint of this card. Nothing was saved: check with the partner's "
              "administrator that you have the right card.")]})
    except PartnerExists:
        db.rollback()
        return _compare_page(card, data, values=values, status=409, errors={
            FORM: [_("This node is a partner already, with these keys.")]})
    except KeyReuse:
        db.rollback()
        return _compare_page(card, data, values=values, status=409, errors={
            FORM: [_("A key of this card belongs to another partner or to this node: it is not trusted.")]})
    except InvalidCard:
        db.rollback()
        return _add_refused(FORM, _("This card carries a key the partner revoked. Ask the partner for its new card."))
    except ValidationFailed:
        db.rollback()
        return _compare_page(card, data, values=values, status=422, errors={"agreement": [str(AGREEMENT_RULE)]})
    flash(_("%(name)s (%(node)s) is now a trusted partner.", name=card.name, node=card.node_id), "success")
    if agreement_id is None:
        flash(_("No data-sharing agreement is recorded yet: nothing can be sent to this partner until you record "
                "one."), "warning")
    return redirect(url_for("web_admin_partners.partner", node_id=card.node_id))


def _own_kids() -> frozenset[str]:
    return identity_for_app(current_app._get_current_object()).own_kids  # type: ignore[attr-defined]


def _partner_page(node_id: str, *, errors: dict[str, list[str]] | None = None, values: dict[str, Any] | None = None,
                  status: int = 200) -> Any:
    db = request_session()
    found = get_partner(db, node_id)
    now = clock_now()
    figures = partner_figures(db, [found])[0]
    keys = partner_key_history(db, found, now)
    queue = queue_overview(db, now, limit=20, partner_id=found.id)
    db.commit()
    return render_template("admin/partner.html", partner=figures, keys=keys, queue=queue, errors=errors or {},
                           values=values or {"agreement": figures.agreement_id or ""}, **label_helpers()), status


@permitted(PERMISSION)
def partner(node_id: str) -> Any:
    return _partner_page(node_id)


def _set(node_id: str, action: str) -> Any:
    status, audit_action, done = CHANGES[action]
    db = request_session()
    try:
        changed = set_status(db, node_id, status, clock_now())
        _audit(db, audit_action, changed.node_id, {"status": status})
        db.commit()
    except PartnerStateError:
        db.rollback()
        return _partner_page(node_id, status=409, errors={FORM: [
            _("This partner is revoked or revoked its own key: trust it again by adding it with its new card.")]})
    flash(str(done) % {"node": changed.node_id}, "success")
    return redirect(url_for("web_admin_partners.partner", node_id=changed.node_id))


@permitted(PERMISSION)
def change_status(node_id: str, action: str) -> Any:
    return _set(node_id, action)


@permitted(PERMISSION)
def revoke(node_id: str) -> Any:
    if request.method == "POST" and request.form.get("confirm") == "1":
        return _set(node_id, "revoke")
    db = request_session()
    figures = partner_figures(db, [get_partner(db, node_id)])[0]
    db.commit()
    errors = {"confirm": [_("Tick the box to confirm.")]} if request.method == "POST" else {}
    return render_template("admin/partner_revoke.html", partner=figures, errors=errors,
                           **label_helpers()), 422 if errors else 200


@permitted(PERMISSION)
def agreement(node_id: str) -> Any:
    value = request.form.get("agreement", "").strip()
    db = request_session()
    try:
        changed = set_agreement(db, node_id, value, clock_now())
        _audit(db, "update", changed.node_id, {"agreement": value})
        db.commit()
    except ValidationFailed:
        db.rollback()
        return _partner_page(node_id, status=422, values={"agreement": value},
                             errors={"agreement": [str(AGREEMENT_RULE)]})
    flash(_("Agreement %(agreement)s recorded for %(node)s.", agreement=value, node=changed.node_id), "success")
    return redirect(url_for("web_admin_partners.partner", node_id=changed.node_id))
