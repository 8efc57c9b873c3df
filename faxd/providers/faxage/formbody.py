"""A sendfax form body streamed from disk, so a big document never sits in memory.

FAXAGE takes files base64-encoded inside an ``application/x-www-form-urlencoded``
POST.  Building that body as one string held a file several times over (bytes,
base64, URL-encoded, the request), so a 50 MB scan cost almost 700 MB.
:class:`FormBody` instead reads each file in pieces whose size is a multiple of
three (base64 of the pieces joins into the base64 of the whole) and
URL-encodes them as they go out, with the length known in advance so the
request carries a plain ``Content-Length`` (not chunked encoding).

The bytes sent are the bytes checked: a file is opened once with
``O_NOFOLLOW`` and ``fstat``-checked, then read twice from that descriptor,
first to hash it and measure the encoded length, then to send.  When the
:class:`~faxd.providers.faxage.sending.FaxFile` names the size and sha256 it must have,
a mismatch on the first read raises :class:`~faxd.errors.FileChangedError`
before anything is posted; on the second read it raises before the last piece
leaves, so the server never gets a complete body.  A body is made per POST, so
every retry and resend is checked again.
"""

from __future__ import annotations

import base64
import hashlib
import os
import stat
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from urllib.parse import quote_plus

from faxd.durable import open_nofollow
from faxd.errors import FileChangedError
from faxd.providers.faxage.sending import FaxFile

__all__ = ["CONTENT_TYPE", "FILE_FIELD", "FormBody"]

CONTENT_TYPE = "application/x-www-form-urlencoded"
#: The only field whose values may stand for a file.
FILE_FIELD = "faxfiledata[]"
#: Raw bytes read per piece: a multiple of 3, so each piece's base64 has no padding.
_PIECE = 3 * 64 * 1024


@dataclass
class _Source:
    """One file of the body: where its bytes come from and what they must be."""

    file: FaxFile
    fd: int | None
    size: int
    sha256: str


def _escape(b64: bytes) -> bytes:
    """URL-encode base64 text the way ``urlencode`` does (``quote_plus``)."""
    return b64.replace(b"+", b"%2B").replace(b"/", b"%2F").replace(b"=", b"%3D")


def _encoded_length(b64: bytes) -> int:
    return len(b64) + 2 * (b64.count(b"+") + b64.count(b"/") + b64.count(b"="))


class FormBody:
    """``name=value&...`` for ``pairs``; a ``faxfiledata[]`` value in ``files`` is that file.

    Use as a context manager (it holds the files open); ``len()`` is the
    exact number of bytes iteration yields.
    """

    def __init__(self, pairs: Sequence[tuple[str, str]], files: Mapping[str, FaxFile]) -> None:
        self._parts: list[bytes | _Source] = []
        self._length = 0
        try:
            for index, (name, value) in enumerate(pairs):
                prefix = ("&" if index else "") + quote_plus(name) + "="
                file = files.get(value) if name == FILE_FIELD else None
                if file is None:
                    self._add((prefix + quote_plus(value)).encode("ascii"))
                else:
                    self._add(prefix.encode("ascii"))
                    self._add_file(file)
        except BaseException:
            self.close()
            raise

    def __len__(self) -> int:
        return self._length

    def __enter__(self) -> FormBody:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the files (idempotent)."""
        for part in self._parts:
            if isinstance(part, _Source) and part.fd is not None:
                os.close(part.fd)
                part.fd = None

    def __iter__(self) -> Iterator[bytes]:
        for part in self._parts:
            if isinstance(part, bytes):
                yield part
            else:
                yield from self._stream(part)

    # -- internals -------------------------------------------------------------------

    def _add(self, data: bytes) -> None:
        self._parts.append(data)
        self._length += len(data)

    def _add_file(self, file: FaxFile) -> None:
        fd: int | None = None
        if file.path is not None:
            fd, st = open_nofollow(file.path)
            source = _Source(file, fd, 0, "")
            self._parts.append(source)  # from here on, close() closes it
            if not stat.S_ISREG(st.st_mode):
                raise FileChangedError(
                    f"{file.name!r} is no longer a regular file; nothing was sent: "
                    "drop the document again"
                )
        else:
            source = _Source(file, None, 0, "")
            self._parts.append(source)
        digest = hashlib.sha256()
        for piece in self._pieces(source):
            digest.update(piece)
            source.size += len(piece)
            self._length += _encoded_length(base64.b64encode(piece))
        source.sha256 = digest.hexdigest()
        _check(file, source.size, source.sha256)

    @staticmethod
    def _pieces(source: _Source) -> Iterator[bytes]:
        if source.fd is None:
            data = source.file.data or b""
            for start in range(0, len(data), _PIECE):
                yield data[start : start + _PIECE]
            return
        offset = 0
        while True:
            piece = _pread_full(source.fd, offset)
            if not piece:
                return
            offset += len(piece)
            yield piece

    def _stream(self, source: _Source) -> Iterator[bytes]:
        """The file's base64, URL-encoded; the last piece only once the bytes proved the same."""
        digest = hashlib.sha256()
        size = 0
        pieces = self._pieces(source)
        held = next(pieces, b"")
        while held:
            digest.update(held)
            size += len(held)
            following = next(pieces, b"")
            if not following and (size, digest.hexdigest()) != (source.size, source.sha256):
                raise FileChangedError(
                    f"{source.file.name!r} changed while it was being sent; it was cut off "
                    "before the end, so FAXAGE did not get it: drop the document again"
                )
            yield _escape(base64.b64encode(held))
            held = following


def _pread_full(fd: int, offset: int) -> bytes:
    """Up to ``_PIECE`` bytes at ``offset``: short only at the end of the file."""
    piece = b""
    while len(piece) < _PIECE:
        more = os.pread(fd, _PIECE - len(piece), offset + len(piece))
        if not more:
            break
        piece += more
    return piece


def _check(file: FaxFile, size: int, sha256: str) -> None:
    """Raise when ``file`` names a size or sha256 its bytes do not have."""
    if file.size is not None and size != file.size:
        problem = f"is {size} bytes, not the {file.size} faxd took"
    elif file.sha256 is not None and sha256 != file.sha256:
        problem = "no longer has the sha256 faxd recorded when it took it"
    else:
        return
    raise FileChangedError(
        f"{file.name!r} {problem}; it changed while being sent, so nothing was sent: "
        "drop it again"
    )
