"""Strict body schemas: the samples load, and everything outside the schema is refused field by field."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol.canonical import canonical_bytes, strict_loads
from protocol.errors import MalformedError, SchemaError
from protocol.fields import COUNTRY_CODES, CURRENCY_CODES, ISO_3166_ALPHA2
from protocol.messages import MESSAGE_TYPES, validate_body
from protocol.summary import CATEGORIES, PURPOSES

SAMPLES_PATH = Path(__file__).resolve().parents[2] / "protocol" / "vectors" / "sample_bodies.json"
SAMPLES: dict[str, Any] = strict_loads(SAMPLES_PATH.read_bytes())


def sample(msg_type: str) -> dict[str, Any]:
    return copy.deepcopy(SAMPLES[msg_type])


def errors_of(msg_type: str, body: object) -> dict[str, Any]:
    with pytest.raises(SchemaError) as info:
        validate_body(msg_type, body)
    assert info.value.code == "malformed"
    return info.value.errors


# --- the samples ----------------------------------------------------------------------------------


def test_samples_cover_every_message_type() -> None:
    assert set(SAMPLES) == MESSAGE_TYPES
    assert len(MESSAGE_TYPES) == 11


@pytest.mark.parametrize("msg_type", sorted(MESSAGE_TYPES))
def test_sample_loads_unchanged(msg_type: str) -> None:
    body = sample(msg_type)
    validated = validate_body(msg_type, body)
    assert validated == SAMPLES[msg_type]
    assert canonical_bytes(validated) == canonical_bytes(SAMPLES[msg_type])


def test_samples_use_native_scripts() -> None:
    text = SAMPLES_PATH.read_text(encoding="utf-8")
    for needle in ("كريم", "ليلى", "Čaušević-Đulić", "Žaklina", "š", "ž", "č", "ć", "đ", "Göteborg", "å"):
        assert needle in text


@pytest.mark.parametrize("msg_type", sorted(MESSAGE_TYPES))
def test_unknown_top_level_member_is_refused(msg_type: str) -> None:
    body = sample(msg_type)
    body["comment"] = "not in the schema"
    assert errors_of(msg_type, body) == {"comment": ["Unknown field."]}


def test_unknown_type_is_malformed_not_schema() -> None:
    for msg_type in ("hand_over", "", 7, None):
        with pytest.raises(MalformedError) as info:
            validate_body(msg_type, {})  # type: ignore[arg-type]
        assert not isinstance(info.value, SchemaError)


@pytest.mark.parametrize("body", [[], "handover", 1, None])
def test_body_must_be_an_object(body: object) -> None:
    assert errors_of("case_closed", body) == {"_schema": ["Invalid input type."]}


# --- nested strictness and bounds -----------------------------------------------------------------


def test_unknown_member_nested_deep_in_the_summary() -> None:
    body = sample("handover")
    body["summary"]["plan"]["stages"][0]["colour"] = "green"
    errors = errors_of("handover", body)
    assert errors == {"summary": {"plan": {"stages": {0: {"colour": ["Unknown field."]}}}}}


def test_summary_category_outside_the_list_is_refused() -> None:
    body = sample("handover")
    body["summary"]["religion"] = {"text": "x"}
    assert "religion" in errors_of("handover", body)["summary"]


def test_missing_required_members_are_named() -> None:
    errors = errors_of("handover_declined", {"handover_id": sample("handover_declined")["handover_id"]})
    assert set(errors) == {"declined_at", "reason", "reason_code"}


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("reason",), "x" * 2001),
        (("reason",), ""),
        (("reason",), "   \n "),
        (("reason",), "bell\x07"),
    ],
)
def test_text_bounds(path: tuple[str, ...], value: str) -> None:
    body = sample("handover_declined")
    body[path[0]] = value
    assert "reason" in errors_of("handover_declined", body)


def test_text_keeps_newlines_but_a_line_does_not() -> None:
    body = sample("handover_declined")
    body["reason"] = "first line\nsecond line\ttabbed"
    assert validate_body("handover_declined", body) == body
    accepted = sample("handover_accepted")
    accepted["adviser"]["name"] = "Layla\nHassan"
    assert errors_of("handover_accepted", accepted) == {
        "adviser": {"name": ["Control characters are not allowed."]}
    }


def test_name_length_bound() -> None:
    body = sample("handover")
    body["summary"]["identity"]["name_latin"]["family"] = "a" * 101
    errors = errors_of("handover", body)
    assert errors["summary"]["identity"]["name_latin"] == {"family": ["Length must be between 1 and 100."]}


def test_list_size_bounds() -> None:
    body = sample("handover")
    body["summary"]["contact"]["phones"] = [f"+4670000000{i}" for i in range(6)]
    assert "phones" in errors_of("handover", body)["summary"]["contact"]
    forward = sample("forward")
    forward["chain"] = forward["chain"] * 9
    assert "chain" in errors_of("forward", forward)
    closed = sample("erasure_confirmed")
    closed["tombstone"]["message_ids"] = closed["tombstone"]["message_ids"] * 2
    assert errors_of("erasure_confirmed", closed) == {
        "tombstone": {"message_ids": ["Members must be unique."]}
    }


# --- codes, times, dates --------------------------------------------------------------------------


def test_code_lists() -> None:
    assert len(ISO_3166_ALPHA2) == 249
    assert {"SE", "BA", "IQ", "GH", "KE", "TN", "DE", "SO", "AF"} <= ISO_3166_ALPHA2
    assert "XK" in COUNTRY_CODES and "XK" not in ISO_3166_ALPHA2
    assert {"SEK", "BAM", "IQD", "GHS", "KES", "TND", "EUR", "SOS", "AFN", "USD"} <= CURRENCY_CODES
    assert not {"XXX", "XTS", "XAU", "HRK"} & CURRENCY_CODES


@pytest.mark.parametrize("code", ["XX", "se", "SWE", "", "UK", "EU"])
def test_bad_country(code: str) -> None:
    body = sample("handover")
    body["case"]["destination"]["country"] = code
    assert errors_of("handover", body) == {
        "case": {"destination": {"country": ["Not an ISO 3166-1 alpha-2 country code."]}}
    }


def test_kosovo_is_accepted() -> None:
    body = sample("handover")
    body["case"]["destination"] = {"country": "XK", "locality": "Pristina"}
    assert validate_body("handover", body) == body


@pytest.mark.parametrize("tag", ["sv", "bs-Latn", "ar-IQ", "sr-Cyrl-BA", "zh-Hant-TW", "de-CH-1996", "x-ccm",
                                 "en-US-u-ca-gregory", "ckb-IQ"])
def test_good_language_tags(tag: str) -> None:
    body = sample("handover")
    body["summary"]["contact"]["preferred_language"] = tag
    assert validate_body("handover", body) == body


@pytest.mark.parametrize("tag", ["toolonglang", "sv_SE", "ar-", "-ar", "a", "bs-Latn-", "ar IQ", "x", "12"])
def test_bad_language_tags(tag: str) -> None:
    body = sample("handover")
    body["summary"]["contact"]["preferred_language"] = tag
    errors = errors_of("handover", body)
    assert errors["summary"]["contact"] == {"preferred_language": ["Not a BCP 47 language tag."]}


@pytest.mark.parametrize("value", ["2026-03-02T10:04:11+01:00", "2026-03-02 10:04:11Z",
                                   "2026-02-30T00:00:00Z", "2026-03-02T10:04:11.5Z", "2026-03-02T10:04Z",
                                   "2026-03-02"])
def test_bad_time(value: str) -> None:
    body = sample("case_closed")
    body["closed_at"] = value
    assert errors_of("case_closed", body) == {
        "closed_at": ["Not a UTC time of the form YYYY-MM-DDTHH:MM:SSZ."]
    }


@pytest.mark.parametrize("value", ["2026-13-01", "2026-02-29", "1899-12-31", "20260101", "2026-1-1",
                                   "2026-03-02T00:00:00Z"])
def test_bad_date(value: str) -> None:
    body = sample("handover")
    body["summary"]["plan"]["end_date"] = value
    assert errors_of("handover", body)["summary"]["plan"] == {
        "end_date": ["Not a date of the form YYYY-MM-DD (years 1900-2199)."]
    }


# --- enums and scalar types -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("msg_type", "mutate", "expected"),
    [
        ("handover_declined", lambda b: b.update(reason_code="busy"), {"reason_code"}),
        ("handover", lambda b: b.update(purpose="marketing"), {"purpose"}),
        ("progress_update", lambda b: b["indicators"][0].update(dimension="cultural"), {"indicators"}),
        ("progress_update", lambda b: b["stage_changes"][0].update(status="finished"), {"stage_changes"}),
        ("case_closed", lambda b: b["outcome"].update(code="success"), {"outcome"}),
        ("handover", lambda b: b["summary"]["plan"]["stages"][0].update(responsible="ngo"), {"summary"}),
        ("handover", lambda b: b["case"].update(status="deported"), {"case"}),
    ],
)
def test_wrong_enum(msg_type: str, mutate: Any, expected: set[str]) -> None:
    body = sample(msg_type)
    mutate(body)
    assert set(errors_of(msg_type, body)) == expected


@pytest.mark.parametrize("value", ["yes", 1, "true", None])
def test_booleans_are_json_booleans(value: object) -> None:
    body = sample("consent_withdrawn")
    body["revocation"] = value
    assert "revocation" in errors_of("consent_withdrawn", body)


@pytest.mark.parametrize("value", [9, -1, "4", 4.0, True])
def test_integers_are_strict(value: object) -> None:
    body = sample("handover")
    body["summary"]["education"]["highest_level"] = value
    assert "highest_level" in errors_of("handover", body)["summary"]["education"]


def test_no_floats_anywhere() -> None:
    body = sample("progress_update")
    body["indicators"][0]["value"] = 0.5
    assert "indicators" in errors_of("progress_update", body)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"currency": "eur"}, "currency"),
        ({"currency": "XXX"}, "currency"),
        ({"amount": "1e3"}, "amount"),
        ({"amount": "-5.00"}, "amount"),
        ({"amount": "01.5"}, "amount"),
    ],
)
def test_money(change: dict[str, str], field: str) -> None:
    body = sample("progress_update")
    body["interventions"][1].update(change)
    assert field in errors_of("progress_update", body)["interventions"][1]


def test_amount_needs_currency() -> None:
    body = sample("progress_update")
    del body["interventions"][1]["currency"]
    assert errors_of("progress_update", body) == {
        "interventions": {1: {"currency": ["An amount needs its currency and a currency its amount."]}}
    }


@pytest.mark.parametrize("node", ["SE.gi-goteborg", "se_gi", "se.", "swe.gi", "se.-gi", "se.g"])
def test_bad_node_id(node: str) -> None:
    body = sample("forward")
    body["forwarded_to"] = node
    assert errors_of("forward", body) == {"forwarded_to": ["Not a node id (cc.name, lower case)."]}


@pytest.mark.parametrize("value", ["abc", "A" * 21, "A" * 23, "A" * 21 + "="])
def test_message_ids(value: str) -> None:
    body = sample("case_closed")
    body["handover_id"] = value
    assert errors_of("case_closed", body) == {"handover_id": ["Not a message id."]}


# --- cross-field rules ------------------------------------------------------------------------------------


def test_a_category_cannot_be_both_shared_and_withheld() -> None:
    body = sample("handover")
    body["withheld"].append("identity")
    assert errors_of("handover", body) == {
        "withheld": ["A category cannot be both in the summary and withheld."]
    }


@pytest.mark.parametrize("retention", [{}, {"days": 30, "retain_until": "2027-01-01"}, {"days": 0},
                                       {"days": 3651}])
def test_retention_needs_exactly_one_bounded_form(retention: dict[str, Any]) -> None:
    body = sample("handover")
    body["retention"] = retention
    assert "retention" in errors_of("handover", body)


def test_end_before_start_is_refused() -> None:
    body = sample("handover")
    body["summary"]["plan"]["interventions"][0]["end"] = "2026-05-01"
    errors = errors_of("handover", body)
    assert errors["summary"]["plan"]["interventions"] == {0: {"end": ["Ends before it starts."]}}


def test_duplicate_stage_keys_are_refused() -> None:
    body = sample("handover")
    stages = body["summary"]["plan"]["stages"]
    stages.append(dict(stages[0]))
    assert errors_of("handover", body)["summary"]["plan"] == {"stages": ["Each key may appear once."]}


def test_progress_update_must_say_something() -> None:
    body = {k: v for k, v in sample("progress_update").items() if k in {"handover_id", "update_id", "at"}}
    assert "_schema" in errors_of("progress_update", body)


def test_an_empty_scope_is_refused() -> None:
    body = sample("consent_withdrawn")
    body["scope"] = {}
    assert "scope" in errors_of("consent_withdrawn", body)
    del body["scope"]
    assert validate_body("consent_withdrawn", body) == body


def test_rotation_window() -> None:
    body = sample("key_rotated")
    body["overlap_until"] = "2026-05-01T00:00:00Z"
    assert errors_of("key_rotated", body) == {"overlap_until": ["Must not be earlier than effective_at."]}
    body["overlap_until"] = "2027-06-02T00:00:00Z"
    assert errors_of("key_rotated", body) == {"overlap_until": ["The overlap may last at most 365 days."]}


def test_custody_steps_must_be_signed() -> None:
    body = sample("forward")
    del body["chain"][0]["signatures"]
    assert errors_of("forward", body) == {"chain": {0: {"signatures": ["Missing data for required field."]}}}


def test_travelling_consent_must_be_signed() -> None:
    body = sample("handover")
    del body["consent"]["signatures"]
    assert errors_of("handover", body) == {"consent": {"signatures": ["Missing data for required field."]}}


def test_receipt_is_the_delivery_receipt_verbatim() -> None:
    body = sample("receipt")
    body["type"] = "receipt"
    assert "type" in errors_of("receipt", body)


# --- property: generated bodies round-trip ------------------------------------------------------------------

_TEXT = st.text(st.characters(exclude_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1, max_size=40).filter(
    str.strip
)
_TIME = st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2150, 1, 1)).map(
    lambda d: d.replace(tzinfo=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
)
_DATE = st.dates(min_value=datetime(1900, 1, 1).date(), max_value=datetime(2199, 12, 31).date()).map(str)
_MESSAGE_ID = st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", min_size=22,
                      max_size=22)
_KEY = st.from_regex(r"\A[a-z][a-z0-9_]{0,20}\Z")
_DECIMAL = st.from_regex(r"\A(0|[1-9][0-9]{0,8})(\.[0-9]{1,4})?\Z")


def _optional(members: dict[str, st.SearchStrategy[Any]], required: dict[str, st.SearchStrategy[Any]]
              ) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(required, optional=members)


_INTERVENTION = _optional(
    {"provider": _TEXT, "start": _DATE, "note": _TEXT},
    {"id": st.from_regex(r"\A[a-z0-9][a-z0-9.-]{0,20}\Z"),
     "kind": st.sampled_from(("education", "job", "housing", "other")),
     "status": st.sampled_from(("proposed", "completed"))},
)
_SECTIONS: dict[str, st.SearchStrategy[Any]] = {
    "identity": _optional(
        {"date_of_birth": _DATE, "sex_or_gender": _TEXT,
         "nationalities": st.lists(st.sampled_from(sorted(COUNTRY_CODES)), max_size=5, unique=True)},
        {"name_latin": st.fixed_dictionaries({"given": _TEXT})},
    ),
    "family": _optional({"situation": _TEXT, "marital_status": st.just("single")}, {}),
    "health": _optional({"text": _TEXT}, {}),
    "background": _optional({"text": _TEXT, "years_abroad": st.integers(0, 100)}, {}),
    "education": _optional({"highest_level": st.integers(0, 8),
                            "fields_of_study": st.lists(_TEXT, max_size=3)}, {}),
    "work": _optional({"experience": _TEXT, "skills": st.lists(_TEXT, max_size=3)}, {}),
    "wishes": st.fixed_dictionaries({"text": _TEXT}),
    "plan": _optional({"end_date": _DATE,
                       "interventions": st.lists(_INTERVENTION, max_size=3, unique_by=lambda i: i["id"])},
                      {}),
}


@st.composite
def handover_bodies(draw: st.DrawFn) -> dict[str, Any]:
    body = sample("handover")
    shared = draw(st.lists(st.sampled_from(sorted(_SECTIONS)), unique=True))
    body["summary"] = {c: draw(_SECTIONS[c]) for c in shared}
    body["withheld"] = [c for c in CATEGORIES if c not in shared and draw(st.booleans())]
    body["purpose"] = draw(st.sampled_from(PURPOSES))
    return body


_BODIES: dict[str, st.SearchStrategy[Any]] = {
    "handover": handover_bodies(),
    "handover_declined": st.fixed_dictionaries({
        "handover_id": _MESSAGE_ID, "declined_at": _TIME, "reason": _TEXT,
        "reason_code": st.sampled_from(("no_capacity", "other")),
    }),
    "case_closed": st.fixed_dictionaries({
        "handover_id": _MESSAGE_ID, "closed_at": _TIME,
        "outcome": _optional({"text": _TEXT}, {"code": st.sampled_from(("withdrew", "lost_contact"))}),
    }),
    "progress_update": _optional(
        {"note": _TEXT,
         "interventions": st.lists(_INTERVENTION, min_size=1, max_size=3),
         "indicators": st.lists(st.fixed_dictionaries({
             "dimension": st.sampled_from(("economic", "social", "psychosocial")), "indicator": _KEY,
             "value": _DECIMAL}), min_size=1, max_size=3)},
        {"handover_id": _MESSAGE_ID, "update_id": st.just("u-1"), "at": _TIME,
         "stage_changes": st.lists(st.fixed_dictionaries({
             "key": _KEY, "status": st.sampled_from(("done", "in_progress")), "at": _TIME}), min_size=1,
             max_size=3)},
    ),
    "consent_withdrawn": _optional(
        {"reason": _TEXT,
         "scope": st.fixed_dictionaries({"categories": st.lists(st.sampled_from(CATEGORIES), min_size=1,
                                                                 unique=True)})},
        {"consent_id": st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._:-]{0,30}\Z"), "withdrawn_at": _TIME,
         "revocation": st.booleans()},
    ),
}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_generated_bodies_round_trip(data: st.DataObject) -> None:
    msg_type = data.draw(st.sampled_from(sorted(_BODIES)))
    body = data.draw(_BODIES[msg_type])
    wire = canonical_bytes(body)
    validated = validate_body(msg_type, strict_loads(wire))
    assert validated == body
    assert canonical_bytes(validated) == wire


@settings(max_examples=60, deadline=None)
@given(junk=st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5),
                         lambda inner: (st.lists(inner, max_size=3)
                                        | st.dictionaries(st.text(max_size=5), inner, max_size=3)),
                         max_leaves=10),
       msg_type=st.sampled_from(sorted(MESSAGE_TYPES)))
def test_junk_raises_only_schema_error(junk: object, msg_type: str) -> None:
    with pytest.raises(SchemaError):
        validate_body(msg_type, junk)


def test_samples_file_is_strict_json() -> None:
    assert strict_loads(SAMPLES_PATH.read_bytes()) == json.loads(SAMPLES_PATH.read_text(encoding="utf-8"))
