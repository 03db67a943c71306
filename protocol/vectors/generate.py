"""Generate the protocol test vectors: ``python -m protocol.vectors.generate [--check]``.

Everything is fixed: a node's 32-byte seed is ``SHA-256("ccm-protocol-vectors/" + node id)``, message ids
are the first 16 bytes of ``SHA-256("message/" + label)``, nonces the first 24 bytes of
``SHA-256("nonce/" + label)``, and the clock reads ``NOW``. Bodies come from ``sample_bodies.json`` (the
handover's consent is re-signed by this world's origin key). Every vector's outcome is computed by
``runner.compute`` and checked against the intended outcome here, so a generator run that would record a
wrong error code fails instead. ``rfc8032.json`` and ``rfc8785.json`` are published data, not generated.
"""

from __future__ import annotations

import copy
import hashlib
import json
import sys
from collections.abc import Callable
from typing import Any

from ..canonical import b64encode, canonical_bytes, strict_loads
from ..cards import make_revocation
from ..consent import sign_consent
from ..messages import enumerations
from ..signing import sign_json
from ..times import parse_time
from .runner import VECTOR_DIR, compute, party_keys, reseal

NOW = "2026-03-02T10:00:00Z"
TTL = 30 * 24 * 3600
AGREEMENT = "gi-cldd-2026-01"
SE, IQ, BA, STO = "se.gi-goteborg", "iq.cldd-baghdad", "ba.cldd-sarajevo", "se.cldd-stockholm"
GENERATED = ("canonical.json", "keys.json", "signatures.json", "cards.json", "seal.json", "open.json",
             "chain.json", "receipts.json", "value_sets.json",
             "fields.json", "consent.json", "bundles.json", "forward.json", "resync.json")
# Who sends each message type in the vector world (sample bodies name these nodes).
ROUTES = {
    "handover": (SE, IQ), "consent_withdrawn": (SE, IQ), "receipt": (IQ, SE), "handover_accepted": (IQ, SE),
    "handover_declined": (IQ, SE), "progress_update": (IQ, SE), "erasure_confirmed": (IQ, SE),
    "case_closed": (IQ, SE), "key_rotated": (IQ, SE), "forward": (STO, BA), "custody_notice": (STO, SE),
}


def party(node_id: str, label: str = "") -> dict[str, str]:
    digest = hashlib.sha256(f"ccm-protocol-vectors/{node_id}{label}".encode()).digest()
    return {"node_id": node_id, "seed": b64encode(digest)}


def fixed_id(label: str) -> str:
    return b64encode(hashlib.sha256(f"message/{label}".encode()).digest()[:16])


def fixed_nonce(label: str) -> str:
    return b64encode(hashlib.sha256(f"nonce/{label}".encode()).digest()[:24])


def vector(description: str, kind: str, inp: dict[str, Any], error: str | None = None) -> dict[str, Any]:
    outcome, value = compute(kind, inp)
    if error is not None:
        if (outcome, value) != ("error", error):
            raise AssertionError(f"{description}: expected error {error}, got {outcome} {value}")
        return {"description": description, "input": inp, "error": error}
    if outcome != "expected":
        raise AssertionError(f"{description}: unexpected error {value}")
    return {"description": description, "input": inp, "expected": value}


def sample_bodies() -> dict[str, Any]:
    bodies: dict[str, Any] = json.loads((VECTOR_DIR / "sample_bodies.json").read_text("utf-8"))
    handover = copy.deepcopy(bodies["handover"])
    unsigned = {k: v for k, v in handover["consent"].items() if k != "signatures"}
    origin = party_keys(party(SE))
    handover["consent"] = sign_consent(unsigned, SE, origin.signing_key)
    bodies["handover"] = handover
    return bodies


def seal_input(msg_type: str, body: Any, *, thread_label: str = "case-1", label: str | None = None,
               prev: str | None = None, route: tuple[str, str] | None = None) -> dict[str, Any]:
    sender, recipient = route or ROUTES[msg_type]
    label = label or msg_type
    return {
        "sender": party(sender), "recipient": party(recipient), "type": msg_type, "body": body,
        "thread": fixed_id(f"thread/{thread_label}"), "now": NOW, "ttl_seconds": TTL,
        "message_id": fixed_id(label), "nonce": fixed_nonce(label), "prev": prev,
        "agreement": AGREEMENT if msg_type in ("handover", "forward") else None,
    }


def sealed(inp: dict[str, Any]) -> dict[str, Any]:
    outcome, value = compute("seal", inp)
    assert outcome == "expected", value
    result: dict[str, Any] = value
    return result


def open_input(envelope: str, receiver: str, partners: list[str], **extra: Any) -> dict[str, Any]:
    return {"envelope": envelope, "receiver": party(receiver), "partners": [party(p) for p in partners],
            "now": NOW, **extra}


def canonical_file() -> list[dict[str, Any]]:
    ok = [
        ("key order and compact form", '{ "b": 1, "a": [true, false, null], "c": "x" }'),
        ("escapes: only quote, backslash and controls", '{"s": "\\u00e9\\u0000\\t\\"\\\\\\/\\u001f\\u007f"}'),
        ("non-ASCII text stays raw UTF-8", '{"name": "Đorđe Šarić", "ar": "كريم", "e": "\\ud83d\\ude00"}'),
        ("numbers in ECMAScript form", "[1.0, 1e21, 0.1, -0, 100, 1E-7]"),
        ("nested objects sorted at every level", '{"z": {"y": 1, "x": {"b": 2, "a": 1}}, "a": []}'),
    ]
    bad = [
        ("duplicate object key", '{"a": 1, "a": 2}'),
        ("lone surrogate", '["\\ud800"]'),
        ("integer outside the I-JSON safe range", "[9007199254740992]"),
        ("NaN is not JSON", "[NaN]"),
        ("number out of range", "[1e400]"),
        ("nested 33 deep", "[" * 33 + "]" * 33),
        ("trailing comma", "[1, 2,]"),
    ]
    vectors = [vector(d, "canonical", {"json": j}) for d, j in ok]
    vectors += [vector(d, "canonical", {"json": j}, "malformed") for d, j in bad]
    vectors.append(vector("not UTF-8", "canonical", {"json_b64": b64encode(b'"\xff"')}, "malformed"))
    vectors += [
        vector("the four whitespace characters around tokens", "canonical",
               {"json_b64": b64encode(b' \t{\r\n"a" :\t[ 1 ,2 ]\n}\r\n ')}),
        vector("a byte-order mark is not whitespace", "canonical", {"json_b64": b64encode(b"\xef\xbb\xbf{}")},
               "malformed"),
        vector("a form feed is not whitespace", "canonical", {"json_b64": b64encode(b"\x0c{}")}, "malformed"),
        vector("a no-break space is not whitespace", "canonical", {"json_b64": b64encode(b"{\xc2\xa0}")},
               "malformed"),
        vector("the largest safe integer", "canonical", {"json": "[9007199254740991, -9007199254740991]"}),
    ]
    return vectors


