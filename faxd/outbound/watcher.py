"""Notice files in the hot folder: watchdog events, a full scan, and a liveness check.

The watchdog handler does one thing — put a path and what happened to it
(``created``, ``modified``, ``closed`` = inotify's ``IN_CLOSE_WRITE``, or
``moved``) on our own queue — because an exception inside a handler silently
kills watchdog's thread.  The close events let the tracker wait for a writer
to finish instead of guessing from a pause.  Inotify can
also drop events (queue overflow), and network shares deliver none, so the
folder is also scanned at start-up and every ``rescan_interval``, and
``poll_seconds`` switches to watchdog's polling observer.  Nothing here follows
a symlink or leaves the hot folder: the scan walks with ``lstat`` semantics,
and a symlink (to a file or a folder) is reported as a path for intake to
refuse.
"""

from __future__ import annotations

import os
import queue
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import structlog
from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.polling import PollingObserver

from faxd.outbound.naming import is_ignored_name

log = structlog.get_logger(__name__)

#: What the queue carries: a path and the event type seen for it.
Seen = tuple[Path, str]
#: Sentinel put on the queue to ask the worker for a full rescan.
RESCAN: Seen = (Path("\0rescan"), "rescan")

_INTERESTING = frozenset({"created", "modified", "closed", "moved"})
# A folder's own "modified" fires for every file written in it: the file's
# event already says which one; only a folder created or moved in needs a scan.
_FOLDER_INTERESTING = frozenset({"created", "moved"})


class _EnqueueHandler(FileSystemEventHandler):
    """Puts event paths on a queue; never raises."""

    def __init__(self, paths: queue.Queue[Seen]) -> None:
        self._paths = paths

    def on_any_event(self, event: FileSystemEvent) -> None:
        try:
            wanted = _FOLDER_INTERESTING if event.is_directory else _INTERESTING
            if event.event_type not in wanted:
                return
            target = event.dest_path if event.event_type == "moved" else event.src_path
            if target:
                self._paths.put((Path(os.fsdecode(target)), event.event_type))
        except Exception:
            self._paths.put(RESCAN)


class HotFolderWatcher:
    """Owns the watchdog observer for the hot folder and knows how to scan it."""

    def __init__(
        self,
        hot_folder: Path,
        paths: queue.Queue[Seen],
        *,
        poll_seconds: float | None = None,
        exclude: Iterable[Path] = (),
    ) -> None:
        self.hot_folder = hot_folder
        self.paths = paths
        self.poll_seconds = poll_seconds
        self.exclude = frozenset(Path(p) for p in exclude)
        self._observer: Any = None

    def start(self) -> None:
        """Start a fresh observer (inotify, or polling when ``poll_seconds`` is set)."""
        self.hot_folder.mkdir(parents=True, exist_ok=True)
        if self.poll_seconds:
            observer: Any = PollingObserver(timeout=self.poll_seconds)
        else:
            observer = Observer()
        observer.schedule(_EnqueueHandler(self.paths), str(self.hot_folder), recursive=True)
        observer.daemon = True
        observer.start()
        self._observer = observer
        log.info(
            "outbound.watching",
            folder=str(self.hot_folder),
            mode="polling" if self.poll_seconds else "native",
        )

    def stop(self) -> None:
        """Stop the observer and wait for its thread."""
        observer, self._observer = self._observer, None
        if observer is not None:
            observer.stop()
            if observer.is_alive():
                observer.join(timeout=5)

    def is_alive(self) -> bool:
        """Whether the observer thread (and its emitter) is still running."""
        observer = self._observer
        if observer is None or not observer.is_alive():
            return False
        emitters = list(getattr(observer, "emitters", ()))
        return all(emitter.is_alive() for emitter in emitters)

    def restart_if_dead(self) -> bool:
        """Restart a dead observer (and ask for a rescan); True if it had died."""
        if self._observer is None or self.is_alive():
            return False
        log.error("outbound.observer_died", folder=str(self.hot_folder), action="restarting")
        self.stop()
        self.start()
        self.paths.put(RESCAN)
        return True

    def scan(self, folder: Path | None = None) -> Iterator[Path]:
        """Every candidate path under ``folder`` (default: the hot folder), no links followed.

        Regular files, symlinks and other non-folders are yielded (intake sorts
        them out); ignored names, excluded folders and ``@eaDir`` are skipped.
        """
        root = folder or self.hot_folder
        stack = [root]
        while stack:
            current = stack.pop()
            try:
                entries = list(os.scandir(current))
            except OSError as exc:
                log.warning("outbound.scan_failed", folder=str(current), error=str(exc))
                continue
            for entry in sorted(entries, key=lambda e: e.name):
                if is_ignored_name(entry.name):
                    continue
                path = Path(entry.path)
                if entry.is_dir(follow_symlinks=False):
                    if path not in self.exclude:
                        stack.append(path)
                else:
                    yield path
