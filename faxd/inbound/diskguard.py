"""The low-disk guard: downloads wait while the spool or a delivery folder is nearly full.

A download into a full spool, or a delivery into a full folder, can only fail;
counting such failures as attempts would burn a fax's ``max_attempts`` on a
problem the office fixes by freeing space, and could end with a fax marked
failed that nothing was wrong with.  So before each download faxd measures the
free space of the spool and of the fixed root of every folder action
(``[inbound] min_free_mb``, DESIGN "Operations"); below the limit downloads
pause, the faxes stay on FAXAGE, and they resume by themselves once space
returns.  Deliveries of faxes already spooled go on (they lead to the spool
file's removal), until a disk actually fills.

A disk that fills while faxd writes (``ENOSPC``, or a quota's ``EDQUOT``) is
the same condition, found the hard way: the partial file is removed, nothing
counts as a failed attempt, and that folder keeps downloads (and deliveries
into it) waiting until more space is free than there was when it filled, or
more files may be made there (a disk can run out of inodes with bytes to spare).

The guard only measures and remembers; what a change means (one log line, the
``disk_low`` admin condition) is the caller's ``on_change``.  The free-space
function is injected, so unit tests can drive it without filling a disk.
"""

from __future__ import annotations

import errno
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import structlog

from faxd.config import Config
from faxd.config.overlaps import fixed_root, folder_actions

log = structlog.get_logger(__name__)

#: Bytes free at a path (``statvfs`` by default; tests pass their own).
FreeBytes = Callable[[Path], int]

#: Bytes in one MB of ``[inbound] min_free_mb``.
MIB = 1024 * 1024

#: After a disk filled, this much more than was free then must be free to try again:
#: a few bytes freed by chance would only fill it again.
REFILL_MARGIN = MIB

#: Errors that mean "this disk (or this user's quota on it) is full".
_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})


def statvfs_free(path: Path) -> int:
    """Bytes an unprivileged writer may still use at ``path`` (``f_bavail * f_frsize``)."""
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def statvfs_files(path: Path) -> int:
    """Files (inodes) an unprivileged writer may still create at ``path`` (``f_favail``)."""
    return os.statvfs(path).f_favail


