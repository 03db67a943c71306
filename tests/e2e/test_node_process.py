"""A node as a real gunicorn process: it starts, serves its API with a token, and survives SIGKILL."""

from __future__ import annotations

from tests.harness import Network


def test_node_serves_cases_over_http_and_survives_sigkill(network: Network) -> None:
    gbg = network.add("se.gi-goteborg", "Göteborgs-Initiativet")
    token = gbg.user("anna", "counsellor", team="gbg")
    gbg.start()
    body = {"returnee": {"given_names": "Layla", "family_name": "Hassan", "date_of_birth": "1991-07-30"},
            "destination_country": "IQ"}
    created = gbg.api("POST", "/cases", token, json=body)
    assert created.status_code == 201, created.text
    gbg.kill()
    gbg.start()
    got = gbg.api("GET", f"/cases/{created.json()['id']}", token)
    assert got.status_code == 200 and got.json()["returnee"]["family_name"] == "Hassan"
    assert gbg.api("GET", "/cases", "ccm_1_wrong").status_code == 401
    assert gbg.cli("audit", "verify").returncode == 0
