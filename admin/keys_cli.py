"""Key administration commands of ``ccm-node``: rotation, revocation, and what is known of partners' keys.

    ccm-node keys status                               this node's keys: current, retired, revoked
    ccm-node keys rotate [--overlap-days N]            new keys, announced to every partner (key_rotated)
    ccm-node keys revoke --reason REASON [--kid KID] [--no-send] [--timeout S]
    ccm-node keys revocation-send [--partner P ...] [--timeout S]   post the revocations again
    ccm-node keys revocation-file --out FILE [--force]               write them for a partner offline
    ccm-node keys revocation-import FILE               take a partner's revocations from a file
    ccm-node keys partners [PARTNER]                   partners' key history (rotations, revocations)
    ccm-node keys data-rotate [--batch-size N] [--grace-seconds S]   new data key, every encrypted value
                                                       re-encrypted in batches (run again if interrupted)

Every refusal is one line on stderr and exit 1 (``AdminError``).
"""

from __future__ import annotations

import argparse
import os
import time
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from admin.cli import AdminError, refusals

if TYPE_CHECKING:
    from node.command_env import Env

MAX_FILE_BYTES = 65_536


def _when(moment: Any) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC" if moment is not None else "-"


def _status(env: Env, _args: argparse.Namespace) -> int:
    from node.exchange.keys.status import own_keys
    from node.exchange.trust.keystore import load_identity

    now = env.clock.now()
    with refusals():
        identity = load_identity(env.config, now)
    keys = own_keys(identity, now)
    print(f"current\tsigning {keys.signing_kid}\tencryption {keys.encryption_kid}\tcard valid until "
          f"{_when(keys.card_valid_until)}")
    print(f"fingerprint\t{keys.fingerprint}")
    for generation in keys.previous:
        if generation.state == "revoked":
            state = f"revoked {_when(generation.revoked_at)} ({generation.reason})"
        elif generation.state == "overlap":
            state = f"retired, still accepted until {_when(generation.until)}"
        else:
            state = f"retired, overlap ended {_when(generation.until)}"
        print(f"previous\tsigning {generation.signing_kid}\tencryption {generation.encryption_kid}\t{state}")
    if keys.revocations_issued:
        print(f"revocations issued: {keys.revocations_issued} "
              "('ccm-node keys revocation-send' posts them again)")
    return 0


def _rotate(env: Env, args: argparse.Namespace) -> int:
    from node.exchange.keys.rotation import rotate_keys
    from node.exchange.trust.key_files import install_key_change, key_change_lock

    with refusals(), key_change_lock(env.config.data_dir), env.session() as session:
        rotation = rotate_keys(session, env.config, now=env.clock.now(),
                               overlap=timedelta(days=args.overlap_days))
        install_key_change(session, rotation.change)
    print(f"rotated keys: signing key {rotation.previous_kid} -> {rotation.kid}")
    print(f"new fingerprint: {rotation.fingerprint}")
    print(f"the previous keys stay accepted until {_when(rotation.overlap_until)}")
    if rotation.announced:
        print(f"announced to {len(rotation.announced)} partner(s) (key_rotated, queued for the delivery worker): "
              f"{', '.join(rotation.announced)}")
    for node_id, why in sorted(rotation.not_announced.items()):
        print(f"not announced to {node_id} ({why}): it will refuse messages signed with the new key until its "
              "administrator checks the new fingerprint ('ccm-node partner add')")
    return 0


def _print_outcomes(outcomes: list[Any]) -> int:
    failed = 0
    for outcome in outcomes:
        if outcome.accepted:
            print(f"{outcome.partner}: accepted ({len(outcome.revoked)} key id(s) newly revoked there)")
        else:
            failed += 1
            print(f"{outcome.partner}: NOT delivered ({outcome.error}); send again with 'ccm-node keys "
                  "revocation-send' or give it the file of 'ccm-node keys revocation-file'")
    return failed


