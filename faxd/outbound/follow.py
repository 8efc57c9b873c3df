"""Follow submitted jobs to the end and put each file where the user looks for it.

Every ``status_interval`` one :meth:`~faxd.providers.base.OutboundProvider.statuses`
call covers every submitted job of the provider (never one call per job).  A
job that ends ``SENT`` moves the spool file to the sent folder, one that ends
``FAILED`` to the failed folder with the provider's reason as the one-line
reason; pages, transmitted pages, transmit time, CSID and commid are stored
when the provider reports them.  With ``clear_after_status`` the finished job
is then forgotten on the provider (FAXAGE ``clear``).  A status record that
cannot be read is counted in the problem table ``faxd inbox --problems``
shows (reason prefixed ``status:``), so a job reported unreadably can be asked
about.

A provider that returns no job id at send (VoIP.ms) leaves jobs ``submitted``
without one: each pass looks for them among the provider's recent jobs, by
number and time exactly as a lost answer is reconciled
(:func:`faxd.outbound.submitter.find_match`).  One not listed after
``lost_grace`` is failed with a reason telling the user to look in the
provider's portal; it is never resent blindly.

Crash safety: the destination path is committed *before* the file is renamed,
so after a crash between the rename and the final commit the next pass sees
the spool file gone, the file at ``final_path``, and only finishes the record.

Several instances (DESIGN "Several instances"): following a provider's jobs
is a role, ``follow:<provider>`` (:mod:`faxd.store.claims`).  Only the
instance holding it asks for statuses, so the provider is asked once per
interval whatever the number of servers; when the holder dies another takes
the role over once its lease lapsed.  A finished job is also claimed while
its file is filed, so a holder that stalled past its lease and the one that
took over cannot both move it to sent/ or failed/.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from datetime import timedelta, tzinfo
from pathlib import Path

import structlog
from sqlalchemy import select

from faxd.alerts import events
from faxd.clock import Clock, system_clock
from faxd.config import NotifySettings, OutboundSettings
from faxd.errors import NotFoundError, ProviderError
from faxd.inbound.ledger import Ledger
from faxd.outbound import files
from faxd.outbound.numbers import label
from faxd.outbound.submitter import (
    DEFAULT_CLOCK_SKEW,
    DEFAULT_LOST_GRACE,
    UNSURE,
    Submitter,
    find_match,
)
from faxd.providers.base import JobOutcome, JobStatus, OutboundProvider, StatusAnswer, Unreadable
from faxd.store.claims import Claims, follow_role
from faxd.store.db import Database
from faxd.store.models import OutboundJob
from faxd.store.states import JobState, advance

log = structlog.get_logger(__name__)

_FINAL = {JobOutcome.SENT: JobState.SENT, JobOutcome.FAILED: JobState.FAILED}
#: How a recorded problem says it is a status line, not a listfax one.
STATUS_PROBLEM = "status: "


class FollowUp:
    """Reads the status of submitted jobs, files them, and forgets finished ones."""

    def __init__(
        self,
        settings: OutboundSettings,
        db: Database,
        provider: OutboundProvider,
        *,
        clock: Clock = system_clock,
        notify: NotifySettings | None = None,
        clock_skew: timedelta = DEFAULT_CLOCK_SKEW,
        sendtime_zone: tzinfo | None = None,
        lost_grace: timedelta = DEFAULT_LOST_GRACE,
        submitter: Submitter | None = None,
        claims: Claims | None = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self.provider = provider
        self.clock = clock
        self.notify = notify  # ``[notify]``: a failed job writes job_failed with its state
        self.clock_skew = clock_skew
        self.sendtime_zone = sendtime_zone
        self.lost_grace = lost_grace
        #: Fails a job whose id never showed up (its file to failed/, reason, event).
        self.submitter = submitter or Submitter(
            settings, db, provider, clock=clock, notify=notify, claims=claims
        )
        self.claims = self.submitter.intake.claims
        self.jobs = self.submitter.jobs
        self.role = follow_role(provider.name)

    def follow_up(self) -> int:
        """One status call for all submitted jobs if this instance follows them; how many finished.

        Another instance holding the ``follow:<provider>`` role means it does the
        asking: this pass does nothing.
        """
        if not self.claims.hold(self.role):
            return 0
        return self._follow_up()

    def _follow_up(self) -> int:
        name = self.provider.name
        with self.db.session() as session:
            rows = session.execute(
                select(OutboundJob.id, OutboundJob.remote_jobid, OutboundJob.faxno)
                .where(OutboundJob.state == JobState.SUBMITTED.value)
                .where(OutboundJob.provider == name)
                .order_by(OutboundJob.id)
            ).all()
        by_remote = {remote: (job_id, faxno) for job_id, remote, faxno in rows if remote}
        unnamed = [job_id for job_id, remote, _ in rows if remote is None]
        finished = 0
        listed: list[JobStatus] = []
        if by_remote:
            answer = self._ask(lambda: self.provider.statuses(sorted(by_remote)), len(by_remote))
            listed.extend(answer.jobs)
        if unnamed:
            listed.extend(self._name_jobs(unnamed, by_remote))  # only the jobs just named
        for status in listed:
            if status.remote_id not in by_remote:
                continue
            job_id, faxno = by_remote[status.remote_id]
            with structlog.contextvars.bound_contextvars(job_id=job_id, faxno=faxno):
                try:
                    if self._apply(job_id, status):
                        finished += 1
                except OSError as exc:
                    # Left submitted: the next pass files it; the rest go on now.
                    log.error(
                        "outbound.filing_failed",
                        error=str(exc),
                        fix="check that faxd can write to the sent and failed folders",
                    )
        if self.settings.clear_after_status:
            self.clear_finished()
        return finished

    def _ask(self, call: Callable[[], StatusAnswer], jobs: int) -> StatusAnswer:
        """One status call; its unreadable records are counted, a fault means no answer."""
        try:
            answer = call()
        except ProviderError as exc:
            log.warning("outbound.status_failed", error=exc.message, jobs=jobs)
            return StatusAnswer(jobs=())
        self._record_unreadable(answer.unreadable)
        return answer

    def _name_jobs(
        self, job_ids: Sequence[int], by_remote: dict[str, tuple[int, str]]
    ) -> tuple[JobStatus, ...]:
        """Find submitted jobs without an id among the recent jobs; record the ids found.

        Returns the statuses of the jobs just named, so they are filed in this pass.
        """
        with self.db.session() as session:
            jobs = [session.get(OutboundJob, job_id) for job_id in job_ids]
            waiting = [job for job in jobs if job is not None]
            for job in waiting:
                session.expunge(job)
            owned = self.submitter.owned_ids(session)
        if not waiting:
            return ()
        since = min(job.created_at for job in waiting) - self.clock_skew
        answer = self._ask(lambda: self.provider.recent_jobs(since), len(waiting))
        named: list[JobStatus] = []
        for job in waiting:
            with structlog.contextvars.bound_contextvars(job_id=job.id, faxno=job.faxno):
                match = find_match(
                    job, answer.jobs, owned, clock_skew=self.clock_skew, zone=self.sendtime_zone
                )
                if match is UNSURE:
                    self.submitter.report_unsure(job.id)
                elif match is not None:
                    owned.add(match.remote_id)
                    by_remote[match.remote_id] = (job.id, job.faxno)
                    with self.db.session() as session:
                        found = session.get(OutboundJob, job.id)
                        assert found is not None
                        found.remote_jobid = match.remote_id
                    log.info("outbound.job_found", remote_jobid=match.remote_id)
                    named.append(match)
                elif self._gave_up(job):
                    self.submitter.fail(job.id, self._never_listed(job))
        return tuple(named)

    def _gave_up(self, job: OutboundJob) -> bool:
        sent = job.submitted_at or job.created_at
        return self.clock() - sent >= self.lost_grace

    def _never_listed(self, job: OutboundJob) -> str:
        name = label(self.provider.name)
        minutes = int(self.lost_grace.total_seconds() // 60)
        return (
            f"{name} took the fax but did not list it among its sent faxes within {minutes} "
            f"minutes; check {name}'s portal to see whether it went out before dropping the "
            "file again"
        )

    def _record_unreadable(self, lines: tuple[Unreadable, ...]) -> None:
        """Count the status records that could not be read where ``faxd inbox --problems`` looks.

        They share the listfax problem table, told apart by a ``status:`` reason.
        The adapter has logged them (once a day each), so nothing is logged here.
        """
        if lines:
            ledger = Ledger(self.db, self.provider.name, self.provider.account, clock=self.clock)
            ledger.record_problems(
                [Unreadable(bad.lineno, bad.text, f"{STATUS_PROBLEM}{bad.reason}") for bad in lines]
            )

    def _apply(self, job_id: int, status: JobStatus) -> bool:
        """Store the status's facts; file the job if it finished. True if it did."""
        if _FINAL.get(status.outcome) is None:
            return self._record(job_id, status)
        if not self.jobs.take(job_id):
            return False  # another instance is filing it
        try:
            return self._record(job_id, status)
        finally:
            self.jobs.give_back(job_id)

    def _record(self, job_id: int, status: JobStatus) -> bool:
        final = _FINAL.get(status.outcome)
        extra = status.extra
        with self.db.session() as session:
            job = session.get(OutboundJob, job_id)
            assert job is not None
            if job.state != JobState.SUBMITTED.value:
                return False  # cancelled (faxd cancel) or filed since this pass began
            job.shortstatus = status.status[:20]
            job.longstatus = status.reason or extra.get("longstatus") or None
            job.commid = extra.get("commid") or None
            job.pages = status.pages
            job.xmitpages = status.pages_sent
            job.xmittime = (extra.get("xmittime") or "")[:20] or None
            job.csid = (extra.get("csid") or "")[:64] or None
            if final is None:
                return False
            if job.final_path is None:
                job.final_path = str(self._destination(job, final))
            spool, dest = Path(job.spool_path), Path(job.final_path)
        dest = self._move(spool, dest, job_id)
        reason = self._failure_reason(status)
        if final is JobState.FAILED:
            files.write_reason(files.reason_path(dest), reason)
        with self.db.session() as session:
            job = session.get(OutboundJob, job_id)
            assert job is not None
            advance(job, final)
            job.completed_at = self.clock()
            if final is JobState.FAILED:
                job.last_error = reason
                event = events.job_failed(
                    job.id, faxno=job.faxno, file=job.source_name, reason=reason
                )
                events.record(session.connection(), self.notify, event, now=self.clock())
        log.info(
            "outbound.finished",
            state=final.value,
            remote_jobid=status.remote_id,
            status=status.status,
            reason=status.reason,
            final_path=str(dest),
        )
        return True

    def _destination(self, job: OutboundJob, final: JobState) -> Path:
        """A free name for the job's file in sent/ or failed/ (job id added on a clash)."""
        folder = Path(
            self.settings.sent_folder if final is JobState.SENT else self.settings.failed_folder
        )
        folder.mkdir(parents=True, exist_ok=True)
        for name in files.candidate_names(job.source_name, str(job.id)):
            if not os.path.lexists(folder / name):
                return folder / name
        raise FileExistsError(f"{folder}: too many files named like {job.source_name!r}")

    def _move(self, spool: Path, dest: Path, job_id: int) -> Path:
        """Move the spool file to ``dest``; a clash since we chose it gets a new name.

        Returns where the file is now, which the reason file and the log name.
        """
        if not os.path.lexists(spool):
            if not os.path.lexists(dest):
                log.error("outbound.file_missing", spool=str(spool), expected=str(dest))
            return dest  # moved before a crash; nothing left to do
        placed = files.move_no_clobber(spool, dest.parent, dest.name, tag=str(job_id))
        if placed != dest:
            with self.db.session() as session:
                job = session.get(OutboundJob, job_id)
                assert job is not None
                job.final_path = str(placed)
        return placed

    def clear_finished(self) -> None:
        """Forget every finished job on the provider that is not forgotten yet."""
        with self.db.session() as session:
            rows = session.execute(
                select(OutboundJob.id, OutboundJob.remote_jobid, OutboundJob.faxno)
                .where(OutboundJob.state.in_([JobState.SENT.value, JobState.FAILED.value]))
                .where(OutboundJob.provider == self.provider.name)
                .where(OutboundJob.remote_jobid.is_not(None))
                .where(OutboundJob.cleared == 0)
            ).all()
        for job_id, remote, faxno in rows:
            if remote is None:
                continue
            with structlog.contextvars.bound_contextvars(job_id=job_id, faxno=faxno):
                try:
                    self.provider.forget(remote)
                except NotFoundError:
                    pass  # already gone on the provider: nothing left to clear
                except ProviderError as exc:
                    log.warning("outbound.clear_failed", error=exc.message)
                    continue
            with self.db.session() as session:
                job = session.get(OutboundJob, job_id)
                assert job is not None
                job.cleared = 1

    def _failure_reason(self, status: JobStatus) -> str:
        detail = status.reason.strip() or "no reason given"
        return (
            f"{label(self.provider.name)} could not deliver the fax: {detail}; check the "
            "number and drop the file in the outbox again (or run faxd retry)"
        )