def nearest_existing(path: Path) -> Path:
    """``path``, or its nearest ancestor that exists (a folder faxd has not made yet)."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path(path.anchor or ".")


def watched_folders(config: Config) -> list[Path]:
    """The spool and the fixed root of every folder action of every route, once each."""
    found = [config.inbound.spool_dir]
    for _key, spec in folder_actions(config.routes):
        root = fixed_root(spec.path)[0]
        if root not in found:
            found.append(root)
    return found


def disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` was caused by a full disk, anywhere in its chain of causes.

    The transport turns the ``OSError`` of a write into a ``DownloadError``
    and a folder action into a ``DeliveryError``; the ``OSError`` stays
    attached as the cause (or the context) and its errno says it all.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in _FULL:
            return True
        current = current.__cause__ or current.__context__
    return False


def _mb(size: int) -> str:
    return f"{size / MIB:.1f}".removesuffix(".0")


@dataclass(frozen=True)
class LowDisk:
    """One watched folder with too little free space, and why that is too little."""

    folder: Path
    free: int  # bytes free now
    needed: int  # bytes that must be free to go on
    min_free_mb: float
    filled: bool = False  # the disk filled while faxd wrote to it

    @property
    def message(self) -> str:
        """One line a person can act on (free space, the limit, and what sets it)."""
        if self.filled:
            return (
                f"{self.folder} filled up while faxd wrote to it and has {_mb(self.free)} MB "
                f"free; faxd waits until more than {_mb(self.needed)} MB is free there, "
                "or files are removed"
            )
        return (
            f"{self.folder} has {_mb(self.free)} MB free, below [inbound] min_free_mb = "
            f"{self.min_free_mb:g}"
        )


def pause_reason(low: Sequence[LowDisk]) -> str:
    """What the log, ``faxd status`` and the ``disk_low`` mail say while downloads wait."""
    return (
        "downloads paused: "
        + "; ".join(d.message for d in low)
        + ". Free some space there; the faxes wait on FAXAGE and faxd resumes by itself"
    )


@dataclass(frozen=True)
class _Floor:
    """What a folder that filled needs before faxd writes there again."""

    free: int  # bytes: what was free when it filled, and a margin
    files: int | None  # files that could still be made then (``None``: unknown)

    def passed(self, free: int, files: int | None) -> bool:
        """Room again: the bytes needed, or, if it ran out of files, some files removed.

        Only a disk that had no file left to give is judged by files: on a
        disk short of bytes, files come and go all the time without helping.
        """
        if free >= self.free:
            return True
        return self.files == 0 and files is not None and files > 0


#: Told of each change of the low folders: (before, now); ``before`` is ``None`` at first.
OnChange = Callable[[tuple[LowDisk, ...] | None, tuple[LowDisk, ...]], None]


class DiskGuard:
    """Measures the watched folders and remembers the ones that filled; thread-safe."""

    def __init__(
        self,
        folders: Iterable[Path],
        min_free_mb: float,
        *,
        free_bytes: FreeBytes = statvfs_free,
        free_files: FreeBytes = statvfs_files,
        on_change: OnChange | None = None,
    ) -> None:
        self.folders = tuple(folders)
        self.min_free_mb = min_free_mb
        self.min_free = int(min_free_mb * MIB)
        self.free_bytes = free_bytes
        self.free_files = free_files
        self.on_change = on_change
        self._floors: dict[Path, _Floor] = {}  # the folders that filled

        self._low: tuple[LowDisk, ...] | None = None
        self._unmeasured: set[Path] = set()  # warned about once each
        self._lock = threading.Lock()

    @classmethod
    def for_config(
        cls,
        config: Config,
        *,
        free_bytes: FreeBytes = statvfs_free,
        free_files: FreeBytes = statvfs_files,
        on_change: OnChange | None = None,
    ) -> DiskGuard:
        """The guard of ``config``: its spool and delivery folders, its ``min_free_mb``."""
        return cls(
            watched_folders(config),
            config.inbound.min_free_mb,
            free_bytes=free_bytes,
            free_files=free_files,
            on_change=on_change,
        )

    def free(self, folder: Path) -> int:
        """Bytes free where ``folder`` is (or will be made)."""
        return self.free_bytes(nearest_existing(folder))

    def _free_or_none(self, folder: Path) -> int | None:
        """:meth:`free`, or ``None`` (warned about once) when it cannot be measured.

        A folder faxd cannot even measure (no permission on a parent, an I/O
        error) does not stop downloads: writing there fails on its own, with
        the cause named, and counts as the failure it is.
        """
        try:
            free = self.free(folder)
        except OSError as exc:
            if folder not in self._unmeasured:
                self._unmeasured.add(folder)
                log.warning(
                    "inbound.disk_unmeasured",
                    folder=str(folder),
                    error=f"{exc.strerror or exc}",
                    hint="faxd cannot tell how much space is free there, so it does not "
                    "pause for it; let the user faxd runs as reach that folder",
                )
            return None
        self._unmeasured.discard(folder)
        return free

    def _files(self, folder: Path) -> int | None:
        """Files that may still be made where ``folder`` is; ``None`` if unknown."""
        try:
            return self.free_files(nearest_existing(folder))
        except OSError:
            return None

    def measure(self) -> tuple[LowDisk, ...]:
        """The folders short of space now; forgets a filled folder that has room again."""
        low: list[LowDisk] = []
        for folder in self.folders:
            free = self._free_or_none(folder)
            if free is None:
                continue
            floor = self._floors.get(folder)
            if floor is not None and floor.passed(free, self._files(folder)):
                del self._floors[folder]
                floor = None
            needed = max(self.min_free, floor.free if floor is not None else 0)
            if free < needed:
                filled = floor is not None
                low.append(LowDisk(folder, free, needed, self.min_free_mb, filled=filled))
        return tuple(low)

    def check(self) -> tuple[LowDisk, ...]:
        """Measure; tell ``on_change`` if the low folders changed.  Empty: go ahead."""
        with self._lock:
            low = self.measure()
            before = self._low
            if before is None or [d.folder for d in before] != [d.folder for d in low]:
                self._low = low
                if self.on_change is not None:
                    self.on_change(before, low)
            return low

    def filled(self, folder: Path) -> tuple[LowDisk, ...]:
        """The disk of ``folder`` filled while faxd wrote there: wait for more space."""
        with self._lock:
            free = self._free_or_none(folder)
            self._floors[folder] = _Floor((free or 0) + REFILL_MARGIN, self._files(folder))
            if folder not in self.folders:
                self.folders += (folder,)
        return self.check()

    def waits(self, folder: Path) -> bool:
        """Whether a write into ``folder`` must wait: it filled and has no more room yet."""
        with self._lock:
            if folder not in self._floors:
                return False
        return any(d.folder == folder for d in self.check())
