"""Fixtures of the inbound tests; the fakes themselves live in ``inbound_helpers``.

- ``clock``: a :class:`ManualClock` (backoff elapses without sleeping).
- ``inbox``: a :class:`FakeInbox` standing in for FAXAGE in unit tests.
- ``book``: the :class:`ActionBook` of recording actions.
- ``logs``: every structlog event of the test (``structlog.testing.capture_logs``).
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from typing import Any

import pytest
import structlog
from inbound_helpers import ActionBook, FakeInbox, ManualClock


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
