"""Property tests: whatever a client sends, the case API answers 2xx or 4xx, never a 500, and the schemas
either load a body or raise their validation error, nothing else."""

from __future__ import annotations

import datetime as dt
import json
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError

from node.cases.schemas import (
    CaseCreateSchema,
    CasePatchSchema,
    ConsentCreateSchema,
    InterventionCreateSchema,
    ProgressNoteCreateSchema,
    SafeguardsWriteSchema,
)
from node.cases.search import REFERENCE_RE, words
from tests.cases.casedata import create_case, minimal_case
from tests.json_strategies import DATES, JSON, SCALARS, TEXT, maybe

RETURNEE = maybe(
    {
        "given_names": TEXT,
        "family_name": TEXT,
        "given_names_native": TEXT,
        "family_name_native": TEXT,
        "date_of_birth": DATES,
        "sex_or_gender": TEXT,
        "nationality": st.sampled_from(["SE", "ba", "XK", "QQ"]),
        "languages": st.lists(st.sampled_from(["sv", "ar-IQ", "bs-Latn-BA", "x", "tw"]), max_size=3),
        "contact": maybe({"phone": TEXT, "email": TEXT, "address": TEXT, "notes": TEXT}),
    }
)
CASE_BODY = maybe(
    {
        "returnee": RETURNEE,
        "destination_country": st.sampled_from(["BA", "iq", "GH", "ZZ", ""]),
        "destination_locality": TEXT,
        "destination_partner": st.sampled_from(["ba.cldd-sarajevo", "x"]),
        "assigned_user_id": st.integers(),
        "team": TEXT,
        "household": st.lists(
            maybe(
                {
                    "relation": st.sampled_from(["child", "spouse", "x"]),
                    "date_of_birth": DATES,
                    "travelling": SCALARS,
                }
            ),
            max_size=3,
        ),
        "intake": st.dictionaries(
            st.sampled_from(["family", "health", "work", "hobbies"]),
            maybe(
                {
                    "text": TEXT,
                    "education_level": st.integers(-1, 9),
                    "occupations": st.lists(TEXT, max_size=3),
                }
            ),
            max_size=3,
        ),
        "plan": maybe(
            {
                "end_date": DATES,
                "milestones": st.lists(
                    maybe({"title": TEXT, "due_date": DATES, "done": SCALARS}), max_size=3
                ),
            }
        ),
    }
)
CONSENT_BODY = maybe(
    {
        "recipients": st.lists(st.sampled_from(["ba.cldd-sarajevo", "Not A Node"]), max_size=3),
        "categories": st.lists(st.sampled_from(["identity", "health", "plan", "bogus"]), max_size=4),
        "purpose": st.sampled_from(["reintegration_support", "follow_up", "marketing"]),
        "method": st.sampled_from(["written_signature", "oral_witnessed", "shout"]),
        "valid_until": DATES,
        "language": TEXT,
        "interpreter": TEXT,
        "given_at": TEXT,
    }
)
INTERVENTION_BODY = maybe(
    {
        "kind": st.sampled_from(["job", "housing", "magic"]),
        "amount": SCALARS,
        "currency": st.sampled_from(["SEK", "bam", "XXX", ""]),
        "start_date": DATES,
        "end_date": DATES,
        "status": TEXT,
        "provider": TEXT,
    }
)
NAMES = st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=40)
VALID_CASE = st.fixed_dictionaries(
    {
        "returnee": st.fixed_dictionaries(
            {
                "given_names": NAMES,
                "family_name": NAMES,
                "date_of_birth": st.dates(dt.date(1900, 1, 1), dt.date(2026, 11, 23)).map(dt.date.isoformat),
            },
            optional={"given_names_native": NAMES, "family_name_native": NAMES},
        ),
        "destination_country": st.sampled_from(["BA", "IQ", "GH", "XK"]),
    }
)
SETTINGS = settings(
    max_examples=40, deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@SETTINGS
@given(body=st.one_of(VALID_CASE, CASE_BODY, JSON))
def test_creating_a_case_never_fails_with_500(client, counsellor, body):
    response = client.post(
        "/api/v1/cases", data=json.dumps(body), content_type="application/json", headers=counsellor.headers
    )
    assert response.status_code in (201, 400, 422), response.get_json()
    if response.status_code == 201:
        case = response.get_json()
        assert client.get(f"/api/v1/cases/{case['id']}", headers=counsellor.headers).status_code == 200
    else:
        assert response.mimetype == "application/problem+json"


@pytest.mark.usefixtures("partners")  # some consents name a partner and are recorded
@SETTINGS
@given(
    consent=st.one_of(CONSENT_BODY, JSON),
    intervention=st.one_of(INTERVENTION_BODY, JSON),
    patch=st.one_of(maybe({"status": TEXT, "returnee": RETURNEE, "version": SCALARS}), JSON),
)
def test_writing_records_never_fails_with_500(client, counsellor, consent, intervention, patch):
    case = create_case(client, counsellor, minimal_case())
    base = f"/api/v1/cases/{case['id']}"
    for method, path, body in (
        ("post", "/consents", consent),
        ("post", "/interventions", intervention),
        ("patch", "", patch),
        ("put", "/child-safeguards", patch),
        ("put", "/plan", patch),
        ("post", "/notes", patch),
    ):
        response = getattr(client, method)(
            base + path,
            data=json.dumps(body),
            content_type="application/json",
            headers={**counsellor.headers, "If-Match": '"1"'},
        )
        assert response.status_code in (200, 201, 400, 409, 412, 422, 428), (path, response.get_json())


@settings(max_examples=150, deadline=None)
@given(body=st.one_of(CASE_BODY, JSON), other=JSON)
def test_schemas_load_or_raise_validation_errors_only(body, other):
    for schema, data in (
        (CaseCreateSchema(), body),
        (CasePatchSchema(), body),
        (ConsentCreateSchema(), other),
        (InterventionCreateSchema(), other),
        (ProgressNoteCreateSchema(), other),
        (SafeguardsWriteSchema(), other),
    ):
        try:
            schema.load(data)
        except ValidationError as exc:
            assert isinstance(exc.messages, dict | list)


@SETTINGS
@given(body=VALID_CASE)
def test_a_case_is_found_by_every_name_it_has(client, counsellor, body):
    response = client.post("/api/v1/cases", json=body, headers=counsellor.headers)
    assume(response.status_code == 201)  # e.g. a name of only spaces is refused
    case = response.get_json()
    for name in body["returnee"].values():
        assume(not REFERENCE_RE.fullmatch(name.strip()))
        if name == body["returnee"]["date_of_birth"] or not words(name):
            continue
        found = client.get(f"/api/v1/cases?q={quote(name[:100])}&per_page=100", headers=counsellor.headers)
        assert found.status_code == 200, found.get_json()
        assert case["id"] in [item["id"] for item in found.get_json()["items"]], name


ODD_SEGMENT = st.one_of(st.sampled_from(["\x00", "%00", "x" * 80, "health", "intake", "a b"]), TEXT)
READS = ["", "/intake", "/intake/{x}", "/plan", "/stages", "/stages/{x}", "/child-safeguards", "/consents",
         "/consents/{x}", "/interventions", "/interventions/{x}", "/notes", "/timeline", "/household"]
WRITES = [("put", "/intake/{x}"), ("patch", "/stages/{x}"), ("patch", "/interventions/{x}"),
          ("patch", "/household/{x}"), ("delete", "/household/{x}")]


def _segment(value: str) -> str:
    return quote(value.encode("utf-8", "surrogatepass"), safe="") or "x"


@SETTINGS
@example(odd="\x00", odd_case=False, query={"q": "\x00"}, body=None)  # were 500s on PostgreSQL
@given(odd=ODD_SEGMENT, odd_case=st.booleans(), query=st.dictionaries(
    st.sampled_from(["q", "reference", "status", "stage", "stage_status", "destination", "child", "page",
                     "per_page"]), TEXT, max_size=3), body=st.one_of(JSON, maybe({"text": TEXT, "status": TEXT})))
def test_odd_ids_and_parameters_never_fail_with_500(client, counsellor, odd, odd_case, query, body):
    case = create_case(client, counsellor, minimal_case())
    base = f"/api/v1/cases/{_segment(odd) if odd_case else case['id']}"
    headers = {**counsellor.headers, "If-Match": '"1"'}
    for path in READS:
        response = client.get(base + path.replace("{x}", _segment(odd)), headers=counsellor.headers)
        assert response.status_code < 500, (path, response.get_json())
    for method, path in WRITES:
        response = getattr(client, method)(base + path.replace("{x}", _segment(odd)), data=json.dumps(body),
                                           content_type="application/json", headers=headers)
        assert response.status_code < 500, (path, response.get_json())
    encoded = "&".join(f"{k}={_segment(v)}" for k, v in query.items())
    response = client.get(f"/api/v1/cases?{encoded}", headers=counsellor.headers)
    assert response.status_code in (200, 422), response.get_json()
