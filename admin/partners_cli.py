"""Exchange administration commands of ``ccm-node``: identity, partners, the outbox queue and delivery.

    ccm-node card                                   this node's signed card (JSON), for partners
    ccm-node fingerprint                            the fingerprint to read out to a partner's administrator
    ccm-node partner add CARD_URL | --card-file FILE  --fingerprint FP [--agreement ID] [--retention-days N]
    ccm-node partner list
    ccm-node partner suspend|resume|revoke PARTNER
    ccm-node partner agreement PARTNER AGREEMENT_ID
    ccm-node partner resync-skip PARTNER             stop waiting for a resync after a restore (send as is)
    ccm-node queue [--all]                          pending, failed, parked and undeliverable messages
    ccm-node queue retry MESSAGE | queue retry --partner PARTNER [--given-up]
    ccm-node deliver [--once] [--parallel N] ...    the delivery worker

Every refusal is one line on stderr and exit 1 (``AdminError``).
"""

from __future__ import annotations

import argparse
import faulthandler
import json
import signal
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from admin.cli import AdminError, audit_change, node_identity, refusals

if TYPE_CHECKING:
    from node.command_env import Env


def _card(env: Env, _args: argparse.Namespace) -> int:
    print(json.dumps(node_identity(env).card.to_json(), indent=2, ensure_ascii=False))
    return 0


def _fingerprint(env: Env, _args: argparse.Namespace) -> int:
    print(node_identity(env).keys.fingerprint())
    return 0


def _partner_add(env: Env, args: argparse.Namespace) -> int:
    from node.exchange.trust.partners import add_partner, fetch_card, read_card_file
    from node.outbound import OutboundPolicy

    if (args.url is None) == (args.card_file is None):
        raise AdminError("give the partner's card URL, or --card-file FILE for a card you received as a file "
                         "(not both)")
    with refusals(), env.session() as session:
        if args.card_file is not None:
            card_data = read_card_file(args.card_file)
        else:
            card_data = fetch_card(args.url, policy=OutboundPolicy.from_config(env.config), timeout=args.timeout)
        partner = add_partner(session, card_data=card_data, fingerprint=args.fingerprint,
                              agreement=args.agreement, now=env.clock.now(), own_node_id=env.config.node_id,
                              retention_days=args.retention_days, own_kids=node_identity(env).own_kids)
        audit_change(session, env, "create", "partner", partner.node_id, {"agreement": partner.agreement_id})
        session.commit()
        print(f"trusted partner {partner.node_id} ({partner.name}) at {partner.base_url}")
        if partner.agreement_id is None:
            print(f"note: no agreement recorded: nothing can be sent to {partner.node_id} until one is "
                  f"('ccm-node partner agreement {partner.node_id} AGREEMENT_ID')")
    return 0


def _partner_list(env: Env, _args: argparse.Namespace) -> int:
    from node.exchange.trust.partners import list_partners

    with env.session() as session:
        for p in list_partners(session):
            backoff = f"retry at {p.retry_at:%Y-%m-%d %H:%M:%S}" if p.retry_at else "ok"
            if p.resync_since is not None:
                backoff = f"resync pending (since {p.resync_since:%Y-%m-%d %H:%M}), {backoff}"
            print(f"{p.id}\t{p.node_id}\t{p.status}\t{p.agreement_id or '(no agreement)'}\t{p.base_url}\t"
                  f"{backoff}\t{p.name}")
            if p.status == "key_revoked":
                print(f"  NOT TRUSTED: {p.node_id} revoked its current key. Check its new fingerprint with its "
                      "administrator, then: ccm-node partner add NEW_CARD_URL --fingerprint ...")
    return 0


def _partner_status(status: str) -> Callable[[Env, argparse.Namespace], int]:
    def handler(env: Env, args: argparse.Namespace) -> int:
        from node.exchange.trust.partners import set_status

        with refusals(), env.session() as session:
            partner = set_status(session, args.partner, status, env.clock.now())
            audit_change(session, env, "update", "partner", partner.node_id, {"status": status})
            session.commit()
        print(f"partner {partner.node_id} is {status}")
        return 0

    return handler


def _partner_agreement(env: Env, args: argparse.Namespace) -> int:
    from node.exchange.trust.partners import set_agreement

    with refusals(), env.session() as session:
        partner = set_agreement(session, args.partner, args.agreement, env.clock.now())
        audit_change(session, env, "update", "partner", partner.node_id, {"agreement": args.agreement})
        session.commit()
    print(f"partner {partner.node_id}: agreement {args.agreement}")
    return 0


