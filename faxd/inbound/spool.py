"""The spool: where a downloaded fax waits, verified, until it is delivered.

A fax is downloaded to ``<spool_dir>/<recvid>.part``, then fsync'd and
renamed to ``<recvid>.pdf`` / ``<recvid>.tif`` and the directory fsync'd, so
after a crash the spool holds either a complete file or a ``.part`` to throw
away (DESIGN invariants 1, 2).  Names come from the recvid (an integer) only;
a file name sent by the server is never used as a path (invariant 4).

Each fax has its own files, so several faxes can be spooled at once without
sharing anything but the directory.  Faxes are private: the spool folder is made
0700 and every spool file is 0600 from before its first byte, whatever the umask.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Container
from pathlib import Path

from faxd.durable import file_sha256, fsync_dir, fsync_file
from faxd.filemodes import PRIVATE_FILE, create_private, make_dirs

#: File extension of each verified kind (``DownloadResult.kind``).
EXTENSIONS = {"pdf": "pdf", "tiff": "tif"}
PART_SUFFIX = ".part"


class Spool:
    """The spool directory of the inbound side."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def ensure(self) -> None:
        """Create the spool directory (and parents, all 0700) if it is missing."""
        make_dirs(self.root)

    def part_path(self, recvid: int) -> Path:
        """Where ``getfax`` streams fax ``recvid`` while it downloads."""
        return self.root / f"{int(recvid)}{PART_SUFFIX}"

    def new_part(self, recvid: int) -> Path:
        """:meth:`part_path`, created empty and 0600, so the download never widens it."""
        part = self.part_path(recvid)
        part.unlink(missing_ok=True)  # a crashed download's leftover, of whatever mode
        create_private(part)
        return part

    def final_path(self, recvid: int, kind: str) -> Path:
        """Where the verified file of fax ``recvid`` lives until it is delivered."""
        return self.root / f"{int(recvid)}.{extension(kind)}"

    def commit(self, part: Path, recvid: int, kind: str) -> Path:
        """Make a finished download durable under its final name and return that name.

        fsync the data, rename over any older copy, fsync the directory: once
        this returns, a power cut cannot leave a shorter file under the name.
        This is the one fsync of the directory for a download (the transport
        fsyncs only the file's data); the file's own fsync here costs next to
        nothing after the client's, and keeps this promise whoever wrote it.
        """
        if stat.S_IMODE(os.stat(part).st_mode) != PRIVATE_FILE:
            # Whoever created it, and with whatever umask.  Only when needed: a chmod
            # dirties the inode, and the fsync below would then force a journal commit
            # for every fax although new_part() already made the file 0600.
            os.chmod(part, PRIVATE_FILE)
        fsync_file(part)
        final = self.final_path(recvid, kind)
        os.replace(part, final)
        fsync_dir(self.root)
        return final

    def discard_part(self, recvid: int) -> None:
        """Remove a leftover partial download of ``recvid``, if any."""
        self.part_path(recvid).unlink(missing_ok=True)

    def remove(self, path: Path | str | None) -> None:
        """Remove a spooled file once its fax is finished (missing is fine)."""
        if path is None:
            return
        target = Path(path)
        if target.parent != self.root and target.parent.resolve() != self.root.resolve():
            # Only ever delete our own files, whatever a database row says.
            return
        target.unlink(missing_ok=True)

    def stale_files(self, keep: Container[int]) -> list[Path]:
        """Spool files whose recvid is not in ``keep`` (partials and finished faxes)."""
        if not self.root.is_dir():
            return []
        stale: list[Path] = []
        for entry in sorted(self.root.iterdir()):
            stem, dot, _suffix = entry.name.partition(".")
            if not dot or not stem.isdigit() or not entry.is_file():
                continue
            if entry.name.endswith(PART_SUFFIX) or int(stem) not in keep:
                stale.append(entry)
        return stale


def extension(kind: str) -> str:
    """The file extension for a verified kind: ``pdf`` or ``tif``."""
    try:
        return EXTENSIONS[kind]
    except KeyError:
        raise ValueError(f"unknown fax file kind {kind!r}; expected pdf or tiff") from None


def matches(path: Path, size: int | None, sha256: str | None) -> bool:
    """Whether ``path`` still holds exactly the bytes recorded (size and sha256)."""
    if size is None or sha256 is None:
        return False
    try:
        if path.stat().st_size != size:
            return False
        return file_sha256(path) == sha256
    except OSError:
        return False
