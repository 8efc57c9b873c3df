"""Office hours as routes use them: ``"Mon-Fri 08:00-18:00, Sat 09:00-13:00"``.

A route can say "only during these hours" so that, say, the sales line prints in
the office by day and goes to the manager's mailbox at night.  This module turns
the spec a person writes into windows and answers one question, whether a moment
falls inside them, on the server's local wall clock.

Grammar (case-insensitive, items separated by commas)::

    item   = days [clock] | clock
    days   = DAY | DAY "-" DAY          Mon..Sun or Monday..Sunday; "Fri-Mon" wraps
    clock  = HH:MM "-" HH:MM            00:00..24:00; an end before the start runs
                                        past midnight and belongs to the start day

``Sat`` alone is the whole of Saturday; ``09:00-17:00`` alone is every day.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_FULL_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_DAY_LOOKUP = {name.lower(): i for i, name in enumerate(DAY_NAMES)} | {
    name: i for i, name in enumerate(_FULL_NAMES)
}
_MINUTES_PER_DAY = 24 * 60
_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})$")
_EXAMPLE = 'write it like "Mon-Fri 08:00-18:00, Sat 09:00-13:00"'


@dataclass(frozen=True)
class Window:
    """One weekday's span: ``start``..``end`` minutes after that day's midnight.

    ``end`` may exceed 1440 for a span that runs past midnight into the next day.
    """

    day: int  # 0 = Monday, as datetime.weekday()
    start: int
    end: int

    def contains(self, weekday: int, minute: float) -> bool:
        """Whether ``minute`` (since midnight) of ``weekday`` lies in this window."""
        if weekday == self.day and self.start <= minute < self.end:
            return True
        # The part of an overnight span that falls on the following day.
        return (
            self.end > _MINUTES_PER_DAY
            and weekday == (self.day + 1) % 7
            and minute < self.end - _MINUTES_PER_DAY
        )


@dataclass(frozen=True)
class Hours:
    """A set of weekly windows parsed from a spec; ``str()`` gives the spec back."""

    spec: str
    windows: tuple[Window, ...]

    @classmethod
    def parse(cls, spec: str) -> Hours:
        """Parse ``spec``; raise :class:`ValueError` naming the part that is wrong."""
        if not isinstance(spec, str) or not spec.strip():
            raise ValueError(f"hours must be a non-empty text; {_EXAMPLE}")
        windows: list[Window] = []
        for raw in spec.replace("\u2013", "-").split(","):
            item = raw.strip()
            if not item:
                raise ValueError(f"hours {spec!r} has an empty item between commas; {_EXAMPLE}")
            windows.extend(_parse_item(item, spec))
        return cls(spec=spec.strip(), windows=tuple(windows))

    def contains(self, dt: datetime) -> bool:
        """Whether ``dt`` falls inside these hours on the local wall clock.

        A naive ``dt`` is taken as local time already; an aware one is converted
        to the server's local zone first.
        """
        local = dt.astimezone() if dt.tzinfo is not None else dt
        minute = local.hour * 60 + local.minute + local.second / 60 + local.microsecond / 6e7
        weekday = local.weekday()
        return any(window.contains(weekday, minute) for window in self.windows)

    def __str__(self) -> str:
        return self.spec


def _parse_item(item: str, spec: str) -> list[Window]:
    parts = item.split()
    if len(parts) > 2:
        raise ValueError(
            f"hours {spec!r}: {item!r} has {len(parts)} parts; "
            f"each item is days and/or one clock range; {_EXAMPLE}"
        )
    days: list[int] = list(range(7))
    start, end = 0, _MINUTES_PER_DAY
    if len(parts) == 2:
        days = _parse_days(parts[0], spec)
        start, end = _parse_clock_range(parts[1], spec)
    elif ":" in parts[0]:
        start, end = _parse_clock_range(parts[0], spec)
    else:
        days = _parse_days(parts[0], spec)
    return [Window(day, start, end) for day in days]


def _parse_days(text: str, spec: str) -> list[int]:
    names = text.split("-")
    if len(names) > 2:
        raise ValueError(f"hours {spec!r}: {text!r} is not a day or a day range like Mon-Fri")
    numbers = [_day_number(name, spec) for name in names]
    first, last = numbers[0], numbers[-1]
    count = (last - first) % 7 + 1
    return [(first + offset) % 7 for offset in range(count)]


def _day_number(name: str, spec: str) -> int:
    number = _DAY_LOOKUP.get(name.strip().lower())
    if number is None:
        raise ValueError(f"hours {spec!r}: {name!r} is not a day; use {' '.join(DAY_NAMES)}")
    return number


def _parse_clock_range(text: str, spec: str) -> tuple[int, int]:
    ends = text.split("-")
    if len(ends) != 2:
        raise ValueError(f"hours {spec!r}: {text!r} is not a clock range like 08:00-18:00")
    start = _parse_clock(ends[0], spec)
    end = _parse_clock(ends[1], spec)
    if start == _MINUTES_PER_DAY:
        raise ValueError(f"hours {spec!r}: a range cannot start at 24:00; start at 00:00")
    if start == end:
        raise ValueError(
            f"hours {spec!r}: {text!r} is empty; for the whole day write only the days (e.g. Sat)"
        )
    if end < start:
        if end == 0:
            end = _MINUTES_PER_DAY
        else:
            end += _MINUTES_PER_DAY  # overnight: belongs to the day it starts
    return start, end


def _parse_clock(text: str, spec: str) -> int:
    match = _CLOCK.match(text.strip())
    if match is None:
        raise ValueError(f"hours {spec!r}: {text!r} is not a time; write HH:MM, e.g. 08:00")
    hour, minute = int(match.group(1)), int(match.group(2))
    if minute > 59 or hour > 24 or (hour == 24 and minute != 0):
        raise ValueError(f"hours {spec!r}: {text!r} is not a time of day (00:00 to 24:00)")
    return hour * 60 + minute
