"""``ccm-protocol`` (also ``python -m protocol``): the operator's tool for keys, cards and messages.

Operators use it to make keys and cards, to compare fingerprints, and to debug a message a partner says it
sent (``verify`` checks an envelope's outer signature without the private key; ``open`` decrypts with it).
Every failure prints one line on stderr (``error: <code>: <reason>``) and exits non-zero; never a traceback.
The clock is read here, at the edge, and can be fixed with ``--now``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

from .canonical import canonical_bytes, loads_canonical, strict_loads
from .cards import NodeCard, card_from_bytes, make_card, verify_card, verify_rotation
from .envelope import Envelope
from .errors import BadSignatureError, MalformedError, ProtocolError, UnknownKeyError
from .keys import NodeKeys
from .seal import PartnerView, open_envelope, seal
from .signing import verify_signature, verify_signed_json
from .times import format_time, parse_time


class _Partners:
    def __init__(self, cards: list[NodeCard]) -> None:
        self._views: dict[str, PartnerView] = {}
        for node_id in {c.node_id for c in cards}:
            self._views[node_id] = PartnerView.from_cards([c for c in cards if c.node_id == node_id])

    def partner(self, node_id: str) -> PartnerView | None:
        return self._views.get(node_id)


class _NoHistory:
    """The CLI has no inbox: nothing counts as seen (replay and chain are the node's checks)."""

    def seen(self, sender: str, message_id: str) -> bool:
        return False

    def chain_head(self, sender: str, thread: str) -> str | None:
        return None


def _read(path: str, stdin: BinaryIO) -> bytes:
    if path == "-":
        return stdin.read()
    return Path(path).read_bytes()


def _read_message(path: str, stdin: BinaryIO) -> bytes:
    """An envelope or signed object from a file or stdin; one trailing newline (as editors add) is ignored."""
    data = _read(path, stdin)
    return data[:-2] if data.endswith(b"\r\n") else data[:-1] if data.endswith(b"\n") else data


def _card(path: str) -> NodeCard:
    return card_from_bytes(Path(path).read_bytes())


def _now(args: argparse.Namespace) -> datetime:
    return parse_time(args.now) if args.now else datetime.now(UTC)


def _emit(out: BinaryIO, data: bytes) -> None:
    out.write(data)
    if not data.endswith(b"\n"):
        out.write(b"\n")


def _json_out(out: BinaryIO, value: Any) -> None:
    _emit(out, json.dumps(value, indent=2, ensure_ascii=False).encode("utf-8"))


def cmd_keygen(args: argparse.Namespace, stdin: BinaryIO, out: BinaryIO) -> None:
    keys = NodeKeys.generate(args.node_id)
    keys.save(args.out, overwrite=args.force)
    _json_out(out, {"node_id": keys.node_id, "key_file": args.out, "signing_kid": keys.skid,
                    "encryption_kid": keys.ekid, "fingerprint": keys.fingerprint()})


def cmd_card_make(args: argparse.Namespace, stdin: BinaryIO, out: BinaryIO) -> None:
    keys = NodeKeys.load(args.key)
    start = parse_time(args.valid_from) if args.valid_from else _now(args).replace(microsecond=0)
    previous = NodeKeys.load(args.previous_key) if args.previous_key else None
    card = make_card(keys, name=args.name, base_url=args.base_url, valid_from=start,
                     valid_until=start + timedelta(days=args.valid_days), previous=previous)
    data = canonical_bytes(card.to_json())
    if args.out:
        Path(args.out).write_bytes(data)
    else:
        _emit(out, data)


def cmd_card_show(args: argparse.Namespace, stdin: BinaryIO, out: BinaryIO) -> None:
    card = _card(args.card)
    _json_out(out, {"node_id": card.node_id, "name": card.name, "base_url": card.base_url,
                    "signing_kid": card.skid, "encryption_kid": card.ekid,
                    "valid_from": format_time(card.valid_from), "valid_until": format_time(card.valid_until),
                    "replaces": card.replaces, "fingerprint": card.fingerprint()})


def cmd_card_verify(args: argparse.Namespace, stdin: BinaryIO, out: BinaryIO) -> None:
    card, now = _card(args.card), _now(args)
    if args.previous:
        verify_rotation(_card(args.previous), card, now)
    else:
        verify_card(card, now)
    if args.fingerprint is not None and " ".join(args.fingerprint.split()) != card.fingerprint():
        raise BadSignatureError("fingerprint does not match the card")
    how = "rotation endorsed by the previous key" if args.previous else "self-signature and validity"
    _emit(out, f"ok: {card.node_id} card ({how}); fingerprint {card.fingerprint()}".encode())


def cmd_canon(args: argparse.Namespace, stdin: BinaryIO, out: BinaryIO) -> None:
    out.write(canonical_bytes(strict_loads(_read(args.file, stdin))))


def cmd_seal(args: argparse.Namespace, stdin: BinaryIO, out: BinaryIO) -> None:
    body = strict_loads(_read(args.body, stdin))
    if not isinstance(body, dict):
        raise MalformedError("body must be a JSON object")
    sealed = seal(keys=NodeKeys.load(args.key), recipient=_card(args.to), msg_type=args.type, body=body,
                  thread=args.thread, now=_now(args), prev=args.prev, agreement=args.agreement,
                  ttl=timedelta(days=args.ttl_days))
    _emit(out, sealed.data)


def cmd_open(args: argparse.Namespace, stdin: BinaryIO, out: BinaryIO) -> None:
    directory = _Partners([_card(p) for p in args.sender])
    opened = open_envelope(_read_message(args.envelope, stdin), keys=NodeKeys.load(args.key),
                           directory=directory, history=_NoHistory(), now=_now(args), check_chain=False)
    _json_out(out, {"header": opened.header.to_json(), "prev": opened.prev, "agreement": opened.agreement,
                    "message_hash": opened.message_hash, "body": opened.body,
                    "not_checked": ["replay", "chain link", "agreement", "consent"]})


def cmd_verify(args: argparse.Namespace, stdin: BinaryIO, out: BinaryIO) -> None:
    card = _card(args.card)
    data = _read_message(args.file, stdin)
    doc = strict_loads(data)
    if isinstance(doc, dict) and "ct" in doc and "sig" in doc:
        loads_canonical(data)
        envelope = Envelope.from_json(doc)
        if envelope.header.sender != card.node_id or envelope.skid != card.skid:
            raise UnknownKeyError("envelope not signed with this card's key")
        unsigned = canonical_bytes({k: v for k, v in doc.items() if k != "sig"})
        verify_signature(unsigned, envelope.sig, card.verify_key)
        what = f"envelope {envelope.header.id} ({envelope.header.type} to {envelope.header.recipient})"
    else:
        if not isinstance(doc, dict):
            raise MalformedError("not a signed JSON object")
        verify_signed_json(doc, card.node_id, card.verify_key)
        what = "signed object"
    _emit(out, f"ok: {what} signed by {card.node_id} key {card.skid}".encode())


def cmd_vectors(args: argparse.Namespace, stdin: BinaryIO, out: BinaryIO) -> None:
    from .vectors import generate, runner

    if args.write:
        generate.main([])
        _emit(out, b"vector files written")
        return
    problems = runner.check_all()
    if generate.main(["--check"]) != 0:
        problems.append("generated files differ from a fresh generation (run: ccm-protocol vectors --write)")
    count = sum(len(doc["vectors"]) for doc in runner.load_files().values())
    if problems:
        raise ProtocolError(f"{len(problems)} of {count} vectors failed: " + "; ".join(problems[:5]))
    _emit(out, f"ok: {count} vectors recomputed, all match".encode())


class _FullOptionsParser(argparse.ArgumentParser):
    """Options only spelled out in full (``--nod`` is not ``--node-id``), at every level of subcommands."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    parser = _FullOptionsParser(prog="ccm-protocol", description="CCM Exchange protocol tool.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("keygen", help="generate a node's key file (mode 0600)")
    p.add_argument("--node-id", required=True)
    p.add_argument("--out", required=True, help="key file to create")
    p.add_argument("--force", action="store_true", help="overwrite an existing key file")
    p.set_defaults(func=cmd_keygen)

    card = sub.add_parser("card", help="make, show or verify a node card").add_subparsers(dest="action",
                                                                                       required=True)
    p = card.add_parser("make", help="make a self-signed card")
    p.add_argument("--key", required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--base-url", required=True)
    p.add_argument("--valid-from", help="YYYY-MM-DDTHH:MM:SSZ (default: now)")
    p.add_argument("--valid-days", type=int, default=365)
    p.add_argument("--previous-key", help="on rotation: the previous key file, to endorse the new card")
    p.add_argument("--out", help="write the card here instead of stdout")
    p.add_argument("--now")
    p.set_defaults(func=cmd_card_make)
    p = card.add_parser("show", help="show a card and its fingerprint")
    p.add_argument("card")
    p.set_defaults(func=cmd_card_show)
    p = card.add_parser("verify", help="verify a card (and optionally its fingerprint or rotation)")
    p.add_argument("card")
    p.add_argument("--fingerprint", help="the fingerprint read over the phone")
    p.add_argument("--previous", help="the previously trusted card: verify a rotation")
    p.add_argument("--now")
    p.set_defaults(func=cmd_card_verify)

    p = sub.add_parser("canon", help="canonical JSON (RFC 8785) of a JSON document")
    p.add_argument("file", nargs="?", default="-")
    p.set_defaults(func=cmd_canon)

    p = sub.add_parser("seal", help="seal a message body for a partner")
    p.add_argument("--key", required=True, help="sender's key file")
    p.add_argument("--to", required=True, help="recipient's card")
    p.add_argument("--type", required=True)
    p.add_argument("--body", required=True, help="body JSON file, or - for stdin")
    p.add_argument("--thread", required=True)
    p.add_argument("--prev")
    p.add_argument("--agreement")
    p.add_argument("--ttl-days", type=int, default=30)
    p.add_argument("--now")
    p.set_defaults(func=cmd_seal)

    p = sub.add_parser("open", help="verify and decrypt an envelope addressed to this node")
    p.add_argument("envelope", nargs="?", default="-")
    p.add_argument("--key", required=True, help="this node's key file")
    p.add_argument("--from", dest="sender", action="append", required=True, help="sender's card (repeatable)")
    p.add_argument("--now")
    p.set_defaults(func=cmd_open)

    p = sub.add_parser("verify", help="verify an envelope's outer signature or a signed JSON object")
    p.add_argument("file", nargs="?", default="-")
    p.add_argument("--card", required=True, help="the signer's card")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("vectors", help="recompute the test vectors (--check) or rewrite them (--write)")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--check", action="store_true", help="recompute every vector (the default)")
    group.add_argument("--write", action="store_true", help="regenerate the generated vector files")
    p.set_defaults(func=cmd_vectors)
    return parser


def main(
    argv: Sequence[str] | None = None, stdin: BinaryIO | None = None, stdout: BinaryIO | None = None
) -> int:
    """Run the CLI. Returns the exit status (0 ok, 1 failure, 2 usage error)."""
    args = build_parser().parse_args(argv)
    try:
        args.func(args, stdin or sys.stdin.buffer, stdout or sys.stdout.buffer)
    except ProtocolError as exc:
        print(f"error: {exc.code}: {exc.message}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"error: {exc.strerror or type(exc).__name__}: {exc.filename or ''}", file=sys.stderr)
        return 1
    return 0
