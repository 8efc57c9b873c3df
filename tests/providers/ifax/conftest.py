"""Fixtures for the iFax tests: the simulator on loopback, a client with no sleeping, a clock."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from ifax_support import IFAX_TOKEN, StepClock

from faxd.providers.ifax.client import IfaxClient
from faxd.providers.ifax.sim import IfaxSimulator


@pytest.fixture
def clock() -> StepClock:
    return StepClock(datetime(2026, 3, 10, 12, 0, tzinfo=UTC))


@pytest.fixture
def ifax_sim(clock: StepClock) -> Iterator[IfaxSimulator]:
    with IfaxSimulator(IFAX_TOKEN, clock=clock, page_size=3, slow_seconds=0.2) as sim:
        yield sim


@pytest.fixture
def ifax_client(ifax_sim: IfaxSimulator) -> Iterator[IfaxClient]:
    client = IfaxClient(
        IFAX_TOKEN, base_url=ifax_sim.base_url, timeout=5, retries=2, sleep=lambda s: None
    )
    yield client
    client.close()
