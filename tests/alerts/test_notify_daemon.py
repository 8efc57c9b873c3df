"""The daemon's own notify pass: it looks for a provider that stopped answering, and a
mail that cannot go never holds up a fax.

A real :class:`~faxd.daemon.Daemon` runs against the FAXAGE simulator with
``[notify]``; mails go to aiosmtpd on loopback.  The daemon's clock is the real
time plus an offset the test moves, so "three poll intervals without a listing"
passes without the test sleeping through them.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.policy import default
from pathlib import Path
from typing import Any

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED
from sqlalchemy import select

from faxd.config import load_config
from faxd.daemon import Daemon
from faxd.demo import SALES, DemoLayout, write_config
from faxd.store.db import Database
from faxd.store.models import AdminEvent, AdminNotification, InboundFax, PollCursor

INTERVAL = 60.0


class OffsetClock:
    """Real time plus ``offset``, which the test moves forward."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:g} s")
        time.sleep(0.05)


def notify_sections(host: str, port: int) -> str:
    return (
        f'\n[smtp]\nhost = "{host}"\nport = {port}\nfrom = "faxd@example.com"\ntimeout = 5\n'
        '\n[notify]\nemail = ["it@example.com"]\nmin_interval = 0\n'
    )


def events_mailed(smtp_server: Any, kind: str) -> list[Any]:
    found = [message_from_bytes(raw, policy=default) for _f, _t, raw in smtp_server.messages]
    return [mail for mail in found if mail["X-Faxd-Event"] == kind]


def listed_at(db_path: Path) -> datetime | None:
    db = Database(f"sqlite:///{db_path}")
    try:
        with db.session() as session:
            cursor = session.scalars(select(PollCursor)).first()
            return cursor.last_listed_at if cursor is not None else None
    except Exception:
        return None  # not migrated yet
    finally:
        db.dispose()


def test_the_daemon_mails_provider_down_after_three_intervals_and_recovered(
    tmp_path: Path, sim: Any, smtp_server: Any
) -> None:
    """Listings fail: the daemon's notify pass says provider_down once; a good poll, recovered."""
    layout = DemoLayout(tmp_path / "site")
    path = write_config(
        layout, base_url=sim.base_url, username=sim.username, company=sim.company,
        password=sim.password, interval=INTERVAL,
        extra=notify_sections(smtp_server.host, smtp_server.port),
    )  # fmt: skip
    sim.inject("http500", operation="listfax")
    clock = OffsetClock()
    daemon = Daemon(load_config(path), clock=clock)
    runner = threading.Thread(target=daemon.run)
    runner.start()
    try:
        wait_for(lambda: daemon.scheduler is not None and daemon.app is not None, "started")
        passes: list[str] = []
        daemon.scheduler.add_listener(lambda e: passes.append(e.job_id),
                                      EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)  # fmt: skip

        def notify_pass() -> None:
            before = passes.count("notify")
            daemon.scheduler.modify_job("notify", next_run_time=datetime.now(UTC))
            wait_for(lambda: passes.count("notify") > before, "notify pass")

        wait_for(lambda: any(r.operation == "listfax" for r in list(sim.requests)), "first poll")

        clock.offset = timedelta(seconds=3 * INTERVAL - 30)  # not yet three intervals
        notify_pass()
        assert smtp_server.messages == []

        clock.offset = timedelta(seconds=3 * INTERVAL + 5)
        notify_pass()
        notify_pass()  # a lasting condition: one mail however often it is looked at
        (down,) = events_mailed(smtp_server, "provider_down")
        assert down["Subject"].endswith(f"faxage account {sim.username}@{sim.company} "
                                        "stopped answering")  # fmt: skip
        body = str(down.get_body(("plain",)).get_content())
        assert re.search(r"has succeeded for \d+ minutes \(last success: none since start\)", body)
        assert "faxd status" in body

        sim.clear_faults()
        daemon.scheduler.modify_job("inbound-poll", next_run_time=datetime.now(UTC))
        wait_for(lambda: listed_at(layout.root / "state" / "faxd.db") is not None, "good poll")
        notify_pass()
        assert len(events_mailed(smtp_server, "recovered")) == 1
    finally:
        daemon.request_stop()
        runner.join(60)
    assert not runner.is_alive()
    assert len(events_mailed(smtp_server, "provider_down")) == 1


def test_smtp_down_never_holds_up_a_fax(tmp_path: Path, sim: Any, smtp_server: Any) -> None:
    """`faxd run --once` with the mail server down: the fax is delivered and deleted, the
    fax_held mail waits in the database with the error, and goes out once SMTP is back."""
    layout = DemoLayout(tmp_path / "site")
    routes = (f'\n[[routes]]\nname = "sales"\ndnis = ["{SALES}"]\n'
              'actions = [{ type = "folder", path = "faxes/sales/{recvid}.{ext}" }]\n')  # fmt: skip
    path = write_config(
        layout, base_url=sim.base_url, username=sim.username, company=sim.company,
        password=sim.password, routes=routes,
        extra=notify_sections(smtp_server.host, smtp_server.port),
    )  # fmt: skip
    delivered = sim.add_fax(SALES, "(720)555-0142")
    held = sim.add_fax("3035550199", "(720)555-0142")
    smtp_server.stop()

    Daemon(load_config(path)).run_once()

    assert delivered.deleted and not held.deleted
    assert (layout.root / "faxes" / "sales" / f"{delivered.recvid}.pdf").exists()
    db = Database(f"sqlite:///{layout.root / 'state' / 'faxd.db'}")
    try:
        with db.session() as session:
            states = dict(session.execute(select(InboundFax.remote_id, InboundFax.state)).all())
            (mail,) = session.scalars(select(AdminNotification))
            event = session.scalars(select(AdminEvent)).one()
        assert states == {str(delivered.recvid): "done", str(held.recvid): "held"}
        assert event.kind == "fax_held" and event.notification_id == mail.id
        assert mail.sent_at is None and "connection refused" in (mail.last_error or "")
    finally:
        db.dispose()

    smtp_server.start()
    clock = OffsetClock()
    clock.offset = timedelta(hours=2)  # past the retry's backoff
    Daemon(load_config(path), clock=clock).run_once()
    (sent,) = events_mailed(smtp_server, "fax_held")
    assert f"faxage fax {held.recvid} from" in str(sent.get_body(("plain",)).get_content())
