"""The records FAXAGE answers are parsed into.

They live apart from :mod:`faxd.providers.faxage.wire` (which parses) so that the rest of
faxd can import a record type without pulling in the parsers, and so both
modules stay small.  Every record is a frozen dataclass: an answer, once parsed,
is a fact that nothing downstream should edit.

Server timestamps are naive :class:`datetime` objects in FAXAGE's own clock, as
the documents give them (``YYYY-MM-DD HH:MM:SS``); an all-zero timestamp is
``None``.  Phone numbers are stored as :mod:`faxd.phone` normalises them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class ListfaxRecord:
    """One received fax waiting on FAXAGE (a ``listfax`` line)."""

    recvid: int
    recvdate: datetime
    starttime: datetime | None
    cid: str
    dnis: str
    filename: str | None
    pagecount: int | None


@dataclass(frozen=True)
class MalformedLine:
    """A line of an answer that could not be parsed; ``text`` is redacted and short."""

    lineno: int
    text: str
    reason: str


@dataclass(frozen=True)
class LineWarning:
    """A line that was kept, but with a value faxd could not read (now unknown)."""

    lineno: int
    text: str
    reason: str


@dataclass(frozen=True)
class NewShape:
    """Lines of an answer carried more columns than faxd reads: FAXAGE added one.

    The extra columns are ignored; the caller logs the shape once so that an
    operator learns of it without a log line per poll.
    """

    operation: str
    fields: int
    expected: int

    @property
    def message(self) -> str:
        """The one-line notice for the log."""
        return (
            f"FAXAGE added a column to {self.operation}: {self.fields} fields, "
            f"expected {self.expected}; extra ignored"
        )


@dataclass(frozen=True)
class ListfaxResult:
    """The parsed ``listfax`` answer: good records, and the lines that were not."""

    records: tuple[ListfaxRecord, ...]
    malformed: tuple[MalformedLine, ...] = ()
    shapes: tuple[NewShape, ...] = ()


@dataclass(frozen=True)
class StatusRecord:
    """The state of one sent fax job (a ``status`` line).

    ``csid``, ``login``, ``xmitpages`` and ``pagecount`` are ``None`` when the
    matching flag was not sent, or when the value could not be read (unknown).
    """

    jobid: int
    commid: str
    destname: str
    destnum: str
    shortstatus: str
    longstatus: str
    sendtime: datetime | None
    completetime: datetime | None
    xmittime: str
    csid: str | None = None
    login: str | None = None
    xmitpages: int | None = None
    pagecount: int | None = None

    @property
    def finished(self) -> bool:
        """Whether the job is over (``success`` or ``failure``)."""
        return self.shortstatus in ("success", "failure")


@dataclass(frozen=True)
class StatusResult:
    """The parsed ``status`` answer with any lines that could not be read.

    ``warnings`` names the kept records with a value that became unknown.
    """

    records: tuple[StatusRecord, ...]
    malformed: tuple[MalformedLine, ...] = ()
    shapes: tuple[NewShape, ...] = ()
    warnings: tuple[LineWarning, ...] = ()


@dataclass(frozen=True)
class ListAnswer(Generic[T]):
    """A parsed list answer (getcdr, listac, listnpanxx, number lists).

    ``malformed`` holds the lines that could not be read (an item each would
    have been), so the caller can show them beside the items that could.
    """

    items: tuple[T, ...]
    shapes: tuple[NewShape, ...] = ()
    malformed: tuple[MalformedLine, ...] = ()


@dataclass(frozen=True)
class NpaNxx:
    """A locality in which numbers can be provisioned (``listnpanxx``)."""

    npanxx: str
    rcname: str
    rcstate: str


@dataclass(frozen=True)
class CdrRecord:
    """One call detail record from ``getcdr.php``; ``nuid`` only with ``nuidshow``."""

    calldate: datetime
    direction: str
    src: str
    dst: str
    duration: int
    nuid: int | None = None


@dataclass(frozen=True)
class DownloadResult:
    """A verified file on disk: what ``getfax``, ``dlstatus`` and ``dltrans`` return.

    ``kind`` is ``"pdf"`` or ``"tiff"`` (from the magic bytes, not from any
    header); ``server_filename`` is the sanitised name from Content-Disposition,
    for display only: it is never used as a path.
    """

    path: Path
    size: int
    sha256: str
    kind: str
    server_filename: str | None
