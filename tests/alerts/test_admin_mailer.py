"""Admin mails through a real SMTP server on loopback (aiosmtpd), from a real SQLite file."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from faxd.alerts import events
from faxd.alerts.mailer import RETRY_FIRST_SECONDS, AdminMailer, send_test
from faxd.config import NotifySettings, SmtpSettings
from faxd.errors import DeliveryError
from faxd.smtp import SmtpSender
from faxd.store.db import Database
from faxd.store.models import AdminEvent, AdminNotification

ADMINS = ("it@example.com",)


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def settings() -> NotifySettings:
    return NotifySettings(email=ADMINS, min_interval=3600)


def mailer_for(
    db: Database, smtp_server: Any, settings: NotifySettings, clock: Clock
) -> AdminMailer:
    smtp = SmtpSettings(
        host=smtp_server.host, port=smtp_server.port, from_addr="faxd@example.com", timeout=5.0
    )
    return AdminMailer(db, settings, SmtpSender(smtp), clock=clock, hostname="faxbox")


def fail_fax(db: Database, settings: NotifySettings, clock: Clock, recvid: int,
             spool_path: str | None = None) -> None:  # fmt: skip
    event = events.fax_failed(
        "faxage", str(recvid), dnis="3035550101", cid="7205550142", route="sales",
        reason=f"getfax: ERR13 eleven times in a row for {recvid}", spool_path=spool_path,
    )  # fmt: skip
    with db.transaction() as conn:
        events.record(conn, settings, event, now=clock())


def body(message: Message) -> str:
    part = message.get_body(("plain",)) if hasattr(message, "get_body") else message
    assert part is not None
    return str(part.get_content())


def parsed(smtp_server: Any) -> list[Any]:
    from email import message_from_bytes
    from email.policy import default

    return [message_from_bytes(raw, policy=default) for _f, _t, raw in smtp_server.messages]


def test_a_failed_fax_mail_names_the_fax_the_reason_and_the_command(
    db: Database, smtp_server: Any, settings: NotifySettings, clock: Clock
) -> None:
    """Subject and body say which fax, from whom, to which number and route, why, what to run."""
    fail_fax(db, settings, clock, 104730)

    assert mailer_for(db, smtp_server, settings, clock).send_due() == 1

    (mail,) = parsed(smtp_server)
    assert smtp_server.messages[0][1] == list(ADMINS)
    assert mail["Subject"] == "[faxd on faxbox] faxage fax 104730 could not be delivered"
    text = body(mail)
    assert "faxage fax 104730 from 7205550142 to 3035550101 (route sales)" in text
    assert "ERR13 eleven times in a row for 104730" in text
    assert "faxd retry --provider faxage 104730" in text and "faxd inbox --failed" in text
    attachments = {part.get_filename(): part for part in mail.iter_attachments()}
    assert list(attachments) == ["faxage-fax-104730-reason.txt"]
    assert "ERR13" in attachments["faxage-fax-104730-reason.txt"].get_content()


def test_the_fax_itself_is_attached_only_with_attach_true(
    tmp_path: Path, db: Database, smtp_server: Any, settings: NotifySettings, clock: Clock
) -> None:
    """attach = true adds the spooled fax; without it the mail carries only the reason."""
    spooled = tmp_path / "104731.pdf"
    spooled.write_bytes(b"%PDF-1.4 the fax\n")
    fail_fax(db, settings, clock, 104731, spool_path=str(spooled))
    mailer_for(db, smtp_server, settings, clock).send_due()
    with_attach = replace(settings, attach=True)
    fail_fax(db, with_attach, clock, 104732, spool_path=str(spooled))
    clock.advance(3600)
    mailer_for(db, smtp_server, with_attach, clock).send_due()

    first, second = parsed(smtp_server)
    assert [p.get_filename() for p in first.iter_attachments()] == ["faxage-fax-104731-reason.txt"]
    files = {p.get_filename(): p for p in second.iter_attachments()}
    assert files["faxage-fax-104732.pdf"].get_content() == b"%PDF-1.4 the fax\n"


def test_events_inside_min_interval_are_summarised_in_the_next_mail_never_dropped(
    db: Database, smtp_server: Any, settings: NotifySettings, clock: Clock
) -> None:
    """One mail now; the next 15 failures wait for the interval and go out as one summary."""
    mailer = mailer_for(db, smtp_server, settings, clock)
    fail_fax(db, settings, clock, 1)
    assert mailer.send_due() == 1
    for recvid in range(2, 17):
        clock.advance(60)
        fail_fax(db, settings, clock, recvid)
        assert mailer.send_due() == 0  # inside the hour: waits

    clock.advance(3600)
    assert mailer.send_due() == 1
    assert mailer.send_due() == 0

    _first, summary = parsed(smtp_server)
    assert summary["Subject"] == "[faxd on faxbox] 15 faxes failed: faxage fax 2 and 14 more"
    text = body(summary)
    assert "And 14 more faxes failed since" in text
    for recvid in range(3, 17):
        assert f"faxage fax {recvid} from" in text
    with db.session() as session:
        waiting = session.scalars(select(AdminEvent).where(AdminEvent.notification_id.is_(None)))
        assert list(waiting) == []


def test_min_interval_is_counted_per_kind(
    db: Database, smtp_server: Any, settings: NotifySettings, clock: Clock
) -> None:
    """A failed job right after a failed fax mail is not held back by the fax's interval."""
    mailer = mailer_for(db, smtp_server, settings, clock)
    fail_fax(db, settings, clock, 1)
    mailer.send_due()
    with db.transaction() as conn:
        events.record(
            conn, settings,
            events.job_failed(7, faxno="3035551212", file="quote.pdf", reason="busy 5 times"),
            now=clock(),
        )  # fmt: skip
    assert mailer.send_due() == 1
    assert parsed(smtp_server)[1]["Subject"] == "[faxd on faxbox] job 7 was not sent"
    assert "faxd retry --job 7" in body(parsed(smtp_server)[1])