def _partner_resync_skip(env: Env, args: argparse.Namespace) -> int:
    from node.exchange.trust.partners import get_partner

    with refusals(), env.session() as session:
        partner = get_partner(session, args.partner)
        if partner.resync_since is None:
            print(f"partner {partner.node_id} is in step: no resync pending")
            return 0
        partner.resync_since, partner.resync_after = None, None
        audit_change(session, env, "update", "partner", partner.node_id, {"resync": "skipped"})
        session.commit()
    print(f"partner {partner.node_id}: resync skipped; its queued messages go as they are (a thread whose chain "
          "it no longer shares with this node is refused broken_chain and parked)")
    return 0


def _queue_list(env: Env, args: argparse.Namespace) -> int:
    from node.exchange.delivery.queue import list_queue, queue_label

    statuses = ("queued", "sending", "parked", "undeliverable", *(("delivered",) if args.all else ()))
    with env.session() as session:
        rows = list_queue(session, statuses)
        for m in rows:
            when = m.delivered_at if m.status == "delivered" else m.next_attempt_at
            print(f"{m.id}\t{queue_label(m)}\t{m.recipient}\t{m.type}\t{m.message_id}\tthread {m.thread}\t"
                  f"attempts {m.attempts}\t{m.last_error or '-'}\t{when:%Y-%m-%d %H:%M:%S}")
    if not rows:
        print("the outbox is empty")
    return 0


def _queue_retry(env: Env, args: argparse.Namespace) -> int:
    from node.exchange.delivery.queue import retry_given_up, retry_message, retry_partner

    if (args.message is None) == (args.partner is None):
        raise AdminError("give either a MESSAGE (number or id) or --partner PARTNER")
    if args.given_up and args.partner is None:
        raise AdminError("--given-up goes with --partner PARTNER")
    with refusals(), env.session() as session:
        if args.given_up:
            partner, requeued, left = retry_given_up(session, args.partner, env.clock.now())
            audit_change(session, env, "update", "partner", partner.node_id, {"given_up_requeued": requeued})
            session.commit()
            print(f"partner {partner.node_id}: {requeued} given-up message(s) queued again"
                  + (f"; {left} cannot be sent any more (envelope expired or erased)" if left else ""))
            return 0
        if args.partner is not None:
            partner, waiting = retry_partner(session, args.partner, env.clock.now())
            audit_change(session, env, "update", "partner", partner.node_id, {"backoff": "reset"})
            session.commit()
            print(f"partner {partner.node_id}: backoff reset, {waiting} message(s) waiting")
            return 0
        message = retry_message(session, args.message, env.clock.now())
        audit_change(session, env, "update", "message", message.message_id, {"status": message.status})
        session.commit()
        print(f"message {message.id} ({message.message_id}) to {message.recipient}: {message.status}")
    return 0


def _retention(stop: threading.Event, env: Env, sessionmaker: Any) -> None:
    from node.exchange.chain.retention import retention_loop

    retention_loop(stop, sessionmaker=sessionmaker, config=env.config, clock=env.clock)


def _notifications(stop: threading.Event, env: Env, sessionmaker: Any) -> None:
    from node.notifications.loop import notification_loop

    notification_loop(stop, sessionmaker=sessionmaker, config=env.config, clock=env.clock)


def _resync(stop: threading.Event, env: Env, sessionmaker: Any) -> None:
    from node.exchange.resync.requester import resync_loop

    resync_loop(stop, sessionmaker=sessionmaker, config=env.config, clock=env.clock)


def _deliver(env: Env, args: argparse.Namespace) -> int:
    from node.db import make_sessionmaker
    from node.exchange.delivery.transport import HttpTransport
    from node.exchange.delivery.worker import DeliveryWorker, load_settings
    from node.outbound import OutboundPolicy

    try:
        settings = load_settings(env.config, parallel=args.parallel, lease_seconds=args.lease_seconds,
                                 poll_seconds=args.poll_seconds, min_backoff_seconds=args.min_backoff,
                                 max_backoff_seconds=args.max_backoff, horizon_days=args.horizon_days)
    except (TypeError, ValueError) as exc:
        raise AdminError(f"delivery settings: {exc}") from None
    sessionmaker = make_sessionmaker(env.engine)
    worker = DeliveryWorker(sessionmaker=sessionmaker, clock=env.clock, settings=settings,
                            transport=HttpTransport(policy=OutboundPolicy.from_config(env.config)))
    stop = threading.Event()
    if args.once:
        stop.set()  # retention runs once, before the delivery
    else:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        faulthandler.register(signal.SIGUSR1, all_threads=True)  # a stuck worker shows where: kill -USR1 PID
        print(f"delivery worker {worker.worker_id} started ({settings.parallel} in parallel)", flush=True)
    retention = threading.Thread(target=_retention, args=(stop, env, sessionmaker), name="retention", daemon=True)
    notifications = threading.Thread(target=_notifications, args=(stop, env, sessionmaker), name="notifications",
                                     daemon=True)
    resync = threading.Thread(target=_resync, args=(stop, env, sessionmaker), name="resync", daemon=True)
    retention.start()
    notifications.start()
    resync.start()
    if args.once:
        retention.join()
        notifications.join()
        resync.join()
        stop.clear()
    stats = worker.run(stop, once=args.once)
    print(f"delivered {stats.delivered}, retrying {stats.retried}, parked {stats.parked}, "
          f"given up {stats.given_up}", flush=True)
    return 0


