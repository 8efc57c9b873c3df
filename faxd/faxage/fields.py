"""Reading FAXAGE's record lines field by field. Pure helpers for :mod:`wire`.

FAXAGE records are lines of tab- or comma-separated fields.  Two separators in
a row are an empty field (a missing caller id), never one separator, and a
line may end in ``\\r``.  These readers raise :class:`ValueError` naming the
field that is wrong; the parsers turn that into a reported malformed line.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import TypeVar

from faxd.faxage.records import MalformedLine
from faxd.redact import summarize_body

__all__ = [
    "int_field",
    "malformed_line",
    "numbered_lines",
    "optional_int_field",
    "tab_records",
    "timestamp_field",
]

R = TypeVar("R")


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


def int_field(value: str, name: str) -> int:
    """A non-negative integer field (ids, counts, durations)."""
    value = value.strip()
    if not value.isdigit():
        raise ValueError(f"{name} {value[:40]!r} is not a number")
    return int(value)


def optional_int_field(value: str, name: str) -> int | None:
    """An integer field that may be empty."""
    return int_field(value, name) if value.strip() else None


def malformed_line(lineno: int, line: str, reason: str) -> MalformedLine:
    """Report a bad line with a redacted, truncated copy of its text."""
    return MalformedLine(lineno, summarize_body(line, limit=120), reason)


def tab_records(
    text: str, expected: int, build: Callable[[list[str]], R]
) -> tuple[tuple[R, ...], tuple[MalformedLine, ...]]:
    """Build a record from each tab-separated line; collect the lines that do not fit.

    Fields are split on every tab: two tabs in a row are an empty field, never
    one separator, so a blank caller id cannot shift the columns after it.
    """
    records: list[R] = []
    malformed: list[MalformedLine] = []
    for lineno, line in numbered_lines(text):
        fields = line.split("\t")
        if len(fields) != expected:
            reason = f"expected {expected} tab-separated fields, got {len(fields)}"
            malformed.append(malformed_line(lineno, line, reason))
            continue
        try:
            records.append(build(fields))
        except ValueError as exc:
            malformed.append(malformed_line(lineno, line, str(exc)))
    return tuple(records), tuple(malformed)
