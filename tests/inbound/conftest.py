"""Fixtures of the inbound tests; the fakes themselves live in ``inbound_helpers``.

- ``clock``: a :class:`ManualClock` (backoff elapses without sleeping).
- ``inbox``: a :class:`FakeInbox` standing in for FAXAGE in unit tests.
- ``book``: the :class:`ActionBook` of recording actions.
- ``logs``: every structlog event of the test (``structlog.testing.capture_logs``).
- ``receiver``: each provider that receives, in turn (the test runs once per
  provider), with its simulator started from :data:`faxd.sim.kits.KITS`.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from typing import Any

import pytest
import structlog
from inbound_helpers import ActionBook, FakeInbox, ManualClock, Receiver

from faxd.providers.registry import RECEIVING
from faxd.sim.kits import KITS


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def inbox() -> FakeInbox:
    return FakeInbox()


@pytest.fixture
def book() -> ActionBook:
    return ActionBook()


@pytest.fixture
def logs() -> Iterator[list[MutableMapping[str, Any]]]:
    with structlog.testing.capture_logs() as captured:
        yield captured


@pytest.fixture(params=RECEIVING)
def receiver(request: pytest.FixtureRequest) -> Iterator[Receiver]:
    kit = KITS[request.param]
    sim = kit.start(latency=0.0)
    try:
        yield Receiver(request.param, kit, sim)
    finally:
        sim.stop()
