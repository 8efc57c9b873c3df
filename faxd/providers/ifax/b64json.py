"""Decode the base64 ``data`` of a JSON answer as it arrives, without holding it.

``inbound/fax-download`` answers ``{"status": 1, "message": ..., "data":
"<base64>"}``: the file is a string inside JSON, so a plain JSON parser would
hold the whole answer, its base64 and the decoded file at once.
:class:`DataScanner` walks the bytes instead: everything outside the top-level
``data`` string is kept (bounded) and parsed as JSON at the end, so the
envelope's ``status`` is read wherever it stands; the string itself goes
through an incremental base64 decoder to a sink.  It handles what PHP's
``json_encode`` and others write into such a string (``\\/`` escapes,
``\\uXXXX``, escaped line breaks) and a ``data:application/pdf;base64,`` prefix.
Pure: no I/O, the sink decides where the bytes go.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Callable

__all__ = ["CorruptData", "DataScanner"]

#: Bytes of the answer outside the data string kept for the envelope.
REST_LIMIT = 64 * 1024
#: How long a ``data:...;base64,`` prefix may be.
PREFIX_LIMIT = 200
_WHITESPACE = b" \t\r\n"
#: The end of the data string, or a backslash that does not start "\/" (at a chunk's end too).
_DATA_STOP = re.compile(rb'"|\\(?!/)')
_SIMPLE_ESCAPES = {ord("/"): b"/", ord("n"): b"", ord("r"): b"", ord("t"): b"", ord("\\"): b"\\"}


class CorruptData(ValueError):
    """The answer is not JSON with a decodable base64 ``data`` string."""


class DataScanner:
    """Feed answer bytes; decoded ``data`` goes to ``sink``; :meth:`finish` returns the rest."""

    def __init__(self, sink: Callable[[bytes], None], *, key: bytes = b"data") -> None:
        self._sink = sink
        self._key = key
        self._rest = bytearray()
        self._depth = 0
        self._in_string = False
        self._escape = False
        self._string = bytearray()  # the current string outside data (keys), bounded
        self._expect_key = False
        self._last_key: bytes | None = None
        self._after_colon = False
        self._in_data = False
        self._data_escape: bytes | None = None  # pending escape inside data: b"\\" or b"\\uXX"
        self._b64 = bytearray()
        self._prefix_done = False
        self.found = False  # whether a data string was seen
        self.done = False  # whether the top-level object was closed

    # -------------------------------------------------------------- feeding

    def feed(self, chunk: bytes) -> None:
        """Take the next bytes of the answer."""
        pos = 0
        while pos < len(chunk):
            step = self._feed_data if self._in_data else self._feed_outside
            pos = step(chunk, pos)

    def _keep(self, byte: bytes) -> None:
        if len(self._rest) >= REST_LIMIT:
            raise CorruptData(f"the answer outside its data holds more than {REST_LIMIT} bytes")
        self._rest += byte

    def _feed_outside(self, chunk: bytes, pos: int) -> int:
        char = chunk[pos : pos + 1]
        if self.done:
            if char not in _WHITESPACE:
                raise CorruptData("bytes after the end of the JSON object")
            return pos + 1
        self._keep(char)
        if self._in_string:
            if self._escape:
                self._escape = False
            elif char == b"\\":
                self._escape = True
            elif char == b'"':
                self._in_string = False
                if self._expect_key and self._depth == 1:
                    self._last_key = bytes(self._string)
                    self._expect_key = False
                return pos + 1
            if len(self._string) < 64:
                self._string += char
            return pos + 1
        if char == b'"':
            if self._after_colon and self._depth == 1 and self._last_key == self._key:
                self._in_data = True
                self.found = True
                self._after_colon = False
                return pos + 1
            self._in_string = True
            self._string.clear()
        elif char in (b"{", b"["):
            self._depth += 1
            self._expect_key = char == b"{" and self._depth == 1
        elif char in (b"}", b"]"):
            self._depth -= 1
            if self._depth < 0:
                raise CorruptData("unbalanced brackets")
            if self._depth == 0:
                self.done = True
        elif char == b",":
            self._expect_key = self._depth == 1
        if char == b":":
            self._after_colon = True
        elif char not in _WHITESPACE:
            self._after_colon = False
        return pos + 1

    def _feed_data(self, chunk: bytes, pos: int) -> int:
        if self._data_escape is not None:
            return self._continue_escape(chunk, pos)
        # Up to the closing quote or an escape other than PHP's "\/" (one per
        # 64 base64 characters): those are undone in one go, not one by one.
        stop = _DATA_STOP.search(chunk, pos)
        end = stop.start() if stop else len(chunk)
        self._add_b64(chunk[pos:end].replace(b"\\/", b"/"))
        if end == len(chunk):
            return end
        if chunk[end : end + 1] == b'"':
            self._in_data = False
            self._keep(b'"')  # closes the opening quote kept: the envelope sees ""
            return end + 1
        self._data_escape = b"\\"
        return end + 1

    def _continue_escape(self, chunk: bytes, pos: int) -> int:
        pending = (self._data_escape or b"") + chunk[pos : pos + 1]
        if len(pending) == 2:
            simple = _SIMPLE_ESCAPES.get(pending[1])
            if simple is not None:
                self._data_escape = None
                self._add_b64(simple)
            elif pending[1:] == b"u":
                self._data_escape = pending
            else:
                raise CorruptData(f"escape {pending!r} cannot be part of base64")
            return pos + 1
        self._data_escape = pending
        if len(pending) == 6:
            self._data_escape = None
            try:
                code = int(pending[2:], 16)
            except ValueError:
                raise CorruptData(f"bad escape {pending!r}") from None
            self._add_b64(b"" if chr(code).isspace() else chr(code).encode("latin-1"))
        return pos + 1

    def _add_b64(self, text: bytes) -> None:
        if not text:
            return
        self._b64 += text
        if not self._prefix_done:
            if not self._b64.startswith(b"data:"[: len(self._b64)]):
                self._prefix_done = True
            else:
                comma = self._b64.find(b",")
                if comma < 0:
                    if len(self._b64) > PREFIX_LIMIT:
                        raise CorruptData("a data: prefix without its comma")
                    return
                del self._b64[: comma + 1]
                self._prefix_done = True
        usable = len(self._b64) - len(self._b64) % 4
        if usable >= 4096 or (usable and b"=" in self._b64[:usable]):
            self._decode(usable)

    def _decode(self, usable: int) -> None:
        piece = bytes(self._b64[:usable])
        del self._b64[:usable]
        piece = piece.translate(None, _WHITESPACE)
        if not piece:
            return
        try:
            self._sink(binascii.a2b_base64(piece, strict_mode=True))
        except binascii.Error as exc:
            raise CorruptData(f"the data is not valid base64 ({exc})") from None

    # -------------------------------------------------------------- the end

    def finish(self) -> bytes:
        """The answer without its data (``"data": ""``); raises if it ended early.

        Read the envelope from it before :meth:`flush`: an error answer may put
        its words where the base64 would be.
        """
        if self._in_data or self._in_string or not self.done:
            raise CorruptData("the answer ended before its JSON did (cut off)")
        return bytes(self._rest)

    def flush(self) -> None:
        """Decode the last of the base64; raises if it does not come out even."""
        self._b64 = bytearray(self._b64.translate(None, _WHITESPACE))
        if len(self._b64) % 4:
            raise CorruptData(f"the base64 data ends with {len(self._b64) % 4} stray characters")
        self._decode(len(self._b64))
