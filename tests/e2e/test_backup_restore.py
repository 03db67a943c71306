"""Backup and restore with real node processes: Göteborg hands a case to Sarajevo,
which accepts it; Sarajevo is backed up while it runs; a progress update queued at the backup is delivered after
it; the returnee withdraws consent and Sarajevo erases and confirms; Sarajevo is stopped and restored from the
backup taken before the erasure. The erasure holds (made again by the restore, before the node serves); Sarajevo
sends Göteborg nothing until its delivery worker has resynced with Göteborg (``node/exchange/resync``): Göteborg
lists what it received since the backup (the progress update, the confirmation) and sends again what it
delivered (the handover, the withdrawal, taken as duplicates or answered without a second confirmation being
counted), and a handover Göteborg sent while Sarajevo was down arrives once. Then the exchange goes on both ways.
On SQLite only, to keep the suite's time: tests/backup runs the same restore and resync on PostgreSQL
in-process."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from node.config import default_database_url
from node.db import normalise_url
from tests.e2e.test_consent_chain import CASE, PERSONAL
from tests.e2e.test_story import FAST, ok, wait
from tests.harness import Network, NodeProcess

pytestmark = pytest.mark.slow
AGREEMENT = "dsa-gi-cldd-2026"
CONSENT = {"recipients": ["ba.cldd-sarajevo"], "categories": ["identity", "contact", "work", "wishes", "plan"],
           "purpose": "reintegration_support", "method": "written_signature", "valid_until": "2027-12-31",
           "language": "ar"}


def database_url(node: NodeProcess) -> str:
    return normalise_url(node.database_url or default_database_url(node.data_dir))


def count(node: NodeProcess, sql: str) -> int:
    """One count from a node's database (read directly: ids and statuses only)."""
    engine = sa.create_engine(database_url(node))
    try:
        with engine.connect() as conn:
            return int(conn.scalar(sa.text(sql)) or 0)
    finally:
        engine.dispose()


def leftovers(node: NodeProcess) -> list[str]:
    """The returnee's personal values still on a node: in any table, or in the bytes of its SQLite files."""
    url = database_url(node)
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
                found += [f"{file.name}: {v}" for v in PERSONAL if v.encode("utf-8") in file.read_bytes()]
    return found


