"""open_envelope across a key rotation (SPEC.md 3.2, 6.1 step 7): the sender's previous keys are accepted
until the end of the overlap the receiver holds for them and refused from then on (``unknown_key``), a revoked
key never (``revoked_key``), and a message sealed to the receiver's previous encryption key still opens with
its retired keys. A receipt signed by both keys of a rotating receiver verifies against either card."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from protocol import (
    PartnerView,
    RevokedKeyError,
    UnknownKeyError,
    make_card,
    make_receipt,
    open_envelope,
    seal,
    sign_json,
    verify_receipt,
    verify_rotation,
)

from .conftest import NOW, THREAD, History, card_for, keys_for

SE_OLD, SE_NEW = keys_for("se.gi-goteborg"), keys_for("se.gi-goteborg", "#2")
IQ_OLD, IQ_NEW = keys_for("iq.cldd-baghdad"), keys_for("iq.cldd-baghdad", "#2")
SE_OLD_CARD, IQ_OLD_CARD = card_for(SE_OLD), card_for(IQ_OLD)
SE_NEW_CARD = make_card(SE_NEW, name="se", base_url="https://se.example", valid_from=NOW,
                        valid_until=NOW + timedelta(days=700), previous=SE_OLD)
IQ_NEW_CARD = card_for(IQ_NEW)
OVERLAP_END = NOW + timedelta(days=30)


class OneView:
    def __init__(self, view: PartnerView) -> None:
        self.view = view

    def partner(self, node_id: str) -> PartnerView | None:
        return self.view if node_id == self.view.node_id else None


def rotated_view(revoked: frozenset[str] = frozenset()) -> OneView:
    """What Baghdad accepts from Göteborg after taking its rotation: both cards, the old one until the end."""
    view = PartnerView.from_cards([SE_OLD_CARD, SE_NEW_CARD], revoked)
    until = {SE_OLD.skid: OVERLAP_END, SE_OLD.ekid: OVERLAP_END}
    return OneView(PartnerView(view.node_id, view.signing_keys, view.encryption_keys, view.revoked, until))


def sealed(samples: dict[str, Any], keys: Any = SE_OLD, recipient: Any = IQ_OLD_CARD, at: Any = NOW) -> bytes:
    return seal(keys=keys, recipient=recipient, msg_type="progress_update", body=samples["progress_update"],
                thread=THREAD, now=at).data


def test_the_new_card_is_a_valid_successor() -> None:
    verify_rotation(SE_OLD_CARD, SE_NEW_CARD, NOW)


@pytest.mark.parametrize("keys", [SE_OLD, SE_NEW])
def test_both_keys_accepted_during_the_overlap(samples: dict[str, Any], keys: Any) -> None:
    at = OVERLAP_END - timedelta(seconds=1)
    opened = open_envelope(sealed(samples, keys, at=at), keys=IQ_OLD, directory=rotated_view(), history=History(),
                           now=at)
    assert opened.skid == keys.skid


def test_previous_key_refused_from_the_end_of_the_overlap(samples: dict[str, Any]) -> None:
    with pytest.raises(UnknownKeyError, match="overlap ended"):
        open_envelope(sealed(samples, SE_OLD, at=OVERLAP_END), keys=IQ_OLD, directory=rotated_view(),
                      history=History(), now=OVERLAP_END)
    opened = open_envelope(sealed(samples, SE_NEW, at=OVERLAP_END), keys=IQ_OLD, directory=rotated_view(),
                           history=History(), now=OVERLAP_END)
    assert opened.skid == SE_NEW.skid


def test_a_revoked_key_is_refused_even_in_the_overlap(samples: dict[str, Any]) -> None:
    with pytest.raises(RevokedKeyError):
        open_envelope(sealed(samples), keys=IQ_OLD, directory=rotated_view(frozenset({SE_OLD.skid})),
                      history=History(), now=NOW)


def test_sealed_to_the_receivers_previous_key(samples: dict[str, Any]) -> None:
    """Göteborg sealed to Baghdad's old card; Baghdad has rotated since and opens it with its retired keys."""
    data = sealed(samples, SE_OLD, IQ_OLD_CARD)
    directory = OneView(PartnerView.from_cards([SE_OLD_CARD]))
    with pytest.raises(UnknownKeyError, match="recipient key not ours"):
        open_envelope(data, keys=IQ_NEW, directory=directory, history=History(), now=NOW)
    opened = open_envelope(data, keys=IQ_NEW, directory=directory, history=History(), now=NOW,
                           retired_keys=[IQ_OLD])
    assert opened.header.recipient == "iq.cldd-baghdad"


def test_a_receipt_signed_by_both_keys_verifies_against_either_card(samples: dict[str, Any]) -> None:
    opened = open_envelope(sealed(samples), keys=IQ_OLD, directory=OneView(PartnerView.from_cards([SE_OLD_CARD])),
                           history=History(), now=NOW)
    receipt = sign_json(make_receipt(IQ_OLD, opened, NOW), IQ_NEW.node_id, IQ_NEW.signing_key)
    for card in (IQ_OLD_CARD, IQ_NEW_CARD):
        assert verify_receipt(receipt, card, message_id=opened.header.id).recipient == "iq.cldd-baghdad"
