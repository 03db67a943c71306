"""Node cards, key rotation and revocation."""

from __future__ import annotations

import copy
from datetime import timedelta

import pytest

from protocol import (
    BadSignatureError,
    ExpiredError,
    MalformedError,
    NodeCard,
    NotYetValidError,
    RevokedKeyError,
    UnknownKeyError,
    UnsupportedVersionError,
    make_revocation,
    verify_card,
    verify_revocation,
    verify_rotation,
)
from protocol.canonical import canonical_bytes
from protocol.cards import card_from_bytes

from .conftest import NOW, card_for, keys_for


def test_card_round_trip_and_verify() -> None:
    keys = keys_for("se.gi-goteborg")
    card = card_for(keys)
    assert card.skid == keys.skid and card.ekid == keys.ekid
    assert card.fingerprint() == keys.fingerprint()
    assert card_from_bytes(canonical_bytes(card.to_json())) == card
    verify_card(card, NOW)


def test_card_validity_window() -> None:
    card = card_for(keys_for("se.gi-goteborg"))
    verify_card(card, card.valid_from - timedelta(seconds=300))
    with pytest.raises(NotYetValidError):
        verify_card(card, card.valid_from - timedelta(seconds=301))
    with pytest.raises(ExpiredError):
        verify_card(card, card.valid_until)


def test_tampered_card() -> None:
    card = card_for(keys_for("se.gi-goteborg"))
    doc = {**card.to_json(), "base_url": "https://evil.example"}
    with pytest.raises(BadSignatureError):
        verify_card(NodeCard.from_json(doc), NOW)


def test_card_signed_by_another_key_is_refused() -> None:
    card = card_for(keys_for("se.gi-goteborg"))
    other = card_for(keys_for("se.gi-goteborg", "other"))
    doc = {**card.to_json(), "signatures": other.to_json()["signatures"]}
    with pytest.raises(BadSignatureError):
        verify_card(NodeCard.from_json(doc), NOW)


def test_revoked_card_key() -> None:
    card = card_for(keys_for("se.gi-goteborg"))
    with pytest.raises(RevokedKeyError):
        verify_card(card, NOW, revoked=frozenset({card.skid}))


@pytest.mark.parametrize(("change", "error"), [
    ({"v": 2}, UnsupportedVersionError), ({"v": "1"}, MalformedError), ({"type": "card"}, MalformedError),
    ({"extra": 1}, MalformedError), ({"base_url": "ftp://x.example"}, MalformedError),
    ({"name": ""}, MalformedError), ({"name": "x" * 201}, MalformedError),
    ({"signing_kid": "A" * 22}, MalformedError), ({"signing_key": "AAAA"}, MalformedError),
    ({"valid_until": "2020-01-01T00:00:00Z"}, MalformedError), ({"replaces": "short"}, MalformedError),
    ({"signatures": {"se.gi-goteborg": "x"}}, MalformedError), ({"node_id": "SE"}, MalformedError),
])
def test_malformed_cards(change: dict[str, object], error: type[Exception]) -> None:
    doc = {**card_for(keys_for("se.gi-goteborg")).to_json(), **change}
    with pytest.raises(error):
        NodeCard.from_json(doc)
    with pytest.raises(MalformedError):
        NodeCard.from_json([doc])


def test_rotation() -> None:
    old_keys, new_keys = keys_for("se.gi-goteborg"), keys_for("se.gi-goteborg", "#2")
    old = card_for(old_keys)
    new = card_for(new_keys, previous=old_keys, valid_from=NOW, valid_until=NOW + timedelta(days=700))
    assert new.replaces == old.skid
    verify_card(new, NOW)
    verify_rotation(old, new, NOW)


def test_rotation_failures() -> None:
    old_keys, new_keys = keys_for("se.gi-goteborg"), keys_for("se.gi-goteborg", "#2")
    old = card_for(old_keys)
    new = card_for(new_keys, previous=old_keys)
    unendorsed = card_for(new_keys)
    with pytest.raises(MalformedError):
        verify_rotation(old, unendorsed, NOW)
    stripped = copy.deepcopy(new.to_json())
    del stripped["signatures"]["se.gi-goteborg"][old.skid]
    with pytest.raises(BadSignatureError):
        verify_rotation(old, NodeCard.from_json(stripped), NOW)
    with pytest.raises(RevokedKeyError):
        verify_rotation(old, new, NOW, revoked=frozenset({old.skid}))
    with pytest.raises(MalformedError):
        verify_rotation(card_for(keys_for("iq.cldd-baghdad")), new, NOW)
    late = card_for(new_keys, previous=old_keys, valid_from=old.valid_until,
                    valid_until=old.valid_until + timedelta(days=30))
    with pytest.raises(ExpiredError):
        verify_rotation(old, late, old.valid_until + timedelta(days=1))
    with pytest.raises(MalformedError):
        card_for(new_keys, previous=keys_for("iq.cldd-baghdad"))


def test_revocation_by_the_key_itself_and_by_a_successor() -> None:
    old_keys, new_keys = keys_for("se.gi-goteborg"), keys_for("se.gi-goteborg", "#2")
    old, new = card_for(old_keys), card_for(new_keys, previous=old_keys)
    self_signed = make_revocation(old_keys, old.skid, revoked_at=NOW, reason="compromised")
    assert verify_revocation(self_signed, old).kid == old.skid
    by_successor = make_revocation(old_keys, old.skid, revoked_at=NOW, reason="superseded",
                                   signing_keys=new_keys)
    revocation = verify_revocation(by_successor, [old, new])
    assert (revocation.kid, revocation.reason, revocation.revoked_at) == (old.skid, "superseded", NOW)
    with pytest.raises(UnknownKeyError):
        verify_revocation(by_successor, old)


def test_revocation_failures() -> None:
    keys = keys_for("se.gi-goteborg")
    card = card_for(keys)
    statement = make_revocation(keys, card.skid, revoked_at=NOW, reason="retired")
    with pytest.raises(BadSignatureError):
        verify_revocation({**statement, "reason": "compromised"}, card)
    with pytest.raises(UnknownKeyError):
        verify_revocation(statement, card_for(keys_for("iq.cldd-baghdad")))
    with pytest.raises(MalformedError):
        verify_revocation({**statement, "extra": 1}, card)
    with pytest.raises(MalformedError):
        verify_revocation({**statement, "reason": "bored"}, card)
    with pytest.raises(MalformedError):
        verify_revocation("nope", card)
    with pytest.raises(MalformedError):
        make_revocation(keys, card.skid, revoked_at=NOW, reason="bored")
    with pytest.raises(MalformedError):
        make_revocation(keys, "not-a-kid", revoked_at=NOW, reason="retired")
