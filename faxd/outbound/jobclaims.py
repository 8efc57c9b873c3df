"""Claims on outbound jobs, one thread of this process at a time per job.

A job row is claimed in the database (:class:`faxd.store.claims.RowClaims`)
before anything is done with it, so another faxd instance leaves it alone.
Such a claim names the instance, not the thread: a second thread of the same
instance asking for a row the instance holds is told "yes", and whichever
gives it back first would end the claim under the other.  In the outbound
half that can happen: the hot-folder worker holds a job from its birth until
its file is in the spool while the scheduler's submit pass looks for queued
jobs.  So the claims are kept here as well, per process: a job one thread
holds is refused to every other (or, if it asks to, the other waits for it,
as the submitter waits for a new job's file to reach the spool), and given
back in the database only by the thread that holds it.
"""

from __future__ import annotations

import threading
from datetime import datetime

from sqlalchemy import ColumnElement

from faxd.store.claims import RowClaims


class JobClaims:
    """:class:`RowClaims` on ``outbound_jobs``, exclusive between this process's threads."""

    def __init__(self, rows: RowClaims) -> None:
        self.rows = rows
        self._busy: set[int] = set()
        self._changed = threading.Condition()

    @property
    def instance(self) -> str:
        return self.rows.instance.name

    def available(self, now: datetime) -> ColumnElement[bool]:
        """The WHERE clause of due work: jobs no live claim of another instance holds."""
        return self.rows.available(now)

    def lease_until(self, now: datetime) -> datetime:
        """Until when a claim taken ``now`` holds unless renewed."""
        return now + self.rows.instance.lease

    def take(self, job_id: int, *, wait: bool = False) -> bool:
        """Claim the job for this thread; ``False``: another thread or instance has it.

        With ``wait``, a job another thread of this process holds is waited for.
        """
        with self._changed:
            while wait and job_id in self._busy:
                self._changed.wait()
            if job_id in self._busy:
                return False
            self._busy.add(job_id)
        try:
            taken = self.rows.take(job_id)
        except BaseException:
            self.forget(job_id)
            raise
        if not taken:
            self.forget(job_id)
        return taken

    def born(self, job_id: int) -> bool:
        """Note a job this thread is creating with its claim in the row; ``False`` if held."""
        with self._changed:
            if job_id in self._busy:
                return False
            self._busy.add(job_id)
            return True

    def keep(self, job_id: int) -> bool:
        """Renew the claim before a side effect; ``False``: another instance has it now."""
        return self.rows.keep(job_id)

    def give_back(self, job_id: int) -> None:
        """End this thread's claim (the row keeps this instance as the last one on it)."""
        try:
            self.rows.give_back(job_id)
        finally:
            self.forget(job_id)

    def forget(self, job_id: int) -> None:
        """Drop this thread's hold on the job without a word to the database."""
        with self._changed:
            self._busy.discard(job_id)
            self._changed.notify_all()
