"""Log, once, what the FAXAGE parsers noticed but did not refuse.

The parsers in :mod:`faxd.providers.faxage.wire` are pure: a line with a new trailing
column, or a status record with a value that became unknown, comes back as
data (:class:`~faxd.providers.faxage.records.NewShape`,
:class:`~faxd.providers.faxage.records.LineWarning`).  Whoever fetched the answer logs
it through the client's :class:`Notices`.  FAXAGE gives the same answer on
every poll, so each shape and each line is logged once for the life of the
client (the process, in the daemon): an operator learns of it without a line a
minute.  A line that cannot be read at all
(:class:`~faxd.providers.faxage.records.MalformedLine`) is different: nothing is done
with it until someone acts, so it is logged again once a day (by the injected
clock) while FAXAGE keeps sending it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from datetime import datetime, timedelta

import structlog

from faxd.clock import Clock, system_clock
from faxd.providers.faxage.records import LineWarning, MalformedLine, NewShape

__all__ = ["Notices"]

log = structlog.get_logger(__name__)

#: Lines remembered before the memory starts over (a line then warns once more).
REMEMBER_LINES = 4096
#: How often a line that cannot be read is logged again while FAXAGE keeps sending it.
UNREADABLE_EVERY = timedelta(days=1)


class Notices:
    """Remembers which shapes and lines were logged, and when; thread-safe."""

    def __init__(self, *, clock: Clock = system_clock, every: timedelta = UNREADABLE_EVERY) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._every = every
        self._shapes: set[tuple[str, int, int]] = set()
        self._lines: set[tuple[str, str]] = set()
        self._unreadable: dict[tuple[str, str, str], datetime] = {}

    def report_shapes(self, shapes: Iterable[NewShape]) -> None:
        """Log each answer shape (operation + column count) not logged before."""
        for shape in shapes:
            key = (shape.operation, shape.fields, shape.expected)
            with self._lock:
                if key in self._shapes:
                    continue
                self._shapes.add(key)
            log.warning(
                "faxage.new_columns",
                operation=shape.operation,
                fields=shape.fields,
                expected=shape.expected,
                message=shape.message,
            )

    def report_warnings(self, operation: str, warnings: Iterable[LineWarning]) -> None:
        """Log each kept line with an unknown value, once per line text."""
        for warning in warnings:
            key = (operation, warning.text)
            with self._lock:
                if key in self._lines:
                    continue
                if len(self._lines) >= REMEMBER_LINES:
                    self._lines.clear()
                self._lines.add(key)
            log.warning(
                "faxage.value_unknown",
                operation=operation,
                lineno=warning.lineno,
                reason=warning.reason,
                line=warning.text,
            )

    def report_unreadable(self, operation: str, lines: Iterable[MalformedLine]) -> None:
        """Log each line that could not be read, at most once per ``every`` (a day)."""
        now = self._clock()
        for bad in lines:
            key = (operation, bad.text, bad.reason)
            with self._lock:
                last = self._unreadable.get(key)
                if last is not None and now - last < self._every:
                    continue
                if len(self._unreadable) >= REMEMBER_LINES:
                    self._unreadable.clear()
                self._unreadable[key] = now
            log.warning(
                f"faxage.{operation}_line_unreadable",
                operation=operation,
                lineno=bad.lineno,
                reason=bad.reason,
                line=bad.text,
                hint="faxd cannot act on this line; it is logged again in a day while "
                "FAXAGE keeps sending it (`faxd inbox --problems` lists it)",
            )
