"""Cut a text answer that streams in into batches of whole lines. Pure, no I/O.

A ``listfax`` answer can hold a hundred thousand lines; the transport hands it
on a batch at a time (:class:`TextBatch`) so that neither the answer nor the
work done on it has to fit in memory, and a line without an end is cut at a
fixed length instead of growing without bound.  Kept apart from the HTTP code
so it can be tested on plain bytes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from faxd.providers.faxage import wire

__all__ = ["BATCH_BYTES", "BATCH_LINES", "MAX_LINE", "TextBatch", "split_batches"]

#: A batch of a line-by-line answer ends after this many lines or bytes.
BATCH_LINES = 500
BATCH_BYTES = 1024 * 1024
#: A longer line is malformed, not kept: it is skipped up to its end, never buffered.
MAX_LINE = 64 * 1024


@dataclass(frozen=True)
class TextBatch:
    """A run of whole lines of a text answer, in the order they came.

    ``first`` is the number (from 1) of the first line of ``text``.  A line
    longer than the limit is a blank line in ``text`` (so the numbering of the
    others holds) and is listed in ``too_long`` as (line number, its start).
    """

    first: int
    text: str
    too_long: tuple[tuple[int, str], ...] = ()


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def split_batches(
    chunks: Iterable[bytes],
    *,
    batch_lines: int = BATCH_LINES,
    batch_bytes: int = BATCH_BYTES,
    max_line: int = MAX_LINE,
) -> Iterator[TextBatch]:
    """Cut a body arriving in ``chunks`` into :class:`TextBatch` es of whole lines.

    A batch ends after ``batch_lines`` lines or ``batch_bytes`` bytes, except
    before a line that reads as an ``ERRnn`` answer: the parser takes an
    answer that starts so for an error, so such a line stays in the middle of
    a batch, where it is one more malformed line (up to four times the byte
    bound, which no real answer reaches).  A line longer than ``max_line``
    bytes is dropped as it streams in, never held, and reported in
    ``too_long``.  Pure: no I/O, so it can be tested on plain bytes.
    """
    lines: list[bytes] = []
    size = 0
    first = 1
    lineno = 0
    too_long: list[tuple[int, str]] = []
    partial = bytearray()
    skipped: bytes | None = None  # the start of a line that is too long

    def finish() -> TextBatch:
        return TextBatch(first, _decode(b"\n".join(lines)), tuple(too_long))

    def take(line: bytes) -> Iterator[TextBatch]:
        nonlocal lines, size, first, too_long
        full = len(lines) >= batch_lines or size >= batch_bytes
        if lines and full and (wire.error_code(line) is None or size >= 4 * batch_bytes):
            yield finish()
            lines, size, first, too_long = [], 0, lineno, []
        lines.append(line)
        size += len(line) + 1

    for chunk in chunks:
        start = 0
        while True:
            end = chunk.find(b"\n", start)
            piece = chunk[start:] if end < 0 else chunk[start:end]
            if skipped is None:
                partial += piece
                if len(partial) > max_line:
                    skipped = bytes(partial[:200])
                    partial.clear()
            if end < 0:
                break
            lineno += 1
            if skipped is not None:
                too_long.append((lineno, _decode(skipped)))
            yield from take(bytes(partial))
            partial.clear()
            skipped = None
            start = end + 1
    if partial or skipped is not None:
        lineno += 1
        if skipped is not None:
            too_long.append((lineno, _decode(skipped)))
        yield from take(bytes(partial))
    if lines:
        yield finish()
