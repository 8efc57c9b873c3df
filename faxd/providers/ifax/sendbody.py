"""A ``fax-send`` JSON body streamed from disk: the file's base64 never held whole.

iFax takes the document base64-encoded in ``faxData[0].fileData``.  The body
is the JSON before the file, the file's base64 read in pieces whose size is a
multiple of three (so the pieces' base64 joins into the whole's), and the JSON
after it; its length is known in advance, so the POST carries a plain
``Content-Length``.  The file is opened once without following links and
hashed from that descriptor before the body is made: a size or sha256 other
than the one faxd took raises :class:`~faxd.errors.FileChangedError` before
anything is posted, and a change while it streams raises before the last
piece leaves, so iFax never gets a whole body.  One body per POST, so every
retry is checked again.
"""

from __future__ import annotations

import base64
import hashlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

from faxd.durable import hash_fd, open_nofollow
from faxd.errors import FileChangedError

__all__ = ["JsonFileBody"]

_PIECE = 3 * 64 * 1024


class JsonFileBody:
    """``prefix + base64(file) + suffix``; ``len()`` is the exact length iteration yields."""

    def __init__(self, prefix: bytes, path: Path, suffix: bytes, *, size: int, sha256: str) -> None:
        self._prefix = prefix
        self._suffix = suffix
        self._name = path.name
        self._fd: int | None = None
        try:
            fd, st = open_nofollow(path)
        except OSError as exc:
            raise FileChangedError(
                f"{self._name!r} cannot be opened any more ({exc.strerror or exc}); nothing "
                "was sent: drop the document again"
            ) from None
        self._fd = fd
        try:
            if not stat.S_ISREG(st.st_mode):
                raise FileChangedError(
                    f"{self._name!r} is no longer a regular file; nothing was sent: "
                    "drop the document again"
                )
            actual = hash_fd(fd)
            if actual != (size, sha256):
                raise FileChangedError(
                    f"{self._name!r} is not the file faxd took ({actual[0]} bytes now, "
                    f"{size} then, or other bytes); nothing was sent: drop it again"
                )
        except BaseException:
            self.close()
            raise
        self._size = size
        self._sha256 = sha256

    def __len__(self) -> int:
        return len(self._prefix) + 4 * ((self._size + 2) // 3) + len(self._suffix)

    def __enter__(self) -> JsonFileBody:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the file (idempotent)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __iter__(self) -> Iterator[bytes]:
        yield self._prefix
        yield from self._file_base64()
        yield self._suffix

    def _file_base64(self) -> Iterator[bytes]:
        """The base64 of the file; the last piece only once the bytes proved the same."""
        fd = self._fd
        if fd is None:
            raise FileChangedError(f"{self._name!r} was closed before it was sent")
        digest = hashlib.sha256()
        offset = 0
        held = _pread_full(fd, offset)
        while held:
            digest.update(held)
            offset += len(held)
            following = _pread_full(fd, offset)
            if not following and (offset, digest.hexdigest()) != (self._size, self._sha256):
                raise FileChangedError(
                    f"{self._name!r} changed while it was being sent; it was cut off before "
                    "the end, so iFax did not get it: drop the document again"
                )
            yield base64.b64encode(held)
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