def keys_file() -> list[dict[str, Any]]:
    return [vector(f"keys of {n}", "keys", party(n)) for n in (SE, IQ, BA, STO)]


def signatures_file() -> list[dict[str, Any]]:
    obj = {"b": [1, 2], "a": "Šarić", "unsigned": {"note": "not signed"}}
    signed = sign_json(obj, IQ, party_keys(party(IQ)).signing_key)
    tampered = {**signed, "a": "Saric"}
    return [
        vector("sign an object (unsigned member excluded)", "signatures", {"op": "sign", "signer": party(SE),
                                                                          "object": obj}),
        vector("add a second signer", "signatures", {"op": "sign", "signer": party(SE), "object": signed}),
        vector("verify", "signatures", {"op": "verify", "signer": party(IQ), "object": signed}),
        vector("tampered member", "signatures", {"op": "verify", "signer": party(IQ), "object": tampered},
               "bad_signature"),
        vector("no signature by that signer", "signatures", {"op": "verify", "signer": party(SE),
                                                            "object": signed}, "bad_signature"),
    ]


def cards_file() -> list[dict[str, Any]]:
    make = {"op": "make", "party": party(SE), "name": "Göteborgs-Initiativet",
            "base_url": "https://gi.example/federation", "valid_from": "2026-01-01T00:00:00Z",
            "valid_until": "2027-01-01T00:00:00Z"}
    card = vector("make a card", "cards", make)
    rotated_input = {**make, "party": party(SE, "#2"), "previous": party(SE),
                     "valid_from": "2026-06-01T00:00:00Z", "valid_until": "2027-06-01T00:00:00Z"}
    rotated = vector("make a rotated card endorsed by the previous key", "cards", rotated_input)
    old_card, new_card = card["expected"]["card"], rotated["expected"]["card"]
    unendorsed = copy.deepcopy(new_card)
    del unendorsed["signatures"][SE][old_card["signing_kid"]]
    wrong_kid = {**old_card, "signing_kid": party_keys(party(IQ)).skid}
    version_two = {**old_card, "v": 2}
    one_key = sign_json({**{k: v for k, v in old_card.items() if k != "signatures"},
                         "encryption_key": old_card["signing_key"], "encryption_kid": old_card["signing_kid"]},
                        SE, party_keys(party(SE)).signing_key)
    return [
        card, rotated,
        vector("verify", "cards", {"op": "verify", "card": old_card, "now": NOW}),
        vector("expired", "cards", {"op": "verify", "card": old_card, "now": "2027-01-01T00:00:00Z"},
               "expired"),
        vector("not yet valid", "cards", {"op": "verify", "card": old_card, "now": "2025-12-31T23:54:59Z"},
               "not_yet_valid"),
        vector("tampered name", "cards", {"op": "verify", "card": {**old_card, "name": "GI"}, "now": NOW},
               "bad_signature"),
        vector("key ids must match keys", "cards", {"op": "verify", "card": wrong_kid, "now": NOW},
               "malformed"),
        vector("one key for signing and encryption", "cards", {"op": "verify", "card": one_key, "now": NOW},
               "malformed"),
        vector("a card of version 2", "cards", {"op": "verify", "card": version_two, "now": NOW},
               "unsupported_version"),
        vector("a card whose signing key the verifier knows to be revoked", "cards",
               {"op": "verify", "card": old_card, "now": NOW, "revoked": [old_card["signing_kid"]]}, "revoked_key"),
        vector("a card whose encryption key the verifier knows to be revoked", "cards",
               {"op": "verify", "card": old_card, "now": NOW, "revoked": [old_card["encryption_kid"]]},
               "revoked_key"),
        vector("rotation accepted", "cards", {"op": "rotate", "old_card": old_card, "new_card": new_card,
                                              "now": "2026-07-01T00:00:00Z"}),
        vector("rotation without the old key's endorsement", "cards",
               {"op": "rotate", "old_card": old_card, "new_card": unendorsed, "now": "2026-07-01T00:00:00Z"},
               "bad_signature"),
        vector("revoke a key (self-signed statement)", "cards",
               {"op": "revoke", "party": party(SE), "kid": party_keys(party(SE)).skid,
                "reason": "compromised", "now": NOW}),
        vector("revocation signed by another node", "cards",
               {"op": "verify_revocation", "card": old_card, "statement": sign_json(
                   {"v": 1, "type": "key_revocation", "node_id": SE, "kid": old_card["signing_kid"],
                    "revoked_at": NOW, "reason": "compromised"}, SE, party_keys(party(IQ)).signing_key)},
               "unknown_key"),
        *revocation_vectors(old_card, new_card),
        *key_rotated_vectors(old_card, new_card, unendorsed),
    ]


def key_rotated_vectors(old_card: dict[str, Any], new_card: dict[str, Any],
                        unendorsed: dict[str, Any]) -> list[dict[str, Any]]:
    """The receiver's check of a ``key_rotated`` body (SPEC 3.2): who announced it and the card it carries."""
    body = {"new_card": new_card, "effective_at": "2026-06-01T00:00:00Z", "overlap_until": "2026-07-01T00:00:00Z"}
    base = {"op": "key_rotated", "body": body, "skid": old_card["signing_kid"], "held": old_card,
            "now": "2026-06-01T00:00:00Z"}
    return [
        vector("a key_rotated announced with the key it replaces", "cards", base),
        vector("a key_rotated announced with another key", "cards", {**base, "skid": new_card["signing_kid"]},
               "malformed"),
        vector("a key_rotated whose card the old key did not endorse", "cards",
               {**base, "body": {**body, "new_card": unendorsed}}, "bad_signature"),
        vector("a key_rotated from a key the receiver knows to be revoked", "cards",
               {**base, "revoked": [old_card["signing_kid"]]}, "revoked_key"),
        vector("a key_rotated whose new card is not a card", "cards",
               {**base, "body": {**body, "new_card": {"v": 1}}}, "malformed"),
        *revocation_batch_vectors(old_card),
    ]


