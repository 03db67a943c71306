"""Notification e-mails: after a sweep, the rows not yet e-mailed go out to the users who want them.

An e-mail holds **no personal data**: its subject says what happened ("CCM: a handover was accepted"), its body
the case reference and a link to the case page (the node's ``base_url`` + ``/cases/<id>``; for a partner
problem, the notifications page and the partner's node id), nothing else: no returnee's name, no note, no
reason. It is written in the user's language (the web interface's catalogue, ``node/web/translations``; the
texts are marked with ``N_`` for extraction) and sent with the standard library (``smtplib``,
``email.message.EmailMessage``) through ``[smtp]`` in node.toml.

Only rows of users who are active, opted in (``users.notify_email``) and have an address are sent, and only
rows made within :data:`SEND_WITHIN` (a user who opts in later is not sent the old ones). A row is marked
``emailed_at`` once the server took it; a refused or unreachable server leaves the rest pending, so they are
tried again at the next sweep. Failures are logged with the error's type and notification ids, never an
address or any case data.
"""

from __future__ import annotations

import datetime as dt
import logging
import smtplib
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

import sqlalchemy as sa
from babel.support import NullTranslations, Translations
from sqlalchemy import orm

from node.accounts import User
from node.config import SmtpConfig

from .models import Notification

log = logging.getLogger(__name__)

#: The web interface's catalogues, shared by the e-mails (a path, not an import).
TRANSLATIONS = Path(__file__).resolve().parent.parent / "web" / "translations"
#: Rows older than this are not e-mailed any more.
SEND_WITHIN = dt.timedelta(days=2)
#: The most e-mails one run sends.
BATCH = 200
CASE_PATH = "/cases/{case_id}"
LIST_PATH = "/notifications"


def N_(text: str) -> str:  # the marker pybabel extracts by default
    return text


#: kind -> (subject, first line of the body)
TEXTS: dict[str, tuple[str, str]] = {
    "handover_accepted": (N_("CCM: a handover was accepted"), N_("A partner accepted the handover of a case.")),
    "handover_declined": (N_("CCM: a handover was declined"), N_("A partner declined the handover of a case.")),
    "progress_received": (N_("CCM: progress arrived from a partner"), N_("A partner sent progress on a case.")),
    "erasure_confirmed": (N_("CCM: an erasure was confirmed"), N_("A partner confirmed that it erased a case's data.")),
    "erasure_overdue": (N_("CCM: an erasure is overdue"),
                        N_("A partner has not confirmed in time that it erased a case's data.")),
    "partner_unreachable": (N_("CCM: a partner is unreachable"),
                            N_("Deliveries to a partner node have been failing for more than a day.")),
}


@dataclass
class MailRun:
    """What a run did: the notification ids sent, and those that failed (left for the next run)."""

    sent: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)


def _translations(language: str | None) -> NullTranslations:
    if not language or language == "en":
        return NullTranslations()
    return Translations.load(str(TRANSLATIONS), [language], domain="messages")


def compose(notification: Notification, *, to: str, smtp: SmtpConfig, base_url: str, language: str | None,
            now: dt.datetime) -> EmailMessage:
    """The e-mail of one notification: what happened, the case reference and a link; nothing personal."""
    t = _translations(language)
    subject, lead = TEXTS.get(notification.kind, (N_("CCM: a notification"), N_("Something happened.")))
    lines = [t.gettext(lead), ""]
    if notification.case_id is not None:
        lines.append(t.gettext("Case: %(ref)s") % {"ref": notification.case_reference or "-"})
        link = base_url.rstrip("/") + CASE_PATH.format(case_id=notification.case_id)
    else:
        if notification.partner_node:
            lines.append(t.gettext("Partner node: %(node)s") % {"node": notification.partner_node})
        link = base_url.rstrip("/") + LIST_PATH
    lines += [link, "", t.gettext("Sign in to read more. You can turn these e-mails off on the notifications "
                                  "page.")]
    message = EmailMessage()
    message["Subject"] = t.gettext(subject)
    message["From"] = smtp.from_address
    message["To"] = to
    message["Date"] = format_datetime(now)
    message["Message-ID"] = make_msgid(domain=smtp.from_address.rpartition("@")[2] or None)
    message.set_content("\n".join(lines) + "\n")
    return message


def pending(session: orm.Session, now: dt.datetime, limit: int = BATCH) -> list[tuple[Notification, User]]:
    """The rows to e-mail now, oldest first, with their user."""
    rows = session.execute(sa.select(Notification, User).join(User, User.id == Notification.user_id).where(
        Notification.emailed_at.is_(None), Notification.created_at >= now - SEND_WITHIN,
        User.active.is_(True), User.notify_email.is_(True), User.email.is_not(None))
        .order_by(Notification.created_at, Notification.id).limit(limit))
    return [(row.Notification, row.User) for row in rows]


def _connect(smtp: SmtpConfig) -> smtplib.SMTP:
    server = smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout_seconds)
    try:
        if smtp.starttls:
            server.starttls(context=ssl.create_default_context())
        if smtp.username:
            server.login(smtp.username, smtp.password() or "")
    except BaseException:
        server.close()
        raise
    return server


def send_pending(sessionmaker: orm.sessionmaker[orm.Session], smtp: SmtpConfig | None, *, base_url: str,
                 now: dt.datetime, limit: int = BATCH) -> MailRun:
    """E-mail the pending notifications (commits the ``emailed_at`` of each one the server took).

    Args:
        smtp: the server; None (no ``[smtp]`` section) sends nothing.
        base_url: the node's address, for the links.
    Returns:
        The ids sent and failed; a failure never raises (it is logged, and the row is tried again next time).
    """
    run = MailRun()
    if smtp is None:
        return run
    with sessionmaker() as session:
        todo = pending(session, now, limit)
        if not todo:
            return run
        try:
            server = _connect(smtp)
        except (OSError, smtplib.SMTPException) as exc:
            run.failed = [n.id for n, _ in todo]
            log.warning("notification e-mail: cannot reach the SMTP server (%s); %d left for the next run",
                        type(exc).__name__, len(todo))
            return run
        try:
            for notification, user in todo:
                message = compose(notification, to=str(user.email), smtp=smtp, base_url=base_url,
                                  language=user.language, now=now)
                try:
                    server.send_message(message)
                except (OSError, smtplib.SMTPException) as exc:
                    run.failed.append(notification.id)
                    log.warning("notification e-mail %d not sent (%s)", notification.id, type(exc).__name__)
                    if isinstance(exc, OSError | smtplib.SMTPServerDisconnected):
                        break  # the connection is gone: the rest wait for the next run
                    continue
                notification.emailed_at = now
                session.commit()
                run.sent.append(notification.id)
        finally:
            try:
                server.quit()
            except (OSError, smtplib.SMTPException):
                server.close()
    if run.failed:
        log.warning("notification e-mail: %d sent, %d left for the next run", len(run.sent), len(run.failed))
    return run
