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
