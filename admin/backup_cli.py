"""Backups (``ccm-node backup``): one encrypted, signed file with the database, keys and configuration.

    ccm-node backup create --out FILE [--force] [--key-file FILE]
        write a backup (mode 0600), encrypted with the backup key (``keys/backup.key``, made on the first
        backup: keep a copy off the machine) and signed with the node's signing key
    ccm-node backup restore FILE [--key-file FILE]
        check the file (signature, this node's key, backup key, every member), then restore it into the data
        directory (its node stopped, or an empty directory with --key-file) and make again every erasure
        made after the backup

Every refusal is one line on stderr and exit 1 (``AdminError``); a refused restore changes nothing.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from admin.cli import AdminError

if TYPE_CHECKING:
    from node.command_env import Env


def _create(env: Env, args: argparse.Namespace) -> int:
    from node import migrate
    from node.backup.archive import BackupError, backup_key_path, create_backup, read_backup_key
    from node.exchange.trust.key_files import key_path
    from protocol import KeyFileError, NodeKeys

    config = env.config
    try:
        keys = NodeKeys.load(key_path(config.data_dir))
        made_key = args.key_file is None and not backup_key_path(config.data_dir).exists()
        backup_key = read_backup_key(Path(args.key_file)) if args.key_file else None
        backup = create_backup(config, env.engine, Path(args.out), keys=keys, now=env.clock.now(),
                               schema_revision=migrate.current_revision(env.engine), backup_key=backup_key,
                               force=args.force)
    except KeyFileError as exc:
        raise AdminError(f"{key_path(config.data_dir)}: {exc.message}") from None
    except BackupError as exc:
        raise AdminError(str(exc)) from None
    manifest = backup.manifest
    print(f"backup of {manifest['node_id']} written to {backup.path} ({backup.size} bytes; {manifest['database']} "
          f"database at {manifest['schema_revision']}; {manifest['journal']['length']} erasure(s) journalled)")
    if made_key:
        print(f"a new backup key was made in {backup_key_path(config.data_dir)}: keep a copy off this machine "
              "(a restore on a new machine needs it: --key-file)")
    return 0


def _restore(env: Env, args: argparse.Namespace) -> int:
    from node.backup.archive import BackupError
    from node.backup.restore import restore_backup
    from node.config import resolve_data_dir

    data_dir = resolve_data_dir(args.data_dir)
    path = Path(args.file)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise AdminError(f"cannot read {path}: {exc.strerror}") from None
    try:
        result = restore_backup(data_dir, data, now=env.clock.now(),
                                key_file=Path(args.key_file) if args.key_file else None)
    except BackupError as exc:
        raise AdminError(str(exc)) from None
    manifest = result.manifest
    print(f"restored the backup of {manifest['node_id']} taken {manifest['created_at']} into {data_dir} "
          f"({manifest['database']}, schema {manifest['schema_revision']}) in {result.seconds:.1f} s")
    print(f"erasures made after the backup: {result.journal_lines_after_backup} in the journal, "
          f"{len(result.reapplied)} made again")
    if result.journal_missing:
        print("warning: this directory had no erasure journal: erasures made after the backup (if any) could "
              "not be made again; check 'ccm-node erasures' on the partners that sent you cases")
    if result.partners_to_resync:
        print(f"{result.partners_to_resync} partner(s) to resync: the delivery worker asks each what passed since "
              "the backup before it sends them anything ('ccm-node partner list' shows who is still pending)")
    print("check 'ccm-node queue', then start the node and its delivery worker")
    return 0


def register(sub: Any) -> None:
    """Add ``backup create`` and ``backup restore`` to ``ccm-node``'s parser."""
    p = sub.add_parser("backup", help="back up the node to one encrypted, signed file, or restore one")
    bsub = p.add_subparsers(dest="backup_command", required=True, metavar="ACTION")
    create = bsub.add_parser("create", help="write a backup of the database, keys and configuration")
    create.add_argument("--out", required=True, metavar="FILE", help="the backup file to write (mode 0600)")
    create.add_argument("--force", action="store_true", help="replace FILE if it exists")
    create.add_argument("--key-file", metavar="FILE", help="encrypt with this backup key (default keys/backup.key)")
    create.set_defaults(handler=_create)
    restore = bsub.add_parser("restore", help="check a backup, then restore it (the node stopped)")
    restore.add_argument("file", metavar="FILE")
    restore.add_argument("--key-file", metavar="FILE",
                         help="the backup key (default keys/backup.key; needed for an empty directory)")
    restore.set_defaults(handler=_restore)
