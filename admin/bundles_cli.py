"""Store-and-forward by file (``ccm-node bundle``), for when an office has no link to a partner.

    ccm-node bundle export --to NODE_ID --out FILE [--force]
        every message waiting for NODE_ID, signed and encrypted for it, in one file (mode 0600)
    ccm-node bundle import FILE [--receipts-out FILE] [--force]
        a bundle from a partner: each message received as the inbox would; writes the receipts bundle to carry
        back (default: next to FILE). A receipts bundle: marks the messages it acknowledges delivered.

Every refusal is one line on stderr and exit 1 (``AdminError``); a bundle refused whole imports nothing.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from admin.cli import AdminError, node_identity, refusals
from node.private_files import PrivateFileError, save_private

if TYPE_CHECKING:
    from node.command_env import Env
    from node.exchange.inbox.bundle_import import BundleImport

_LABELS = {"accepted": "accepted", "duplicate": "duplicates", "refused": "refused",
           "delivered": "delivered", "already_delivered": "already delivered", "not_pending": "not pending"}


def _write(path: Path, data: bytes, *, force: bool) -> None:
    """Write ``data`` to ``path`` with mode 0600; an existing file only with ``force`` (then replaced whole).

    Raises:
        AdminError: the file exists (without ``force``) or cannot be written.
    """
    try:
        save_private(path, data, force=force)
    except PrivateFileError as exc:
        raise AdminError(str(exc)) from None


def _read(path: Path) -> bytes:
    from protocol.bundle import MAX_BUNDLE_BYTES

    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_BUNDLE_BYTES + 1)
    except OSError as exc:
        raise AdminError(f"cannot read {path}: {exc.strerror}") from None
    if len(data) > MAX_BUNDLE_BYTES:
        raise AdminError(f"bundle refused, nothing imported: oversized ({path} is larger than "
                         f"{MAX_BUNDLE_BYTES} bytes)")
    return data


def _export(env: Env, args: argparse.Namespace) -> int:
    from node.exchange.delivery.bundles import export_bundle

    out = Path(args.out)
    if out.exists() and not args.force:
        raise AdminError(f"{out} exists: choose another --out or add --force")
    identity = node_identity(env)
    with refusals(), env.session() as session:
        export = export_bundle(session, keys=identity.keys, partner=args.to, now=env.clock.now(),
                               boxes=identity.boxes)
        if export.data is None:
            print(f"nothing to export: no message is ready to go to {export.partner}"
                  + (f" ({export.left} waiting behind a parked or expired one: see 'ccm-node queue')"
                     if export.left else ""))
            return 0
        _write(out, export.data, force=args.force)
        try:
            session.commit()
        except Exception:
            out.unlink(missing_ok=True)
            raise
    print(f"exported {export.count} message(s) for {export.partner} to {out} ({len(export.data)} bytes)")
    if export.left:
        print(f"{export.left} other waiting message(s) are not in this bundle (size limit, or waiting behind a "
              "parked or expired message): import this bundle's receipts, then export again")
    return 0


def _summary(result: BundleImport) -> str:
    parts = [f"{_LABELS[name]} {count}" for name, count in result.summary()]
    refusals = result.refusals()
    if refusals:
        parts[-1] += " (" + ", ".join(f"{code} {n}" for code, n in sorted(refusals.items())) + ")"
    what = "bundle" if result.kind == "ccm_bundle" else "receipts"
    return f"{what} from {result.sender} ({len(result.results)} item(s)): {', '.join(parts)}"


def _default_receipts_path(bundle: Path) -> Path:
    """Next to the imported bundle (the USB stick): ``NAME.receipts.json``, numbered if that exists."""
    candidate = bundle.with_name(f"{bundle.stem}.receipts.json")
    number = 2
    while candidate.exists():
        candidate = bundle.with_name(f"{bundle.stem}.receipts-{number}.json")
        number += 1
    return candidate


def _import(env: Env, args: argparse.Namespace) -> int:
    from node.errors import NodeError
    from node.exchange.inbox.bundle_import import import_file
    from protocol import ProtocolError

    path = Path(args.file)
    receipts_out = Path(args.receipts_out) if args.receipts_out else None
    if receipts_out is not None and receipts_out.exists() and not args.force:
        raise AdminError(f"{receipts_out} exists: choose another --receipts-out or add --force")
    data = _read(path)
    identity = node_identity(env)
    with env.session() as session:
        try:
            result = import_file(session, data=data, keys=identity.keys, now=env.clock.now(),
                                 boxes=identity.boxes, checkpoint=session.commit, identity=identity)
        except ProtocolError as exc:
            session.rollback()
            raise AdminError(f"bundle refused, nothing imported: {exc.code}: {exc.message}") from None
        except NodeError as exc:
            session.rollback()
            raise AdminError(f"bundle refused, nothing imported: {exc.detail or exc.code}") from None
        session.commit()
    print(_summary(result))
    if result.kind != "ccm_bundle":
        if receipts_out is not None:
            print("note: --receipts-out ignored: this was a receipts bundle")
        return 0
    if result.receipts is None:
        print("no receipts to carry back: no message was accepted")
        return 0
    target = receipts_out or _default_receipts_path(path)
    try:
        _write(target, result.receipts, force=args.force)
    except AdminError as exc:
        raise AdminError(f"{exc}; the import is saved: import {path} again to write its receipts "
                         "(nothing is received twice)") from None
    print(f"receipts for {result.acknowledged} message(s) written to {target}: carry it back to {result.sender} and "
          f"run 'ccm-node bundle import {target.name}' there")
    return 0


def register(sub: Any) -> None:
    """Add ``bundle export`` and ``bundle import`` to ``ccm-node``'s parser."""
    p = sub.add_parser("bundle", help="carry messages to a partner by file when there is no link")
    bsub = p.add_subparsers(dest="bundle_command", required=True, metavar="ACTION")
    exp = bsub.add_parser("export", help="write every message waiting for a partner into one encrypted file")
    exp.add_argument("--to", required=True, metavar="NODE_ID", help="the partner's node id")
    exp.add_argument("--out", required=True, metavar="FILE", help="the bundle file to write (mode 0600)")
    exp.add_argument("--force", action="store_true", help="replace FILE if it exists")
    exp.set_defaults(handler=_export)
    imp = bsub.add_parser("import", help="import a partner's bundle, or the receipts bundle for ours")
    imp.add_argument("file", metavar="FILE")
    imp.add_argument("--receipts-out", metavar="FILE",
                     help="where to write the receipts bundle to carry back (default: next to FILE)")
    imp.add_argument("--force", action="store_true", help="replace the receipts file if it exists")
    imp.set_defaults(handler=_import)
