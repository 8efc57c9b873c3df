"""A poll skipped because a sweep held the inbound side runs once the sweep ends.

A callback asks for a poll now; if a sweep is running, the poll is skipped
(passes never overlap).  Without a second look, a fax pushed after the
sweep's listing would wait a whole ``poll_interval``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from faxd.config import load_config
from faxd.daemon import Daemon
from faxd.demo import DemoLayout, write_config


def wait_for(condition: Callable[[], bool], timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def listfax_calls(sim: Any) -> int:
    return sum(1 for request in list(sim.requests) if request.operation == "listfax")


def test_a_poll_skipped_during_a_sweep_runs_when_the_sweep_ends(
    tmp_path: Path, sim: Any
) -> None:
    """poll_interval = 300: the only way to a second listfax soon is the re-wake."""
    layout = DemoLayout(tmp_path / "site")
    config = write_config(
        layout, base_url=sim.base_url, username=sim.username, company=sim.company,
        password=sim.password, interval=300.0,
    )  # fmt: skip
    daemon = Daemon(load_config(config))
    runner = threading.Thread(target=daemon.run)
    runner.start()
    try:
        assert wait_for(lambda: listfax_calls(sim) >= 1)  # the poll at start
        assert wait_for(lambda: not daemon._inbound_busy.locked())
        with daemon._inbound_busy:  # a sweep is running
            daemon.poll_waker.wake()  # a callback asks for a poll now
            assert wait_for(daemon._poll_skipped.is_set), "the poll was not even tried"
        before = listfax_calls(sim)
        daemon._sweep_job()  # the sweep ends (and lists once itself)
        assert wait_for(lambda: listfax_calls(sim) >= before + 2, timeout=60), (
            "no poll after the sweep: a pushed fax would wait the whole poll interval"
        )
    finally:
        daemon.request_stop()
        runner.join(60)
