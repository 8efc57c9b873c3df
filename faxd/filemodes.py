"""File modes faxd sets itself, whatever the umask it was started with.

Faxes are private documents, and so are the database and the spools that
hold them.  Under systemd ``UMask=0027`` already keeps them from other users,
but ``faxd run --once`` from cron, or from a shell with umask 022, would make
them world-readable (issue 10, finding 5).  So what faxd creates gets its
mode explicitly, with ``chmod`` after creation, never from the umask alone.
"""

from __future__ import annotations

import os
from pathlib import Path

#: Mode of faxd's own state: the spool folders, the database folder.
PRIVATE_DIR = 0o700
#: Mode of faxd's own files: spooled faxes, the database and its -wal/-shm.
PRIVATE_FILE = 0o600


def missing_folders(path: Path) -> list[Path]:
    """The folders from the first missing one down to ``path``, top first."""
    missing: list[Path] = []
    current = path
    while not current.is_dir() and current != current.parent:
        missing.append(current)
        current = current.parent
    return missing[::-1]


def make_dirs(path: Path, mode: int = PRIVATE_DIR) -> None:
    """Create ``path`` and its missing parents, each made one given ``mode``.

    Folders that already exist keep theirs: an admin may have chosen it.
    """
    for folder in missing_folders(path):
        try:
            folder.mkdir(mode)
        except FileExistsError:
            if not folder.is_dir():
                raise
            continue
        os.chmod(folder, mode)


def create_private(path: Path, mode: int = PRIVATE_FILE) -> None:
    """Create ``path`` empty with ``mode`` unless something is there already.

    An existing file is left as it is (it may be another user's, read-only to
    this one); a link is never followed.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, mode)
    except FileExistsError:
        return
    try:
        os.fchmod(fd, mode)
    finally:
        os.close(fd)

