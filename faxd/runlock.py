"""One `faxd run` per state directory.

The daemon's passes are serialised inside one process, but a second process —
a `faxd run --once` from cron beside the service, or a second service started
by mistake — would download, deliver and reconcile the same faxes and jobs at
the same time, and could send a fax twice.  An exclusive ``flock`` on a file in
the spool folder stops the second one with a message saying why.  The kernel
drops the lock when the process dies, even by SIGKILL, so a crash never leaves
a stale lock behind.  Operator commands (`faxd inbox`, `faxd retry`, ...) do not
take it: they are safe beside the daemon.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType

from faxd.errors import FaxdError
from faxd.filemodes import PRIVATE_FILE, make_dirs

LOCK_NAME = ".faxd-run.lock"


class AlreadyRunningError(FaxdError):
    """Another `faxd run` holds the lock for this state."""


class RunLock:
    """Context manager holding the exclusive run lock in ``directory``."""

    def __init__(self, directory: Path) -> None:
        self.path = Path(directory) / LOCK_NAME
        self._fd: int | None = None

    def __enter__(self) -> RunLock:
        make_dirs(self.path.parent)  # the spool folder: 0700, whatever the umask
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, PRIVATE_FILE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise AlreadyRunningError(
                f"another faxd run (pid {holder}) is already working on {self.path.parent}; "
                "stop it first (systemctl stop faxd), or use faxd status / inbox / jobs, "
                "which are safe beside it"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None
