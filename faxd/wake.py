"""Run a scheduled pass *now* on a hint, however many hints arrive.

A provider callback says "look now" (DESIGN "HTTP listener").  Hundreds may
arrive in a second, and they may arrive while the pass they ask for is already
running, when moving APScheduler's next run to now would only be skipped
(``max_instances=1``) and the hint lost.  :class:`Waker` therefore keeps one
flag per pass: a hint sets it and moves the job's next run to now unless the
job is running or already due within :data:`COALESCE_SECONDS`; the pass, run
through :meth:`Waker.run`, clears the flag as it starts and goes round once
more if a hint came while it ran.  Passes asked for by hints start at least
:data:`COALESCE_SECONDS` apart, so a burst costs about one pass a second, and
a fax that arrived during a pass is still listed within seconds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.jobstores.base import JobLookupError

#: A pass already due within this many seconds takes the hint as it is.
COALESCE_SECONDS = 1.0
#: Most extra rounds one run makes for hints that came while it ran.
MAX_ROUNDS = 5


class Waker:
    """Hints for one scheduled job (``job_id``) of the scheduler ``scheduler()`` returns."""

    def __init__(self, job_id: str, scheduler: Callable[[], Any]) -> None:
        self.job_id = job_id
        self._scheduler = scheduler
        self._lock = threading.Lock()
        self._wanted = False
        self._running = False
        self._last_start: datetime | None = None
        #: How many hints moved the job's next run (the rest were collapsed).
        self.moved = 0

    def wake(self) -> bool:
        """Ask for the pass now; ``True`` if this hint moved the job (else it was collapsed)."""
        with self._lock:
            self._wanted = True
            if self._running:
                return False  # run() goes round again when it finishes
            scheduler = self._scheduler()
            if scheduler is None or not scheduler.running:
                return False
            window = timedelta(seconds=COALESCE_SECONDS)
            now = datetime.now(UTC)
            when = max(now, self._last_start + window) if self._last_start else now
            job = scheduler.get_job(self.job_id)
            if job is None or job.next_run_time is None:
                return False
            if job.next_run_time <= when + window:
                return False
            try:
                scheduler.modify_job(self.job_id, next_run_time=when)
            except JobLookupError:  # removed by a reload meanwhile
                return False
            self.moved += 1
            return True

    def run(self, one_pass: Callable[[], None], *, stopping: Callable[[], bool]) -> None:
        """Run ``one_pass``, again while hints arrived during it (at most :data:`MAX_ROUNDS`)."""
        try:
            for _round in range(MAX_ROUNDS):
                with self._lock:
                    self._running = True
                    self._wanted = False
                    self._last_start = datetime.now(UTC)
                started = time.monotonic()
                one_pass()
                with self._lock:
                    if not self._wanted or stopping():
                        return
                time.sleep(max(0.0, started + COALESCE_SECONDS - time.monotonic()))
        finally:
            with self._lock:
                self._running = False
                pending = self._wanted
            if pending and not stopping():  # still asked for after MAX_ROUNDS: schedule it
                self.wake()
