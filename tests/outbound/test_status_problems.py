"""A status line FAXAGE sends unreadably: logged once a day, counted for `faxd inbox --problems`.

The follow-up polls ``status`` every ``status_interval``; a line that never
parses comes back every time.  It must not fill the log, and it must be kept
where an operator looks, with its text, to ask FAXAGE about it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from faxd import tables
from faxd.cli import main
from faxd.config import load_config
from faxd.demo import DemoLayout, write_config
from faxd.outbound.follow import FollowUp
from faxd.providers.faxage.client import FaxageClient, FaxFile
from faxd.providers.faxage.provider import FaxageOutbound
from faxd.store.db import Database
from faxd.store.models import OutboundJob
from faxd.store.states import JobState

GARBLED = "12x45\t9\tAcme\t3035551212\tsuccess\tSuccess"


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def test_unreadable_status_line_is_logged_once_a_day_and_recorded(
    tmp_path: Path,
    sim: Any,
    folders: Any,
    make_settings: Callable[..., Any],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Three polls within a day: one log line, one problem seen 3 times, shown by the CLI."""
    config = write_config(
        DemoLayout(tmp_path / "site"),
        base_url=sim.base_url,
        username=sim.username,
        company=sim.company,
        password=sim.password,
    )
    db = Database(load_config(config).database.url)
    db.upgrade()
    clock = FakeClock()
    client = FaxageClient(
        sim.username, sim.company, sim.password, base_url=sim.base_url, clock=clock
    )
    try:
        sim.job_seconds = 3600.0  # the job stays pending, so every pass asks about it
        jobid = client.sendfax("3035551212", "", [FaxFile.from_bytes("a.pdf", b"%PDF-1.4 a")])
        with db.session() as session:
            session.add(
                OutboundJob(
                    state=JobState.SUBMITTED.value,
                    faxno="3035551212",
                    source_name="a.pdf",
                    spool_path=str(folders.spool / "a.pdf"),
                    remote_jobid=str(jobid),
                )
            )
        sim.status_extra_lines = [GARBLED]
        settings = make_settings()
        follow = FollowUp(settings, db, FaxageOutbound(client, settings), clock=clock)
        with capture_logs() as logs:
            for _ in range(3):
                follow.follow_up()
                clock.now += timedelta(hours=7)
        said = [entry for entry in logs if entry["event"] == "faxage.status_line_unreadable"]
        assert len(said) == 1
        assert said[0]["line"] == "12x45 | 9 | Acme | 3035551212 | success | Success"

        (problem,) = tables.problem_rows(db)
        assert problem["count"] == 3
        assert problem["account"] == f"{sim.username}@{sim.company}"
        assert problem["reason"] == "status: jobid '12x45' is not a number"

        capsys.readouterr()
        assert main(["inbox", "--problems", "--config", str(config)]) == 0
        shown = capsys.readouterr().out
        assert "line:       12x45 | 9 | Acme | 3035551212 | success | Success" in shown
        assert "reason:     status: jobid '12x45' is not a number" in shown
        assert "seen:       3 times" in shown

        clock.now += timedelta(hours=4)  # a day after the first warning: once more
        with capture_logs() as later:
            follow.follow_up()
        assert [e["event"] for e in later].count("faxage.status_line_unreadable") == 1
        assert tables.problem_rows(db)[0]["count"] == 4
    finally:
        client.close()
        db.dispose()
