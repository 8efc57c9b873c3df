"""Waker: hints run a scheduled pass now, collapse in bursts, and are not lost mid-pass."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from faxd.scheduling import DaemonThreadExecutor, new_scheduler
from faxd.wake import Waker


class Pass:
    """A scheduled pass that can be held inside its run."""

    def __init__(self, waker: Waker) -> None:
        self.waker = waker
        self.runs = 0
        self.started = threading.Event()
        self.release = threading.Event()
        self.release.set()

    def job(self) -> None:
        self.waker.run(self.once, stopping=lambda: False)

    def once(self) -> None:
        self.runs += 1
        self.started.set()
        self.release.wait(30)


def wait_for(condition: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


@pytest.fixture
def scheduled() -> Iterator[Pass]:
    scheduler = new_scheduler(DaemonThreadExecutor())
    waker = Waker("pass", lambda: scheduler)
    one = Pass(waker)
    scheduler.add_job(one.job, "interval", seconds=300, id="pass")  # not due for 5 minutes
    scheduler.start()
    yield one
    one.release.set()
    scheduler.shutdown(wait=False)


def test_a_hint_runs_the_pass_now_and_a_burst_collapses(scheduled: Pass) -> None:
    moved = [scheduled.waker.wake() for _ in range(200)]
    assert moved.count(True) == 1
    wait_for(lambda: scheduled.runs == 1)
    time.sleep(0.5)
    assert scheduled.runs == 1


def test_a_hint_during_the_pass_runs_it_once_more(scheduled: Pass) -> None:
    scheduled.release.clear()
    scheduled.waker.wake()
    assert scheduled.started.wait(30)  # held inside the first pass
    for _ in range(50):  # the new fax arrives while the listing is already read
        assert scheduled.waker.wake() is False
    scheduled.release.set()
    wait_for(lambda: scheduled.runs == 2)
    time.sleep(1.5)
    assert scheduled.runs == 2
