"""Log, once, what faxnummer.de's answers turned out to look like.

Neither the answer format (JSON, XML or ``KEY=VALUE`` lines) nor the full set
of status words is documented, so :mod:`faxd.providers.faxnummer.wire` accepts
all of them and says what it saw.  The first answer of each format, per
operation, is logged with a redacted excerpt, so an operator can confirm the
format against a real account; a status word faxd does not know is logged
once.  Every status poll gives the same answer, hence "once per process":
the log learns of it without a line a minute.
"""

from __future__ import annotations

import threading

import structlog

from faxd.providers.faxnummer.wire import Answer
from faxd.redact import summarize_body

__all__ = ["Notices"]

log = structlog.get_logger(__name__)

#: Words remembered before the memory starts over (a word then warns once more).
REMEMBER = 256


class Notices:
    """Remembers which formats and status words were logged; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._formats: set[str] = set()
        self._words: set[str] = set()

    def _first(self, seen: set[str], key: str) -> bool:
        with self._lock:
            if key in seen:
                return False
            if len(seen) >= REMEMBER:
                seen.clear()
            seen.add(key)
            return True

    def format_seen(self, operation: str, answer: Answer, body: bytes) -> None:
        """Log the format of ``answer`` the first time ``operation`` answers in it."""
        if self._first(self._formats, f"{operation} {answer.format}"):
            log.info(
                "faxnummer.answer_format",
                operation=operation,
                format=answer.format,
                body=summarize_body(body, limit=300),
            )

    def unknown_words(self, operation: str, words: tuple[str, ...]) -> None:
        """Log each status word faxd does not know (read as pending), once."""
        for word in words:
            if self._first(self._words, word):
                log.warning(
                    "faxnummer.status_unknown",
                    operation=operation,
                    status=summarize_body(word, limit=40),
                    hint="faxd treats the job as pending until it reads DONE-OK or DONE-ERROR",
                )
