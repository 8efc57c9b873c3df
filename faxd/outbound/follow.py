"""Follow submitted jobs to the end and put each file where the user looks for it.

Every ``status_interval`` one ``status`` call with ``jobids[]`` covers every
submitted job (never one call per job).  A ``success`` moves the spool file to
the sent folder, a ``failure`` to the failed folder with FAXAGE's long status
as the one-line reason; pages, transmitted pages, transmit time, CSID and
commid are stored.  With ``clear_after_status`` the finished record is then
cleared on FAXAGE.  A status line that cannot be read is counted in the
problem table ``faxd inbox --problems`` shows (reason prefixed ``status:``),
so a job FAXAGE reports unreadably can be asked about.

Crash safety: the destination path is committed *before* the file is renamed,
so after a crash between the rename and the final commit the next pass sees
the spool file gone, the file at ``final_path``, and only finishes the record.
"""

from __future__ import annotations

import os
from pathlib import Path

import structlog
from sqlalchemy import select

from faxd.alerts import events
from faxd.clock import Clock, system_clock
from faxd.config import NotifySettings, OutboundSettings
from faxd.errors import NotFoundError, ProviderError
from faxd.inbound.ledger import Ledger
from faxd.outbound import files
from faxd.outbound.protocols import OutboundClient
from faxd.providers.base import Unreadable
from faxd.providers.faxage.records import MalformedLine, StatusRecord, StatusResult
from faxd.store.db import Database
from faxd.store.models import OutboundJob
from faxd.store.states import JobState, advance

log = structlog.get_logger(__name__)

_FINAL = {"success": JobState.SENT, "failure": JobState.FAILED}
#: How a recorded problem says it is a status line, not a listfax one.
STATUS_PROBLEM = "status: "


class FollowUp:
    """Reads ``status`` for submitted jobs, files them, and clears finished records."""

    def __init__(
        self,
        settings: OutboundSettings,
        db: Database,
        client: OutboundClient,
        *,
        clock: Clock = system_clock,
        notify: NotifySettings | None = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self.client = client
        self.clock = clock
        self.notify = notify  # ``[notify]``: a failed job writes job_failed with its state

    def follow_up(self) -> int:
        """One status call for all submitted jobs; return how many finished."""
        with self.db.session() as session:
            rows = session.execute(
                select(OutboundJob.id, OutboundJob.faxage_jobid, OutboundJob.faxno)
                .where(OutboundJob.state == JobState.SUBMITTED.value)
                .where(OutboundJob.faxage_jobid.is_not(None))
                .order_by(OutboundJob.id)
            ).all()
        by_jobid = {jobid: (job_id, faxno) for job_id, jobid, faxno in rows if jobid is not None}
        finished = 0
        if by_jobid:
            try:
                result = self.client.status_result(
                    sorted(by_jobid), pagecount=True, csid=True, xmitpages=True
                )
            except ProviderError as exc:
                log.warning("outbound.status_failed", error=exc.message, jobs=len(by_jobid))
                result = StatusResult(records=())
            self._record_unreadable(result.malformed)
            records = result.records
            for record in records:
                if record.jobid not in by_jobid:
                    continue
                job_id, faxno = by_jobid[record.jobid]
                with structlog.contextvars.bound_contextvars(job_id=job_id, faxno=faxno):
                    try:
                        if self._apply(job_id, record):
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

    def _record_unreadable(self, lines: tuple[MalformedLine, ...]) -> None:
        """Count the status lines that could not be read where ``faxd inbox --problems`` looks.

        They share the listfax problem table, told apart by a ``status:`` reason.
        The client has logged them (once a day each), so nothing is logged here.
        """
        if lines:
            ledger = Ledger(self.db, "faxage", self.client.account, clock=self.clock)
            ledger.record_problems(
                [Unreadable(bad.lineno, bad.text, f"{STATUS_PROBLEM}{bad.reason}") for bad in lines]
            )

    def _apply(self, job_id: int, record: StatusRecord) -> bool:
        """Store the record's facts; file the job if it finished. True if it did."""
        final = _FINAL.get(record.shortstatus)
        with self.db.session() as session:
            job = session.get(OutboundJob, job_id)
            assert job is not None
            job.shortstatus = record.shortstatus
            job.longstatus = record.longstatus
            job.commid = record.commid or None
            job.pages = record.pagecount
            job.xmitpages = record.xmitpages
            job.xmittime = record.xmittime or None
            job.csid = record.csid or None
            if final is None:
                return False
            if job.final_path is None:
                job.final_path = str(self._destination(job, final))
            spool, dest = Path(job.spool_path), Path(job.final_path)
        self._move(spool, dest, job_id)
        if final is JobState.FAILED:
            files.write_reason(files.reason_path(dest), _failure_reason(record))
        with self.db.session() as session:
            job = session.get(OutboundJob, job_id)
            assert job is not None
            advance(job, final)
            job.completed_at = self.clock()
            if final is JobState.FAILED:
                job.last_error = _failure_reason(record)
                event = events.job_failed(
                    job.id, faxno=job.faxno, file=job.source_name, reason=job.last_error
                )
                events.record(session.connection(), self.notify, event, now=self.clock())
        log.info(
            "outbound.finished",
            state=final.value,
            faxage_jobid=record.jobid,
            longstatus=record.longstatus,
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

    def _move(self, spool: Path, dest: Path, job_id: int) -> None:
        """Move the spool file to ``dest``; a clash since we chose it gets a new name."""
        if not os.path.lexists(spool):
            if not os.path.lexists(dest):
                log.error("outbound.file_missing", spool=str(spool), expected=str(dest))
            return  # moved before a crash; nothing left to do
        placed = files.move_no_clobber(spool, dest.parent, dest.name, tag=str(job_id))
        if placed != dest:
            with self.db.session() as session:
                job = session.get(OutboundJob, job_id)
                assert job is not None
                job.final_path = str(placed)

    def clear_finished(self) -> None:
        """``clear`` every finished job's record on FAXAGE that is not cleared yet."""
        with self.db.session() as session:
            rows = session.execute(
                select(OutboundJob.id, OutboundJob.faxage_jobid, OutboundJob.faxno)
                .where(OutboundJob.state.in_([JobState.SENT.value, JobState.FAILED.value]))
                .where(OutboundJob.faxage_jobid.is_not(None))
                .where(OutboundJob.shortstatus.in_(list(_FINAL)))
                .where(OutboundJob.cleared == 0)
            ).all()
        for job_id, jobid, faxno in rows:
            if jobid is None:
                continue
            with structlog.contextvars.bound_contextvars(job_id=job_id, faxno=faxno):
                try:
                    self.client.clear(jobid)
                except NotFoundError:
                    pass  # already gone on FAXAGE: nothing left to clear
                except ProviderError as exc:
                    log.warning("outbound.clear_failed", error=exc.message)
                    continue
            with self.db.session() as session:
                job = session.get(OutboundJob, job_id)
                assert job is not None
                job.cleared = 1


def _failure_reason(record: StatusRecord) -> str:
    detail = record.longstatus.strip() or "no reason given"
    return (
        f"FAXAGE could not deliver the fax: {detail}; check the number and drop the file "
        "in the outbox again (or run faxd retry)"
    )