def revocation_batch_vectors(old_card: dict[str, Any]) -> list[dict[str, Any]]:
    """The revocation endpoint's body (SPEC 3.3, "Transport"): an array of 1..16 statements of one node."""
    keys = party_keys(party(SE))
    one = make_revocation(keys, old_card["signing_kid"], revoked_at=parse_time(NOW), reason="compromised")
    other_node = make_revocation(party_keys(party(IQ)), party_keys(party(IQ)).skid, revoked_at=parse_time(NOW),
                                 reason="retired")
    text = canonical_bytes([one]).decode("utf-8")

    def batch(items: Any) -> dict[str, Any]:
        return {"op": "revocation_batch", "batch": canonical_bytes(items).decode("utf-8")}

    return [
        vector("a batch of one statement", "cards", {"op": "revocation_batch", "batch": text}),
        vector("a batch of sixteen statements", "cards", batch([one] * 16)),
        vector("a batch of seventeen statements", "cards", batch([one] * 17), "malformed"),
        vector("an empty batch", "cards", batch([]), "malformed"),
        vector("a statement alone, not in an array", "cards", batch(one), "malformed"),
        vector("statements of two nodes in one batch", "cards", batch([one, other_node]), "malformed"),
        vector("a batch that is not JSON", "cards", {"op": "revocation_batch", "batch": text[:-1]}, "malformed"),
        vector("a batch over 65,536 bytes", "cards",
               {"op": "revocation_batch", "batch": text + " " * (65_537 - len(text))}, "oversized"),
    ]


def revocation_vectors(old_card: dict[str, Any], new_card: dict[str, Any]) -> list[dict[str, Any]]:
    """Who may sign a revocation (SPEC 3.3), and each refusal of a statement's form."""
    old_keys, new_keys = party_keys(party(SE)), party_keys(party(SE, "#2"))

    def statement(signer: Any, **changes: Any) -> dict[str, Any]:
        doc = {"v": 1, "type": "key_revocation", "node_id": SE, "kid": old_card["signing_kid"],
               "revoked_at": NOW, "reason": "superseded", **changes}
        return sign_json(doc, SE, signer.signing_key)

    def verify(card: dict[str, Any], doc: dict[str, Any]) -> dict[str, Any]:
        return {"op": "verify_revocation", "card": card, "statement": doc}

    return [
        vector("the previous key revoked by the new card's key (a card the verifier trusts)", "cards",
               verify(new_card, statement(new_keys))),
        vector("a key revoked by itself, verified with its own card", "cards", verify(old_card, statement(old_keys))),
        vector("a revocation signed only by a key the verifier's card does not hold", "cards",
               verify(old_card, statement(new_keys)), "unknown_key"),
        vector("a revocation whose signature does not verify", "cards",
               verify(old_card, {**statement(old_keys), "reason": "retired"}), "bad_signature"),
        vector("a revocation with an unknown reason", "cards", verify(old_card, statement(old_keys, reason="lost")),
               "malformed"),
        vector("a revocation whose reason is not a string", "cards",
               verify(old_card, statement(old_keys, reason=["compromised"])), "malformed"),
        vector("a revocation of version 2", "cards", verify(old_card, statement(old_keys, v=2)),
               "unsupported_version"),
        vector("a revocation with an extra member", "cards", verify(old_card, statement(old_keys, note="x")),
               "malformed"),
        vector("a revocation whose kid is not a key id", "cards", verify(old_card, statement(old_keys, kid="short")),
               "malformed"),
        vector("a revocation with an offset time", "cards",
               verify(old_card, statement(old_keys, revoked_at="2026-03-02T10:00:00+00:00")), "malformed"),
    ]


def tamper(envelope: str, resign_as: str | None = None, **changes: Any) -> str:
    doc = strict_loads(envelope) | changes
    if resign_as is not None:
        unsigned = {k: v for k, v in doc.items() if k != "sig"}
        sig = party_keys(party(resign_as)).signing_key.sign(canonical_bytes(unsigned)).signature
        doc["sig"] = b64encode(sig)
    return canonical_bytes(doc).decode("utf-8")


def flip(text: str, index: int = 10) -> str:
    """Change one base64url character (not the last, whose unused bits must stay zero)."""
    return text[:index] + ("A" if text[index] != "A" else "B") + text[index + 1 :]


def reseal_inner(envelope: str, sender: str, recipient: str, change: Callable[[bytes], bytes]) -> str:
    """The envelope with its inner document replaced by ``change(inner bytes)``, encrypted again to the
    recipient and with a valid outer signature: a refusal must then come from the inner checks (steps 12-14)."""
    return reseal(envelope, party(sender), party(recipient), change).decode("utf-8")


def resigned_inner(inner: bytes, sender: str, **changes: Any) -> bytes:
    """The inner document with ``changes`` (a header change given as ``header``), signed again by the sender."""
    doc = {k: v for k, v in strict_loads(inner).items() if k != "signatures"} | changes
    return canonical_bytes(sign_json(doc, sender, party_keys(party(sender)).signing_key))


def rotation_vectors(envelope: str, base: dict[str, Any]) -> list[dict[str, Any]]:
    """Keys in use across a rotation (SPEC 3.2): the sender's previous keys until the end of the overlap, and
    the receiver's previous encryption key while it keeps it. The envelope is sealed by Göteborg's first keys
    to Baghdad's first card."""
    rotated_sender = {**base, "partners": [party(SE, "#2")],
                      "previous_partners": [{"party": party(SE), "accepted_until": "2026-03-02T10:00:01Z"}]}
    rotated_receiver = {**base, "receiver": party(IQ, "#2")}
    return [
        vector("the sender rotated: its previous keys are accepted until the end of the overlap", "open",
               rotated_sender),
        vector("the sender rotated: its previous keys are refused from the end of the overlap", "open",
               {**rotated_sender, "previous_partners": [{"party": party(SE), "accepted_until": NOW}]},
               "unknown_key"),
        vector("the sender rotated and the receiver holds only its new card", "open",
               {**base, "partners": [party(SE, "#2")]}, "unknown_key"),
        vector("the receiver rotated: a message sealed to its previous key opens while it keeps that key", "open",
               {**rotated_receiver, "retired_keys": [party(IQ)]}),
        vector("the receiver rotated: without its previous key the message's rkid is not its key", "open",
               rotated_receiver, "unknown_key"),
    ]