def register(sub: Any) -> None:
    """Add the exchange subcommands to ``ccm-node``'s parser."""
    sub.add_parser("card", help="print this node's signed card (JSON)").set_defaults(handler=_card)
    sub.add_parser("fingerprint", help="print this node's key fingerprint").set_defaults(handler=_fingerprint)

    p = sub.add_parser("partner", help="trusted partner nodes")
    psub = p.add_subparsers(dest="partner_command", required=True, metavar="ACTION")
    add = psub.add_parser("add", help="trust a partner after confirming its fingerprint out of band")
    add.add_argument("url", nargs="?", metavar="CARD_URL",
                     help="the partner's card URL, or its base URL (https://...); only public addresses")
    add.add_argument("--card-file", metavar="FILE", help="read the card from this file instead of a URL")
    add.add_argument("--fingerprint", required=True, help="the fingerprint the partner read out to you")
    add.add_argument("--agreement", help="the id of the data-sharing agreement signed with the partner")
    add.add_argument("--retention-days", type=int)
    add.add_argument("--timeout", type=float, default=10.0, help="URL fetch time limit in seconds")
    add.set_defaults(handler=_partner_add)
    psub.add_parser("list", help="list partners").set_defaults(handler=_partner_list)
    for action, status, text in (("suspend", "suspended", "stop exchanging with a partner for now"),
                                 ("resume", "active", "exchange with a suspended partner again"),
                                 ("revoke", "revoked", "withdraw trust for good (gives up queued messages)")):
        q = psub.add_parser(action, help=text)
        q.add_argument("partner", metavar="PARTNER", help="node id or number from 'partner list'")
        q.set_defaults(handler=_partner_status(status))
    agr = psub.add_parser("agreement", help="record the data-sharing agreement signed with a partner")
    agr.add_argument("partner", metavar="PARTNER")
    agr.add_argument("agreement", metavar="AGREEMENT_ID")
    agr.set_defaults(handler=_partner_agreement)
    skip = psub.add_parser("resync-skip", help="after a restore: stop waiting for a partner that cannot resync")
    skip.add_argument("partner", metavar="PARTNER")
    skip.set_defaults(handler=_partner_resync_skip)

    p = sub.add_parser("queue", help="the outbox: messages waiting, failed, parked or undeliverable")
    p.add_argument("--all", action="store_true", help="include delivered messages")
    p.set_defaults(handler=_queue_list)
    qsub = p.add_subparsers(dest="queue_command", metavar="ACTION")
    retry = qsub.add_parser("retry", help="send a message again now, or reset a partner's backoff")
    retry.add_argument("message", nargs="?", metavar="MESSAGE", help="number from 'queue' or message id")
    retry.add_argument("--partner", metavar="PARTNER")
    retry.add_argument("--given-up", action="store_true",
                       help="with --partner: queue again every message given up to it (after a long outage)")
    retry.set_defaults(handler=_queue_retry)

    p = sub.add_parser("deliver", help="run the delivery worker")
    p.add_argument("--once", action="store_true", help="deliver what is due now, then exit")
    p.add_argument("--parallel", type=int, help="deliveries in flight at once (default 8)")
    p.add_argument("--lease-seconds", type=float, help="how long a dead worker's claims hold, seconds (6)")
    p.add_argument("--poll-seconds", type=float, help="how often an idle worker looks for work (0.2)")
    p.add_argument("--min-backoff", type=float, help="first retry interval after a failure, seconds (10)")
    p.add_argument("--max-backoff", type=float, help="the longest retry interval, seconds (3600)")
    p.add_argument("--horizon-days", type=float, help="give a message up after this many days (14)")
    p.set_defaults(handler=_deliver)
