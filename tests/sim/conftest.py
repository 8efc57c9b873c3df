"""Fixtures for the simulator's own tests (helpers live in ``simapi.py``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from simapi import Api, ManualClock

from faxd.sim import FaxageSimulator


@pytest.fixture
def api(sim: FaxageSimulator) -> Iterator[Api]:
    """A caller for the shared ``sim`` fixture."""
    with requests.Session() as session:
        yield Api(sim, session)


@pytest.fixture
def clock() -> ManualClock:
    """A clock that moves only when a test advances it."""
    return ManualClock()


@pytest.fixture
def timed(clock: ManualClock) -> Iterator[tuple[FaxageSimulator, Api, ManualClock]]:
    """A simulator on a manual clock whose jobs settle after 60 clock seconds."""
    with (
        FaxageSimulator("acme", "12345", "s3cr3t-Pa55word-x9", clock=clock, job_seconds=60) as sim,
        requests.Session() as session,
    ):
        yield sim, Api(sim, session), clock