def inner_refusals(envelope: str) -> list[tuple[str, dict[str, Any], str]]:
    """Steps 12-14 of SPEC 6.1: each refusal the inner document can earn, behind a valid envelope."""
    base = open_input(envelope, IQ, [SE])

    def with_inner(change: Callable[[bytes], bytes]) -> dict[str, Any]:
        return {**base, "envelope": reseal_inner(envelope, SE, IQ, change)}

    def header_of(inner: bytes) -> dict[str, Any]:
        value: dict[str, Any] = strict_loads(inner)["header"]
        return value

    return [
        ("inner document not canonical (a space after a colon)",
         with_inner(lambda b: b.replace(b'"prev":', b'"prev": ', 1)), "non_canonical"),
        ("inner header of version 2", with_inner(lambda b: resigned_inner(b, SE, header={**header_of(b), "v": 2})),
         "unsupported_version"),
        ("inner header with an extra member (malformed at step 12, not a mismatch)",
         with_inner(lambda b: resigned_inner(b, SE, header={**header_of(b), "extra": "x"})), "malformed"),
        ("inner header without its thread (malformed at step 12)",
         with_inner(lambda b: resigned_inner(b, SE, header={k: v for k, v in header_of(b).items()
                                                            if k != "thread"})), "malformed"),
        ("inner document signed by a node other than the sender",
         with_inner(lambda b: canonical_bytes(sign_json({k: v for k, v in strict_loads(b).items()
                                                         if k != "signatures"}, IQ,
                                                        party_keys(party(IQ)).signing_key))), "malformed"),
        ("inner signature that does not verify (one character of it changed)",
         with_inner(lambda b: b[:-10] + (b"A" if b[-10:-9] != b"A" else b"B") + b[-9:]), "bad_signature"),
        ("inner header differs from the envelope in one value",
         with_inner(lambda b: resigned_inner(b, SE, header={**header_of(b), "expires": "2026-04-02T10:00:00Z"})),
         "header_mismatch"),
        ("inner document whose agreement is not an id", with_inner(lambda b: resigned_inner(b, SE, agreement=7)),
         "malformed"),
        ("inner document one byte over 778,240 (padded with spaces, sealed again)",
         {**base, "sender": party(SE), "inner_pad_to": 778_241}, "oversized"),
        ("inner document of exactly 778,240 bytes passes the size check (then its spaces are not canonical)",
         {**base, "sender": party(SE), "inner_pad_to": 778_240}, "non_canonical"),
    ]


