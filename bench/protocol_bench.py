"""Benchmark: seal and open of a realistic 6 KB case summary, beside the bare PyNaCl operations.

    .venv/bin/python bench/protocol_bench.py [--iterations N] [--runs R]

A message is made of two Ed25519 signatures (inner: non-repudiation; outer: reject junk before decrypting),
one crypto_box with a precomputed shared key, and the JSON work around them. The bare figure is those
operations alone on the same bytes (sign, verify, box, box open). The body schema check (marshmallow, run by
``open_envelope`` on every message and by ``seal`` unless ``validate=False``) is timed separately so that
the cost of the protocol code itself and the cost of validation can both be seen: "open (no schema)" is
``open_envelope`` timed with that one call replaced by a no-op, which is steadier than subtracting two
noisy figures of about a millisecond each.

Each figure is the best of ``--runs`` runs of ``--iterations`` calls, in CPU time of this process
(``time.process_time``): on a shared machine that and the minimum are least disturbed by other processes.
Figures are timed one after the other, each in its own runs (timing seal and open in alternating batches
was measured to add several microseconds to each).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import importlib
import json
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from protocol import BoxCache, NodeKeys, PartnerView, canonical_bytes, make_card, open_envelope, seal
from protocol.messages import validate_body

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
SAMPLES = Path(__file__).resolve().parents[1] / "protocol" / "vectors" / "sample_bodies.json"


def case_summary(target: int = 6144) -> dict[str, Any]:
    """The sample handover grown to about ``target`` canonical bytes with realistic free text."""
    body: dict[str, Any] = copy.deepcopy(json.loads(SAMPLES.read_text("utf-8"))["handover"])
    family = body["summary"]["family"]
    base = family["situation"]
    sentence = (" Familjen har bott i Göteborg sedan 2016; barnen går i skolan och talar svenska och"
                " arabiska. Makan vill arbeta som frisör i Erbil. كريم يريد أن يبدأ عمله الخاص.")
    while len(canonical_bytes(body)) < target:
        family["situation"] += sentence
    excess = len(canonical_bytes(body)) - target
    family["situation"] = family["situation"][: len(family["situation"]) - excess]
    if family["situation"].endswith(" "):
        family["situation"] = family["situation"].rstrip() + "."
    assert family["situation"].startswith(base)
    validate_body("handover", body)
    return body


def best_per_call(fn: Callable[[], object], iterations: int, runs: int) -> float:
    """Seconds per call: the best of ``runs`` runs of ``iterations`` calls, in CPU time of this process."""
    best = float("inf")
    for _ in range(runs):
        start = time.process_time()
        for _ in range(iterations):
            fn()
        best = min(best, time.process_time() - start)
    return best / iterations


@contextlib.contextmanager
def body_schema_check_skipped() -> Iterator[None]:
    """Replace the body schema check inside ``open_envelope`` by a no-op (for timing only)."""
    module = importlib.import_module("protocol.seal")
    original = module.validate_body
    module.validate_body = lambda msg_type, body: body
    try:
        yield
    finally:
        module.validate_body = original


class _Directory:
    def __init__(self, view: PartnerView) -> None:
        self.view = view

    def partner(self, node_id: str) -> PartnerView | None:
        return self.view if node_id == self.view.node_id else None


class _History:
    def seen(self, sender: str, message_id: str) -> bool:
        return False

    def chain_head(self, sender: str, thread: str) -> str | None:
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=10, help="calls per run (default 10)")
    parser.add_argument("--runs", type=int, default=60, help="runs per figure; the best counts (default 60)")
    args = parser.parse_args(argv)

    sender = NodeKeys.from_seed("se.gi-goteborg", bytes(32))
    receiver = NodeKeys.from_seed("iq.cldd-baghdad", bytes([1]) * 32)
    valid = {"valid_from": NOW - timedelta(days=1), "valid_until": NOW + timedelta(days=365)}
    sender_card = make_card(sender, name="GI", base_url="https://gi.example", **valid)
    receiver_card = make_card(receiver, name="CLDD", base_url="https://cldd.example", **valid)
    directory, history, boxes = _Directory(PartnerView.from_cards([sender_card])), _History(), BoxCache()
    body = case_summary()

    def do_seal(validate: bool = True) -> bytes:
        return seal(keys=sender, recipient=receiver_card, msg_type="handover", body=body, thread="T" * 22,
                    now=NOW, agreement="gi-cldd-2026-01", boxes=boxes, validate=validate).data

    envelope = do_seal()
    inner = open_envelope(envelope, keys=receiver, directory=directory, history=history, now=NOW,
                          boxes=boxes).inner_bytes

    def do_open() -> object:
        return open_envelope(envelope, keys=receiver, directory=directory, history=history, now=NOW,
                             boxes=boxes)

    box = boxes.box(sender.encryption_key, receiver.encryption_public)
    unbox = boxes.box(receiver.encryption_key, sender.encryption_public)
    nonce = bytes(24)
    signature = sender.signing_key.sign(inner).signature
    ciphertext = box.encrypt(inner, nonce).ciphertext
    verify_key = sender.signing_key.verify_key
    outer_input = envelope  # about the size the outer signature covers

    outer_signature = sender.signing_key.sign(outer_input).signature
    figures: dict[str, Callable[[], object]] = {
        "seal": do_seal,
        "seal (validate=False)": lambda: do_seal(False),
        "open": do_open,
        "body schema check": lambda: validate_body("handover", body),
        "open (no schema)": do_open,
        "sign inner": lambda: sender.signing_key.sign(inner),
        "sign outer": lambda: sender.signing_key.sign(outer_input),
        "verify inner": lambda: verify_key.verify(inner, signature),
        "verify outer": lambda: verify_key.verify(outer_input, outer_signature),
        "box": lambda: box.encrypt(inner, nonce),
        "box open": lambda: unbox.decrypt(ciphertext, nonce),
    }
    us = {}
    for name, fn in figures.items():
        skipped = body_schema_check_skipped() if name == "open (no schema)" else contextlib.nullcontext()
        with skipped:
            us[name] = best_per_call(fn, args.iterations, args.runs) * 1e6

    print(f"case summary body: {len(canonical_bytes(body))} bytes canonical; inner document {len(inner)} "
          f"bytes; envelope {len(envelope)} bytes")
    for name, micros in us.items():
        print(f"  {name:24s} {1e6 / micros:9.0f}/s  {micros:8.1f} µs")
    bare_seal = us["sign inner"] + us["box"] + us["sign outer"]
    bare_open = us["verify outer"] + us["box open"] + us["verify inner"]
    one_each = us["sign inner"] + us["verify inner"] + us["box"] + us["box open"]
    total = us["seal"] + us["open"]
    total_no_schema = us["seal (validate=False)"] + us["open (no schema)"]
    print(f"seal + open: {total:.1f} µs; bare PyNaCl operations they are made of (2 sign, 2 verify, box, "
          f"box open): {bare_seal + bare_open:.1f} µs")
    bare = bare_seal + bare_open
    print(f"ratio (seal + open) / bare:                            {total / bare:.2f}x")
    print(f"ratio without the body schema checks / bare:           {total_no_schema / bare:.2f}x")
    print(f"ratio without the body schema checks / one of each op: {total_no_schema / one_each:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
