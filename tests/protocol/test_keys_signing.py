"""Node ids, key ids, fingerprints, key files and sign_json."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import nacl.signing
import pytest

from protocol import (
    BadSignatureError,
    KeyFileError,
    MalformedError,
    NodeKeys,
    fingerprint,
    key_id,
    sign_json,
    signature_ids,
    verify_signed_json,
)
from protocol.keys import check_node_id
from protocol.signing import signing_input


@pytest.mark.parametrize("node_id", ["se.gi-goteborg", "iq.cldd-baghdad", "gh.x1"])
def test_node_ids(node_id: str) -> None:
    assert check_node_id(node_id) == node_id


@pytest.mark.parametrize("node_id", ["SE.gi", "se.g", "se_gi-goteborg", "s.gi-goteborg", "se.-gi", "se.gi/x",
                                     3])
def test_bad_node_ids(node_id: object) -> None:
    with pytest.raises(MalformedError):
        check_node_id(node_id)


def test_key_id_is_22_chars_of_sha256() -> None:
    kid = key_id(bytes(32))
    # SHA-256 of 32 zero bytes is 66687aad...; its base64url form starts "Zmh6rfhivXdsj8GLjp-OIA".
    assert kid == "Zmh6rfhivXdsj8GLjp-OIA"
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", kid)


def test_fingerprint_shape_and_binding() -> None:
    keys = NodeKeys.from_seed("se.gi-goteborg", bytes(32))
    fp = keys.fingerprint()
    assert re.fullmatch(r"(\d{5} ){11}\d{5}", fp)
    assert fp == fingerprint("se.gi-goteborg", keys.signing_public)
    assert fp != fingerprint("se.gi-stockholm", keys.signing_public)
    assert fp != NodeKeys.from_seed("se.gi-goteborg", bytes([1]) * 32).fingerprint()


def test_from_seed_is_deterministic_and_separates_keys() -> None:
    a, b = NodeKeys.from_seed("se.gi-goteborg", bytes(32)), NodeKeys.from_seed("se.gi-goteborg", bytes(32))
    assert a.signing_public == b.signing_public and a.encryption_public == b.encryption_public
    assert a.signing_public != a.encryption_public and a.skid != a.ekid
    with pytest.raises(MalformedError):
        NodeKeys.from_seed("se.gi-goteborg", bytes(31))


def test_key_file_round_trip_with_mode_0600(tmp_path: Path) -> None:
    keys = NodeKeys.generate("se.gi-goteborg")
    path = tmp_path / "node.key"
    keys.save(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    loaded = NodeKeys.load(path)
    assert loaded.signing_public == keys.signing_public and loaded.encryption_public == keys.encryption_public
    with pytest.raises(KeyFileError, match="exists"):
        keys.save(path)
    keys.save(path, overwrite=True)


def test_key_file_refused_when_readable_by_others(tmp_path: Path) -> None:
    path = tmp_path / "node.key"
    NodeKeys.generate("se.gi-goteborg").save(path)
    os.chmod(path, 0o644)
    with pytest.raises(KeyFileError, match="0600"):
        NodeKeys.load(path)


@pytest.mark.parametrize("content", [
    b"", b"{}", b'{"v":2,"node_id":"se.gi-x","signing_seed":"","encryption_key":""}',
    b'{"v":1,"node_id":"se.gi-x","signing_seed":"AA","encryption_key":"AA"}',
])
def test_bad_key_files(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "node.key"
    path.write_bytes(content)
    os.chmod(path, 0o600)
    with pytest.raises(KeyFileError):
        NodeKeys.load(path)


def test_missing_key_file(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="cannot read"):
        NodeKeys.load(tmp_path / "absent.key")


def test_sign_and_verify() -> None:
    key = nacl.signing.SigningKey(bytes(32))
    signed = sign_json({"b": 1, "a": "x", "unsigned": {"age": 3}}, "se.gi-goteborg", key)
    assert signature_ids(signed, "se.gi-goteborg") == [key_id(bytes(key.verify_key))]
    verify_signed_json(signed, "se.gi-goteborg", key.verify_key)
    assert signing_input(signed) == b'{"a":"x","b":1}'
    verify_signed_json({**signed, "unsigned": {"changed": True}}, "se.gi-goteborg", key.verify_key)


def test_several_signers_and_keys_coexist() -> None:
    first, second = nacl.signing.SigningKey(bytes(32)), nacl.signing.SigningKey(bytes([1]) * 32)
    signed = sign_json(sign_json({"a": 1}, "se.gi-goteborg", first), "iq.cldd-baghdad", second)
    signed = sign_json(signed, "se.gi-goteborg", second)
    verify_signed_json(signed, "se.gi-goteborg", first.verify_key)
    verify_signed_json(signed, "se.gi-goteborg", second.verify_key)
    verify_signed_json(signed, "iq.cldd-baghdad", second.verify_key)
    assert len(signature_ids(signed, "se.gi-goteborg")) == 2


def test_verification_failures() -> None:
    key, other = nacl.signing.SigningKey(bytes(32)), nacl.signing.SigningKey(bytes([2]) * 32)
    signed = sign_json({"a": 1}, "se.gi-goteborg", key)
    with pytest.raises(BadSignatureError):
        verify_signed_json({**signed, "a": 2}, "se.gi-goteborg", key.verify_key)
    with pytest.raises(BadSignatureError):
        verify_signed_json(signed, "se.gi-goteborg", other.verify_key)
    with pytest.raises(BadSignatureError):
        verify_signed_json(signed, "iq.cldd-baghdad", key.verify_key)
    with pytest.raises(MalformedError):
        verify_signed_json({"a": 1}, "se.gi-goteborg", key.verify_key)
    kid = key_id(bytes(key.verify_key))
    with pytest.raises(MalformedError):
        verify_signed_json({**signed, "signatures": {"se.gi-goteborg": {kid: "not base64!"}}},
                           "se.gi-goteborg", key.verify_key)
    with pytest.raises(MalformedError):
        sign_json({"signatures": []}, "se.gi-goteborg", key)
    assert signature_ids({"signatures": "x"}, "se.gi-goteborg") == []


def test_key_file_in_a_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="cannot create"):
        NodeKeys.generate("se.gi-goteborg").save(tmp_path / "no" / "such" / "node.key")
