"""Consent across the chain over real HTTP between three real node processes, on SQLite and on PostgreSQL:
GI Göteborg hands a case to CLDD Sarajevo, which forwards it to CLDD Baghdad (both named in the returnee's
consent); progress from Baghdad reaches Göteborg through Sarajevo; the custody is verified on every node
(``ccm-node custody show``); the returnee withdraws consent at Göteborg; both holders erase and confirm, the
origin's disclosure record shows both confirmed, and neither holder has any personal data of the returnee left
(every table searched, and on SQLite the bytes of the database file and its write-ahead log)."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from node.config import default_database_url
from tests.e2e.test_story import FAST, ok, wait
from tests.harness import Network, NodeProcess

pytestmark = pytest.mark.slow
AGREEMENT = "dsa-cldd-chain-2026"
CASE = {
    "returnee": {"given_names": "Yasmin", "family_name": "Al-Rubaie", "given_names_native": "ياسمين",
                 "family_name_native": "الربيعي", "date_of_birth": "1987-06-21", "languages": ["ar", "sv"],
                 "contact": {"phone": "+46 70 765 43 21", "address": "Kungsgatan 12"}},
    "destination_country": "IQ", "destination_locality": "Baghdad",
    "intake": {"work": {"text": "Pharmacist assistant for eight years.", "occupations": ["pharmacy"]},
               "wishes": {"text": "Open a small pharmacy in Karrada."}},
    "plan": {"end_date": "2027-09-30", "milestones": [{"title": "Licence", "due_date": "2027-03-31"}]},
}
PERSONAL = ("Yasmin", "Al-Rubaie", "ياسمين", "الربيعي", "1987-06-21", "Kungsgatan", "+46707654321", "Karrada")


def _leftovers(node: NodeProcess) -> list[str]:
    """Personal values of the returnee still found on a node: in any table, or in its SQLite files."""
    url = node.database_url or default_database_url(node.data_dir)
    engine = sa.create_engine(url)
    found = []
    try:
        with engine.connect() as conn:
            for table in sa.inspect(engine).get_table_names():
                for row in conn.execute(sa.text(f'SELECT * FROM "{table}"')):  # names from the inspector
                    text = " ".join(v.decode("latin-1") if isinstance(v, bytes) else str(v) for v in row)
                    found += [f"{table}: {value}" for value in PERSONAL if value in text]
    finally:
        engine.dispose()
    if url.startswith("sqlite"):
        path = Path(url.removeprefix("sqlite:///"))
        for file in (path, Path(f"{path}-wal")):
            if file.exists():
                raw = file.read_bytes()
                found += [f"{file.name}: {value}" for value in PERSONAL if value.encode("utf-8") in raw]
    return found


def test_forward_progress_withdrawal_and_erasure_across_three_nodes(network: Network) -> None:
    gbg = network.add("se.gi-goteborg", "Göteborgs-Initiativet")
    sarajevo = network.add("ba.cldd-sarajevo", "CLDD Sarajevo")
    baghdad = network.add("iq.cldd-baghdad", "CLDD Baghdad")
    anna = gbg.user("anna.lindqvist", "counsellor", team="gbg")
    emina = sarajevo.user("emina.kovac", "adviser", team="sarajevo")
    haris = sarajevo.user("haris.begic", "counsellor", team="sarajevo")
    zainab = baghdad.user("zainab.ali", "adviser", team="baghdad")
    for node in (gbg, sarajevo, baghdad):
        node.start()
        node.spawn("deliver", *FAST)
    network.connect(gbg, sarajevo, AGREEMENT)
    network.connect(sarajevo, baghdad, AGREEMENT)

    case = ok(gbg, "POST", "/cases", anna, 201, json=CASE)
    consent = ok(gbg, "POST", f"/cases/{case['id']}/consents", anna, 201, json={
        "recipients": ["ba.cldd-sarajevo", "iq.cldd-baghdad"], "categories": ["identity", "contact", "work",
                                                                             "wishes", "plan"],
        "purpose": "reintegration_support", "method": "written_signature", "valid_until": "2027-12-31",
        "language": "ar"})
    ok(gbg, "POST", f"/cases/{case['id']}/handovers", anna, 202,
       json={"recipient": "ba.cldd-sarajevo", "consent_id": consent["id"]})
    waiting = wait("the handover at Sarajevo", lambda: ok(sarajevo, "GET", "/handovers?direction=incoming",
                                                          emina)["items"])
    middle = ok(sarajevo, "POST", f"/handovers/{waiting[0]['id']}/accept", emina, 201, json={})["case_id"]
    ok(sarajevo, "POST", f"/cases/{middle}/forwards", haris, 202, json={"recipient": "iq.cldd-baghdad"})
    arrived = wait("the forward at Baghdad", lambda: ok(baghdad, "GET", "/handovers?direction=incoming",
                                                        zainab)["items"])
    last = ok(baghdad, "POST", f"/handovers/{arrived[0]['id']}/accept", zainab, 201, json={})["case_id"]
    ok(baghdad, "POST", f"/cases/{last}/progress", zainab, 201, json={"note": "Met on arrival; licence filed."})

    def progress_at_origin() -> list[dict[str, object]]:
        events = ok(gbg, "GET", f"/cases/{case['id']}/timeline", anna)["items"]
        return [e for e in events if e["kind"] == "partner.progress"]

    [relayed] = wait("progress from Baghdad at Göteborg", progress_at_origin)
    assert relayed["verified"] and relayed["source"] == "ba.cldd-sarajevo"
    wait("the custody notice at Göteborg", lambda: ok(gbg, "GET", f"/cases/{case['id']}/disclosures",
                                                      anna)["items"][0]["onward"])
    for node, case_id in ((gbg, case["id"]), (sarajevo, middle), (baghdad, last)):
        shown = node.cli("custody", "show", case_id)
        assert shown.returncode == 0 and shown.stdout.strip().endswith("verified"), shown.stdout

    withdrawn = ok(gbg, "POST", f"/cases/{case['id']}/consents/{consent['id']}/withdraw", anna,
                   json={"reason": "The returnee asked us to stop sharing."})
    assert withdrawn["status"] == "withdrawn"

    def all_confirmed() -> bool:
        [item] = ok(gbg, "GET", f"/cases/{case['id']}/disclosures", anna)["items"]
        return item["erasure"] == "confirmed" and len(item["erasure_requests"]) == 2

    wait("both holders' erasure confirmed at Göteborg", all_confirmed)
    for node in (sarajevo, baghdad):
        assert wait(f"no personal data left at {node.node_id}", lambda n=node: not _leftovers(n) or None,
                    seconds=10) is True
    assert ok(gbg, "GET", f"/cases/{case['id']}", anna)["returnee"]["given_names"] == "Yasmin"  # origin keeps it


def test_partial_withdrawal_revocation_and_closing_between_two_nodes(network: Network) -> None:
    gbg = network.add("se.gi-goteborg", "Göteborgs-Initiativet")
    sarajevo = network.add("ba.cldd-sarajevo", "CLDD Sarajevo")
    anna = gbg.user("anna.lindqvist", "counsellor", team="gbg")
    emina = sarajevo.user("emina.kovac", "adviser", team="sarajevo")
    for node in (gbg, sarajevo):
        node.start()
        node.spawn("deliver", *FAST)
    network.connect(gbg, sarajevo, AGREEMENT)

    def handed_over(body: dict[str, object]) -> tuple[str, str, str, str]:
        case = ok(gbg, "POST", "/cases", anna, 201, json=body)
        consent = ok(gbg, "POST", f"/cases/{case['id']}/consents", anna, 201, json={
            "recipients": ["ba.cldd-sarajevo"], "categories": ["identity", "contact", "work", "wishes", "plan"],
            "purpose": "reintegration_support", "method": "written_signature", "valid_until": "2027-12-31",
            "language": "ar"})
        sent = ok(gbg, "POST", f"/cases/{case['id']}/handovers", anna, 202,
                  json={"recipient": "ba.cldd-sarajevo", "consent_id": consent["id"]})
        waiting = wait("the handover at Sarajevo", lambda: [h for h in ok(
            sarajevo, "GET", "/handovers?direction=incoming&status=pending", emina)["items"]
            if h["handover_id"] == sent["handover_id"]])
        local = ok(sarajevo, "POST", f"/handovers/{waiting[0]['id']}/accept", emina, 201, json={})["case_id"]
        return case["id"], consent["id"], sent["id"], local

    # a partial withdrawal: the wishes go, the rest of the case stays
    case_id, consent_id, _, local = handed_over(CASE)
    ok(gbg, "POST", f"/cases/{case_id}/consents/{consent_id}/withdraw", anna,
       json={"reason": "Not the wishes.", "scope": {"categories": ["wishes"]}})
    wait("the partial erasure confirmed", lambda: ok(gbg, "GET", f"/cases/{case_id}/disclosures", anna)
         ["items"][0]["erasure"] == "confirmed")
    intake = {s["section"]: s for s in ok(sarajevo, "GET", f"/cases/{local}/intake", emina)["items"]}
    assert intake["wishes"]["text"] is None and intake["work"]["text"].startswith("Pharmacist")
    assert ok(sarajevo, "GET", f"/cases/{local}", emina)["returnee"]["given_names"] == "Yasmin"

    # closing, from the receiving side: the origin's timeline shows it
    ok(sarajevo, "POST", f"/cases/{local}/close", emina, json={"outcome": {"code": "plan_completed"}})
    wait("the closing at Göteborg", lambda: [e for e in ok(gbg, "GET", f"/cases/{case_id}/timeline", anna)["items"]
                                             if e["kind"] == "partner.case_closed"])

    # a handover sent in error is revoked: the partner erases it and confirms
    other = {**CASE, "returnee": {**CASE["returnee"], "given_names": "Samir"}}  # type: ignore[dict-item]
    case_2, _, handover_2, local_2 = handed_over(other)
    ok(gbg, "POST", f"/handovers/{handover_2}/revoke", anna, json={"reason": "Sent to the wrong office."})
    wait("the revocation confirmed", lambda: ok(gbg, "GET", f"/cases/{case_2}/disclosures", anna)
         ["items"][0]["erasure"] == "confirmed")
    assert "parked" not in gbg.cli("queue").stdout + sarajevo.cli("queue").stdout  # the answer that crossed
    # the revocation was taken, not refused
    assert sarajevo.api("GET", f"/cases/{local_2}", emina).status_code == 404