def _revoke(env: Env, args: argparse.Namespace) -> int:
    from node.exchange.keys.revocation import revoke_keys
    from node.exchange.keys.revocation_sending import send_revocations
    from node.exchange.trust.key_files import install_key_change, key_change_lock
    from node.outbound import OutboundPolicy

    with refusals(), key_change_lock(env.config.data_dir), env.session() as session:
        revocation = revoke_keys(session, env.config, now=env.clock.now(), reason=args.reason, kid=args.kid)
        install_key_change(session, revocation.change)
    print(f"revoked key id(s) {', '.join(revocation.kids)} ({args.reason})")
    if revocation.given_up:
        print(f"gave up {revocation.given_up} queued message(s) signed with a revoked key")
    if revocation.fingerprint is not None:
        print(f"new keys made; new fingerprint: {revocation.fingerprint}")
        print("every partner must check this fingerprint with you before it trusts this node again "
              "('ccm-node partner add YOUR_CARD_URL --fingerprint ...' on their side)")
    if args.no_send:
        print("not sent: run 'ccm-node keys revocation-send' or 'ccm-node keys revocation-file'")
        return 0
    with refusals(), env.session() as session:
        outcomes = send_revocations(session, revocation.statements, timeout=args.timeout,
                                    policy=OutboundPolicy.from_config(env.config))
    _print_outcomes(outcomes)
    return 0


def _revocation_send(env: Env, args: argparse.Namespace) -> int:
    from node.exchange.keys.revocation_sending import send_revocations
    from node.exchange.trust.key_files import load_history
    from node.outbound import OutboundPolicy

    with refusals():
        statements = list(load_history(env.config.data_dir).revocations)
    if not statements:
        raise AdminError("this node has revoked no key")
    with refusals(), env.session() as session:
        outcomes = send_revocations(session, statements, partners=args.partner, timeout=args.timeout,
                                    policy=OutboundPolicy.from_config(env.config))
    if _print_outcomes(outcomes):
        raise AdminError("some partners did not take the revocations (see above)")
    return 0


def _revocation_file(env: Env, args: argparse.Namespace) -> int:
    from node.exchange.trust.key_files import load_history
    from protocol import canonical_bytes

    with refusals():
        statements = list(load_history(env.config.data_dir).revocations)
    if not statements:
        raise AdminError("this node has revoked no key")
    if len(statements) > 16:
        statements = statements[-16:]
    path = Path(args.out)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if args.force else os.O_EXCL), 0o644)
    except FileExistsError:
        raise AdminError(f"{path} exists (use --force to overwrite)") from None
    except OSError as exc:
        raise AdminError(f"cannot write {path}: {exc.strerror}") from None
    with os.fdopen(fd, "wb") as fh:
        fh.write(canonical_bytes(statements))
    print(f"wrote {len(statements)} revocation statement(s) to {path}: partners import it with "
          "'ccm-node keys revocation-import FILE'")
    return 0


def _revocation_import(env: Env, args: argparse.Namespace) -> int:
    from node.exchange.keys.revocation import accept_revocations

    try:
        with open(args.file, "rb") as fh:
            data = fh.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise AdminError(f"cannot read {args.file}: {exc.strerror}") from None
    with refusals(), env.session() as session:
        result = accept_revocations(session, data, now=env.clock.now(), source="file")
        session.commit()
        node_id, status = result.partner.node_id, result.partner.status
    print(f"{node_id}: {len(result.revoked)} key id(s) newly revoked, {result.known} known already")
    if status == "key_revoked":
        print(f"{node_id} is NOT TRUSTED any more: it revoked its current key. Check its new fingerprint with its "
              f"administrator, then: ccm-node partner add NEW_CARD_URL --fingerprint ...")
    return 0


def _partners(env: Env, args: argparse.Namespace) -> int:
    from node.exchange.keys.status import partner_key_history
    from node.exchange.trust.partners import get_partner, list_partners

    now = env.clock.now()
    with refusals(), env.session() as session:
        partners = [get_partner(session, args.partner)] if args.partner else list_partners(session)
        for partner in partners:
            print(f"{partner.node_id}\t{partner.status}\tcurrent signing key {partner.signing_kid}")
            for g in partner_key_history(session, partner, now):
                if g.state == "revoked":
                    state = f"REVOKED by the partner ({g.reason}), received {_when(g.revoked_at)}"
                elif g.state == "current":
                    state = "current"
                elif g.state == "overlap":
                    state = f"retired {_when(g.retired_at)}, accepted until {_when(g.until)}"
                else:
                    state = f"retired {_when(g.retired_at)}, no longer accepted"
                print(f"  key {g.signing_kid}\ttrusted {_when(g.trusted_at)} by {g.trusted_by}\t{state}")
            if partner.status == "key_revoked":
                print(f"  NOT TRUSTED: {partner.node_id} revoked its current key; nothing is accepted from or sent "
                      "to it until you check its new fingerprint: ccm-node partner add NEW_CARD --fingerprint ...")
    return 0


