"""The outbound half as one object the daemon starts, schedules and stops.

``Outbound`` wires the pieces together: the watcher feeds paths and their
event types into a queue; one worker thread of ours drains it, in order, into
the :class:`FileStabilityTracker` (with inotify, writes and close-for-write
events; with polling, only "something happened"),
hands settled files to :class:`Intake`, asks for a full rescan every
``rescan_interval`` and restarts a dead observer.  The daemon's scheduler
calls :meth:`submit_pending` and :meth:`follow_up`; ``--once`` calls
:meth:`run_once`.

Several instances (DESIGN "Several instances") may run this service on one
PostgreSQL database and one hot folder on a network share, in polling mode:
each file is claimed by an atomic rename before it is taken
(:mod:`faxd.outbound.claimfolder`), each job is claimed in the database before
it is posted (:mod:`faxd.outbound.submitter`), and one instance at a time
follows the statuses (:mod:`faxd.outbound.follow`).  The outbound spool
(``[outbound] spool_dir``) must then be on the share too, on the same file
system as the hot folder: a job queued by an instance that dies is sent by
another, which needs its spool file (``faxd check-config`` warns otherwise).
At every rescan files claimed by dead instances are adopted and sent.
"""

from __future__ import annotations

import os
import queue
import stat
import threading
import time
from collections.abc import Callable
from datetime import tzinfo
from pathlib import Path

import structlog

from faxd.clock import Clock, system_clock
from faxd.config import NotifySettings, OutboundSettings
from faxd.filemodes import make_dirs
from faxd.outbound.accepted import Acceptance
from faxd.outbound.commands import cancel_job, list_jobs, queue_files, retry_job
from faxd.outbound.follow import FollowUp
from faxd.outbound.intake import Intake
from faxd.outbound.naming import is_ignored_path
from faxd.outbound.submitter import Submitter
from faxd.outbound.tracker import FileStabilityTracker
from faxd.outbound.watcher import RESCAN, HotFolderWatcher, Seen
from faxd.providers.base import OutboundProvider
from faxd.store.claims import Claims
from faxd.store.db import Database

__all__ = ["Outbound", "cancel_job", "list_jobs", "queue_files", "retry_job"]

log = structlog.get_logger(__name__)

#: How long an idle worker blocks waiting for an event before it checks the observer.
IDLE_WAIT_SECONDS = 2.0
#: How often the worker looks for instances that died with files in their claim folders.
ADOPT_SECONDS = 5.0
#: Put on the queue to wake the worker (at stop); carries no path.
_WAKE: Seen = (Path("\0wake"), "wake")


