"""How the daemon drives APScheduler 3: its executor, its settings, its job list.

:class:`~faxd.daemon.Daemon` decides *which* passes run and how often; this
module holds the APScheduler plumbing under that decision, so the daemon reads
top to bottom: job threads that never hold up a stop
(:class:`DaemonThreadExecutor`), a scheduler where a pass never runs twice at
once and missed runs coalesce (:func:`new_scheduler`), and a job list brought
in line with the wanted passes at start and at each reload (:func:`apply_schedule`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from apscheduler.executors.base import BaseExecutor, run_job
from apscheduler.schedulers.background import BackgroundScheduler

__all__ = ["DaemonThreadExecutor", "Pass", "apply_schedule", "new_scheduler"]

#: A scheduled pass: its job id, the function to run, and its interval in seconds.
Pass = tuple[str, Callable[[], None], float]


class DaemonThreadExecutor(BaseExecutor):  # type: ignore[misc]
    """Runs each scheduled job in its own daemon thread.

    APScheduler's thread pool uses ``concurrent.futures``, whose threads the
    interpreter joins at exit, so one slow download would hold up a stop.
    Daemon threads do not; :meth:`join` gives them a bounded grace period.
    """

    def __init__(self) -> None:
        super().__init__()
        self._threads: set[threading.Thread] = set()
        self._threads_lock = threading.Lock()

    def _do_submit_job(self, job: Any, run_times: list[datetime]) -> None:
        def target() -> None:
            try:
                events = run_job(job, job._jobstore_alias, run_times, self._logger.name)
            except BaseException as exc:
                self._run_job_error(job.id, exc, exc.__traceback__)
            else:
                self._run_job_success(job.id, events)
            finally:
                with self._threads_lock:
                    self._threads.discard(threading.current_thread())

        thread = threading.Thread(target=target, name=f"faxd-{job.id}", daemon=True)
        with self._threads_lock:
            self._threads.add(thread)
        thread.start()

    def join(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for running jobs; ``True`` if all finished."""
        deadline = time.monotonic() + timeout
        with self._threads_lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(thread.is_alive() for thread in threads)


def new_scheduler(executor: DaemonThreadExecutor) -> Any:
    """A UTC ``BackgroundScheduler`` running jobs on ``executor``, one instance each, coalesced."""
    return BackgroundScheduler(
        executors={"default": executor},
        job_defaults={"max_instances": 1, "coalesce": True},
        timezone=UTC,
    )


def apply_schedule(scheduler: Any, wanted: Sequence[Pass], *, first_run: bool) -> None:
    """Add (or replace) ``scheduler``'s jobs with ``wanted``; remove any other job.

    On the first run every pass but the sweep is due at once.
    """
    now = datetime.now(UTC)
    for job in scheduler.get_jobs():
        if job.id not in {name for name, _f, _s in wanted}:
            job.remove()
    for name, func, seconds in wanted:
        first = now if first_run and name != "inbound-sweep" else None
        scheduler.add_job(
            func,
            "interval",
            seconds=seconds,
            id=name,
            name=name,
            replace_existing=True,
            misfire_grace_time=max(5, int(seconds)),
            **({"next_run_time": first} if first is not None else {}),
        )
