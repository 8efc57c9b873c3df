"""The few file-system primitives faxd's durability promises rest on.

The inbound spool, the folder action and the outbox all write a file, fsync
it, rename it into place and fsync the folder, and all check a file against a
recorded sha256.  They share these functions so that there is one definition
of "durable" and of "the same bytes".
"""

from __future__ import annotations

import errno
import hashlib
import os
from pathlib import Path

_CHUNK = 1 << 20


def fsync_file(path: Path) -> None:
    """Flush a file's data to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(folder: Path, *, ignore_unsupported: bool = False) -> None:
    """Make a rename, link or unlink in ``folder`` durable.

    ``ignore_unsupported`` tolerates file systems that cannot fsync a
    directory at all (some network shares answer EINVAL), where there is
    nothing better to do than carry on.
    """
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fsync_dir_fd(fd, ignore_unsupported=ignore_unsupported)
    finally:
        os.close(fd)


def fsync_dir_fd(folder_fd: int, *, ignore_unsupported: bool = False) -> None:
    """:func:`fsync_dir` for a folder already open (the folder action walks by fd)."""
    try:
        os.fsync(folder_fd)
    except OSError as exc:
        if not (
            ignore_unsupported and exc.errno in (errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP)
        ):
            raise


def file_sha256(path: Path) -> str:
    """The hex sha256 of a file, read in chunks (never whole into memory)."""
    digest = hashlib.sha256()
    with open(path, "rb") as reader:
        while chunk := reader.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def open_nofollow(path: Path, *, dir_fd: int | None = None) -> tuple[int, os.stat_result]:
    """Open ``path`` for reading without following a link or blocking on a FIFO.

    Returns the descriptor and its ``fstat``; the caller checks the type (a
    FIFO or device opens fine with ``O_NONBLOCK``) and closes it.  A symlink
    raises ``OSError`` with ``ELOOP``.
    """
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    fd = os.open(path, flags, dir_fd=dir_fd)
    try:
        return fd, os.fstat(fd)
    except BaseException:
        os.close(fd)
        raise


def hash_fd(fd: int) -> tuple[int, str]:
    """Size and hex sha256 of what ``fd`` holds, read from offset 0 in chunks."""
    digest = hashlib.sha256()
    size = 0
    while chunk := os.pread(fd, _CHUNK, size):
        digest.update(chunk)
        size += len(chunk)
    return size, digest.hexdigest()