class Outbound:
    """Hot folder -> jobs -> the provider's send -> its status -> sent/failed."""

    def __init__(
        self,
        config: OutboundSettings,
        db: Database,
        provider: OutboundProvider,
        *,
        clock: Clock = system_clock,
        tick_seconds: float = 0.2,
        sendtime_zone: tzinfo | None = None,
        notify: NotifySettings | None = None,
        url_notify: str | None = None,
        accepts: Acceptance | None = None,
        claims: Claims | None = None,
    ) -> None:
        self.config = config
        self.db = db
        self.clock = clock
        #: This instance's claims (one faxd alone on its database when not given).
        self.claims = claims or Claims.solo(db, clock=clock)
        self.tick_seconds = tick_seconds
        self.hot_folder = Path(config.hot_folder)
        # What the outbox takes: the provider's own types and what faxd converts to PDF.
        accepts = accepts or Acceptance(provider.name, provider.capabilities.send_types)
        self.intake = Intake(config, db, clock=clock, accepts=accepts, claims=self.claims)
        self.provider = provider
        self.submitter = Submitter(
            config, db, provider, clock=clock, intake=self.intake, sendtime_zone=sendtime_zone,
            notify=notify,
            url_notify=url_notify,
        )  # fmt: skip
        self.follow = FollowUp(
            config, db, provider, clock=clock, notify=notify, sendtime_zone=sendtime_zone,
            submitter=self.submitter,
        )  # fmt: skip
        self.tracker = FileStabilityTracker(config.settle_seconds, clock=clock)
        self._paths: queue.Queue[Seen] = queue.Queue()
        # Only inotify reports close-for-write; a polling observer never does.
        self._close_events = not config.poll_seconds
        self._excluded = tuple(
            Path(p) for p in (config.sent_folder, config.failed_folder, config.spool_dir)
        )
        self.watcher = HotFolderWatcher(
            self.hot_folder, self._paths, poll_seconds=config.poll_seconds, exclude=self._excluded
        )
        self._stop = threading.Event()
        self._worker: threading.Thread | None = None
        # Submit and follow-up passes of this object never overlap. (The daemon also
        # serialises them across a reload, which swaps in a new Outbound.)
        self._pass_lock = threading.Lock()
        #: Called (from the worker thread) after a file became a job, so the owner
        #: can run a submit pass now instead of at its next interval.
        self.on_queued: Callable[[], None] | None = None

    # -- life cycle ------------------------------------------------------------------

    def start(self) -> None:
        """Finish interrupted moves, start watching, and scan what is already there."""
        make_dirs(self.intake.spool_dir)  # faxd's own state: 0700 whatever the umask
        for folder in (self.hot_folder, *self._excluded):
            folder.mkdir(parents=True, exist_ok=True)
        # Before the scan, so a half-moved file is not taken twice (the worker's first
        # rescan then takes what is left in the claim folder).
        self.intake.adopt_dead()
        self.intake.reconcile()
        self._stop.clear()
        self.watcher.start()  # before the scan, so a file dropped meanwhile is seen
        self._paths.put(RESCAN)
        self._worker = threading.Thread(target=self._work, name="faxd-outbox", daemon=True)
        self._worker.start()

    def stop(self) -> None:
        """Stop the watcher and the worker (the file in hand is finished first)."""
        self._stop.set()
        self._paths.put(_WAKE)  # an idle worker may be blocked on the queue
        self.watcher.stop()
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.join(timeout=30)
        self.intake.release()

    def is_healthy(self) -> bool:
        """Whether the observer and our worker thread are both alive."""
        worker = self._worker
        return worker is not None and worker.is_alive() and self.watcher.is_alive()

    def rescan(self) -> None:
        """Ask the worker to scan the whole hot folder (also done every rescan_interval)."""
        self._paths.put(RESCAN)

    # -- passes the daemon schedules -------------------------------------------------

    def submit_pending(self) -> int:
        """Reconcile jobs left ``submitting``, then post the queued ones."""
        with self._pass_lock:
            self.submitter.reconcile()
            return self.submitter.submit_pending()

    def follow_up(self) -> int:
        """One status call for every submitted job; file the finished ones."""
        with self._pass_lock:
            # Sent, failed or cancelled (maybe by `faxd cancel`) jobs need no source any more.
            self.intake.release_finished()
            return self.follow.follow_up()

    def run_once(self, *, sleep: Callable[[float], None] = time.sleep) -> None:
        """One pass of everything without threads (``faxd run --once``).

        Scans the hot folder, waits ``settle_seconds``, takes the files that did
        not change meanwhile, then submits and follows up.
        """
        self.intake.recover()
        for path in self.watcher.scan():
            self.tracker.observe(path)
        if len(self.tracker):
            sleep(self.config.settle_seconds)
        self._take_due()
        self.submit_pending()
        self.follow_up()

    # -- the worker ------------------------------------------------------------------

    def _work(self) -> None:
        last_scan = last_adopt = self.clock()
        while not self._stop.is_set():
            try:
                self._drain()
                self._take_due()
                now = self.clock()
                if (now - last_scan).total_seconds() >= self.config.rescan_interval:
                    last_scan = now
                    self._paths.put(RESCAN)
                elif (now - last_adopt).total_seconds() >= ADOPT_SECONDS:
                    # A dead instance's claimed files are sent within its lease and
                    # a few seconds, not at the next rescan (whose recovery takes them).
                    last_adopt = now
                    if self.intake.adopt_dead():
                        self._paths.put(RESCAN)
                self.watcher.restart_if_dead()
            except Exception:  # the worker must outlive any single bad file or fault
                log.exception("outbound.worker_error")
                self._stop.wait(1.0)

    def _drain(self) -> None:
        """Feed queued paths to the tracker; wait for the first.

        The wait is one tick while files are settling, else ``IDLE_WAIT_SECONDS``
        (the observer liveness check), so an idle daemon costs next to nothing.
        """
        settling = len(self.tracker) > 0
        wait = self.tick_seconds if settling else max(self.tick_seconds, IDLE_WAIT_SECONDS)
        try:
            item = self._paths.get(timeout=wait)
        except queue.Empty:
            return
        batch: list[Seen] = []  # in order (a write then a close is not a close then a write)
        while True:
            if not batch or batch[-1] != item:
                batch.append(item)
            try:
                item = self._paths.get_nowait()
            except queue.Empty:
                break
        rescan = RESCAN in batch
        for path, kind in batch:
            if (path, kind) not in (RESCAN, _WAKE):
                self._note(path, kind)
        if rescan:
            found = 0
            for path in self.watcher.scan():
                if path not in self.tracker:
                    self.tracker.observe(path)
                    found += 1
            log.debug("outbound.rescanned", new_candidates=found)
            # After the scan, which start() already prepared (adopt_dead, reconcile):
            # the claim folder is apart from what the scan sees.
            self._recover()

    def _note(self, path: Path, kind: str) -> None:
        if not path.is_relative_to(self.hot_folder) or path == self.hot_folder:
            return
        if any(path.is_relative_to(folder) for folder in self._excluded):
            return
        if is_ignored_path(path.relative_to(self.hot_folder)):
            return
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            self.tracker.forget(path)
            return
        except OSError:
            mode = stat.S_IFREG
        if stat.S_ISDIR(mode):
            for inner in self.watcher.scan(path):  # a folder moved in brings files, no events
                self.tracker.observe(inner)
        elif not self._close_events:
            self.tracker.observe(path)
        elif kind == "modified":
            self.tracker.written(path)
        elif kind == "created":
            self.tracker.created(path)
        elif kind == "closed":
            self.tracker.closed(path)
        else:
            self.tracker.observe(path)

    def _recover(self) -> None:
        """Adopt dead instances' claimed files, take what is left in ours (Intake.recover)."""
        try:
            queued = self.intake.recover()
        except Exception:  # the scan must still run
            log.exception("outbound.recovery_error")
            return
        if queued and self.on_queued is not None:
            self.on_queued()

    def _take_due(self) -> None:
        queued = False
        for path in self.tracker.due():
            try:
                queued = self.intake.take(path) is not None or queued
            except Exception:
                log.exception("outbound.intake_error", path=str(path))
        if queued and self.on_queued is not None:
            self.on_queued()
