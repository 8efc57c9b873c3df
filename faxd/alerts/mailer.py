"""Turn waiting admin events into mails: one per kind per ``min_interval``, none lost.

Each pass (:meth:`AdminMailer.send_due`) does, per event kind:

1. If a mail of that kind is already made but not yet accepted by the SMTP
   server, try it again once its backoff has passed, unchanged (the same
   events and the same Message-ID).
2. Else, if events of that kind are waiting and the last mail of that kind was
   sent at least ``min_interval`` ago, make one mail of all of them: the first
   in full, the rest summarised ("and 14 more faxes failed since 09:00").  The
   mail row and the events' link to it are one transaction.
3. Send it; record it sent only once the server accepted it.

So an event is never dropped (it waits for the next mail of its kind), a mail
that cannot be sent is retried from the database and never blocks a fax (the
pass runs on its own), and a crash resends only a mail the server had not yet
accepted, except in the instant between the server's ``250`` and the commit
that records it, where the repeat carries the same Message-ID.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from datetime import timedelta
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import formatdate, make_msgid
from pathlib import Path

import structlog
from sqlalchemy import func, select, update

from faxd.actions.base import MIME_TYPES
from faxd.clock import Clock, system_clock
from faxd.config import NOTIFY_EVENTS, NotifySettings
from faxd.errors import DeliveryError
from faxd.smtp import SmtpSender
from faxd.store.db import Database
from faxd.store.models import AdminEvent, AdminNotification

log = structlog.get_logger(__name__)

#: How long after a failed send a mail is tried again: doubling from the first, up to the last.
RETRY_FIRST_SECONDS = 60.0
RETRY_MAX_SECONDS = 3600.0
#: Events listed one by one in a mail; the rest are counted.
LISTED_AT_MOST = 200
#: Attached faxes (``attach = true``) stop at this many bytes in one mail.
ATTACH_BUDGET = 20 * 1024 * 1024

#: Per kind: what a mail's subject says for one event, and the noun for several.
HEADLINES: dict[str, tuple[str, str]] = {
    "fax_failed": ("could not be delivered", "faxes failed"),
    "fax_held": ("has no route", "faxes held for want of a route"),
    "job_failed": ("was not sent", "outbound jobs failed"),
    "auth_failed": ("refused the login", "login refusals"),
    "provider_down": ("stopped answering", "provider outages"),
    "disk_low": ("is low on disk", "low-disk warnings"),
    "recovered": ("has recovered", "recoveries"),
}


class AdminMailer:
    """Sends the admin mails that are due; one instance per daemon."""

    def __init__(
        self,
        db: Database,
        settings: NotifySettings,
        sender: SmtpSender,
        *,
        config_path: Path | str = "the config file",
        clock: Clock = system_clock,
        hostname: str | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.sender = sender
        self.config_path = str(config_path)
        self.clock = clock
        self.hostname = hostname or socket.gethostname()

    # -- the pass --------------------------------------------------------------------

    def send_due(self) -> int:
        """Make and send every mail that is due; return how many the server accepted."""
        sent = 0
        for kind in NOTIFY_EVENTS:
            notification_id = self._due_notification(kind)
            if notification_id is not None and self._send(notification_id):
                sent += 1
        return sent

    def _due_notification(self, kind: str) -> int | None:
        """The mail of ``kind`` to send now (made now if its events are due), or ``None``."""
        now = self.clock()
        with self.db.session() as session:
            unsent = session.scalars(
                select(AdminNotification)
                .where(AdminNotification.kind == kind, AdminNotification.sent_at.is_(None))
                .order_by(AdminNotification.id)
                .limit(1)
            ).first()
            if unsent is not None:
                due = unsent.next_attempt_at is None or unsent.next_attempt_at <= now
                return unsent.id if due else None
            waiting = session.scalar(
                select(func.count())
                .select_from(AdminEvent)
                .where(AdminEvent.kind == kind, AdminEvent.notification_id.is_(None))
            )
            if not waiting:
                return None
            last_sent = session.scalar(
                select(func.max(AdminNotification.sent_at)).where(AdminNotification.kind == kind)
            )
            if last_sent is not None and now < last_sent + timedelta(
                seconds=self.settings.min_interval
            ):
                return None  # inside min_interval: these wait and are summarised later
            notification = AdminNotification(
                kind=kind, created_at=now, message_id=make_msgid("faxd", domain=self.hostname)
            )
            session.add(notification)
            session.flush()
            session.execute(
                update(AdminEvent)
                .where(AdminEvent.kind == kind, AdminEvent.notification_id.is_(None))
                .values(notification_id=notification.id)
            )
            return notification.id

    def _send(self, notification_id: int) -> bool:
        with self.db.session() as session:
            notification = session.get_one(AdminNotification, notification_id)
            events = list(
                session.scalars(
                    select(AdminEvent)
                    .where(AdminEvent.notification_id == notification_id)
                    .order_by(AdminEvent.id)
                )
            )
        message = self.compose(notification, events)
        try:
            answer = self.sender.send(message, self.settings.email)
        except DeliveryError as exc:
            attempts = notification.attempts + 1
            wait = min(RETRY_MAX_SECONDS, RETRY_FIRST_SECONDS * 2 ** (attempts - 1))
            with self.db.session() as session:
                session.execute(
                    update(AdminNotification)
                    .where(AdminNotification.id == notification_id)
                    .values(
                        attempts=attempts,
                        last_error=exc.message,
                        next_attempt_at=self.clock() + timedelta(seconds=wait),
                    )
                )
            log.warning(
                "notify.send_failed",
                kind=notification.kind,
                events=len(events),
                error=exc.message,
                retry_in=wait,
            )
            return False
        with self.db.session() as session:
            session.execute(
                update(AdminNotification)
                .where(AdminNotification.id == notification_id)
                .values(sent_at=self.clock(), attempts=notification.attempts + 1, last_error=None)
            )
        log.info("notify.sent", kind=notification.kind, events=len(events), answer=answer)
        return True

    # -- the mail --------------------------------------------------------------------

    def compose(
        self, notification: AdminNotification, events: Sequence[AdminEvent]
    ) -> EmailMessage:
        """The mail for ``notification``: the first event in full, the others summarised."""
        first, rest = events[0], events[1:]
        one, many = HEADLINES.get(notification.kind, ("needs attention", "events"))
        if rest:
            subject = f"{len(events)} {many}: {first.subject} and {len(rest)} more"
        else:
            subject = f"{first.subject} {one}"
        msg = EmailMessage(policy=SMTP_POLICY)
        msg["From"] = self.sender.smtp.from_addr
        msg["To"] = ", ".join(self.settings.email)
        msg["Subject"] = f"[faxd on {self.hostname}] {subject}"
        msg["Date"] = formatdate(localtime=True)
        msg["Message-ID"] = notification.message_id
        msg["X-Faxd-Event"] = notification.kind
        msg["Auto-Submitted"] = "auto-generated"
        body = self._body(first, rest)
        msg.set_content(body, cte="7bit" if body.isascii() else "quoted-printable")
        self._attach(msg, events)
        return msg

    def _body(self, first: AdminEvent, rest: Sequence[AdminEvent]) -> str:
        lines = [f"faxd on {self.hostname} reports:", "", first.summary, ""]
        if first.detail:
            lines += ["What went wrong:", *_indented(first.detail), ""]
        if first.command:
            lines += ["What to run:", *_indented(first.command), ""]
        if rest:
            many = HEADLINES.get(first.kind, ("", "events"))[1]
            since = f"{first.created_at.astimezone():%Y-%m-%d %H:%M}"
            lines.append(f"And {len(rest)} more {many} since {since}:")
            for event in rest[:LISTED_AT_MOST]:
                lines.append(f"  - {event.summary}")
            if len(rest) > LISTED_AT_MOST:
                lines.append(f"  ... and {len(rest) - LISTED_AT_MOST} more (see faxd inbox / jobs)")
            lines.append("")
        lines += [
            "-- ",
            f"faxd sends these mails because of [notify] in {self.config_path}; at most one "
            f"per kind every {self.settings.min_interval:g} s, the rest summarised in the next.",
        ]
        return "\n".join(lines) + "\n"

    def _attach(self, msg: EmailMessage, events: Sequence[AdminEvent]) -> None:
        """Each failed fax's or job's reason; the fax itself only with ``attach = true``."""
        budget = ATTACH_BUDGET
        for event in events[:LISTED_AT_MOST]:
            if event.detail and event.kind in {"fax_failed", "job_failed"}:
                name = event.subject.replace(" ", "-") + "-reason.txt"
                msg.add_attachment(event.detail + "\n", filename=name)
            if self.settings.attach and event.attach_path:
                path = Path(event.attach_path)
                try:
                    data = path.read_bytes() if path.stat().st_size <= budget else None
                except OSError:
                    data = None  # delivered meanwhile, or not downloaded: the mail still goes
                if data is not None:
                    budget -= len(data)
                    ext = path.suffix.lstrip(".") or "bin"
                    maintype, subtype = MIME_TYPES.get(ext, ("application", "octet-stream"))
                    msg.add_attachment(
                        data, maintype=maintype, subtype=subtype,
                        filename=event.subject.replace(" ", "-") + f".{ext}",
                    )  # fmt: skip


def send_test(settings: NotifySettings, sender: SmtpSender, *, hostname: str | None = None) -> str:
    """Send a test mail now (``faxd notify --test``); return the server's answer."""
    host = hostname or socket.gethostname()
    msg = EmailMessage(policy=SMTP_POLICY)
    msg["From"] = sender.smtp.from_addr
    msg["To"] = ", ".join(settings.email)
    msg["Subject"] = f"[faxd on {host}] test notification"
    msg["Date"] = formatdate(localtime=True)
    msg["Message-ID"] = make_msgid("faxd", domain=host)
    msg["Auto-Submitted"] = "auto-generated"
    events = ", ".join(kind for kind in NOTIFY_EVENTS if kind in settings.events)
    msg.set_content(
        f"This is a test mail from faxd on {host} (faxd notify --test).\n\n"
        f"You will be mailed about: {events or 'nothing (events is empty)'}.\n"
        f"At most one mail per kind every {settings.min_interval:g} s; what happens "
        "in between is summarised in the next one.\n"
    )
    return sender.send(msg, settings.email)


def _indented(text: str) -> list[str]:
    return ["  " + line for line in text.splitlines() if line.strip()]

