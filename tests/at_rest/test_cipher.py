"""The ciphertext format: a round trip, and every way a stored value can be wrong raises instead of reading."""

from __future__ import annotations

import pytest

from node.at_rest.cipher import AtRestError, open_bytes, open_text, prefix, seal_bytes, seal_text
from node.at_rest.keys import DataKey, DataKeyError, format_key_file, key_id, parse_key_file

KEY = DataKey.from_secret(bytes(range(32)))
OTHER = DataKey.from_secret(bytes(range(1, 33)))


def lookup(kid: str) -> bytes | None:
    return {KEY.kid: KEY.secret, OTHER.kid: OTHER.secret}.get(kid)


def test_text_and_bytes_round_trip_and_name_their_key() -> None:
    sealed = seal_text(KEY, "Astma; behöver inhalator. ربو", "intake_sections.text")
    assert sealed.startswith(prefix(KEY.kid)) and "Astma" not in sealed
    assert open_text(lookup, sealed, "intake_sections.text") == "Astma; behöver inhalator. ربو"
    blob = seal_bytes(KEY, b'{"note":"x"}', "inbound_messages.inner")
    assert blob.startswith(prefix(KEY.kid).encode()) and open_bytes(lookup, blob, "inbound_messages.inner") == \
        b'{"note":"x"}'
    assert seal_text(KEY, "same", "t.c") != seal_text(KEY, "same", "t.c")  # a fresh nonce every time


def test_a_changed_byte_fails() -> None:
    sealed = seal_text(KEY, "Diabetes type 2", "intake_sections.text")
    head, body = sealed[: len(prefix(KEY.kid))], sealed[len(prefix(KEY.kid)):]
    flipped = body[:10] + ("A" if body[10] != "A" else "B") + body[11:]
    with pytest.raises(AtRestError, match="failed its check"):
        open_text(lookup, head + flipped, "intake_sections.text")
    blob = bytearray(seal_bytes(KEY, b"inner", "inbound_messages.inner"))
    blob[-1] ^= 1
    with pytest.raises(AtRestError):
        open_bytes(lookup, bytes(blob), "inbound_messages.inner")


def test_a_ciphertext_moved_to_another_column_or_relabelled_fails() -> None:
    sealed = seal_text(KEY, "child views", "child_safeguards.child_views")
    with pytest.raises(AtRestError, match="failed its check"):
        open_text(lookup, sealed, "progress_notes.text")
    relabelled = prefix(OTHER.kid) + sealed[len(prefix(KEY.kid)):]
    with pytest.raises(AtRestError, match="failed its check"):
        open_text(lookup, relabelled, "child_safeguards.child_views")


def test_an_unknown_key_or_a_value_in_clear_fails() -> None:
    sealed = seal_text(DataKey.generate(), "text", "t.c")
    with pytest.raises(AtRestError, match="does not hold"):
        open_text(lookup, sealed, "t.c")
    for value in ("plain text", "ccm1:only", "ccm2:x:y"):
        with pytest.raises(AtRestError):
            open_text(lookup, value, "t.c")
    with pytest.raises(AtRestError, match="not encrypted"):
        open_bytes(lookup, b"plain", "t.c")


def test_key_file_format() -> None:
    text = format_key_file([KEY, OTHER])
    assert [k.kid for k in parse_key_file(text)] == [KEY.kid, OTHER.kid]
    assert len(key_id(KEY.secret)) == 8
    for bad in ("", "# only a comment\n", "not-base64!\n", "AAAA\n"):
        with pytest.raises(ValueError):
            parse_key_file(bad)
    assert DataKeyError("x").message == "x"
