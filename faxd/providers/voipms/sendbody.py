"""The sendFaxMessage form body, streamed from disk with the file checked on the way.

VoIP.ms takes the document base64-encoded in the ``file`` parameter.  A
scanned fax can be tens of megabytes; a GET cannot carry it, and joining it
into one string would hold it several times over.  :class:`SendBody` is an
``application/x-www-form-urlencoded`` body whose last field is the file,
read in pieces whose size is a multiple of three (so the base64 of the pieces
joins into the base64 of the whole), with its length known in advance so
``requests`` sends a plain ``Content-Length``.

The bytes sent are the bytes checked: the file is opened once without
following links, read once to hash it and measure it, and read again while
sending.  A size or sha256 different from what faxd took raises
:class:`~faxd.errors.FileChangedError` before anything is posted, or, if the
file changes while it is sent, before the last piece leaves, so VoIP.ms never
gets a complete body.  A body is made per POST.
"""

from __future__ import annotations

import base64
import hashlib
import os
import stat
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from urllib.parse import urlencode

from faxd.durable import open_nofollow
from faxd.errors import FileChangedError

__all__ = ["CONTENT_TYPE", "SendBody"]

CONTENT_TYPE = "application/x-www-form-urlencoded"
_PIECE = 3 * 64 * 1024


def _escape(b64: bytes) -> bytes:
    """URL-encode base64 text as ``urlencode`` would."""
    return b64.replace(b"+", b"%2B").replace(b"/", b"%2F").replace(b"=", b"%3D")


class SendBody:
    """``pairs`` url-encoded, then ``&file=`` and the file at ``path`` in base64.

    A context manager (it holds the file open); ``len()`` is the exact number
    of bytes iteration yields.
    """

    def __init__(
        self, pairs: Sequence[tuple[str, str]], path: Path, *, size: int, sha256: str
    ) -> None:
        self._path = path
        self._size = size
        self._sha256 = sha256
        try:
            self._fd, info = open_nofollow(path)
        except OSError as exc:
            raise FileChangedError(
                f"{path.name}: cannot be opened any more ({exc.strerror or exc}); "
                "it was moved or replaced after faxd took it, so nothing was sent"
            ) from None
        try:
            if not stat.S_ISREG(info.st_mode):
                raise FileChangedError(
                    f"{path.name}: is no longer a regular file; nothing was sent"
                )
            head = urlencode(list(pairs)) + ("&" if pairs else "") + "file="
            self._head = head.encode("ascii")
            encoded = 0
            for piece in self._pieces():
                encoded += len(piece)
            self._length = len(self._head) + encoded
        except BaseException:
            self.close()
            raise

    def _changed(self, what: str) -> FileChangedError:
        return FileChangedError(
            f"{self._path.name}: {what} since faxd took it (expected {self._size} bytes, "
            f"sha256 {self._sha256[:12]}...); it was changed, so nothing was sent"
        )

    def _pieces(self) -> Iterator[bytes]:
        """The file's base64, url-encoded, piece by piece; the check comes before the last."""
        os.lseek(self._fd, 0, os.SEEK_SET)
        digest = hashlib.sha256()
        size = 0
        previous: bytes | None = None
        while True:
            raw = os.read(self._fd, _PIECE)
            if not raw:
                break
            digest.update(raw)
            size += len(raw)
            if size > self._size:
                raise self._changed("grew")
            if previous is not None:
                yield previous
            previous = _escape(base64.b64encode(raw))
        if size != self._size:
            raise self._changed(f"has {size} bytes")
        if digest.hexdigest() != self._sha256:
            raise self._changed("has other content")
        if previous is not None:
            yield previous

    def __len__(self) -> int:
        return self._length

    def __iter__(self) -> Iterator[bytes]:
        yield self._head
        yield from self._pieces()

    def close(self) -> None:
        """Close the file (idempotent)."""
        fd, self._fd = getattr(self, "_fd", -1), -1
        if fd >= 0:
            os.close(fd)

    def __enter__(self) -> SendBody:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
