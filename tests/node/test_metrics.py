"""``/metrics`` (node/observability/metrics.py) through the Flask client, on SQLite and PostgreSQL: requests by
route, inbox refusals, the outbox and erasure figures read from the database, who may scrape, and that nothing
personal is in it. The instruments belong to the test process (no gunicorn here), so counters are compared
before and after."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from node.clock import FakeClock
from node.config import ConfigError, load_config, write_config
from node.db import make_sessionmaker
from node.observability.figures import exchange_figures
from node.observability.metrics import allowed
from node.observability.multiprocess import ENV, fold
from tests.exchange.dashboard_rows import SARAJEVO, STOCKHOLM, seed
from tests.node.test_health import database_gone

__all__ = ["database_gone"]  # the fixture, shared with the health tests

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def scrape(client: FlaskClient, address: str = "127.0.0.1") -> Samples:
    answer = client.get("/metrics", environ_base={"REMOTE_ADDR": address})
    assert answer.status_code == 200, answer.text
    assert answer.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return parse(answer.text)


def test_requests_are_counted_by_route_never_by_path(client: FlaskClient, make_user: Callable[..., Any],
                                                     auth_headers: Callable[[str], dict[str, str]]) -> None:
    route = "/api/v1/cases/<case_id>"
    before = scrape(client)
    _, token = make_user("counsellor", team="gbg", username="maria.sundberg")
    case_id = str(uuid.uuid4())
    for _ in range(3):
        assert client.get(f"/api/v1/cases/{case_id}", headers=auth_headers(token)).status_code == 404
    after_answer = client.get("/metrics")
    after = parse(after_answer.text)
    key = {"route": route, "method": "GET", "status": "404"}
    assert value(after, "ccm_http_requests_total", **key) - value(before, "ccm_http_requests_total", **key) == 3
    count = "ccm_http_request_duration_seconds_count"
    assert value(after, count, route=route) - value(before, count, route=route) == 3
    assert value(after, "ccm_http_request_duration_seconds_bucket", route=route, le="+Inf") >= 3
    assert case_id not in after_answer.text and "maria.sundberg" not in after_answer.text
    client.get(f"/no/such/{case_id}")
    assert case_id not in client.get("/metrics").text  # a path no rule matches is "(unmatched)"


def test_inbox_refusals_are_counted_by_code(client: FlaskClient) -> None:
    before = value(scrape(client), "ccm_inbox_refusals_total", code="malformed")
    answer = client.post("/federation/v1/inbox", data=b"not an envelope", content_type="application/json")
    assert answer.status_code == 400 and answer.get_json()["code"] == "malformed"
    assert value(scrape(client), "ccm_inbox_refusals_total", code="malformed") == before + 1


def test_outbox_and_erasures_are_read_from_the_database(client: FlaskClient, engine: sa.Engine, clock: FakeClock,
                                                        partners: list[str]) -> None:
    seed(engine, clock.now())  # tests/exchange/dashboard_rows.py: known messages and erasure requests
    answer = client.get("/metrics")
    samples = parse(answer.text)
    assert value(samples, "ccm_database_up") == 1
    # Sarajevo: 2 delivered, 2 queued, 1 undeliverable, one attempt each; Stockholm: 1 parked
    assert value(samples, "ccm_outbox_depth", partner=SARAJEVO) == 2
    assert value(samples, "ccm_outbox_given_up", partner=SARAJEVO) == 1
    assert value(samples, "ccm_delivery_attempts_total", partner=SARAJEVO) == 5
    assert value(samples, "ccm_delivery_failures_total", partner=SARAJEVO) == 3
    assert value(samples, "ccm_outbox_given_up", partner=STOCKHOLM) == 1
    assert value(samples, "ccm_delivery_failures_total", partner=STOCKHOLM) == 1
    assert ("ccm_outbox_depth", frozenset({("partner", "gh.accra-partner")})) in samples  # every partner, 0 too
    assert value(samples, "ccm_partner_active", partner=SARAJEVO) == 1
    assert value(samples, "ccm_erasures_pending") == 2 and value(samples, "ccm_erasures_overdue") == 1
    with engine.connect() as conn:  # the same figures by hand
        waiting = conn.execute(sa.text("SELECT count(*) FROM outbound_messages o JOIN partners p ON "
                                       "p.id = o.partner_id WHERE p.node_id = :p AND o.status IN "
                                       "('queued', 'sending')"), {"p": SARAJEVO}).scalar_one()
        pending = conn.execute(sa.text("SELECT count(*) FROM erasure_requests WHERE confirmed_at IS NULL")).scalar_one()
    assert (waiting, pending) == (2, 2)
    for personal in ("Given1", "Family1", "GI-2026-0001", "dash.gbg", "consent1"):  # names, references, users
        assert personal not in answer.text


def test_the_figures_service_on_an_empty_node(app: Flask, engine: sa.Engine, clock: FakeClock) -> None:
    from datetime import timedelta

    with make_sessionmaker(engine)() as session:
        figures = exchange_figures(session, clock.now(), timedelta(hours=72))
    assert figures.partners == [] and (figures.erasures_pending, figures.erasures_overdue) == (0, 0)


@pytest.mark.parametrize("address", ["127.0.0.1", "::1", "::ffff:127.0.0.1"])
def test_loopback_may_scrape_by_default(client: FlaskClient, address: str) -> None:
    scrape(client, address)


@pytest.mark.parametrize("address", ["10.1.2.3", "192.168.1.20", "2001:db8::1", "", "unix:/run/x"])
def test_other_addresses_get_a_404_as_if_there_were_nothing(client: FlaskClient, address: str) -> None:
    answer = client.get("/metrics", environ_base={"REMOTE_ADDR": address})
    assert answer.status_code == 404
    assert "ccm_" not in answer.text
    assert answer.get_json()["code"] == "not_found"


@pytest.mark.parametrize("header", ["X-Forwarded-For", "Forwarded", "X-Real-IP"])
def test_a_request_through_a_reverse_proxy_gets_a_404_even_from_loopback(client: FlaskClient, header: str) -> None:
    answer = client.get("/metrics", headers={header: "203.0.113.9"}, environ_base={"REMOTE_ADDR": "127.0.0.1"})
    assert answer.status_code == 404 and "ccm_" not in answer.text


def test_allowed_networks() -> None:
    import ipaddress

    nets = (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("fd00::/8"))
    assert allowed("10.9.8.7", nets) and allowed("::ffff:10.0.0.1", nets) and allowed("fd12::1", nets)
    assert not allowed("127.0.0.1", nets) and not allowed("11.0.0.1", nets) and not allowed(None, nets)
    assert not allowed("not an address", nets) and not allowed("10.0.0.1", ())


def test_a_database_that_does_not_answer_is_reported_not_raised(database_gone: Flask) -> None:
    database_gone.test_client().get("/healthz")
    answer = database_gone.test_client().get("/metrics")
    assert answer.status_code == 200
    samples = parse(answer.text)
    assert value(samples, "ccm_database_up") == 0
    assert not any(name == "ccm_outbox_depth" for name, _ in samples)
    assert "ccm_http_requests_total" in {name for name, _ in samples}  # the process's own counts still come


def test_config_reads_metrics_allow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CCM_DATABASE_URL", raising=False)
    write_config(tmp_path, "se.gi-goteborg", "Göteborgs-Initiativet", "http://127.0.0.1:8701/")
    assert load_config(tmp_path).metrics_allow == ("127.0.0.1/32", "::1/128")
    path = tmp_path / "node.toml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text + '\n[metrics]\nallow = ["10.0.0.0/8"]\n', encoding="utf-8")
    assert load_config(tmp_path).metrics_allow == ("10.0.0.0/8",)
    for bad in ('"10.0.0.0/8"', '["10.0.0.0/33"]', '["prometheus.local"]'):
        path.write_text(text + f"\n[metrics]\nallow = {bad}\n", encoding="utf-8")
        with pytest.raises(ConfigError, match=r"\[metrics\] allow"):
            load_config(tmp_path)


#: a gunicorn worker's life in short: count some requests in multiprocess mode, then exit
WORKER = """
import sys
from node.observability.instruments import count_inbox_refusal, count_request
for n in range(int(sys.argv[1])):
    count_request("/healthz", "GET", 200, 0.004 * n)
count_inbox_refusal("malformed")
"""


def test_an_exited_workers_counts_are_folded_into_the_archive_and_the_sums_stay(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    for n in (3, 5, 7):
        subprocess.run([sys.executable, "-c", WORKER, str(n)], env={**os.environ, ENV: str(tmp_path)}, cwd=root,
                       check=True, timeout=60)

    def exposition() -> bytes:
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(tmp_path))
        return generate_latest(registry)

    pids = {int(f.stem.split("_")[1]) for f in tmp_path.glob("counter_*.db")}
    assert len(pids) == 3
    before = parse(exposition().decode())
    assert value(before, "ccm_http_requests_total", route="/healthz", method="GET", status="200") == 15
    for pid in sorted(pids):
        fold(tmp_path, pid)
    assert parse(exposition().decode()) == pytest.approx(before)  # every series, its value the same
    assert sorted(f.name for f in tmp_path.glob("*.db")) == ["counter_archive.db", "histogram_archive.db"]
