"""Each admin event raised where it happens, and mailed through a real SMTP server.

The inbound pipeline runs against the FAXAGE simulator with a ``[notify]``
section; the mailer sends what is due to aiosmtpd on loopback, and each test
checks the mail by its content.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from email import message_from_bytes
from email.policy import default
from pathlib import Path
from typing import Any

import pytest
from inbound_helpers import SALES, ManualClock, faxage_inbound, make_config, sim_settings

from faxd.alerts.mailer import AdminMailer
from faxd.alerts.watch import check_provider
from faxd.config import CommandSpec, FolderSpec, NotifySettings, RouteSpec, SmtpSettings
from faxd.inbound.pipeline import InboundPipeline
from faxd.providers.faxage.client import FaxageClient
from faxd.smtp import SmtpSender
from faxd.store.states import FaxState

NOTIFY = NotifySettings(email=("it@example.com",), min_interval=0)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


def setup(tmp_path: Path, sim: Any, client: FaxageClient, db: Any, smtp_server: Any,
          clock: ManualClock, routes: tuple[RouteSpec, ...] | None = None,
          **inbound: Any) -> tuple[InboundPipeline, AdminMailer]:  # fmt: skip
    if routes is None:
        folder = FolderSpec(f"{tmp_path}/fax/{{recvid}}.{{ext}}")
        routes = (RouteSpec("sales", dnis=(SALES,), actions=(folder,)),)
    smtp = SmtpSettings(host=smtp_server.host, port=smtp_server.port, from_addr="faxd@example.com")
    config = replace(
        make_config(tmp_path, routes, faxage=sim_settings(sim), smtp=smtp, **inbound),
        notify=NOTIFY,
    )
    pipeline = InboundPipeline(faxage_inbound(client, config), db, config, clock=clock)
    mailer = AdminMailer(db, NOTIFY, SmtpSender(smtp), clock=clock, hostname="faxbox")
    return pipeline, mailer


def mails(smtp_server: Any) -> list[Any]:
    return [message_from_bytes(raw, policy=default) for _f, _t, raw in smtp_server.messages]


def text(mail: Any) -> str:
    return str(mail.get_body(("plain",)).get_content())


def fax_failed_mail(smtp_server: Any, fax: Any) -> tuple[str, str]:
    """The one fax_failed mail's body and its reason attachment, its subject and command checked."""
    (mail,) = mails(smtp_server)
    assert mail["Subject"] == f"[faxd on faxbox] faxage fax {fax.recvid} could not be delivered"
    body = text(mail)
    assert f"faxd retry --provider faxage {fax.recvid}" in body
    (reason,) = mail.iter_attachments()  # the reason only: attach = false
    assert reason.get_filename() == f"faxage-fax-{fax.recvid}-reason.txt"
    return body, str(reason.get_content())


def test_a_fax_that_gives_up_mails_fax_failed_with_its_reason(
    tmp_path: Path, sim: Any, client: FaxageClient, db: Any, smtp_server: Any, clock: ManualClock
) -> None:
    """A fax over max_fax_mb fails for good: the admin hears which fax, why, and how to retry."""
    pipeline, mailer = setup(tmp_path, sim, client, db, smtp_server, clock, max_fax_mb=0.001)
    fax = sim.add_fax(SALES, "(720)555-0142", data=b"%PDF-1.4\n" + b"x" * 4096)

    pipeline.poll()
    assert mailer.send_due() == 1

    body, reason = fax_failed_mail(smtp_server, fax)
    assert f"faxage fax {fax.recvid} from +17205550142 to +13035550101" in body
    assert "max_fax_mb" in body and "max_fax_mb" in reason
    assert not fax.deleted


