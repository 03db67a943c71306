"""Case data through the API: every encrypted case column reads back as written, is stored as ciphertext, and a
copy of the database (the SQLite file and WAL, or a pg_dump) shows none of it, while names and references (in
clear by design, for search) are there. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

from node.at_rest.rotation import encrypted_columns
from node.cases.models import IntakeSection
from node.migrate import target_metadata
from tests.at_rest.conftest import found, raw_bytes
from tests.cases.casedata import Staff, create_case, full_case, if_match

pytestmark = pytest.mark.usefixtures("partners")

SECRETS = {
    "health": "Asthma since 2019, needs an inhaler every night",
    "family": "Separated from an abusive husband",
    "contact_notes": "Never call before noon: night shifts",
    "household": "Zeynepxyz",
    "child_views": "Wants to live with grandmother Fatimaxyz in Tuzla",
    "best_interests": "Return to the grandmother serves the child best",
    "guardian": "Guardian Karinxyz Lindqvist",
    "stage_notes": "Birth certificate lost in the flood",
    "plan": "Trauma counselling booked",
    "intervention_notes": "Psychiatric follow-up twice a month",
    "provider": "Tuzla mental health centre",
    "note": "Panic attacks after the hearing",
    "withdrawal": "Afraid her brother will find out",
}
NAMES = ("Ahmedxyz Ali", "Al-Jubouri")


def _case_with_everything(client: FlaskClient, counsellor: Staff) -> tuple[str, str, list[str]]:
    body = full_case()
    body["returnee"]["given_names"] = NAMES[0]
    body["returnee"]["date_of_birth"] = "2011-05-05"  # a child: safeguards apply
    body["returnee"]["contact"]["notes"] = SECRETS["contact_notes"]
    body["household"][0]["given_names"] = SECRETS["household"]
    body["intake"]["health"]["text"] = SECRETS["health"]
    body["intake"]["family"]["text"] = SECRETS["family"]
    body["plan"]["milestones"][0]["title"] = SECRETS["plan"]
    case = create_case(client, counsellor, body)
    cid = case["id"]
    base = f"/api/v1/cases/{cid}"
    answers = [json.dumps(case, ensure_ascii=False)]

    def ok(response) -> None:  # type: ignore[no-untyped-def]
        assert response.status_code in (200, 201), response.get_json()
        answers.append(json.dumps(response.get_json(), ensure_ascii=False))

    ok(client.put(f"{base}/child-safeguards", headers=if_match(counsellor, 0), json={
        "guardian": {"name": SECRETS["guardian"], "relation": "appointed guardian", "organisation": "Överförmyndaren"},
        "guardian_consent_at": "2026-11-20T10:00:00Z", "child_views": SECRETS["child_views"],
        "best_interests_outcome": SECRETS["best_interests"], "assessed_at": "2026-11-21T14:00:00Z",
        "assessed_by": "Social services"}))
    ok(client.patch(f"{base}/stages/documents", headers=if_match(counsellor, 1),
                    json={"status": "in_progress", "notes": SECRETS["stage_notes"]}))
    ok(client.post(f"{base}/interventions", headers=counsellor.headers,
                   json={"kind": "health", "provider": SECRETS["provider"], "notes": SECRETS["intervention_notes"]}))
    ok(client.post(f"{base}/notes", headers=counsellor.headers, json={"text": SECRETS["note"]}))
    consent = client.post(f"{base}/consents", headers=counsellor.headers, json={
        "recipients": ["ba.cldd-sarajevo"], "categories": ["identity", "plan"], "purpose": "reintegration_support",
        "method": "written_signature", "valid_until": "2027-06-30", "language": "sv"}).get_json()
    ok(client.post(f"{base}/consents/{consent['id']}/withdraw", headers=counsellor.headers,
                   json={"reason": SECRETS["withdrawal"]}))
    return cid, case["reference"], answers


def test_case_columns_round_trip_encrypted_and_absent_from_a_copy(client, counsellor, engine: sa.Engine) -> None:
    cid, reference, answers = _case_with_everything(client, counsellor)
    base = f"/api/v1/cases/{cid}"
    for path in ("", "/child-safeguards", "/stages", "/interventions", "/notes", "/consents", "/plan", "/household",
                 "/intake/health", "/intake/family"):
        response = client.get(base + path, headers=counsellor.headers)
        assert response.status_code == 200, path
        answers.append(json.dumps(response.get_json(), ensure_ascii=False))
    read_back = "\n".join(answers)
    for name, text in SECRETS.items():
        assert text in read_back, f"{name} did not come back through the API"

    with engine.connect() as conn:  # what is stored is ciphertext, in every encrypted column that has a value
        for spec in encrypted_columns(target_metadata()):
            column = sa.cast(sa.column(spec.column), sa.Text) if spec.kind == "json" else sa.column(spec.column)
            for (value,) in conn.execute(sa.select(column).select_from(sa.table(spec.table))
                                         .where(sa.column(spec.column).is_not(None))):
                raw = value if isinstance(value, str) else bytes(value).decode("latin-1")
                assert raw.lstrip('"').startswith("ccm1:") or raw == "null", spec.context
        section = conn.execute(sa.select(IntakeSection.text).where(IntakeSection.case_id == cid,
                                                                   IntakeSection.section == "health")).scalar_one()
        assert section == SECRETS["health"]  # the column type decrypts through the node's engine

    copy = raw_bytes(engine)
    leaked = [name for name, text in SECRETS.items() if found(copy, text)]
    assert leaked == [], f"in clear in a copy of the database: {leaked}"
    for clear in (*NAMES, reference):  # identity data stays searchable, by design
        assert found(copy, clear), clear
    search = client.get("/api/v1/cases", query_string={"q": "ahmedxyz"}, headers=counsellor.headers).get_json()
    assert [c["id"] for c in search["items"]] == [cid]
