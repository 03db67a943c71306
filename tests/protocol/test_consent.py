"""Consent records, minimisation, the receiver's handover and forward checks, and the child rules."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.canonical import strict_loads
from protocol.consent import (
    CATEGORIES,
    allowed_categories,
    check_forward,
    check_handover,
    is_child_case,
    make_consent_record,
    minimise,
    sign_consent,
    verify_consent,
)
from protocol.custody import make_custody_step
from protocol.errors import (
    BadSignatureError,
    ChainError,
    ConsentInvalidError,
    MalformedError,
    OutsideConsentError,
    SchemaError,
    UnknownKeyError,
    WrongRecipientError,
)
from protocol.keys import NodeKeys
from protocol.messages import validate_body
from protocol.signing import sign_json

SAMPLES: dict[str, Any] = strict_loads(
    (Path(__file__).resolve().parents[2] / "protocol" / "vectors" / "sample_bodies.json").read_bytes()
)
# The fixed seeds the samples were made with (documented in SPEC.md section 8.14).
GI = NodeKeys.from_seed("se.gi-goteborg", b"\x01" * 32)
BAGHDAD = NodeKeys.from_seed("iq.cldd-baghdad", b"\x02" * 32)
STOCKHOLM = NodeKeys.from_seed("se.cldd-stockholm", b"\x03" * 32)
SARAJEVO = NodeKeys.from_seed("ba.cldd-sarajevo", b"\x04" * 32)
OTHER = NodeKeys.from_seed("gh.accra-return", b"\x05" * 32)
NOW = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)
GIVEN = datetime(2026, 2, 10, 9, 30, tzinfo=UTC)
FULL_SUMMARY: dict[str, Any] = {
    "identity": {"name_latin": {"given": "Karim", "family": "al-Husseini"}, "date_of_birth": "1988-04-02"},
    "contact": {"phones": ["+46700000001"]},
    "family": {"situation": "Gift, två barn.", "marital_status": "married"},
    "health": {"text": "Diabetes typ 2."},
    "background": {"text": "Kom till Sverige 2015."},
    "education": {"highest_level": 4},
    "work": {"experience": "Elektriker i åtta år."},
    "wishes": {"text": "Vill starta eget."},
    "plan": {"end_date": "2026-12-31"},
}
GRANTED = ["identity", "contact", "family", "education", "work", "wishes", "plan"]


def record(**changes: Any) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        "consent_id": "gi-consent-1", "origin": "se.gi-goteborg", "case_id": "gi-case-1", "given_at": GIVEN,
        "valid_until": GIVEN + timedelta(days=365), "method": "written_signature", "language": "ar",
        "subject": {"child": False, "date_of_birth": "1988-04-02"},
        "grants": [{"recipient": "iq.cldd-baghdad", "purposes": ["reintegration_support"],
                    "categories": GRANTED}],
    }
    arguments.update(changes)
    return make_consent_record(**arguments)


def signed(**changes: Any) -> dict[str, Any]:
    return sign_consent(record(**changes), "se.gi-goteborg", GI.signing_key)


def handover(consent: dict[str, Any], summary: dict[str, Any] | None = None,
             recipient: str = "iq.cldd-baghdad", purpose: str = "reintegration_support") -> dict[str, Any]:
    body: dict[str, Any] = copy.deepcopy(SAMPLES["handover"])
    body["case"]["origin_case_id"] = consent["case_id"]
    body["consent"] = consent
    body["purpose"] = purpose
    body.update(minimise(summary or FULL_SUMMARY, consent, recipient, purpose, now=NOW))
    return body


def check(body: dict[str, Any], *, now: datetime = NOW, recipient: str = "iq.cldd-baghdad",
          **kw: Any) -> None:
    check_handover(body, recipient, now, GI.signing_key.verify_key, **kw)


CHILD = {
    "guardian": {"name": "Anna Lindqvist", "role": "appointed_guardian", "identity_verified": True,
                 "consented_at": "2026-02-09T10:00:00Z"},
    "views": {"recorded_at": "2026-02-08T10:00:00Z", "summary": "Vill bo hos sin moster i Erbil.",
              "language": "ar"},
    "best_interests": {"assessed_at": "2026-02-05T10:00:00Z", "assessed_by": "Göteborgs Stad, socialtjänsten",
                       "outcome": "in_best_interests", "reference": "SoC-2026-17"},
}


def child_consent(child: dict[str, Any] | None, dob: str = "2009-06-01", flag: bool = True) -> dict[str, Any]:
    changes: dict[str, Any] = {"subject": {"child": flag, "date_of_birth": dob}}
    if child is not None:
        changes["child"] = child
    return signed(**changes)


# --- records and signatures -----------------------------------------------------------------------


def test_make_consent_record_orders_grants_and_validates() -> None:
    made = record(grants=[{"recipient": "iq.cldd-baghdad", "purposes": ["reintegration_support",
                                                                         "return_preparation"],
                           "categories": ["plan", "identity", "wishes"]}])
    assert made["grants"][0] == {"recipient": "iq.cldd-baghdad",
                                 "purposes": ["return_preparation", "reintegration_support"],
                                 "categories": ["identity", "wishes", "plan"]}
    assert made["given_at"] == "2026-02-10T09:30:00Z" and "signatures" not in made


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"method": "nod"}, "method"),
        ({"valid_until": GIVEN - timedelta(seconds=1)}, "valid_until"),
        ({"grants": []}, "grants"),
        ({"grants": [{"recipient": "iq.cldd-baghdad", "purposes": ["ads"], "categories": ["identity"]}]},
         "grants"),
        ({"grants": [{"recipient": "iq.cldd-baghdad", "purposes": ["follow_up"],
                      "categories": ["religion"]}]}, "grants"),
        ({"origin": "GI"}, "origin"),
        ({"language": "arabic language"}, "language"),
    ],
)
def test_make_consent_record_refuses_bad_values(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(SchemaError) as info:
        record(**changes)
    assert field in info.value.errors


def test_duplicate_grant_recipients_are_refused() -> None:
    grant = {"recipient": "iq.cldd-baghdad", "purposes": ["follow_up"], "categories": ["plan"]}
    with pytest.raises(SchemaError):
        record(grants=[grant, grant])


def test_naive_clock_values_are_a_programming_error() -> None:
    with pytest.raises(ValueError, match="naive"):
        record(given_at=datetime(2026, 2, 10))


def test_sign_and_verify_consent() -> None:
    consent = signed()
    assert verify_consent(consent, GI.signing_key.verify_key) == consent
    with pytest.raises(MalformedError, match="origin"):
        sign_consent(record(), "iq.cldd-baghdad", BAGHDAD.signing_key)
    with pytest.raises(BadSignatureError):
        verify_consent(consent, BAGHDAD.signing_key.verify_key)
    tampered = copy.deepcopy(consent)
    tampered["grants"][0]["categories"].insert(3, "health")
    with pytest.raises(BadSignatureError):
        verify_consent(tampered, GI.signing_key.verify_key)
    with pytest.raises(SchemaError):
        verify_consent(record(), GI.signing_key.verify_key)


def test_sample_signatures_are_reproducible_from_the_documented_seeds() -> None:
    consent = SAMPLES["handover"]["consent"]
    unsigned = {k: v for k, v in consent.items() if k != "signatures"}
    assert sign_consent(unsigned, "se.gi-goteborg", GI.signing_key) == consent
    step = SAMPLES["forward"]["chain"][0]
    remade = make_custody_step(step["holder"], step["from"], datetime(2026, 2, 2, 14, 12, 9, tzinfo=UTC),
                               step["message_hash"], STOCKHOLM.signing_key)
    assert remade == step
    receipt = SAMPLES["receipt"]
    assert sign_json({k: v for k, v in receipt.items() if k != "signatures"}, "iq.cldd-baghdad",
                     BAGHDAD.signing_key) == receipt


# --- minimisation ---------------------------------------------------------------------------------


def test_minimise_keeps_only_granted_and_names_the_rest() -> None:
    result = minimise(FULL_SUMMARY, signed(), "iq.cldd-baghdad", "reintegration_support")
    assert list(result["summary"]) == GRANTED
    assert result["withheld"] == ["health", "background"]


def test_withheld_does_not_depend_on_what_the_case_holds() -> None:
    result = minimise({"wishes": {"text": "x"}}, signed(), "iq.cldd-baghdad", "reintegration_support")
    assert result == {"summary": {"wishes": {"text": "x"}}, "withheld": ["health", "background"]}


def test_minimise_copies() -> None:
    summary = copy.deepcopy(FULL_SUMMARY)
    result = minimise(summary, signed(), "iq.cldd-baghdad", "reintegration_support")
    result["summary"]["identity"]["name_latin"]["given"] = "changed"
    assert summary == FULL_SUMMARY


def test_minimise_hands_the_sections_over_uncopied_when_told_nothing_else_holds_them() -> None:
    summary = copy.deepcopy(FULL_SUMMARY)
    result = minimise(summary, signed(), "iq.cldd-baghdad", "reintegration_support", validated=True,
                      copy_sections=False)
    assert result == minimise(FULL_SUMMARY, signed(), "iq.cldd-baghdad", "reintegration_support")
    assert result["summary"]["identity"] is summary["identity"]
    copied = minimise(summary, signed(), "iq.cldd-baghdad", "reintegration_support", validated=True)
    assert copied == result and copied["summary"]["identity"] is not summary["identity"]


def test_minimise_refuses_unnamed_recipient_and_purpose() -> None:
    with pytest.raises(OutsideConsentError) as info:
        minimise(FULL_SUMMARY, signed(), "ba.cldd-sarajevo", "reintegration_support")
    assert info.value.code == "outside_consent"
    with pytest.raises(OutsideConsentError):
        minimise(FULL_SUMMARY, signed(), "iq.cldd-baghdad", "follow_up")


def test_minimise_refuses_inactive_consent() -> None:
    withdrawn = record()
    withdrawn["withdrawn_at"] = "2026-03-01T00:00:00Z"
    with pytest.raises(ConsentInvalidError) as info:
        minimise(FULL_SUMMARY, withdrawn, "iq.cldd-baghdad", "reintegration_support")
    assert info.value.code == "consent_invalid"
    with pytest.raises(ConsentInvalidError, match="expired"):
        minimise(FULL_SUMMARY, signed(), "iq.cldd-baghdad", "reintegration_support",
                 now=GIVEN + timedelta(days=366))


def test_minimise_refuses_a_malformed_summary() -> None:
    with pytest.raises(SchemaError) as info:
        minimise({"health": {"diagnosis": "x"}}, signed(), "iq.cldd-baghdad", "reintegration_support")
    assert info.value.errors == {"health": {"diagnosis": ["Unknown field."]}}


def test_withdrawals_narrow_or_end_the_grant() -> None:
    consent = signed()
    partial = {"consent_id": "gi-consent-1", "withdrawn_at": "2026-03-01T00:00:00Z", "revocation": False,
               "scope": {"categories": ["family", "contact"]}}
    assert allowed_categories(consent, "iq.cldd-baghdad", "reintegration_support", [partial]) == (
        "identity", "education", "work", "wishes", "plan")
    elsewhere = dict(partial, scope={"recipients": ["ba.cldd-sarajevo"]})
    other_consent = dict(partial, consent_id="gi-consent-2", scope={"recipients": ["iq.cldd-baghdad"]})
    assert allowed_categories(consent, "iq.cldd-baghdad", "reintegration_support",
                              [elsewhere, other_consent]) == tuple(GRANTED)
    full = {k: v for k, v in partial.items() if k != "scope"}
    with pytest.raises(ConsentInvalidError):
        minimise(FULL_SUMMARY, consent, "iq.cldd-baghdad", "reintegration_support", withdrawals=[full])
    with pytest.raises(ConsentInvalidError):
        allowed_categories(consent, "iq.cldd-baghdad", "reintegration_support",
                           [dict(partial, scope={"recipients": ["iq.cldd-baghdad"]})])


# --- the receiver's handover check ----------------------------------------------------------------


def test_sample_handover_passes() -> None:
    check_handover(SAMPLES["handover"], "iq.cldd-baghdad", NOW, GI.signing_key.verify_key,
                   sender="se.gi-goteborg")


def test_minimised_handover_passes() -> None:
    check(handover(signed()), sender="se.gi-goteborg")


def test_extra_category_is_outside_consent() -> None:
    body = handover(signed())
    body["summary"]["health"] = {"text": "Diabetes typ 2."}
    body["withheld"].remove("health")
    with pytest.raises(OutsideConsentError, match="health") as info:
        check(body)
    assert info.value.code == "outside_consent"


@pytest.mark.parametrize(
    ("mutate", "kwargs", "error", "code"),
    [
        (lambda b: None, {"recipient": "ba.cldd-sarajevo"}, OutsideConsentError, "outside_consent"),
        (lambda b: b.update(purpose="follow_up"), {}, OutsideConsentError, "outside_consent"),
        (lambda b: b["case"].update(origin_case_id="gi-case-2"), {}, OutsideConsentError, "outside_consent"),
        (lambda b: None, {"sender": "se.cldd-stockholm"}, OutsideConsentError, "outside_consent"),
        (lambda b: None, {"now": GIVEN + timedelta(days=365, seconds=1)}, ConsentInvalidError,
         "consent_invalid"),
        (lambda b: None, {"now": GIVEN - timedelta(hours=1)}, ConsentInvalidError, "consent_invalid"),
        (lambda b: b["consent"]["grants"][0]["categories"].append("health"), {}, BadSignatureError,
         "bad_signature"),
        (lambda b: b["consent"].update(valid_until="2030-01-01T00:00:00Z"), {}, BadSignatureError,
         "bad_signature"),
    ],
)
def test_handover_refusals(mutate: Any, kwargs: dict[str, Any], error: type[Exception], code: str) -> None:
    body = handover(signed())
    mutate(body)
    with pytest.raises(error) as info:
        check(body, **kwargs)
    assert info.value.code == code  # type: ignore[attr-defined]


def test_expiry_boundary() -> None:
    check(handover(signed()), now=GIVEN + timedelta(days=365))


def test_withdrawn_consent_is_invalid() -> None:
    consent = record()
    consent["withdrawn_at"] = "2026-03-01T00:00:00Z"
    body = handover(signed())
    body["consent"] = sign_consent(consent, "se.gi-goteborg", GI.signing_key)
    with pytest.raises(ConsentInvalidError, match="withdrawn"):
        check(body)
    withdrawal = {"consent_id": "gi-consent-1", "withdrawn_at": "2026-03-10T00:00:00Z", "revocation": True}
    with pytest.raises(ConsentInvalidError, match="withdrawn"):
        check(handover(signed()), withdrawals=[validate_body("consent_withdrawn", withdrawal)])
    partial = dict(withdrawal, scope={"categories": ["family"]})
    with pytest.raises(OutsideConsentError, match="family"):
        check(handover(signed()), withdrawals=[partial])


def test_wrong_origin_key_is_a_bad_signature() -> None:
    with pytest.raises(BadSignatureError):
        check_handover(handover(signed()), "iq.cldd-baghdad", NOW, BAGHDAD.signing_key.verify_key)


def test_malformed_handover_is_schema_error() -> None:
    body = handover(signed())
    body["summary"]["health"] = {"text": "x", "icd10": "E11"}
    with pytest.raises(SchemaError):
        check(body)


# --- children -------------------------------------------------------------------------------------


def test_complete_child_case_passes() -> None:
    check(handover(child_consent(CHILD)))


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda c: c.clear(), "guardian"),
        (lambda c: c.pop("guardian"), "guardian"),
        (lambda c: c["guardian"].update(identity_verified=False), "guardian"),
        (lambda c: c["guardian"].pop("consented_at"), "guardian"),
        (lambda c: c.pop("views"), "views"),
        (lambda c: c.pop("best_interests"), "best-interests"),
        (lambda c: c["best_interests"].update(outcome="not_in_best_interests"), "best-interests"),
        (lambda c: c["best_interests"].update(outcome="inconclusive"), "best-interests"),
        (lambda c: c["views"].update(recorded_at="2026-04-01T00:00:00Z"), "future"),
    ],
)
def test_child_case_without_safeguards_is_invalid(change: Any, reason: str) -> None:
    child = copy.deepcopy(CHILD)
    change(child)
    consent = child_consent(child)
    with pytest.raises(ConsentInvalidError, match=reason) as info:
        check(handover(signed()) | {"consent": consent})
    assert info.value.code == "consent_invalid"
    with pytest.raises(ConsentInvalidError):
        minimise(FULL_SUMMARY, consent, "iq.cldd-baghdad", "reintegration_support", now=NOW)


def test_child_flag_without_any_child_record_is_invalid() -> None:
    with pytest.raises(ConsentInvalidError):
        check(handover(signed()) | {"consent": child_consent(None)})


def test_child_is_detected_by_date_of_birth_even_when_not_flagged() -> None:
    consent = child_consent(None, dob="2008-02-11", flag=False)  # 17 on the day consent was given
    with pytest.raises(ConsentInvalidError):
        check(handover(signed()) | {"consent": consent})
    adult = child_consent(None, dob="2008-02-10", flag=False)  # 18 that very day
    check(handover(adult))


def test_child_is_detected_from_the_summary_identity() -> None:
    consent = signed(subject={"child": False})
    summary = copy.deepcopy(FULL_SUMMARY)
    summary["identity"]["date_of_birth"] = "2010-01-01"
    assert is_child_case(consent, summary, NOW)
    with pytest.raises(ConsentInvalidError):
        minimise(summary, consent, "iq.cldd-baghdad", "reintegration_support")
    body = handover(consent)
    body["summary"]["identity"]["date_of_birth"] = "2010-01-01"
    with pytest.raises(ConsentInvalidError):
        check(body)


# --- forwards -------------------------------------------------------------------------------------

FORWARD_KEYS = {keys.node_id: keys.signing_key.verify_key for keys in (GI, STOCKHOLM, SARAJEVO, OTHER)}


def forward(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = copy.deepcopy(SAMPLES["forward"])
    body.update(changes)
    return body


def check_fwd(body: dict[str, Any], sender: str = "se.cldd-stockholm", recipient: str = "ba.cldd-sarajevo",
              keys: dict[str, Any] = FORWARD_KEYS) -> None:
    check_forward(body, recipient, sender, NOW, keys)


def step(holder: NodeKeys, sender: str, at: datetime = datetime(2026, 2, 2, tzinfo=UTC)) -> dict[str, Any]:
    return make_custody_step(holder.node_id, sender, at, "A" * 43, holder.signing_key)


def test_sample_forward_passes() -> None:
    check_fwd(forward())


@pytest.mark.parametrize(
    ("body", "kwargs", "error"),
    [
        (forward(), {"recipient": "iq.cldd-baghdad"}, WrongRecipientError),
        (forward(), {"sender": "se.gi-goteborg"}, ChainError),
        (forward(chain=[step(STOCKHOLM, "iq.cldd-baghdad")]), {}, ChainError),
        (forward(chain=[step(STOCKHOLM, "se.gi-goteborg"), step(OTHER, "se.cldd-stockholm")]),
         {"sender": "gh.accra-return"}, OutsideConsentError),
        (forward(chain=[step(STOCKHOLM, "se.gi-goteborg"), step(SARAJEVO, "se.cldd-stockholm")]),
         {"sender": "ba.cldd-sarajevo"}, ChainError),
        (forward(chain=[step(STOCKHOLM, "se.gi-goteborg", datetime(2026, 4, 1, tzinfo=UTC))]), {},
         ChainError),
        (forward(), {"keys": {"se.gi-goteborg": GI.signing_key.verify_key}}, UnknownKeyError),
        (forward(), {"keys": {"se.cldd-stockholm": STOCKHOLM.signing_key.verify_key}}, UnknownKeyError),
        (forward(), {"keys": dict(FORWARD_KEYS, **{"se.cldd-stockholm": OTHER.signing_key.verify_key})},
         BadSignatureError),
    ],
)
def test_forward_refusals(body: dict[str, Any], kwargs: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        check_fwd(body, **kwargs)


def test_forward_steps_must_not_go_back_in_time() -> None:
    chain = [step(STOCKHOLM, "se.gi-goteborg", datetime(2026, 2, 5, tzinfo=UTC)),
             step(OTHER, "se.cldd-stockholm", datetime(2026, 2, 4, tzinfo=UTC))]
    with pytest.raises(ChainError, match="earlier"):
        check_forward(forward(chain=chain), "ba.cldd-sarajevo", "gh.accra-return", NOW, FORWARD_KEYS)


def test_forward_tampered_step_fails() -> None:
    body = forward()
    body["chain"][0]["at"] = "2026-02-01T00:00:00Z"
    with pytest.raises(BadSignatureError):
        check_fwd(body)


def test_forwarded_summary_must_lie_inside_the_grant_for_the_new_recipient() -> None:
    body = forward()
    body["original_handover"]["summary"]["family"] = {"marital_status": "divorced"}
    body["original_handover"]["withheld"].remove("family")
    with pytest.raises(OutsideConsentError, match="family"):
        check_fwd(body)


# --- properties -----------------------------------------------------------------------------------

_grants = st.lists(st.sampled_from(CATEGORIES), min_size=1, unique=True)
_present = st.lists(st.sampled_from(CATEGORIES), unique=True)


@settings(max_examples=50, deadline=None)
@given(granted=_grants, present=_present)
def test_minimise_never_leaks_and_check_accepts_exactly_its_output(granted: list[str], present: list[str]
                                                                    ) -> None:
    consent = signed(grants=[{"recipient": "iq.cldd-baghdad", "purposes": ["reintegration_support"],
                              "categories": granted}])
    summary = {c: FULL_SUMMARY[c] for c in present}
    result = minimise(summary, consent, "iq.cldd-baghdad", "reintegration_support", now=NOW)
    assert set(result["summary"]) <= set(granted)
    assert set(result["summary"]) == set(granted) & set(present)
    assert set(result["withheld"]) == set(CATEGORIES) - set(granted)
    body = handover(consent, summary)
    check(body)
    for extra in sorted(set(CATEGORIES) - set(granted)):
        leaky = copy.deepcopy(body)
        leaky["summary"][extra] = FULL_SUMMARY[extra]
        leaky["withheld"].remove(extra)
        with pytest.raises(OutsideConsentError):
            check(leaky)
