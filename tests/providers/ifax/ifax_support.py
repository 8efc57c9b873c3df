"""Shared by the iFax tests: the token they use and a clock moved by hand."""

from __future__ import annotations

from datetime import datetime, timedelta

IFAX_TOKEN = "ifax-T0ken-9f8e7d6c5b4a"


class StepClock:
    """A clock tests move by hand (aware UTC)."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)
