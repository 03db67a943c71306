"""``ccm-node``: set up and run a node.

    ccm-node init --data-dir DIR --node-id ID --name NAME --url URL
    ccm-node --data-dir DIR db upgrade | db current | db downgrade REV
    ccm-node --data-dir DIR serve [--host H] [--port P] [--workers N]
    ccm-node --data-dir DIR demo-data --cases N [--seed S]
    ccm-node demo [--base-dir var/demo] [--check]    the four-node demo network (node/demo_network.py)
    ccm-node --data-dir DIR user add|list ... / token create|revoke ... / audit verify   (admin/cli.py)
    ccm-node --data-dir DIR card | fingerprint | partner ... | queue ... | deliver   (admin/partners_cli.py)
    ccm-node --data-dir DIR retention run | erasures | case export CASE | custody show CASE   (admin/consent_cli.py)
    ccm-node --data-dir DIR keys rotate | revoke | status | partners | revocation-...   (admin/keys_cli.py)
    ccm-node --data-dir DIR bundle export --to NODE --out FILE | bundle import FILE   (admin/bundles_cli.py)
    ccm-node --data-dir DIR backup create --out FILE | backup restore FILE   (admin/backup_cli.py)

Every error is one line on stderr and a non-zero exit (2 for usage and configuration, 1 for a refused
operation); never a traceback.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Sequence

import sqlalchemy as sa

from .command_env import CommandParser, Env
from .config import NODE_ID_RE, ConfigError, resolve_data_dir, write_config


class CommandError(Exception):
    """A command was refused; the message is printed as the one error line."""


def _cmd_init(env: Env, args: argparse.Namespace) -> int:
    from protocol import KeyFileError

    from . import migrate
    from .at_rest.keys import key_file_path
    from .config import default_database_url
    from .exchange.trust.keystore import generate_node_keys, key_path

    data_dir = resolve_data_dir(args.data_dir)
    if not NODE_ID_RE.fullmatch(args.node_id):
        raise CommandError(f"invalid node id {args.node_id!r}: expected e.g. se.gi-goteborg "
                           "(country code, a dot, lowercase letters, digits and dashes)")
    if not args.url.startswith(("http://", "https://")):
        raise CommandError(f"invalid --url {args.url!r}: must start with http:// or https://")
    write_config(data_dir, args.node_id, args.name, args.url, args.database_url)
    env.use_data_dir(str(data_dir))
    try:
        keys = generate_node_keys(data_dir, args.node_id)
    except KeyFileError as exc:
        raise CommandError(f"{key_path(data_dir)}: {exc.message}") from None
    migrate.upgrade(env.engine)
    print(f"initialised node {args.node_id} in {data_dir} "
          f"(database: {'custom' if args.database_url else default_database_url(data_dir)})")
    print(f"node keys in {key_path(data_dir)}; fingerprint: {keys.fingerprint()}")
    print(f"data key (encryption at rest) in {key_file_path(data_dir)[0]}: back it up apart from the database")
    return 0


def _cmd_db(env: Env, args: argparse.Namespace) -> int:
    from . import migrate

    if args.db_command == "upgrade":
        migrate.upgrade(env.engine, args.revision)
        print(f"database at revision {migrate.current_revision(env.engine)}")
    elif args.db_command == "downgrade":
        migrate.downgrade(env.engine, args.revision)
        print(f"database at revision {migrate.current_revision(env.engine)}")
    else:
        current, head = migrate.current_revision(env.engine), migrate.head_revision(env.engine)
        note = "" if current == head else "  (upgrade needed)"
        print(f"current: {current or '(empty)'}  head: {head}{note}")
    return 0


def _check_workers(workers: int) -> None:
    if not 1 <= workers <= 64:
        raise CommandError("--workers must be between 1 and 64")


def _check_port_free(host: str, port: int) -> None:
    """Refuse at once, in one line, a port another process listens on (gunicorn would log eight lines)."""
    import errno
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        raise CommandError(f"--host {host!r} is not an address of this machine") from None
    family, kind, proto, _name, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn binds
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise CommandError(f"cannot listen on {host}:{port}: the port is in use (another node, or "
                                   "another program; choose another --port)") from None
            raise CommandError(f"cannot listen on {host}:{port}: {exc.strerror}") from None


def _cmd_serve(env: Env, args: argparse.Namespace) -> int:
    from .serve import serve

    _check_workers(args.workers)
    if not 1 <= args.port <= 65535:
        raise CommandError("--port must be between 1 and 65535")
    _check_port_free(args.host, args.port)
    serve(env.config, host=args.host, port=args.port, workers=args.workers)
    return 0


def _cmd_demo_data(env: Env, args: argparse.Namespace) -> int:
    from .accounts import User
    from .cases.demo import generate_demo_cases

    if not 1 <= args.cases <= 1_000_000:
        raise CommandError("--cases must be between 1 and 1000000")
    with env.session() as session:
        staff = list(session.scalars(sa.select(User.id).where(User.role.in_(("counsellor", "adviser")),
                                                              User.active.is_(True))))
        if not staff:
            raise CommandError("no counsellor or adviser accounts to assign cases to: "
                               "add one first with 'ccm-node user add NAME --role counsellor'")
        made = generate_demo_cases(session, count=args.cases, now=env.clock.now(), seed=args.seed,
                                   counsellor_ids=staff, stage_keys=env.config.stage_keys,
                                   prefix=env.config.reference_prefix)
        session.commit()
    if env.engine.dialect.name == "postgresql":  # fresh statistics, so that index-only scans are chosen
        with env.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
    print(f"created {made} demo cases")
    return 0


def _cmd_demo(_env: Env, args: argparse.Namespace) -> int:
    from pathlib import Path

    from .demo_network import run

    _check_workers(args.workers)
    return run(Path(args.base_dir) if args.base_dir else None, command=main, check=args.check, workers=args.workers)


def build_parser() -> argparse.ArgumentParser:
    from admin.backup_cli import register as register_backup
    from admin.bundles_cli import register as register_bundles
    from admin.cli import register as register_admin
    from admin.consent_cli import register as register_consent
    from admin.keys_cli import register as register_keys
    from admin.partners_cli import register as register_partners

    parser = CommandParser(prog="ccm-node", description="Run and administer a CCM Exchange node.")
    parser.add_argument("--data-dir", help="the node's data directory (default: $CCM_DATA_DIR)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("init", help="create a new node in a data directory and set up its database")
    p.add_argument("--data-dir", dest="data_dir", default=argparse.SUPPRESS)
    p.add_argument("--node-id", required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--url", required=True, help="the node's public base URL")
    p.add_argument("--database-url", help="PostgreSQL URL instead of the SQLite file in the data directory")
    p.set_defaults(handler=_cmd_init)

    p = sub.add_parser("db", help="database migrations")
    dbsub = p.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    up = dbsub.add_parser("upgrade", help="migrate to the newest schema (or REVISION)")
    up.add_argument("revision", nargs="?", default="head")
    down = dbsub.add_parser("downgrade", help="migrate down to REVISION")
    down.add_argument("revision")
    dbsub.add_parser("current", help="show the current and newest revision")
    p.set_defaults(handler=_cmd_db)

    p = sub.add_parser("serve", help="run the node under gunicorn")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=int, default=2)
    p.set_defaults(handler=_cmd_serve)

    p = sub.add_parser("demo-data", help="create realistic synthetic cases (never on a production node)")
    p.add_argument("--cases", type=int, required=True)
    p.add_argument("--seed", type=int, default=2026)
    p.set_defaults(handler=_cmd_demo_data)

    p = sub.add_parser("demo", help="run the four-node demo network on loopback (Ctrl-C stops it)")
    p.add_argument("--base-dir", help="where the nodes live (default var/demo; --check: a temporary directory)")
    p.add_argument("--check", action="store_true", help="run the story headless, verify every step, stop")
    p.add_argument("--workers", type=int, default=2, help="gunicorn workers per node")
    p.set_defaults(handler=_cmd_demo)

    register_admin(sub)
    register_partners(sub)
    register_keys(sub)
    register_consent(sub)
    register_bundles(sub)
    register_backup(sub)
    return parser


#: A word after one dash, with a letter in it: no option of ``ccm-node`` is spelt so (``-h`` aside), but a
#: message or key id may begin with a dash (base64url), and argparse takes it for an unknown option.
_DASHED_WORD = re.compile(r"-(?!-)[A-Za-z0-9_-]*[A-Za-z_][A-Za-z0-9_-]*")


def dashed_id(argv: Sequence[str]) -> str | None:
    """The first argument (before a ``--``) that argparse would take for an option but is an id beginning
    with a dash, or None."""
    for word in argv:
        if word == "--":
            return None
        if word != "-h" and _DASHED_WORD.fullmatch(word):
            return word
    return None


def main(argv: Sequence[str] | None = None) -> int:
    from admin.cli import AdminError

    from .accounts import AccountError
    from .exchange import wiring

    given = list(sys.argv[1:] if argv is None else argv)
    dashed = dashed_id(given)
    if dashed is not None:
        print(f"ccm-node: {dashed} is not an option; an id that begins with '-' goes after '--', e.g. "
              f"ccm-node ... queue retry -- {dashed}", file=sys.stderr)
        return 2
    parser = build_parser()
    args = parser.parse_args(given)
    wiring.wire()  # a command may receive messages (bundle import) as the web app does
    env = Env(args.data_dir)
    handler: Callable[[Env, argparse.Namespace], int] = args.handler
    try:
        return handler(env, args)
    except ConfigError as exc:
        print(f"ccm-node: {exc}", file=sys.stderr)
        return 2
    except (CommandError, AccountError, AdminError) as exc:
        print(f"ccm-node: {exc}", file=sys.stderr)
        return 1
    except sa.exc.OperationalError as exc:
        print(f"ccm-node: database error: {str(exc.orig).strip().splitlines()[0]}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        env.close()


if __name__ == "__main__":
    sys.exit(main())