def test_a_fax_that_fails_max_attempts_times_mails_fax_failed_naming_its_route(
    tmp_path: Path, sim: Any, client: FaxageClient, db: Any, smtp_server: Any, clock: ManualClock
) -> None:
    """A delivery that fails at every try: no mail until max_attempts, then one, route and all."""
    failing = CommandSpec(argv=("sh", "-c", "echo printer on fire >&2; exit 3"))
    routes = (RouteSpec("sales", dnis=(SALES,), actions=(failing,)),)
    pipeline, mailer = setup(tmp_path, sim, client, db, smtp_server, clock, routes=routes,
                             max_attempts=3)  # fmt: skip
    fax = sim.add_fax(SALES, "(720)555-0142")

    for attempt in range(1, 4):
        pipeline.poll()
        row = pipeline.ledger.get(fax.remote_id)
        assert row is not None and row.attempts == attempt
        if attempt < 3:
            assert row.state is not FaxState.FAILED and mailer.send_due() == 0
        clock.advance(3600)
    assert row.state is FaxState.FAILED
    assert mailer.send_due() == 1

    body, reason = fax_failed_mail(smtp_server, fax)
    assert f"faxage fax {fax.recvid} from +17205550142 to +13035550101 (route sales)" in body
    assert "printer on fire" in body and "printer on fire" in reason
    assert not fax.deleted


def test_a_fax_without_a_route_mails_fax_held(
    tmp_path: Path, sim: Any, client: FaxageClient, db: Any, smtp_server: Any, clock: ManualClock
) -> None:
    """No route and no default: fax_held names the number that needs a route."""
    pipeline, mailer = setup(tmp_path, sim, client, db, smtp_server, clock)
    fax = sim.add_fax("3035550199", "(720)555-0142")

    pipeline.poll()
    pipeline.poll()  # held stays held: still one event
    assert mailer.send_due() == 1

    (mail,) = mails(smtp_server)
    assert mail["Subject"] == f"[faxd on faxbox] faxage fax {fax.recvid} has no route"
    assert "to +13035550199 matches no route" in text(mail)
    assert f"faxd retry --provider faxage {fax.recvid}   # after fixing the routes" in text(mail)
    assert list(mail.iter_attachments()) == []  # attach = false: not the fax itself


def test_a_refused_login_mails_once_and_recovery_once(
    tmp_path: Path, sim: Any, client: FaxageClient, db: Any, smtp_server: Any, clock: ManualClock
) -> None:
    """ERR02 at three polls is one auth_failed mail; the first login that works, one recovered."""
    pipeline, mailer = setup(tmp_path, sim, client, db, smtp_server, clock)
    sim.inject("err02", operation="listfax")
    for _ in range(3):
        pipeline.poll()
        clock.advance(60)
    assert mailer.send_due() == 1
    sim.clear_faults()
    pipeline.poll()
    assert mailer.send_due() == 1
    assert mailer.send_due() == 0

    refused, recovered = mails(smtp_server)
    assert refused["X-Faxd-Event"] == "auth_failed"
    assert "refused the login" in text(refused) and "faxd check-config" in text(refused)
    assert recovered["X-Faxd-Event"] == "recovered"
    assert "has cleared" in text(recovered)


def test_a_provider_that_stops_answering_mails_provider_down_then_recovered(
    tmp_path: Path, sim: Any, client: FaxageClient, db: Any, smtp_server: Any, clock: ManualClock
) -> None:
    """No listing read whole for over three poll intervals: provider_down; a good poll clears it."""
    pipeline, mailer = setup(tmp_path, sim, client, db, smtp_server, clock)
    started = clock()
    pipeline.poll()  # a good poll
    sim.inject("http500", operation="listfax")
    for _ in range(3):
        clock.advance(60)
        pipeline.poll()
        check_provider(db, NOTIFY, "faxage", pipeline.ledger.account, poll_interval=60,
                       since=started, now=clock())  # fmt: skip
    assert mailer.send_due() == 0  # 180 s is not yet more than three intervals
    clock.advance(1)
    assert check_provider(db, NOTIFY, "faxage", pipeline.ledger.account, poll_interval=60,
                          since=started, now=clock())  # fmt: skip
    assert not check_provider(db, NOTIFY, "faxage", pipeline.ledger.account, poll_interval=60,
                              since=started, now=clock() + timedelta(hours=1))  # fmt: skip
    assert mailer.send_due() == 1
    sim.clear_faults()
    pipeline.poll()
    assert mailer.send_due() == 1

    down, recovered = mails(smtp_server)
    assert down["X-Faxd-Event"] == "provider_down"
    assert "has succeeded for 3 minutes" in text(down)
    assert recovered["X-Faxd-Event"] == "recovered"
