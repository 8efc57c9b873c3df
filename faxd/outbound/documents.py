"""What makes a dropped file a document faxd may send: checked without being fooled.

A file in the outbox is looked at with ``lstat`` first (a symlink, a folder, a
FIFO or a device is refused without being opened: opening a FIFO would block
the worker and opening a device can have effects), then opened once with
``O_NOFOLLOW`` and checked again with ``fstat``, so what is hashed is the
regular file that was checked and not whatever a swapped-in link points at.
Every refusal is an :class:`~faxd.errors.IntakeError` whose message says what
was wrong and what the person can do; the intake turns it into a reason file.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from faxd.errors import IntakeError
from faxd.outbound import files

__all__ = [
    "Inspected",
    "MiB",
    "check_regular",
    "check_size",
    "hash_document",
    "inspect_file",
    "open_document",
]

MiB = 1024 * 1024


@dataclass(frozen=True)
class Inspected:
    """What intake learned about a file that passed the checks."""

    size: int
    sha256: str


def check_regular(path: Path, *, dir_fd: int | None = None) -> os.stat_result:
    """Refuse a symlink, a folder, a FIFO or a device (without opening it); return its lstat.

    With ``dir_fd``, ``path.name`` is looked up in that folder (see
    :func:`faxd.outbound.files.open_folder`), never by the path's folders.
    """
    name = path.name
    try:
        st = os.stat(_where(path, dir_fd), dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        raise IntakeError(
            f"{name!r} does not exist; check the name (it may have been moved or deleted)"
        ) from None
    except OSError as exc:
        raise IntakeError(
            f"{name!r} cannot be read ({exc.strerror}); check its permissions"
        ) from None
    _refuse_irregular(name, st)
    return st


def _refuse_irregular(name: str, st: os.stat_result) -> None:
    if stat.S_ISLNK(st.st_mode):
        raise IntakeError(
            f"{name!r} is a symbolic link; faxd never follows links: copy the document "
            "itself into the outbox"
        )
    if not stat.S_ISREG(st.st_mode):
        kind = "a folder" if stat.S_ISDIR(st.st_mode) else "a pipe or device"
        raise IntakeError(
            f"{name!r} cannot be read as a document: it is {kind}, not a regular file; "
            "save the document as a normal file and drop it in the outbox again"
        )


def open_document(path: Path, *, dir_fd: int | None = None) -> tuple[int, os.stat_result]:
    """Open ``path`` with ``O_NOFOLLOW`` and check with ``fstat`` that it is a regular file.

    Returns the open descriptor (the caller closes it) and its ``fstat``.
    Raises :class:`IntakeError` for a link, a pipe, a device or an unreadable
    file.  With ``dir_fd``, ``path.name`` is opened in that folder.
    """
    check_regular(path, dir_fd=dir_fd)  # never open a device: opening alone can have effects
    name = path.name
    where = _where(path, dir_fd)
    try:
        fd, st = files.open_nofollow(where, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno in (errno.EMFILE, errno.ENFILE):
            raise  # faxd's own limit, not the file's fault: never a reject
        if exc.errno == errno.ELOOP:
            _refuse_irregular(name, os.stat(where, dir_fd=dir_fd, follow_symlinks=False))
        raise IntakeError(
            f"{name!r} cannot be read ({exc.strerror}); give the faxd user read "
            "permission on it and drop it in the outbox again"
        ) from None
    try:
        _refuse_irregular(name, st)
    except IntakeError:
        os.close(fd)
        raise
    return fd, st


def _where(path: Path, dir_fd: int | None) -> Path:
    """The name to look up: the bare name inside a pinned folder, else the whole path."""
    return Path(path.name) if dir_fd is not None else path


def check_size(name: str, size: int, max_file_mb: float) -> None:
    """Refuse an empty file and one over ``[outbound] max_file_mb``."""
    if size == 0:
        raise IntakeError(
            f"{name!r} is empty (0 bytes); save the document again and drop it in the outbox"
        )
    if size > max_file_mb * MiB:
        raise IntakeError(
            f"{name!r} is {size / MiB:.1f} MB, larger than the {max_file_mb:g} MB limit "
            "([outbound] max_file_mb); send a smaller file (split it, or scan in lower "
            "resolution) or raise max_file_mb"
        )


def hash_document(name: str, fd: int, st: os.stat_result, max_file_mb: float) -> Inspected:
    """Size-check and hash an open document; :class:`IntakeError` with the reason."""
    check_size(name, st.st_size, max_file_mb)
    try:
        size, sha256 = files.hash_fd(fd)
    except OSError as exc:
        raise IntakeError(
            f"{name!r} cannot be read ({exc.strerror}); copy it again and drop it in the outbox"
        ) from None
    check_size(name, size, max_file_mb)
    return Inspected(size, sha256)


def inspect_file(path: Path, max_file_mb: float = float("inf")) -> Inspected:
    """Check that ``path`` is a non-empty readable regular file; hash it.

    Never follows a symlink and never opens a FIFO or device (opening a FIFO
    would block the worker).  Raises :class:`IntakeError` with the reason.
    """
    fd, st = open_document(path)
    try:
        return hash_document(path.name, fd, st, max_file_mb)
    finally:
        os.close(fd)