def test_a_mail_that_cannot_be_sent_is_retried_from_the_database_unchanged(
    db: Database, smtp_server: Any, settings: NotifySettings, clock: Clock
) -> None:
    """SMTP down: nothing lost, the mail waits with its error; once back it goes out once."""
    mailer = mailer_for(db, smtp_server, settings, clock)
    fail_fax(db, settings, clock, 1)
    smtp_server.stop()
    assert mailer.send_due() == 0
    with db.session() as session:
        pending = session.scalars(select(AdminNotification)).one()
        assert pending.sent_at is None and pending.attempts == 1
        assert pending.last_error is not None and "connection refused" in pending.last_error
        message_id = pending.message_id

    smtp_server.start()
    fail_fax(db, settings, clock, 2)  # arrives meanwhile: next mail, not this one
    assert mailer.send_due() == 0  # backoff not over yet
    clock.advance(RETRY_FIRST_SECONDS)
    assert mailer.send_due() == 1
    (mail,) = parsed(smtp_server)
    assert mail["Message-ID"] == message_id
    assert "fax 2" not in body(mail)

    clock.advance(3600)
    assert mailer.send_due() == 1
    assert "fax 2 from" in body(parsed(smtp_server)[1])


def test_a_lasting_condition_mails_once_and_its_recovery_once(
    db: Database, smtp_server: Any, settings: NotifySettings, clock: Clock
) -> None:
    """auth_failed raised at every poll is one mail; clearing it is one `recovered` mail."""
    refused = events.Event(
        kind="auth_failed", subject="faxage", summary="FAXAGE refused the login (ERR02)",
        command="faxd check-config",
    )  # fmt: skip
    for _ in range(5):
        with db.transaction() as conn:
            events.raise_condition(conn, settings, "auth_failed:faxage", refused, now=clock())
    mailer = mailer_for(db, smtp_server, settings, clock)
    assert mailer.send_due() == 1
    clock.advance(120)
    for _ in range(3):
        with db.transaction() as conn:
            events.clear_condition(conn, settings, "auth_failed:faxage", now=clock())
    assert mailer.send_due() == 1

    refused_mail, recovered = parsed(smtp_server)
    assert refused_mail["Subject"] == "[faxd on faxbox] faxage refused the login"
    assert recovered["Subject"] == "[faxd on faxbox] faxage has recovered"
    assert "recovered: FAXAGE refused the login (ERR02)" in body(recovered)


def test_kinds_left_out_of_events_and_no_notify_section_record_nothing(
    db: Database, settings: NotifySettings, clock: Clock
) -> None:
    """events = ["job_failed"] skips fax_failed; without [notify] nothing is written at all."""
    only_jobs = replace(settings, events=frozenset({"job_failed"}))
    fail_fax(db, only_jobs, clock, 1)
    with db.transaction() as conn:
        held = events.fax_held("faxage", "2", dnis="", cid="", spool_path=None)
        assert not events.record(conn, None, held, now=clock())
    with db.session() as session:
        assert list(session.scalars(select(AdminEvent))) == []


def test_send_test_goes_out_now_and_fails_clearly(
    smtp_server: Any, settings: NotifySettings
) -> None:
    """faxd notify --test's mail arrives; with the server down the error says so."""
    smtp = SmtpSettings(host=smtp_server.host, port=smtp_server.port, from_addr="faxd@example.com")
    answer = send_test(settings, SmtpSender(smtp), hostname="faxbox")
    assert answer.startswith("250")
    assert parsed(smtp_server)[0]["Subject"] == "[faxd on faxbox] test notification"
    smtp_server.stop()
    with pytest.raises(DeliveryError, match="connection refused"):
        send_test(settings, SmtpSender(smtp), hostname="faxbox")
