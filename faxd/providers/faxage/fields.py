"""Reading FAXAGE's record lines field by field. Pure helpers for :mod:`wire`.

FAXAGE records are lines of tab- or comma-separated fields.  Two separators in
a row are an empty field (a missing caller id), never one separator, and a
line may end in ``\\r``.  FAXAGE has added columns over the years, always at
the end, so a line with more columns than faxd reads is read by position and
the rest ignored (the parsers report the new shape once); a line with fewer
is malformed.  These readers raise :class:`ValueError` naming the field that is
wrong; the parsers turn that into a reported malformed line.

Numbers are bounded here, not downstream: an id must fit the database's signed
64-bit integer and a page count must be one a fax can have, so one insane line
is reported instead of stalling every poll that meets it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from faxd.providers.faxage.records import LineWarning, MalformedLine, NewShape
from faxd.redact import summarize_body

__all__ = [
    "MAX_ID",
    "MAX_PAGES",
    "Records",
    "columns",
    "int_field",
    "malformed_line",
    "numbered_lines",
    "optional_int_field",
    "quote_line",
    "tab_records",
    "timestamp_field",
]

R = TypeVar("R")

#: The largest id SQLite (a signed 64-bit INTEGER) can store; beyond it is no id.
MAX_ID = 2**63 - 1
#: More pages than any fax has: a larger count is a broken line, not a fax.
MAX_PAGES = 10_000


def numbered_lines(text: str) -> Iterator[tuple[int, str]]:
    """Numbered non-blank lines with a trailing ``\\r`` removed; tabs kept as they are."""
    for lineno, line in enumerate(text.split("\n"), start=1):
        line = line.removesuffix("\r")
        if line.strip():
            yield lineno, line


def timestamp_field(value: str, name: str) -> datetime | None:
    """A ``YYYY-MM-DD HH:MM:SS`` field; empty or all zeros (a pending job) is ``None``."""
    value = value.strip()
    if not value or value.strip("0-: ") == "":
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%d %H:%M:%S")
    except ValueError:
        raise ValueError(f"{name} {value[:40]!r} is not YYYY-MM-DD HH:MM:SS") from None


def int_field(value: str, name: str, *, maximum: int = MAX_ID) -> int:
    """A non-negative integer field (ids, counts, durations) no larger than ``maximum``."""
    value = value.strip()
    if value.startswith("-") and value[1:].isascii() and value[1:].isdigit():
        raise ValueError(f"{name} {value[:40]!r} is negative, not a sane value")
    if not (value.isascii() and value.isdigit()):
        raise ValueError(f"{name} {value[:40]!r} is not a number")
    # The length test first: int() of a huge digit string is slow (and capped by Python).
    if len(value.lstrip("0")) > len(str(maximum)) or int(value) > maximum:
        raise ValueError(f"{name} {value[:40]!r} is larger than {maximum}, not a sane value")
    return int(value)


def optional_int_field(value: str, name: str, *, maximum: int = MAX_ID) -> int | None:
    """An integer field that may be empty."""
    return int_field(value, name, maximum=maximum) if value.strip() else None


#: How much of a line a report quotes (a status line with all its columns fits).
QUOTE_LIMIT = 300


def quote_line(line: str) -> str:
    """A redacted, bounded copy of a record line with its columns shown as `` | ``.

    Tabs would otherwise print as spaces, and an empty field (the usual
    suspect) would vanish from the quote.
    """
    return summarize_body(line.replace("\t", " | "), limit=QUOTE_LIMIT)


def malformed_line(lineno: int, line: str, reason: str) -> MalformedLine:
    """Report a bad line with a redacted, truncated copy of its text."""
    return MalformedLine(lineno, quote_line(line), reason)


def columns(
    line: str, separator: str, expected: int, operation: str, shapes: dict[int, NewShape]
) -> list[str]:
    """The first ``expected`` fields of ``line``; a longer line's shape goes into ``shapes``."""
    fields = line.split(separator)
    if len(fields) > expected:
        shapes.setdefault(len(fields), NewShape(operation, len(fields), expected))
        del fields[expected:]
    return fields


@dataclass(frozen=True)
class Records(Generic[R]):
    """What :func:`tab_records` read: records, bad lines, new shapes, kept lines with doubts."""

    records: tuple[R, ...]
    malformed: tuple[MalformedLine, ...]
    shapes: tuple[NewShape, ...]
    warnings: tuple[LineWarning, ...]


def tab_records(
    text: str,
    expected: int,
    build: Callable[[list[str], list[str]], R],
    *,
    operation: str,
    minimum: int | None = None,
) -> Records[R]:
    """Build a record from each tab-separated line; collect the lines that do not fit.

    Fields are split on every tab: two tabs in a row are an empty field, never
    one separator, so a blank caller id cannot shift the columns after it.
    Columns beyond ``expected`` are dropped before ``build`` sees the line; a
    line shorter than ``minimum`` (default ``expected``) is malformed.  ``build``
    may append reasons to its second argument: the record is kept and the
    line reported once as a warning.
    """
    least = expected if minimum is None else minimum
    records: list[R] = []
    malformed: list[MalformedLine] = []
    warnings: list[LineWarning] = []
    shapes: dict[int, NewShape] = {}
    for lineno, line in numbered_lines(text):
        fields = columns(line, "\t", expected, operation, shapes)
        if len(fields) < least:
            reason = f"expected {expected} tab-separated fields, got {len(fields)}"
            malformed.append(malformed_line(lineno, line, reason))
            continue
        notes: list[str] = []
        try:
            records.append(build(fields, notes))
        except ValueError as exc:
            malformed.append(malformed_line(lineno, line, str(exc)))
            continue
        if notes:
            warnings.append(LineWarning(lineno, quote_line(line), "; ".join(notes)))
    return Records(tuple(records), tuple(malformed), tuple(shapes.values()), tuple(warnings))
