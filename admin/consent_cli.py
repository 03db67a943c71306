"""Consent administration commands of ``ccm-node``: retention, erasure follow-up, subject access.

    ccm-node retention run                 erase received cases whose agreed retention has ended, tell senders
    ccm-node erasures [--overdue]          erasure requests partners have not confirmed yet (overdue: flagged)
    ccm-node case export CASE [--out FILE] everything held on a case, with its disclosure record (JSON)
    ccm-node custody show CASE [--json]    the case's chain of custody, verified here (exit 1 if a link fails)

Every refusal is one line on stderr and exit 1 (``AdminError``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from admin.cli import AdminError, node_identity, refusals

if TYPE_CHECKING:
    from node.command_env import Env


def _confirm_within(env: Env) -> timedelta:
    return timedelta(hours=env.config.erasure_confirm_hours)


def _retention_run(env: Env, args: argparse.Namespace) -> int:
    from node.db import make_sessionmaker
    from node.exchange.chain.followup import run_retention_recorded

    if not 1 <= args.limit <= 100_000:
        raise AdminError("--limit must be between 1 and 100000")
    identity = node_identity(env)
    with refusals():
        run = run_retention_recorded(make_sessionmaker(env.engine), None, keys=identity.keys, now=env.clock.now(),
                                     limit=args.limit)
    print(f"erased {len(run.erased)} received case(s) whose retention ended"
          + (f"; {len(run.not_told)} sender(s) could not be told (suspended or revoked)" if run.not_told else ""))
    return 0


def _erasures(env: Env, args: argparse.Namespace) -> int:
    from node.exchange.chain.followup import unconfirmed_erasures

    now, within = env.clock.now(), _confirm_within(env)
    with env.session() as session:
        listing = unconfirmed_erasures(session, now, within, overdue_only=args.overdue)
        session.commit()
    newly = listing.newly_flagged
    if not listing.rows:
        print("no overdue erasure requests" if args.overdue else "no unconfirmed erasure requests")
        return 0
    print(f"{'requested':<20} {'holder':<24} {'cause':<10} {'case':<36} state")
    for r in listing.rows:
        state = "OVERDUE" if r.overdue else "waiting"
        if not r.sent:
            state += " (not sent: partner suspended or revoked)"
        requested = r.requested_at.strftime("%Y-%m-%d %H:%M") if r.requested_at else "-"
        print(f"{requested:<20} {r.holder:<24} {r.cause:<10} {r.case_id or '-':<36} {state}")
    if newly:
        print(f"{newly} request(s) newly flagged as overdue (not confirmed within "
              f"{env.config.erasure_confirm_hours} h)", file=sys.stderr)
    return 0


def _case_export(env: Env, args: argparse.Namespace) -> int:
    from node.exchange.chain.schemas import SubjectExportOut
    from node.exchange.chain.subject_access import subject_export

    with refusals(), env.session() as session:
        document = subject_export(session, None, args.case, env.config.stages, env.clock.now(),
                                  _confirm_within(env))
        text = json.dumps(SubjectExportOut().dump(document), ensure_ascii=False, indent=2)
        if args.out:
            path = Path(args.out)
            if path.exists() and not args.force:
                raise AdminError(f"{path} exists: pass --force to overwrite it")
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text + "\n")
        session.commit()
    if args.out:
        print(f"wrote the export of case {args.case} to {args.out}")
    else:
        print(text)
    return 0


def _find_case(session: Any, ref: str) -> Any:
    from node.cases.access import find_case

    case = find_case(session, ref)
    if case is None:
        raise AdminError(f"no case {ref} on this node")
    return case


def _custody_show(env: Env, args: argparse.Namespace) -> int:
    from node.audit import record
    from node.exchange.chain.custody import custody_of
    from node.exchange.chain.schemas import CustodyOut

    now = env.clock.now()
    with env.session() as session:
        case = _find_case(session, args.case)
        result = custody_of(session, case.id, env.config.node_id, now)
        record(session, actor=None, action="read", object_type="custody", object_id=None, case_id=case.id, now=now,
               detail={"via": "cli", "verified": result["verified"]})
        session.commit()
    if args.json:
        print(json.dumps(CustodyOut().dump(result), ensure_ascii=False, indent=2))
    else:
        print(f"chain of custody of case {case.reference} (origin {result['origin']}), verified on {result['node']}")
        for n, link in enumerate(result["links"], 1):
            at = link["at"].strftime("%Y-%m-%d %H:%M") if link["at"] else "-"
            mark = "ok  " if link["verified"] else "FAIL"
            print(f"{n:>2}. {mark} {link['from']} -> {link['holder']}  {at}  {link['evidence']}"
                  + (f"  [{link['problem']}]" if link["problem"] else ""))
        print("verified" if result["verified"] else f"NOT verified: {len(result['problems'])} problem(s)")
    return 0 if result["verified"] else 1


def register(sub: Any) -> None:
    """Add the consent subcommands to ``ccm-node``'s parser."""
    p = sub.add_parser("retention", help="retention of received case data")
    rsub = p.add_subparsers(dest="retention_command", required=True, metavar="ACTION")
    run = rsub.add_parser("run", help="erase received cases whose retention has ended and tell their senders")
    run.add_argument("--limit", type=int, default=500, help="at most this many cases per run (500)")
    run.set_defaults(handler=_retention_run)

    p = sub.add_parser("erasures", help="erasure requests partners have not confirmed")
    p.add_argument("--overdue", action="store_true", help="only those past erasure_confirm_hours")
    p.set_defaults(handler=_erasures)

    p = sub.add_parser("case", help="case data held on this node")
    csub = p.add_subparsers(dest="case_command", required=True, metavar="ACTION")
    export = csub.add_parser("export", help="everything held on a case, with its disclosures (subject access)")
    export.add_argument("case", metavar="CASE", help="case id or reference (e.g. GI-2026-0042)")
    export.add_argument("--out", metavar="FILE", help="write to FILE (mode 0600) instead of stdout")
    export.add_argument("--force", action="store_true", help="overwrite FILE")
    export.set_defaults(handler=_case_export)

    p = sub.add_parser("custody", help="a case's chain of custody")
    ksub = p.add_subparsers(dest="custody_command", required=True, metavar="ACTION")
    show = ksub.add_parser("show", help="which node held the case, from whom, when, with what evidence (verified)")
    show.add_argument("case", metavar="CASE", help="case id or reference")
    show.add_argument("--json", action="store_true", help="the API's JSON instead of text")
    show.set_defaults(handler=_custody_show)
