"""The node administrator's page for the node itself: its id, name and fingerprint (grouped for reading
aloud), its signed card as a file, its keys, the database, the delivery worker, the version and the disk.

Everything comes from the services the command line uses (``keys.status.own_keys`` is ``ccm-node keys
status``; the card is the one ``GET /federation/v1/card`` serves). No case data is shown.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Blueprint, Response, current_app, json, render_template

from admin.node_status import database_health, disk_use, installed_version
from node.db import request_session
from node.exchange.delivery.queue_overview import worker_health
from node.exchange.keys.status import own_keys
from node.exchange.trust.keystore import NodeIdentity, identity_for_app

from .admin_exchange_labels import label_helpers
from .guard import permitted

PERMISSION = "partner.manage"


def make_blueprint() -> Blueprint:
    blp = Blueprint("web_admin_node", __name__)
    blp.add_url_rule("/admin/node", endpoint="status", view_func=status, methods=["GET"])
    blp.add_url_rule("/admin/node/card", endpoint="card", view_func=card, methods=["GET"])
    return blp


def clock_now() -> dt.datetime:
    now: dt.datetime = current_app.extensions["ccm"].clock.now()
    return now


def node_identity() -> NodeIdentity:
    return identity_for_app(current_app._get_current_object())  # type: ignore[attr-defined]


@permitted(PERMISSION)
def status() -> Any:
    ctx = current_app.extensions["ccm"]
    now = clock_now()
    identity = node_identity()
    db = request_session()
    worker = worker_health(db, now)
    db.commit()
    return render_template("admin/node.html", identity=identity, keys=own_keys(identity, now), worker=worker,
                           database=database_health(ctx.engine), disk=disk_use(ctx.config.data_dir),
                           version=installed_version(), config=ctx.config, now=now, **label_helpers())


@permitted(PERMISSION)
def card() -> Response:
    """The node's signed card, as the federation endpoint serves it, as a file to give to a partner."""
    identity = node_identity()
    body = json.dumps(identity.card.to_json())
    filename = f"{identity.card.node_id}.card.json"
    return Response(body, mimetype="application/json",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})
