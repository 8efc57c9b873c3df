"""Decide when a dropped file is complete enough to fax.

A scanner or a copy over SMB writes a file in pieces, may close it several
times, and leaves it looking finished long before it is.  The tracker is a
plain class fed paths (from filesystem events, the start-up scan and the
periodic rescan) and a clock: a path is *due* only once its size, mtime and
inode have stayed the same, and no new event has arrived for it, for
``settle_seconds``.

Unchanged is not enough where the kernel can say more (inotify): a scanner
that keeps the file open and pauses mid-document leaves it unchanged for as
long as it likes.  So a write (:meth:`written`, or :meth:`created` for a new
empty file) marks the path *open for writing*, and only its close-for-write
(:meth:`closed`, inotify's ``IN_CLOSE_WRITE``) clears the mark; a marked path
is not due while it stays marked.  ``IN_CLOSE_WRITE`` fires when any writer
closes the file, not only the last one: with two writers the first close
clears the mark while the other may still be writing (its next write marks
the path again).  Only after ``open_write_timeout`` (an
hour) unchanged is it presumed closed: inotify drops events when its queue
overflows and while a dead observer is restarted, and a lost close must not
keep a document from ever being sent.  Polling mode (network shares)
has no close events and feeds only :meth:`observe`, so there the unchanged
rule alone applies (and the submitter re-checks the file, see
:mod:`faxd.outbound.intake`).

It does no I/O beyond ``lstat`` (injectable) and never sleeps, so its tests
run on a fake clock.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from faxd.clock import Clock, system_clock

StatFn = Callable[[Path], os.stat_result]


@dataclass
class _Candidate:
    signature: tuple[int, int, int, int]  # size, mtime_ns, inode, mode
    quiet_since: datetime  # last time the signature changed or an event arrived
    writing: bool = False  # written to, and not closed for writing since


class FileStabilityTracker:
    """Paths waiting to settle, keyed by path; ``due()`` hands out settled ones once."""

    def __init__(
        self,
        settle_seconds: float,
        *,
        clock: Clock = system_clock,
        stat_fn: StatFn = os.lstat,
        open_write_timeout: float = 3600.0,
    ) -> None:
        self.settle_seconds = settle_seconds
        self.open_write_timeout = max(open_write_timeout, settle_seconds)
        self._clock = clock
        self._stat = stat_fn
        self._candidates: dict[Path, _Candidate] = {}

    def __len__(self) -> int:
        return len(self._candidates)

    def __contains__(self, path: object) -> bool:
        return path in self._candidates

    def observe(self, path: Path) -> None:
        """Note activity on ``path``: it must now stay quiet for a full settle period."""
        self._note(path, writing=None)

    def written(self, path: Path) -> None:
        """A write to ``path`` (inotify ``IN_MODIFY``): not due before it is closed."""
        self._note(path, writing=True)

    def created(self, path: Path) -> None:
        """``path`` was created: a new empty regular file is being written; a link is not."""
        signature = self._signature(path)
        fresh = signature is not None and signature[0] == 0 and stat.S_ISREG(signature[3])
        self._note(path, writing=True if fresh else None)

    def closed(self, path: Path) -> None:
        """The last writer closed ``path`` (``IN_CLOSE_WRITE``): it may settle now."""
        self._note(path, writing=False)

    def _note(self, path: Path, *, writing: bool | None) -> None:
        signature = self._signature(path)
        if signature is None:
            self._candidates.pop(path, None)
            return
        known = self._candidates.get(path)
        if writing is None:
            writing = known.writing if known is not None else False
        self._candidates[path] = _Candidate(signature, self._clock(), writing)

    def forget(self, path: Path) -> None:
        """Stop tracking ``path`` (it was taken or moved away)."""
        self._candidates.pop(path, None)

    def due(self) -> list[Path]:
        """Paths unchanged for ``settle_seconds``, in the order they were first seen.

        Each due path is removed from the tracker, so it is handed out once;
        a path that changed since the last look starts its settle period over;
        a path still open for writing waits for its close (or, if that close
        was lost, ``open_write_timeout`` unchanged); a path that vanished is
        dropped.
        """
        now = self._clock()
        ready: list[Path] = []
        for path, candidate in list(self._candidates.items()):
            signature = self._signature(path)
            if signature is None:
                del self._candidates[path]
            elif signature != candidate.signature:
                candidate.signature = signature
                candidate.quiet_since = now
            elif (now - candidate.quiet_since).total_seconds() >= (
                self.open_write_timeout if candidate.writing else self.settle_seconds
            ):
                del self._candidates[path]
                ready.append(path)
        return ready

    def _signature(self, path: Path) -> tuple[int, int, int, int] | None:
        try:
            st = self._stat(path)
        except FileNotFoundError:
            return None
        except OSError:
            # Present but not stat-able: hand it to intake, which writes the reason.
            return (-1, -1, -1, stat.S_IFREG)
        return (st.st_size, st.st_mtime_ns, st.st_ino, st.st_mode)