def seal_and_open_files(bodies: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    seals, opens = [], []
    for msg_type in sorted(bodies):
        inp = seal_input(msg_type, bodies[msg_type])
        seals.append(vector(f"seal a {msg_type}", "seal", inp))
        sender, recipient = ROUTES[msg_type]
        opens.append(vector(f"open a {msg_type}", "open",
                            open_input(seals[-1]["expected"]["envelope"], recipient, [sender])))
    envelope = sealed(seal_input("handover", bodies["handover"]))["envelope"]
    doc = strict_loads(envelope)
    base = open_input(envelope, IQ, [SE])
    opens.append(vector("handover with its consent checked", "open", {**base, "consent_origin": party(SE)}))
    to_ba = sealed(seal_input("handover", bodies["handover"], route=(SE, BA), label="handover-ba"))
    other_sig = b64encode(party_keys(party(SE)).signing_key.sign(b"something else").signature)
    bad_body = {**bodies["handover_accepted"], "unexpected": "field"}
    invalid = sealed({**seal_input("handover_accepted", bad_body, label="invalid"), "validate": False})
    negatives: list[tuple[str, dict[str, Any], str]] = [
        ("tampered ciphertext", {**base, "envelope": tamper(envelope, ct=flip(doc["ct"]))}, "bad_signature"),
        ("tampered ciphertext, outer signature redone", {**base, "envelope": tamper(
            envelope, resign_as=SE, ct=flip(doc["ct"]))}, "decryption_failed"),
        ("tampered header", {**base, "envelope": tamper(envelope, expires="2026-04-30T10:00:00Z")},
         "bad_signature"),
        ("tampered header, outer signature redone (spliced into another thread)", {**base, "envelope": tamper(
            envelope, resign_as=SE, thread=fixed_id("thread/other"))}, "header_mismatch"),
        ("wrong recipient", open_input(envelope, BA, [SE]), "wrong_recipient"),
        ("bad outer signature", {**base, "envelope": tamper(envelope, sig=other_sig)}, "bad_signature"),
        ("expired", {**base, "now": "2026-04-01T10:00:00Z"}, "expired"),
        ("created too far in the future", {**base, "now": "2026-03-02T09:54:59Z"}, "not_yet_valid"),
        ("replayed message id", {**base, "seen": [[SE, doc["id"]]]}, "replayed"),
        ("unknown version", {**base, "envelope": tamper(envelope, v=2)}, "unsupported_version"),
        ("broken chain: the receiver holds a later message", {**base, "chain_heads": [
            [SE, doc["thread"], b64encode(hashlib.sha256(b"previous").digest())]]}, "broken_chain"),
        ("outside consent: recipient not named in the consent", {
            **open_input(to_ba["envelope"], BA, [SE]), "consent_origin": party(SE)}, "outside_consent"),
        ("non-canonical JSON (whitespace)", {**base, "envelope": json.dumps(doc, indent=1, sort_keys=True)},
         "non_canonical"),
        ("non-canonical JSON (key order)", {**base, "envelope": json.dumps(
            dict(reversed(doc.items())), separators=(",", ":"))},
         "non_canonical"),
        ("duplicate keys", {**base, "envelope": envelope[:-1] + ',"v":1}'}, "malformed"),
        ("oversized", {**base, "pad_to": 1_048_577}, "oversized"),
        ("not JSON", {**base, "envelope": envelope[:100]}, "malformed"),
        ("unknown sender", open_input(envelope, IQ, [BA]), "unknown_sender"),
        ("unknown signing key", {**base, "partners": [party(SE, "#2")]}, "unknown_key"),
        ("revoked signing key", {**base, "revoked": [doc["skid"]]}, "revoked_key"),
        ("body outside its schema", open_input(invalid["envelope"], SE, [IQ]), "malformed"),
    ]
    negatives += inner_refusals(envelope)
    opens += rotation_vectors(envelope, base)
    opens += [vector(d, "open", inp, error) for d, inp, error in negatives]
    return seals, opens


def chain_file(bodies: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    inners, outs, prev = [], [], None
    for n, msg_type in enumerate(("handover", "consent_withdrawn", "handover")):
        out = sealed(seal_input(msg_type, bodies[msg_type], thread_label="case-2", label=f"chain-{n}",
                                prev=prev))
        inners.append(out["inner"])
        outs.append(out)
        prev = out["message_hash"]
    fork = sealed(seal_input("consent_withdrawn", bodies["consent_withdrawn"], thread_label="case-2",
                             label="chain-fork", prev=outs[0]["message_hash"]))["inner"]
    m1, m2, m3 = inners
    return [
        vector("three linked messages", "chain", {"messages": [m1, m2, m3]}),
        vector("gap", "chain", {"messages": [m1, m3]}, "broken_chain"),
        vector("reordered", "chain", {"messages": [m1, m3, m2]}, "broken_chain"),
        vector("fork", "chain", {"messages": [m1, m2, fork]}, "broken_chain"),
        vector("first message with a prev link", "chain", {"messages": [m2, m3]}, "broken_chain"),
    ], outs


def receipts_file(bodies: dict[str, Any], chain: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = sealed(seal_input("handover", bodies["handover"]))
    base = {**open_input(out["envelope"], IQ, [SE]), "op": "make", "received_at": "2026-03-02T10:00:05Z"}
    made = vector("receipt for a handover", "receipts", base)
    receipt = made["expected"]["receipt"]
    verify = {"op": "verify", "receipt": receipt, "receiver": party(IQ), "sender": SE,
              "message_id": receipt["message_id"], "content_hash": out["message_hash"]}
    later = open_input(chain[1]["envelope"], IQ, [SE],
                       chain_heads=[[SE, fixed_id("thread/case-2"), chain[0]["message_hash"]]])
    return [
        made,
        vector("receipt for a chained message", "receipts", {**later, "op": "make",
                                                              "received_at": "2026-03-02T10:01:00Z"}),
        vector("verify a receipt", "receipts", verify),
        vector("receipt for other content", "receipts", {**verify, "content_hash": b64encode(bytes(32))},
               "malformed"),
        vector("receipt signed by another node", "receipts", {**verify, "receiver": party(SE)},
               "bad_signature"),
        vector("tampered receipt", "receipts", {**verify, "receipt": {**receipt,
                                                                     "received_at": "2026-03-01T10:00:05Z"}},
               "bad_signature"),
        vector("receipt for a message of another sender", "receipts", {**verify, "sender": "ba.cldd-sarajevo"},
               "malformed"),
        vector("receipt naming another sender, signed by the right receiver", "receipts",
               {**verify, "receipt": sign_json({k: v for k, v in {**receipt, "from": "ba.cldd-sarajevo"}.items()
                                                if k != "signatures"}, IQ, party_keys(party(IQ)).signing_key)},
               "malformed"),
        vector("receipt for another message, checked before its (broken) signature", "receipts",
               {**verify, "message_id": fixed_id("another-message"),
                "receipt": {**receipt, "received_at": "2026-03-01T10:00:05Z"}}, "malformed"),
    ]


def consent_file(bodies: dict[str, Any]) -> list[dict[str, Any]]:
    """The receiver's consent check (SPEC 9.5) and a child's safeguards (9.7): one vector per check."""
    body = bodies["handover"]
    unsigned = {k: v for k, v in body["consent"].items() if k != "signatures"}
    origin = party_keys(party(SE))

    def with_consent(**changes: Any) -> dict[str, Any]:
        record = {k: v for k, v in {**unsigned, **changes}.items() if v is not None}
        return {**body, "consent": sign_consent(record, SE, origin.signing_key)}

    base = {"body": body, "recipient": IQ, "sender": SE, "origin": party(SE), "now": NOW}
    child_subject = {"child": True, "date_of_birth": "2011-05-04"}
    safeguards: dict[str, dict[str, Any]] = {
        "guardian": {"name": "Maria Lind", "role": "appointed_guardian", "identity_verified": True,
                     "consented_at": "2026-02-09T10:00:00Z"},
        "views": {"recorded_at": "2026-02-09T11:00:00Z", "summary": "Vill bo hos mormor i Erbil.", "language": "ar"},
        "best_interests": {"assessed_at": "2026-02-09T12:00:00Z", "assessed_by": "Socialtjänsten",
                           "outcome": "in_best_interests"}}
    child_ok = with_consent(subject=child_subject, child=safeguards)
    full_withdrawal = {"consent_id": unsigned["consent_id"], "withdrawn_at": "2026-03-01T09:00:00Z",
                       "revocation": False}
    family_withdrawn = {**full_withdrawal, "scope": {"categories": ["family"], "recipients": [IQ]}}
    cases: list[tuple[str, dict[str, Any], str | None]] = [
        ("a handover within its consent", base, None),
        ("1: the consent's signature does not verify", {**base, "body": {
            **body, "consent": {**body["consent"], "language": "sv"}}}, "bad_signature"),
        ("2: the consent was recorded by another node than the sender", {**base, "sender": BA}, "outside_consent"),
        ("3: the consent belongs to another case", {**base, "body": {
            **body, "case": {**body["case"], "origin_case_id": "gi-case-2026-9999"}}}, "outside_consent"),
        ("4: the consent carries a withdrawal", {**base, "body": with_consent(
            withdrawn_at="2026-03-01T09:00:00Z")}, "consent_invalid"),
        ("5: the consent expired", {**base, "now": "2027-02-11T00:00:00Z"}, "consent_invalid"),
        ("6: the consent was given more than 300 s after the receiver's clock", {**base, "body": with_consent(
            given_at="2026-03-02T10:05:01Z")}, "consent_invalid"),
        ("6: given 300 s after the receiver's clock is accepted", {**base, "body": with_consent(
            given_at="2026-03-02T10:05:00Z")}, None),
        ("7: a child's case with every safeguard", {**base, "body": child_ok}, None),
        ("7: a child's case without safeguards", {**base, "body": with_consent(subject=child_subject)},
         "consent_invalid"),
        ("7: a child's case without the child's views", {**base, "body": with_consent(
            subject=child_subject, child={k: v for k, v in safeguards.items() if k != "views"})},
         "consent_invalid"),
        ("7: a child's case whose assessment is not in favour of return", {**base, "body": with_consent(
            subject=child_subject, child={**safeguards, "best_interests": {
                **safeguards["best_interests"], "outcome": "inconclusive"}})}, "consent_invalid"),
        ("7: under 18 by the date of birth, though not flagged a child", {**base, "body": with_consent(
            subject={"child": False, "date_of_birth": "2010-01-01"})}, "consent_invalid"),
        ("8: no grant names the receiver", {**base, "recipient": BA}, "outside_consent"),
        ("9: the grant does not list the purpose", {**base, "body": {**body, "purpose": "follow_up"}},
         "outside_consent"),
        ("10: a withdrawal covers the receiver entirely", {**base, "withdrawals": [full_withdrawal]},
         "consent_invalid"),
        ("11: the summary holds a category withdrawn for the receiver", {**base, "withdrawals": [
            family_withdrawn]}, "outside_consent"),
        ("11: the summary holds a category the grant does not list", {**base, "body": {
            **body, "summary": {**body["summary"], "health": {"text": "Astma."}},
            "withheld": [c for c in body["withheld"] if c != "health"]}}, "outside_consent"),
    ]
    return [vector(d, "consent", inp, e) for d, inp, e in cases]


def bundles_file(seals: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Store-and-forward files (SPEC 16): two envelopes Göteborg sent Baghdad, and receipts for them back."""
    envelopes = [v["expected"]["envelope"] for v in seals
                 if v["input"]["sender"]["node_id"] == SE and v["input"]["recipient"]["node_id"] == IQ][:2]
    sealed_in = {"op": "seal", "sender": party(SE), "recipient": party(IQ), "kind": "ccm_bundle",
                 "items": envelopes, "now": NOW, "nonce": fixed_nonce("bundle")}
    made = vector("seal a bundle of two envelopes", "bundle", sealed_in)
    bundle = made["expected"]["bundle"]
    doc = strict_loads(bundle)
    opening = {"op": "open", "bundle": bundle, "receiver": party(IQ), "partners": [party(SE)], "now": NOW}
    receipt = {"v": 1, "type": "delivery_receipt", "message_id": fixed_id("handover"),
               "content_hash": b64encode(hashlib.sha256(b"handover").digest()), "received_at": NOW,
               "from": SE, "to": IQ}
    receipts_in = {"op": "seal", "sender": party(IQ), "recipient": party(SE), "kind": "ccm_receipts",
                   "items": [sign_json(receipt, IQ, party_keys(party(IQ)).signing_key)], "now": NOW,
                   "nonce": fixed_nonce("receipts")}
    receipts = vector("seal a receipts bundle", "bundle", receipts_in)
    return [
        made, vector("open it", "bundle", opening),
        receipts, vector("open the receipts bundle", "bundle", {
            "op": "open", "bundle": receipts["expected"]["bundle"], "receiver": party(SE), "partners": [party(IQ)],
            "now": NOW}),
        vector("1: larger than the receiver accepts", "bundle", {**opening, "max_bytes": len(bundle) - 1},
               "oversized"),
        vector("2: not in canonical form (a space appended)", "bundle", {**opening, "pad_to": len(bundle) + 1},
               "non_canonical"),
        vector("3: version 2", "bundle", {**opening, "bundle": tamper(bundle, v=2)}, "unsupported_version"),
        vector("4: an unknown type", "bundle", {**opening, "bundle": tamper(bundle, type="ccm_other")}, "malformed"),
        vector("5: addressed to another node", "bundle", {**opening, "receiver": party(BA)}, "wrong_recipient"),
        vector("6: from a node that is not a partner", "bundle", {**opening, "partners": [party(BA)]},
               "unknown_sender"),
        vector("7: the sender's signing key is revoked", "bundle", {**opening, "revoked": [doc["skid"]]},
               "revoked_key"),
        vector("7: a signing key the receiver does not hold for the sender", "bundle",
               {**opening, "partners": [party(SE, "#2")]}, "unknown_key"),
        vector("8: a changed member (the signature no longer verifies)", "bundle",
               {**opening, "bundle": tamper(bundle, created_at="2026-03-02T09:00:00Z")}, "bad_signature"),
        vector("9: created more than 300 s in the receiver's future", "bundle",
               {**opening, "now": "2026-03-02T09:54:59Z"}, "not_yet_valid"),
    ]


def forward_file(bodies: dict[str, Any]) -> list[dict[str, Any]]:
    """A case forwarded along a chain (SPEC 9.8): Göteborg (origin) → Stockholm, which forwards it to Sarajevo;
    the consent names both. One vector per refusal of the custody chain and of the consent behind it."""
    handover = bodies["handover"]
    unsigned = {k: v for k, v in handover["consent"].items() if k != "signatures"}
    grants = [{"recipient": node, "purposes": ["reintegration_support"],
               "categories": ["identity", "contact", "plan"]} for node in (STO, BA)]

    def consent(**changes: Any) -> dict[str, Any]:
        return sign_consent({**unsigned, "grants": grants, **changes}, SE, party_keys(party(SE)).signing_key)

    def step(holder: str, sender: str, at: str, signer: str | None = None) -> dict[str, Any]:
        doc = {"holder": holder, "from": sender, "at": at, "message_hash": b64encode(
            hashlib.sha256(f"hop {sender}-{holder}".encode()).digest())}
        return sign_json(doc, holder, party_keys(party(signer or holder)).signing_key)

    summary = {k: v for k, v in handover["summary"].items() if k in ("identity", "contact", "plan")}
    withheld = [c for c in ("identity", "contact", "family", "health", "background", "education", "work",
                            "wishes", "plan") if c not in summary]
    original = {"case": handover["case"], "consent": consent(), "purpose": "reintegration_support",
                "summary": summary, "withheld": withheld}
    hop = step(STO, SE, "2026-02-20T09:00:00Z")
    body = {"original_handover": original, "forwarded_to": BA, "chain": [hop],
            "reason": "The returnee settles in Sarajevo."}
    base = {"body": body, "recipient": BA, "sender": STO, "now": NOW, "keys": [party(SE), party(STO)]}
    cases: list[tuple[str, dict[str, Any], str | None]] = [
        ("a forward along a chain the consent names", base, None),
        ("forwarded to another node than the receiver", {**base, "recipient": IQ}, "wrong_recipient"),
        ("the chain does not start at the consent's origin", {**base, "body": {
            **body, "chain": [step(STO, IQ, "2026-02-20T09:00:00Z")]}}, "broken_chain"),
        ("the chain does not end at the sender", {**base, "sender": IQ}, "broken_chain"),
        ("a custody step in the receiver's future", {**base, "body": {
            **body, "chain": [step(STO, SE, "2026-03-02T10:05:01Z")]}}, "broken_chain"),
        ("forwarded back to a node already on the chain", {**base, "recipient": STO, "body": {
            **body, "forwarded_to": STO}}, "broken_chain"),
        ("a custody step signed by another node's key", {**base, "body": {
            **body, "chain": [step(STO, SE, "2026-02-20T09:00:00Z", signer=IQ)]}}, "bad_signature"),
        ("no key for a holder on the chain", {**base, "keys": [party(SE)]}, "unknown_key"),
        ("no key for the consent's origin", {**base, "keys": [party(STO)]}, "unknown_key"),
        ("a holder the consent does not name", {**base, "body": {**body, "original_handover": {
            **original, "consent": consent(grants=[g for g in grants if g["recipient"] == BA])}}},
         "outside_consent"),
        ("the consent does not name the receiver", {**base, "body": {**body, "original_handover": {
            **original, "consent": consent(grants=[g for g in grants if g["recipient"] == STO])}}},
         "outside_consent"),
        ("the consent behind it was withdrawn", {**base, "withdrawals": [{
            "consent_id": unsigned["consent_id"], "withdrawn_at": "2026-03-01T09:00:00Z", "revocation": False}]},
         "consent_invalid"),
        ("the summary holds a category the consent does not grant", {**base, "body": {**body, "original_handover": {
            **original, "summary": {**summary, "family": handover["summary"]["family"]},
            "withheld": [c for c in withheld if c != "family"]}}}, "outside_consent"),
        ("the original handover with an extra member", {**base, "body": {**body, "original_handover": {
            **original, "retention": {"days": 30}}}}, "malformed"),
    ]
    return [vector(d, "forward", inp, e) for d, inp, e in cases]


def resync_file(bodies: dict[str, Any]) -> list[dict[str, Any]]:
    """Resynchronisation after a restore (SPEC 7a): Göteborg, restored from a backup, asks Baghdad what passed
    between them since 2026-02-20. Baghdad received three messages from Göteborg since then (two of one thread,
    one of another) and lists them with the receipts it signed, over two pages."""
    since = "2026-02-20T00:00:00Z"
    requester, responder = party(SE), party(IQ)
    iq_keys = party_keys(responder)

    def message(msg_type: str, thread: str, label: str, at: str, prev: str | None) -> dict[str, Any]:
        out = sealed({**seal_input(msg_type, bodies[msg_type], thread_label=thread, label=label, prev=prev),
                      "now": at})
        return {"thread": fixed_id(f"thread/{thread}"), "id": fixed_id(label), "type": msg_type, "prev": prev,
                "message_hash": out["message_hash"]}

    def receipt_for(entry: dict[str, Any], at: str, signer: Any = iq_keys, **changes: Any) -> dict[str, Any]:
        doc = {"v": 1, "type": "delivery_receipt", "message_id": entry["id"], "content_hash": entry["message_hash"],
               "received_at": at, "from": SE, "to": IQ, **changes}
        return sign_json(doc, signer.node_id, signer.signing_key)

    a1 = message("handover", "resync-a", "resync/a1", "2026-02-25T09:00:00Z", None)
    b1 = message("handover", "resync-b", "resync/b1", "2026-02-25T09:05:00Z", None)
    a2 = message("consent_withdrawn", "resync-a", "resync/a2", "2026-02-25T09:10:00Z", a1["message_hash"])
    at = {"resync/a1": "2026-02-25T09:00:02Z", "resync/b1": "2026-02-25T09:05:02Z", "resync/a2": "2026-02-25T09:10:02Z"}
    labels = {a1["id"]: "resync/a1", b1["id"]: "resync/b1", a2["id"]: "resync/a2"}

    def with_receipt(entry: dict[str, Any], signer: Any = iq_keys, **changes: Any) -> dict[str, Any]:
        return {**entry, "receipt": receipt_for(entry, at[labels[entry["id"]]], signer, **changes)}

    entries = [with_receipt(a1), with_receipt(b1), with_receipt(a2)]  # in the order Baghdad received them

    made = vector("a first-page request (after null)", "resync", {
        "op": "make_request", "requester": requester, "responder": IQ, "since": since, "now": NOW, "after": None,
        "request_id": fixed_id("resync/request-1")})
    request = made["expected"]["request"]
    made_2 = vector("the request for the next page (after = the first answer's next)", "resync", {
        "op": "make_request", "requester": requester, "responder": IQ, "since": since, "now": NOW, "after": 1042,
        "request_id": fixed_id("resync/request-2")})
    request_2 = made_2["expected"]["request"]
    check = {"op": "verify_request", "request": request, "requester": requester, "responder": IQ, "now": NOW}

    def unsigned_request(**changes: Any) -> dict[str, Any]:
        return {**{k: v for k, v in request.items() if k != "signatures"}, **changes}

    def signed_request(**changes: Any) -> dict[str, Any]:
        return sign_json(unsigned_request(**changes), SE, party_keys(requester).signing_key)

    answered = vector("the first answer page: three messages of two threads, with their receipts", "resync", {
        "op": "make_answer", "responder": responder, "request": request, "requeued": 3, "received": entries,
        "next": 1042, "now": NOW})
    answer = answered["expected"]["answer"]
    answered_2 = vector("the last answer page (nothing more listed, next null)", "resync", {
        "op": "make_answer", "responder": responder, "request": request_2, "requeued": 0, "received": [],
        "next": None, "now": NOW})
    answer_2 = answered_2["expected"]["answer"]
    accept = {"op": "verify_answer", "answer": answer, "responder": responder, "request": request, "now": NOW}

    def signed_answer(signer: Any = iq_keys, **changes: Any) -> dict[str, Any]:
        doc = {**{k: v for k, v in answer.items() if k != "signatures"}, **changes}
        return sign_json(doc, signer.node_id, signer.signing_key)

    # Baghdad rotated its keys after signing the receipts: the answer is signed by its new key (the card the
    # requester holds), the receipts by the previous one.
    rotated = party(IQ, "#2")
    rotated_answer = {**accept, "responder": rotated, "answer": signed_answer(party_keys(rotated))}
    other_message = {**a2, "id": fixed_id("resync/other")}
    other_receipt = {**a2, "receipt": receipt_for(other_message, at["resync/a2"])}
    cases: list[tuple[str, dict[str, Any], str | None]] = [
        ("the responder verifies the request", check, None),
        ("the responder verifies the request for the next page", {**check, "request": request_2}, None),
        ("created 300 s before the responder's clock is accepted", {**check, "now": "2026-03-02T10:05:00Z"}, None),
        ("since exactly 90 days before created is accepted", {**check, "request": signed_request(
            since="2025-12-02T10:00:00Z")}, None),
        ("request: addressed to another node", {**check, "responder": BA}, "wrong_recipient"),
        ("request: since changed after signing", {**check, "request": {
            **request, "since": "2026-02-01T00:00:00Z"}}, "bad_signature"),
        ("request: signed by another node's key under the requester's name", {**check, "request": sign_json(
            unsigned_request(), SE, party_keys(party(BA)).signing_key)}, "bad_signature"),
        ("request: from a node other than the card's", {**check, "requester": party(BA)}, "bad_signature"),
        ("request: created more than 300 s before the responder's clock", {**check, "now": "2026-03-02T10:05:01Z"},
         "expired"),
        ("request: created more than 300 s after the responder's clock", {**check, "now": "2026-03-02T09:54:59Z"},
         "not_yet_valid"),
        ("request: since more than 90 days before created", {**check, "request": signed_request(
            since="2025-12-02T09:59:59Z")}, "malformed"),
        ("request: since after created", {**check, "request": signed_request(since="2026-03-02T10:00:01Z")},
         "malformed"),
        ("request: version 2", {**check, "request": signed_request(v=2)}, "unsupported_version"),
        ("request: an extra member", {**check, "request": signed_request(note="x")}, "malformed"),
        ("request: a negative cursor", {**check, "request": signed_request(after=-1)}, "malformed"),
        ("the requester verifies the first answer page", accept, None),
        ("the requester verifies the last answer page", {**accept, "answer": answer_2, "request": request_2}, None),
        ("a receipt signed by the responder's previous key, under an answer signed by its current key",
         rotated_answer, None),
        ("answer: to another request", {**accept, "request": request_2}, "malformed"),
        ("answer: verified with another node's card", {**accept, "responder": party(BA)}, "bad_signature"),
        ("answer: requeued changed after signing", {**accept, "answer": {**answer, "requeued": 4}}, "bad_signature"),
        ("answer: created more than 300 s before the requester's clock", {**accept, "now": "2026-03-02T10:05:01Z"},
         "expired"),
        ("answer: an entry's receipt acknowledges another message", {**accept, "answer": signed_answer(
            received=[entries[0], entries[1], other_receipt])}, "malformed"),
        ("answer: an entry's receipt by the previous key names another message", {**rotated_answer, "answer":
            signed_answer(party_keys(rotated), received=[entries[0], entries[1], other_receipt])}, "malformed"),
        ("answer: an entry's receipt signed by no key of the responder", {**accept, "answer": signed_answer(
            received=[entries[0], entries[1], with_receipt(a2, signer=party_keys(requester))])}, "bad_signature"),
        ("answer: a broken link between two entries of a thread", {**accept, "answer": signed_answer(received=[
            entries[0], entries[1], with_receipt({**a2, "prev": b1["message_hash"]})])}, "malformed"),
        ("answer: a message listed twice", {**accept, "answer": signed_answer(
            received=[entries[0], entries[1], entries[1]])}, "malformed"),
        ("answer: 501 entries, one over the page size (the last repeated, signed again)",
         {**accept, "pad_received_to": 501}, "malformed"),
        ("answer: next not after the request's after", {**accept, "request": request_2, "answer": sign_json(
            {**{k: v for k, v in answer_2.items() if k != "signatures"}, "next": 1042}, IQ, iq_keys.signing_key)},
         "malformed"),
    ]
    return [made, made_2, answered, answered_2, *(vector(d, "resync", inp, e) for d, inp, e in cases)]


def fields_file() -> list[dict[str, Any]]:
    b64 = [("four characters, three bytes", "AAAA", None), ("base64url alphabet (- and _)", "ab-_", None),
           ("two characters, one byte, unused bits zero", "AA", None), ("empty", "", None),
           ("padding is refused", "AAA=", "malformed"), ("a set unused bit is refused", "AB", "malformed"),
           ("a set unused bit after four bytes", "AAAAAB", "malformed"),
           ("the standard alphabet's + and / are refused", "a+b/", "malformed"),
           ("a single character is never whole bytes", "A", "malformed"),
           ("whitespace is refused", " AA", "malformed")]
    times = [("a UTC instant", "2026-03-02T10:00:00Z", None),
             ("the last second of a day", "2026-12-31T23:59:59Z", None),
             ("an offset instead of Z", "2026-03-02T10:00:00+00:00", "malformed"),
             ("a fraction of a second", "2026-03-02T10:00:00.5Z", "malformed"),
             ("a space instead of T", "2026-03-02 10:00:00Z", "malformed"),
             ("lower-case t and z", "2026-03-02t10:00:00z", "malformed"),
             ("a day the month does not have", "2026-02-30T10:00:00Z", "malformed"),
             ("hour 24", "2026-03-02T24:00:00Z", "malformed"), ("a leap second", "2026-03-02T10:00:60Z", "malformed"),
             ("year 0000", "0000-01-01T00:00:00Z", "malformed")]
    return ([vector(f"base64url: {d}", "fields", {"op": "base64url", "value": v}, e) for d, v, e in b64]
            + [vector(f"time: {d}", "fields", {"op": "time", "value": v}, e) for d, v, e in times])


def value_sets_file() -> list[dict[str, Any]]:
    return [vector(name, "value_sets", {"set": name}) for name in enumerations()] + [
        vector("a value set that does not exist", "value_sets", {"set": "Colour"}, "malformed")]


DESCRIPTIONS = {
    "canonical.json": "Strict parsing and RFC 8785 canonical bytes (SPEC.md section 4).",
    "keys.json": "Keys from seeds, key ids and fingerprints (SPEC.md section 2).",
    "signatures.json": "sign_json signature input and signatures (SPEC.md section 4.3).",
    "cards.json": "Node cards, rotation and revocation (SPEC.md section 3).",
    "seal.json": "Sealing one message of every type: inner document, message hash, envelope (section 5).",
    "open.json": "Opening envelopes, and every rejection with its error code (SPEC.md section 6).",
    "chain.json": "Chain links across a thread: gap, reordering, fork (SPEC.md section 6.2).",
    "receipts.json": "Signed delivery receipts (SPEC.md section 7).",
    "bundles.json": "Store-and-forward bundles and receipts bundles: sealing, opening, each refusal (SPEC.md 16).",
    "forward.json": "Forwarding: the custody chain and the consent behind it (SPEC.md 9.8).",
    "resync.json": "Resynchronisation after a restore: request, paged answer, each refusal (SPEC.md 7a).",
    "consent.json": "The receiver's consent check and a child's safeguards (SPEC.md 9.5-9.7).",
    "fields.json": "Strict forms: unpadded canonical base64url and the protocol time (SPEC.md section 1).",
    "value_sets.json": "Every closed value set: Country, Currency, MessageType and each enumerated body field, "
                       "by path (SPEC.md 8.2).",
}


def build() -> dict[str, dict[str, Any]]:
    """Every generated vector file, by name."""
    bodies = sample_bodies()
    seals, opens = seal_and_open_files(bodies)
    chain, chain_outputs = chain_file(bodies)
    lists = {
        "canonical.json": ("canonical", canonical_file()), "keys.json": ("keys", keys_file()),
        "signatures.json": ("signatures", signatures_file()), "cards.json": ("cards", cards_file()),
        "seal.json": ("seal", seals), "open.json": ("open", opens), "chain.json": ("chain", chain),
        "receipts.json": ("receipts", receipts_file(bodies, chain_outputs)),
        "value_sets.json": ("value_sets", value_sets_file()), "fields.json": ("fields", fields_file()),
        "consent.json": ("consent", consent_file(bodies)), "bundles.json": ("bundle", bundles_file(seals)),
        "forward.json": ("forward", forward_file(bodies)), "resync.json": ("resync", resync_file(bodies)),
    }
    return {name: {"description": DESCRIPTIONS[name], "kind": kind, "vectors": vectors}
            for name, (kind, vectors) in lists.items()}


def render(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=1, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write the vector files, or with ``--check`` compare them with a fresh generation."""
    args = sys.argv[1:] if argv is None else argv
    files = build()
    stale = [n for n, doc in files.items() if not (VECTOR_DIR / n).exists()
             or (VECTOR_DIR / n).read_text("utf-8") != render(doc)]
    if "--check" in args:
        for name in stale:
            print(f"{name}: differs from a fresh generation", file=sys.stderr)
        return 1 if stale else 0
    for name, doc in files.items():
        (VECTOR_DIR / name).write_text(render(doc), "utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
