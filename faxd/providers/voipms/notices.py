"""Log, once, what the VoIP.ms parsers noticed but did not refuse.

The wire notes mark several VoIP.ms details as seen in one source only (field
names, status words of sent faxes, ``callerid`` forms).  The parsers in
:mod:`faxd.providers.voipms.wire` accept what they can and hand back what
surprised them; this logs each surprise once for the life of the client, so an
operator learns what VoIP.ms really sends without a line a minute.  An
unreadable record is logged again once a day (by the injected clock) while
VoIP.ms keeps sending it, since nothing is done with it until someone acts.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from datetime import datetime, timedelta

import structlog

from faxd.clock import Clock, system_clock
from faxd.providers.base import Unreadable

__all__ = ["Notices"]

log = structlog.get_logger(__name__)

#: Keys remembered before the memory starts over (a notice then repeats once).
REMEMBER = 4096
UNREADABLE_EVERY = timedelta(days=1)


class Notices:
    """Remembers which notices were logged, and when; thread-safe."""

    def __init__(self, *, clock: Clock = system_clock, every: timedelta = UNREADABLE_EVERY) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._every = every
        self._seen: set[tuple[str, str, str]] = set()
        self._unreadable: dict[tuple[str, str, str], datetime] = {}

    def _first(self, key: tuple[str, str, str]) -> bool:
        with self._lock:
            if key in self._seen:
                return False
            if len(self._seen) >= REMEMBER:
                self._seen.clear()
            self._seen.add(key)
            return True

    def unknown_fields(self, operation: str, names: Iterable[str]) -> None:
        """Log each field name the documents do not mention, once."""
        for name in sorted(names):
            if self._first(("field", operation, name)):
                log.warning(
                    "voipms.unknown_field",
                    operation=operation,
                    field=name,
                    hint="faxd ignores it; tell the faxd maintainers"
                    " if it carries something useful",
                )

    def unknown_statuses(self, operation: str, words: Iterable[str]) -> None:
        """Log each sent-fax status word faxd does not know (read as pending), once."""
        for word in sorted(words):
            if self._first(("status", operation, word)):
                log.warning(
                    "voipms.unknown_fax_status",
                    operation=operation,
                    status=word,
                    hint="faxd treats the fax as still being sent until the word changes",
                )

    def unreadable(self, operation: str, records: Iterable[Unreadable]) -> None:
        """Log each record that could not be read, at most once per ``every`` (a day)."""
        now = self._clock()
        for bad in records:
            key = (operation, bad.text, bad.reason)
            with self._lock:
                last = self._unreadable.get(key)
                if last is not None and now - last < self._every:
                    continue
                if len(self._unreadable) >= REMEMBER:
                    self._unreadable.clear()
                self._unreadable[key] = now
            log.warning(
                "voipms.record_unreadable",
                operation=operation,
                index=bad.lineno,
                reason=bad.reason,
                record=bad.text,
                hint="faxd cannot act on this record; it is logged again in a day while "
                "VoIP.ms keeps sending it",
            )
