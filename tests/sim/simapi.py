"""Helpers for the simulator's tests: a plain-``requests`` caller and a manual clock.

These tests speak to the simulator with ``requests`` directly (not faxd's
client), so they check the wire format itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import requests

from faxd.sim import FaxageSimulator


@dataclass
class Api:
    """POSTs to one simulator with its login filled in."""

    sim: FaxageSimulator
    session: requests.Session

    def login(self) -> list[tuple[str, str]]:
        return [
            ("username", self.sim.username),
            ("company", self.sim.company),
            ("password", self.sim.password),
        ]

    def raw(self, path: str, pairs: Sequence[tuple[str, str]], **kwargs: Any) -> requests.Response:
        return self.session.post(self.sim.base_url + path, data=list(pairs), timeout=10, **kwargs)

    def call(self, operation: str, *extra: tuple[str, str], **fields: str) -> requests.Response:
        """httpsfax.php with ``operation``; ``extra`` pairs allow repeated ``name[]`` keys."""
        pairs = [*self.login(), ("operation", operation), *fields.items(), *extra]
        return self.raw("/httpsfax.php", pairs)

    def text(self, operation: str, *extra: tuple[str, str], **fields: str) -> str:
        response = self.call(operation, *extra, **fields)
        assert response.status_code == 200
        return response.text

    def getcdr(self, **fields: str) -> str:
        return self.raw("/getcdr.php", [*self.login(), *fields.items()]).text

    def provision(self, operation: str, **fields: str) -> str:
        pairs = [*self.login(), ("operation", operation), *fields.items()]
        return self.raw("/provision.php", pairs).text


class ManualClock:
    """A clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = datetime(2024, 3, 5, 15, 30, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)