def _data_rotate(env: Env, args: argparse.Namespace) -> int:
    from node.at_rest import DataKeyError, data_keys_of
    from node.at_rest.rotation import rotate_data_key
    from node.migrate import target_metadata

    if not 1 <= args.batch_size <= 100_000:
        raise AdminError("--batch-size must be between 1 and 100000")
    if not 0 <= args.grace_seconds <= 3600:
        raise AdminError("--grace-seconds must be between 0 and 3600")
    engine = env.engine
    keys = data_keys_of(engine.dialect)
    if keys is None:
        raise AdminError("no data key is bound to the database")

    def waiting(seconds: float) -> None:
        print(f"waiting {seconds:.0f} s for running processes to finish with the old key ...", flush=True)
        time.sleep(seconds)

    try:
        result = rotate_data_key(engine, keys, target_metadata(), now=env.clock.now, batch_size=args.batch_size,
                                 grace_seconds=args.grace_seconds, sleep=waiting)
    except DataKeyError as exc:
        raise AdminError(exc.message) from None
    what = "new data key" if result.started else "finished the rotation to data key"
    retired = ", ".join(result.retired) or "none"
    print(f"{what} {result.kid}: {result.rows} value(s) re-encrypted; retired key(s): {retired}")
    print(f"the key file {keys.path} changed: back it up (backups made before hold only the old key)")
    return 0


def register(sub: Any) -> None:
    """Add the ``keys`` subcommands to ``ccm-node``'s parser."""
    p = sub.add_parser("keys", help="this node's keys over time, and partners' key history")
    ksub = p.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    ksub.add_parser("status", help="this node's current, retired and revoked keys").set_defaults(handler=_status)
    rot = ksub.add_parser("rotate", help="make new keys and announce them to every partner")
    rot.add_argument("--overlap-days", type=float, default=30.0,
                     help="how long the previous keys stay accepted (default 30, at most 365)")
    rot.set_defaults(handler=_rotate)
    rev = ksub.add_parser("revoke", help="revoke this node's keys (e.g. compromised) and tell every partner")
    rev.add_argument("--reason", required=True, choices=("compromised", "superseded", "retired"))
    rev.add_argument("--kid", help="a previous key id to revoke (default: the current keys, which are replaced)")
    rev.add_argument("--no-send", action="store_true", help="do not post the revocation to partners now")
    rev.add_argument("--timeout", type=float, default=10.0, help="per partner, seconds (default 10)")
    rev.set_defaults(handler=_revoke)
    snd = ksub.add_parser("revocation-send", help="post this node's revocations to partners again")
    snd.add_argument("--partner", action="append", metavar="PARTNER", help="only this partner (repeatable)")
    snd.add_argument("--timeout", type=float, default=10.0, help="per partner, seconds (default 10)")
    snd.set_defaults(handler=_revocation_send)
    out = ksub.add_parser("revocation-file", help="write this node's revocations to a file for a partner")
    out.add_argument("--out", required=True, metavar="FILE")
    out.add_argument("--force", action="store_true", help="overwrite FILE")
    out.set_defaults(handler=_revocation_file)
    imp = ksub.add_parser("revocation-import", help="take a partner's revocations from a file")
    imp.add_argument("file", metavar="FILE")
    imp.set_defaults(handler=_revocation_import)
    par = ksub.add_parser("partners", help="partners' keys: rotations, overlaps, revocations")
    par.add_argument("partner", nargs="?", metavar="PARTNER")
    par.set_defaults(handler=_partners)
    drot = ksub.add_parser("data-rotate", help="new data key (encryption at rest); re-encrypt every value with it")
    drot.add_argument("--batch-size", type=int, default=500, help="rows per transaction (default 500)")
    drot.add_argument("--grace-seconds", type=float, default=65.0,
                      help="how long running processes get to switch to the new key before the old one is retired "
                           "(default 65: a web request's longest life)")
    drot.set_defaults(handler=_data_rotate)