@pytest.mark.parametrize("network", ["sqlite"], indirect=True)  # PostgreSQL: tests/backup (in-process)
def test_restore_keeps_the_erasure_and_the_network_delivers_the_rest_once(network: Network,
                                                                         tmp_path: Path) -> None:
    gbg = network.add("se.gi-goteborg", "Göteborgs-Initiativet")
    sarajevo = network.add("ba.cldd-sarajevo", "CLDD Sarajevo")
    anna = gbg.user("anna.lindqvist", "counsellor", team="gbg")
    emina = sarajevo.user("emina.kovac", "adviser", team="sarajevo")
    for node in (gbg, sarajevo):
        node.start()
    gbg.spawn("deliver", *FAST)
    worker = sarajevo.spawn("deliver", *FAST)
    network.connect(gbg, sarajevo, AGREEMENT)

    def hand_over(body: dict[str, Any]) -> tuple[str, str, str]:
        case = ok(gbg, "POST", "/cases", anna, 201, json=body)
        consent = ok(gbg, "POST", f"/cases/{case['id']}/consents", anna, 201, json=CONSENT)
        sent = ok(gbg, "POST", f"/cases/{case['id']}/handovers", anna, 202,
                  json={"recipient": "ba.cldd-sarajevo", "consent_id": consent["id"]})
        return case["id"], consent["id"], sent["handover_id"]

    def arrived(handover_id: str) -> list[dict[str, object]]:
        return [h for h in ok(sarajevo, "GET", "/handovers?direction=incoming", emina)["items"]
                if h["handover_id"] == handover_id]

    def progress_at_gbg(case_id: str) -> list[dict[str, object]]:
        return [e for e in ok(gbg, "GET", f"/cases/{case_id}/timeline", anna)["items"]
                if e["kind"] == "partner.progress"]

    case_id, consent_id, handover_id = hand_over(CASE)
    [waiting] = wait("the handover at Sarajevo", lambda: arrived(handover_id))
    local = ok(sarajevo, "POST", f"/handovers/{waiting['id']}/accept", emina, 201, json={})["case_id"]
    wait("the acceptance at Göteborg", lambda: ok(gbg, "GET", f"/cases/{case_id}/handovers", anna)["items"][0]
         ["status"] == "accepted")
    sarajevo.stop_process(worker)  # a progress update waits in Sarajevo's outbox while the backup is taken
    ok(sarajevo, "POST", f"/cases/{local}/progress", emina, 201, json={"note": "Met at the office."})

    backup = tmp_path / "sarajevo.ccmbackup"
    made = sarajevo.cli("backup", "create", "--out", str(backup))  # online: the node keeps serving
    assert "written to" in made.stdout and backup.stat().st_mode & 0o077 == 0
    sarajevo.spawn("deliver", *FAST)
    wait("the progress at Göteborg", lambda: progress_at_gbg(case_id))

    ok(gbg, "POST", f"/cases/{case_id}/consents/{consent_id}/withdraw", anna,
       json={"reason": "The returnee asked us to stop sharing."})
    wait("the erasure confirmed at Göteborg", lambda: ok(gbg, "GET", f"/cases/{case_id}/disclosures", anna)
         ["items"][0]["erasure"] == "confirmed")
    assert wait("nothing of the returnee at Sarajevo", lambda: not leftovers(sarajevo) or None, 10) is True

    sarajevo.stop()
    returnee: dict[str, Any] = dict(CASE["returnee"])  # type: ignore[arg-type]
    second_case, _, second_handover = hand_over({**CASE, "returnee": {**returnee, "given_names": "Samir"}})
    restored = sarajevo.cli("backup", "restore", str(backup))
    assert "1 in the journal, 1 made again" in restored.stdout, restored.stdout
    assert leftovers(sarajevo) == []  # erased again before the node serves

    assert "1 partner(s) to resync" in restored.stdout, restored.stdout
    assert count(sarajevo, "SELECT count(*) FROM partners WHERE resync_since IS NOT NULL") == 1

    sarajevo.start()
    sarajevo.spawn("deliver", *FAST)
    wait("Sarajevo resynced with Göteborg", lambda: count(
        sarajevo, "SELECT count(*) FROM partners WHERE resync_since IS NOT NULL") == 0 or None)
    assert len(wait("the handover sent while Sarajevo was down", lambda: arrived(second_handover))) == 1
    wait("Sarajevo's outbox delivered", lambda: count(
        sarajevo, "SELECT count(*) FROM outbound_messages WHERE status <> 'delivered'") == 0 or None)
    wait("Göteborg's outbox delivered", lambda: count(
        gbg, "SELECT count(*) FROM outbound_messages WHERE status <> 'delivered'") == 0 or None)
    assert len(progress_at_gbg(case_id)) == 1  # listed by Göteborg as received: not sent again
    # The confirmation sent before the restore is recorded again at Sarajevo (with Göteborg's receipt, without
    # its content) and the request at Göteborg stays answered once.
    assert count(sarajevo, "SELECT count(*) FROM outbound_messages WHERE type = 'erasure_confirmed' "
                           "AND receipt IS NOT NULL") >= 1
    assert count(gbg, "SELECT count(*) FROM erasure_requests WHERE confirmed_at IS NOT NULL") == 1
    [disclosure] = ok(gbg, "GET", f"/cases/{case_id}/disclosures", anna)["items"]
    assert disclosure["erasure"] == "confirmed" and len(disclosure["erasure_requests"]) == 1
    assert len([e for e in ok(gbg, "GET", f"/cases/{case_id}/timeline", anna)["items"]
                if e["kind"] == "partner.erasure_confirmed"]) == 1
    assert sarajevo.api("GET", f"/cases/{local}", emina).status_code == 404
    assert [f for f in leftovers(sarajevo) if "Yasmin" in f or "ياسمين" in f] == []  # (Samir's case is there)
    assert ok(gbg, "GET", f"/cases/{second_case}/handovers", anna)["items"][0]["status"] == "delivered"

    # The exchange goes on both ways: Sarajevo accepts the second case and reports progress on it.
    [samir] = arrived(second_handover)
    second_local = ok(sarajevo, "POST", f"/handovers/{samir['id']}/accept", emina, 201, json={})["case_id"]
    ok(sarajevo, "POST", f"/cases/{second_local}/progress", emina, 201, json={"note": "Met Samir."})
    wait("the progress on the second case at Göteborg", lambda: progress_at_gbg(second_case))
    assert ok(gbg, "GET", f"/cases/{second_case}/handovers", anna)["items"][0]["status"] == "accepted"
    assert count(sarajevo, "SELECT count(*) FROM outbound_messages WHERE status IN ('parked', 'undeliverable')") \
        == 0
