"""A failed outbound job mails job_failed to the admins (real simulator, real SMTP)."""

from __future__ import annotations

import time
from collections.abc import Callable
from email import message_from_bytes
from email.policy import default
from pathlib import Path
from typing import Any

from faxd.alerts.mailer import AdminMailer
from faxd.config import NotifySettings, OutboundSettings, SmtpSettings
from faxd.outbound.service import Outbound, list_jobs
from faxd.providers.faxage.provider import FaxageOutbound
from faxd.smtp import SmtpSender
from faxd.store.models import OutboundJob

NOTIFY = NotifySettings(email=("it@example.com",), min_interval=0)


def fail_one_job(
    make_settings: Callable[..., OutboundSettings], drop: Path, db: Any, client: Any,
    smtp_server: Any,
) -> tuple[OutboundJob, Any]:  # fmt: skip
    """Drop a file, run the outbox until its job failed, then send the mails that are due."""
    service = Outbound(make_settings(), db, FaxageOutbound(client, make_settings()), notify=NOTIFY)
    service.start()
    try:
        drop.write_bytes(b"%PDF-1.4\nquote\n")
        deadline = time.monotonic() + 60
        while not [j for j in list_jobs(db) if j.state == "failed"]:
            assert time.monotonic() < deadline, [(j.id, j.state) for j in list_jobs(db)]
            service.submit_pending()
            service.follow_up()
            time.sleep(0.2)
    finally:
        service.stop()
    smtp = SmtpSettings(host=smtp_server.host, port=smtp_server.port, from_addr="faxd@example.com")
    assert AdminMailer(db, NOTIFY, SmtpSender(smtp), hostname="faxbox").send_due() == 1
    (job,) = list_jobs(db)
    (mail,) = [message_from_bytes(raw, policy=default) for _f, _t, raw in smtp_server.messages]
    assert mail["Subject"] == f"[faxd on faxbox] job {job.id} was not sent"
    return job, mail


def test_a_job_faxage_could_not_deliver_mails_job_failed(
    make_settings: Callable[..., OutboundSettings], folders: Any, sim: Any, db: Any,
    client: Any, smtp_server: Any,
) -> None:  # fmt: skip
    """The mail names the job, the file and the number, says why, and how to send it again."""
    sim.fail_numbers.add("3035550110")
    sim.job_seconds = 0.2
    job, mail = fail_one_job(make_settings, folders.hot / "3035550110 - Nobody.pdf", db, client,
                             smtp_server)  # fmt: skip

    body = str(mail.get_body(("plain",)).get_content())
    assert f"job {job.id}: 3035550110 - Nobody.pdf to +13035550110 was not sent" in body
    assert "FAXAGE could not deliver the fax" in body
    assert f"faxd retry --job {job.id}" in body
    (reason,) = mail.iter_attachments()
    assert reason.get_filename() == f"job-{job.id}-reason.txt"
    assert "FAXAGE could not deliver the fax" in reason.get_content()


def test_a_job_faxage_refuses_at_once_mails_job_failed(
    make_settings: Callable[..., OutboundSettings], folders: Any, sim: Any, db: Any,
    client: Any, smtp_server: Any,
) -> None:  # fmt: skip
    """sendfax answered ERR05 (blocked number): the job fails at submission and is mailed."""
    sim.blocked_numbers.add("9005551212")
    job, mail = fail_one_job(make_settings, folders.hot / "9005551212.pdf", db, client,
                             smtp_server)  # fmt: skip

    assert sim.sendfax_posts == 1  # refused at submission, never followed up
    body = str(mail.get_body(("plain",)).get_content())
    assert f"job {job.id}: 9005551212.pdf to +19005551212 was not sent" in body
    assert "FAXAGE refused the fax" in body and "ERR05" in body
    assert "faxd jobs --state failed" in body and f"faxd retry --job {job.id}" in body
    (reason,) = mail.iter_attachments()
    assert "ERR05" in reason.get_content()
