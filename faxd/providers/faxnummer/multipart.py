"""A SendFax ``multipart/form-data`` body that streams the PDF from disk.

faxnummer.de takes the fax as a file upload (``sFax``, like ``curl -F
sFax=@file``).  ``requests`` builds a multipart body in memory, file and all;
:class:`MultipartBody` instead knows its exact length up front (so the POST
carries a plain ``Content-Length``) and reads the file in pieces as it goes
out.

The bytes sent are the bytes checked: the file is opened once with
``O_NOFOLLOW``, must be a regular file, and is hashed from that descriptor
before anything is sent; a size or sha256 other than the one faxd recorded
raises :class:`~faxd.errors.FileChangedError`.  While it streams, the file is
hashed again and the last piece is held back until the digest matches, so a
file changed mid-POST is cut off and faxnummer.de never gets a whole body.
A body is made per POST, so every retry is checked again.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import stat
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType

from faxd.durable import hash_fd, open_nofollow
from faxd.errors import FileChangedError

__all__ = ["MultipartBody"]

_PIECE = 256 * 1024


def _quote(value: str) -> str:
    """A header parameter value: printable ASCII without quotes or backslashes."""
    return "".join(ch if " " <= ch <= "~" and ch not in '"\\' else "_" for ch in value)


class MultipartBody:
    """``fields`` then one file part ``file_field`` holding ``path``; use as a context manager.

    ``size`` and ``sha256`` are what the file must hold.  ``len()`` is the exact
    number of bytes iteration yields; :attr:`content_type` carries the boundary.
    """

    def __init__(
        self,
        fields: Sequence[tuple[str, str]],
        *,
        file_field: str,
        path: Path,
        filename: str,
        mime_type: str,
        size: int,
        sha256: str,
    ) -> None:
        self.boundary = "faxd-" + secrets.token_hex(16)
        self.content_type = f"multipart/form-data; boundary={self.boundary}"
        self._name = path.name
        self._size = size
        self._sha256 = sha256
        self._fd: int | None = None
        head = bytearray()
        for name, value in fields:
            head += self._part_header(f'name="{_quote(name)}"').encode("ascii")
            head += value.encode("utf-8") + b"\r\n"
        head += self._part_header(
            f'name="{_quote(file_field)}"; filename="{_quote(filename)}"',
            f"Content-Type: {mime_type}",
        ).encode("ascii")
        self._head = bytes(head)
        self._tail = f"\r\n--{self.boundary}--\r\n".encode("ascii")
        self._open(path)

    def _part_header(self, disposition: str, *more: str) -> str:
        lines = [f"--{self.boundary}", f"Content-Disposition: form-data; {disposition}", *more]
        return "\r\n".join(lines) + "\r\n\r\n"

    def _open(self, path: Path) -> None:
        try:
            fd, st = open_nofollow(path)
        except OSError as exc:
            raise FileChangedError(
                f"{self._name!r} cannot be opened any more ({exc.strerror or exc}); "
                "nothing was sent: drop the document again"
            ) from None
        self._fd = fd
        try:
            if not stat.S_ISREG(st.st_mode):
                raise FileChangedError(
                    f"{self._name!r} is no longer a regular file; nothing was sent: "
                    "drop the document again"
                )
            size, sha256 = hash_fd(fd)
            if size != self._size:
                problem = f"is {size} bytes, not the {self._size} faxd took"
            elif sha256 != self._sha256:
                problem = "no longer has the sha256 faxd recorded when it took it"
            else:
                return
            raise FileChangedError(
                f"{self._name!r} {problem}; it changed after faxd took it, so nothing was "
                "sent: drop it again"
            )
        except BaseException:
            self.close()
            raise

    def __len__(self) -> int:
        return len(self._head) + self._size + len(self._tail)

    def __iter__(self) -> Iterator[bytes]:
        yield self._head
        yield from self._file()
        yield self._tail

    def _file(self) -> Iterator[bytes]:
        """The file's bytes; the last piece only once they proved the same as checked."""
        if self._fd is None:
            raise FileChangedError(f"{self._name!r} was closed before it was sent")
        digest = hashlib.sha256()
        offset = 0
        held = os.pread(self._fd, _PIECE, offset)
        while held:
            digest.update(held)
            offset += len(held)
            following = os.pread(self._fd, _PIECE, offset)
            if not following and (offset, digest.hexdigest()) != (self._size, self._sha256):
                raise FileChangedError(
                    f"{self._name!r} changed while it was being sent; it was cut off before "
                    "the end, so faxnummer.de did not get it: drop the document again"
                )
            yield held
            held = following
        if offset != self._size:
            raise FileChangedError(
                f"{self._name!r} shrank while it was being sent; it was cut off, so "
                "faxnummer.de did not get it whole: drop the document again"
            )

    def close(self) -> None:
        """Close the file (idempotent)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> MultipartBody:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
