"""Node administration commands of ``ccm-node``: staff accounts, API tokens, the audit log.

    ccm-node user add USERNAME --role ROLE [--display-name N] [--team T] [--password-stdin]
    ccm-node user list
    ccm-node user disable USERNAME
    ccm-node token create USERNAME [--days N] [--name NAME]      (prints the token once)
    ccm-node token revoke TOKEN_ID
    ccm-node audit verify                                          (exit 1 when the chain is broken)
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

if TYPE_CHECKING:
    from node.command_env import Env


class AdminError(Exception):
    """An administration command was refused; the message is the one error line."""


def audit_change(session: Any, env: Env, action: str, object_type: str, object_id: str,
                 detail: dict[str, Any] | None = None) -> None:
    """Administration changes go into the audit chain too (actor: the node's command line)."""
    from node.audit import record

    record(session, actor=None, action=action, object_type=object_type, object_id=object_id, case_id=None,
           now=env.clock.now(), detail={"via": "cli", **(detail or {})})


@contextmanager
def refusals() -> Iterator[None]:
    """Turn a service's or the protocol's refusal into the one-line ``AdminError``."""
    from node.errors import NodeError
    from protocol import ProtocolError

    try:
        yield
    except NodeError as exc:
        raise AdminError(exc.detail or exc.code) from None
    except ProtocolError as exc:
        raise AdminError(f"{exc.message} ({exc.code})") from None


def node_identity(env: Env) -> Any:
    """This node's keys and card (``NodeIdentity``); missing or unreadable keys are one error line."""
    from node.exchange.trust.keystore import load_identity

    with refusals():
        return load_identity(env.config, env.clock.now())


def _user_add(env: Env, args: argparse.Namespace) -> int:
    from node.accounts import ROLES
    from node.staff import add_staff

    if args.role not in ROLES:
        raise AdminError(f"invalid role {args.role!r}: choose one of {', '.join(ROLES)}")
    password = None
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise AdminError("no password on standard input")
    with env.session() as session:
        user, _ = add_staff(session, None, username=args.username, role=args.role, now=env.clock.now(),
                            display_name=args.display_name, team=args.team, password=password)
        session.commit()
        print(f"added user {user.username} (role {user.role}{', team ' + user.team if user.team else ''})")
    return 0


def _user_list(env: Env, _args: argparse.Namespace) -> int:
    from node.accounts import User

    with env.session() as session:
        for user in session.scalars(sa.select(User).order_by(User.username)):
            state = "active" if user.active else "disabled"
            print(f"{user.username}\t{user.role}\t{user.team or '-'}\t{state}")
    return 0


def _user_disable(env: Env, args: argparse.Namespace) -> int:
    from node.accounts import find_user
    from node.staff import set_active

    with env.session() as session:
        user = find_user(session, args.username)
        set_active(session, None, user.id, False, env.clock.now())
        session.commit()
    print(f"disabled user {args.username}")
    return 0


def _token_create(env: Env, args: argparse.Namespace) -> int:
    from node.accounts import create_token, find_user

    with env.session() as session:
        user = find_user(session, args.username)
        token = create_token(session, user, now=env.clock.now(), days=args.days or env.config.token_days,
                             name=args.name)
        audit_change(session, env, "create", "api_token", token.split("_")[1], {"user_id": user.id})
        session.commit()
    print(token)
    return 0


def _token_revoke(env: Env, args: argparse.Namespace) -> int:
    from node.staff import revoke_user_token

    with env.session() as session:
        revoke_user_token(session, None, args.token_id, env.clock.now())
        session.commit()
    print(f"revoked token {args.token_id}")
    return 0


def _audit_verify(env: Env, _args: argparse.Namespace) -> int:
    from node.audit import verify_chain

    with env.session() as session:
        count, problems = verify_chain(session)
    if problems:
        for problem in problems:
            print(f"audit: {problem.message}", file=sys.stderr)
        print(f"audit log BROKEN: {len(problems)} problem(s) in {count} entries", file=sys.stderr)
        return 1
    print(f"audit log intact: {count} entries verified")
    return 0


def register(sub: Any) -> None:
    """Add the administration subcommands to ``ccm-node``'s parser."""
    p = sub.add_parser("user", help="staff accounts")
    usub = p.add_subparsers(dest="user_command", required=True, metavar="ACTION")
    add = usub.add_parser("add", help="add a staff account")
    add.add_argument("username")
    add.add_argument("--role", required=True, help="admin, counsellor, adviser or coordinator")
    add.add_argument("--display-name")
    add.add_argument("--team")
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    add.set_defaults(handler=_user_add)
    usub.add_parser("list", help="list staff accounts").set_defaults(handler=_user_list)
    dis = usub.add_parser("disable", help="disable an account (its tokens stop working)")
    dis.add_argument("username")
    dis.set_defaults(handler=_user_disable)

    p = sub.add_parser("token", help="personal API tokens")
    tsub = p.add_subparsers(dest="token_command", required=True, metavar="ACTION")
    create = tsub.add_parser("create", help="issue a token for USERNAME (printed once)")
    create.add_argument("username")
    create.add_argument("--days", type=int, help="lifetime in days (default: the node's token_days)")
    create.add_argument("--name", default="api")
    create.set_defaults(handler=_token_create)
    revoke = tsub.add_parser("revoke", help="revoke a token by its id (the number after ccm_)")
    revoke.add_argument("token_id", type=int)
    revoke.set_defaults(handler=_token_revoke)

    p = sub.add_parser("audit", help="the audit log")
    asub = p.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    asub.add_parser("verify", help="check the hash chain; exit 1 if broken").set_defaults(handler=_audit_verify)
