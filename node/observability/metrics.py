"""``GET /metrics`` in the Prometheus text format, and the hooks that time every request.

What is exported (no personal data, no case id, no username):

- ``ccm_http_requests_total{route,method,status}`` and ``ccm_http_request_duration_seconds{route}``: ``route`` is
  the URL rule that matched (``/api/v1/cases/<case_id>``), never the path; ``(unmatched)`` for a path no rule has;
- ``ccm_inbox_refusals_total{code}``: messages the federation endpoints refused, by protocol error code;
- ``ccm_outbox_depth{partner}``, ``ccm_outbox_given_up{partner}``, ``ccm_delivery_attempts_total{partner}``,
  ``ccm_delivery_failures_total{partner}``, ``ccm_partner_active{partner}``: read from the outbox when scraped
  (:mod:`.figures`), so they are right whichever process delivered;
- ``ccm_erasures_pending`` and ``ccm_erasures_overdue``: erasure requests partners have not confirmed;
- ``ccm_database_up``: 0 when the figures above could not be read (they are then left out).

Only addresses in ``[metrics] allow`` (loopback by default) get an answer; every other one gets the same 404 as a
page that does not exist. Behind a reverse proxy every request comes from the proxy's address: do not proxy
``/metrics`` (scrape the node on its own loopback address); as a second line, a request carrying a proxy's
forwarding header (``X-Forwarded-For``, ``Forwarded``, ``X-Real-IP``) is refused with the same 404.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa
from flask import Flask, Response, abort, current_app, g, request
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

from node.db import request_reader, request_session

from . import multiprocess
from .figures import ExchangeFigures, exchange_figures
from .instruments import count_request, instruments

log = logging.getLogger(__name__)

UNMATCHED = "(unmatched)"
#: the Prometheus text format generate_latest writes, as every Prometheus version reads it
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def allowed(address: str | None, networks: tuple[Network, ...]) -> bool:
    """Whether a client address is inside one of the networks (an IPv4 address written as IPv6, ``::ffff:a.b.c.d``,
    counts as the IPv4 one; no address or an unparsable one is never allowed)."""
    if not address:
        return False
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip.version == net.version and ip in net for net in networks)


def allowed_networks(app: Flask) -> tuple[Network, ...]:
    held: tuple[Network, ...] | None = app.extensions.get("ccm_metrics_allow")
    if held is None:
        held = tuple(ipaddress.ip_network(n, strict=False) for n in app.extensions["ccm"].config.metrics_allow)
        app.extensions["ccm_metrics_allow"] = held
    return held


class FiguresCollector:
    """The database's figures as metric families (one read per scrape, made before the collector is asked)."""

    def __init__(self, figures: ExchangeFigures | None) -> None:
        self.figures = figures

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("ccm_database_up", "1 when the scrape could read the database's figures")
        up.add_metric([], 0 if self.figures is None else 1)
        yield up
        if self.figures is None:
            return
        partner = ["partner"]
        waiting = GaugeMetricFamily("ccm_outbox_depth", "Messages waiting to be delivered, per partner",
                                    labels=partner)
        given_up = GaugeMetricFamily("ccm_outbox_given_up", "Messages parked or undeliverable, per partner",
                                     labels=partner)
        attempts = CounterMetricFamily("ccm_delivery_attempts", "Delivery attempts per partner", labels=partner)
        failures = CounterMetricFamily("ccm_delivery_failures", "Delivery attempts that failed, per partner",
                                       labels=partner)
        active = GaugeMetricFamily("ccm_partner_active", "1 for a partner trusted now (not suspended or revoked)",
                                   labels=partner)
        for row in self.figures.partners:
            waiting.add_metric([row.partner], row.waiting)
            given_up.add_metric([row.partner], row.given_up)
            attempts.add_metric([row.partner], row.attempts)
            failures.add_metric([row.partner], row.failures)
            active.add_metric([row.partner], 1 if row.status == "active" else 0)
        yield from (waiting, given_up, attempts, failures, active)
        pending = GaugeMetricFamily("ccm_erasures_pending", "Erasure requests partners have not confirmed")
        pending.add_metric([], self.figures.erasures_pending)
        overdue = GaugeMetricFamily("ccm_erasures_overdue", "Unconfirmed erasure requests older than "
                                    "erasure_confirm_hours")
        overdue.add_metric([], self.figures.erasures_overdue)
        yield from (pending, overdue)


def read_figures(app: Flask) -> ExchangeFigures | None:
    ctx = app.extensions["ccm"]
    reader = request_reader()  # SQLite: read-only, never waits for the write lock
    session = reader or request_session()
    try:
        return exchange_figures(session, ctx.clock.now(), timedelta(hours=ctx.config.erasure_confirm_hours))
    except sa.exc.SQLAlchemyError as exc:
        log.warning("metrics: the database's figures could not be read (%s)", type(exc).__name__)
        return None
    finally:
        session.rollback()


def exposition(figures: ExchangeFigures | None) -> bytes:
    """The whole scrape: this process's instruments (or, under gunicorn, every worker's summed from the
    multiprocess directory) and the database's figures."""
    registry = CollectorRegistry()
    registry.register(FiguresCollector(figures))
    if not multiprocess.enabled():
        for metric in instruments().all():
            registry.register(metric)
        return generate_latest(registry)
    path = Path(os.environ[multiprocess.ENV])
    MultiProcessCollector(registry, path=str(path))  # type: ignore[no-untyped-call]
    with multiprocess.locked(path, exclusive=False):  # no worker's files are folded while they are read
        return generate_latest(registry)


#: headers a reverse proxy adds: a request that carries one came through a proxy, whose address is not the client's
PROXY_HEADERS = ("X-Forwarded-For", "Forwarded", "X-Real-IP")


def proxied() -> bool:
    """A request forwarded by a reverse proxy: its address is the proxy's (loopback), not the client's, so it is
    refused whatever the address (a misconfigured proxy does not open /metrics to the internet)."""
    return any(name in request.headers for name in PROXY_HEADERS)


def scrape() -> Response:
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if not allowed(request.remote_addr, allowed_networks(app)) or proxied():
        abort(404)
    response = Response(exposition(read_figures(app)), status=200, content_type=CONTENT_TYPE)
    response.headers["Cache-Control"] = "no-store"
    return response


def _started() -> None:
    g.ccm_request_started = time.perf_counter()


def _answered(response: Response) -> Response:
    started = g.pop("ccm_request_started", None)
    if started is not None:
        rule = request.url_rule
        count_request(rule.rule if rule is not None else UNMATCHED, request.method, response.status_code,
                      time.perf_counter() - started)
    return response


def init_request_metrics(app: Flask) -> None:
    """Time every request: call before anything else adds a ``before_request`` hook, so the time includes
    authentication and the session check (``after_request`` hooks run in reverse: this one runs last)."""
    app.before_request(_started)
    app.after_request(_answered)
    app.add_url_rule("/metrics", "metrics", scrape, methods=["GET"])
