"""`faxd status` shows the poll the running daemon has scheduled, not a guess."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from faxd.cli import main
from faxd.config import load_config
from faxd.daemon import Daemon
from faxd.demo import DemoLayout, write_config


def wait_for(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {timeout:g} s")
        time.sleep(0.05)


def status(capsys: pytest.CaptureFixture[str], config: Path) -> dict[str, Any]:
    """`faxd status --json`; before the daemon has migrated the database, empty values."""
    capsys.readouterr()
    if main(["status", "--config", str(config), "--json"]) != 0:
        capsys.readouterr()
        return {"inbound": {"last_poll_at": None, "next_poll_at": None}}
    report: dict[str, Any] = json.loads(capsys.readouterr().out)
    return report


def test_status_shows_the_next_poll_the_daemon_scheduled(
    tmp_path: Path, sim: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """A poll moved by the daemon (a wake-up, a reload) shows as moved in `faxd status`."""
    layout = DemoLayout(tmp_path / "site")
    config = write_config(
        layout, base_url=sim.base_url, username=sim.username, company=sim.company,
        password=sim.password, interval=300.0,
    )  # fmt: skip
    daemon = Daemon(load_config(config))
    runner = threading.Thread(target=daemon.run)
    runner.start()
    try:
        wait_for(lambda: status(capsys, config)["inbound"]["last_poll_at"] is not None)
        wait_for(lambda: status(capsys, config)["inbound"]["next_poll_at"] is not None)
        moved = (datetime.now(UTC) + timedelta(seconds=4000)).replace(microsecond=0)
        assert daemon.scheduler is not None
        daemon.scheduler.modify_job("inbound-poll", next_run_time=moved)

        def shows_moved() -> bool:
            shown = status(capsys, config)["inbound"]["next_poll_at"]
            return shown is not None and datetime.fromisoformat(shown) == moved

        wait_for(shows_moved)
        sweep = status(capsys, config)["inbound"]["next_sweep_at"]
        job = daemon.scheduler.get_job("inbound-sweep")
        assert job is not None and datetime.fromisoformat(sweep) == job.next_run_time
    finally:
        daemon.request_stop()
        runner.join(60)
    assert not runner.is_alive()
    assert main(["status", "--config", str(config)]) == 0
    assert "next poll" in capsys.readouterr().out
