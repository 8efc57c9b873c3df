"""Send queued jobs with ``sendfax`` so that no job is ever posted twice.

The ledger rule (DESIGN invariant 5, STYLE §6): a job is claimed and committed
as ``submitting`` *before* the POST and becomes ``submitted`` with FAXAGE's
JOBID after it.  If the answer is lost (a crash, a reset after the request
went out: :class:`~faxd.errors.OutcomeUnknownError`) the job stays
``submitting``, and :meth:`Submitter.reconcile` looks for it in FAXAGE's
``status`` records (same number, sent at or after the job was created, a JOBID
no other job owns) before it resends — at most once, and the log says so.  A
record for the number whose sendtime cannot be read is never grounds to
resend: it is the match when it is the only candidate, and otherwise the job
stays ``submitting`` until a later pass can tell.

The bytes sent are the bytes taken: the spool copy's size and sha256 are
checked against the job before every POST (the client streams the file and
checks it per attempt, retries and resends included), and in polling mode the
source file intake kept open must not have changed since it was taken.  A
mismatch fails the job with the reason and posts nothing.

Retry decisions read the error *type*: a transient fault where the POST
certainly never reached FAXAGE goes back to ``queued`` with backoff;
:class:`~faxd.errors.PermanentError` (ERR03/04/05) fails the job with FAXAGE's
reason; :class:`~faxd.errors.AuthError` stops the pass.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path

import structlog
from sqlalchemy import select, update

from faxd.alerts import events
from faxd.clock import Clock, system_clock
from faxd.config import NotifySettings, OutboundSettings
from faxd.errors import (
    AuthError,
    FileChangedError,
    OutcomeUnknownError,
    PermanentError,
    ProviderError,
)
from faxd.outbound.intake import CHANGED_REASON, Intake, fail_job_file
from faxd.outbound.protocols import OutboundClient
from faxd.phone import normalize_caller_id
from faxd.providers.faxage.client import FaxFile
from faxd.providers.faxage.records import StatusRecord
from faxd.store.db import Database
from faxd.store.models import OutboundJob
from faxd.store.states import JobState, advance

log = structlog.get_logger(__name__)

#: How far FAXAGE's clock may lag ours when matching a lost answer to a record.
DEFAULT_CLOCK_SKEW = timedelta(minutes=5)
#: After FAXAGE refuses the login, how long no job is posted (one log line each time).
DEFAULT_AUTH_PAUSE = timedelta(minutes=5)


class Unsure(enum.Enum):
    """:meth:`Submitter.find_match` cannot tell whether FAXAGE has the job."""

    UNSURE = "unsure"


#: A ``status`` record may be the job but cannot be told apart: neither match nor resend.
UNSURE = Unsure.UNSURE


class Submitter:
    """Posts queued jobs and reconciles ``submitting`` ones."""

    def __init__(
        self,
        settings: OutboundSettings,
        db: Database,
        client: OutboundClient,
        *,
        clock: Clock = system_clock,
        intake: Intake | None = None,
        backoff_base: float = 30.0,
        backoff_max: float = 1800.0,
        clock_skew: timedelta = DEFAULT_CLOCK_SKEW,
        sendtime_zone: tzinfo | None = None,
        auth_pause: timedelta = DEFAULT_AUTH_PAUSE,
        notify: NotifySettings | None = None,
        url_notify: str | None = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self.client = client
        self.clock = clock
        self.intake = intake or Intake(settings, db, clock=clock)
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.clock_skew = clock_skew
        #: The zone of FAXAGE's naive ``sendtime`` values; ``None`` = this machine's.
        self.sendtime_zone = sendtime_zone
        self.auth_pause = auth_pause
        self.notify = notify  # ``[notify]``: a failed job writes job_failed with its state
        #: Where FAXAGE posts the job's status when it finishes ([http] public_url).
        self.url_notify = url_notify
        #: Set when FAXAGE refused the login: no job is posted before then.
        self.paused_until: datetime | None = None
        #: Jobs already logged as impossible to reconcile yet (logged once each).
        self._unsure_reported: set[int] = set()

    # -- sending ---------------------------------------------------------------------

    def submit_pending(self) -> int:
        """Post every queued job that is due; return how many FAXAGE accepted."""
        now = self.clock()
        if self.paused_until is not None and now < self.paused_until:
            return 0  # a refused login is not retried job after job (DESIGN invariant 8)
        self.paused_until = None
        with self.db.session() as session:
            due = session.scalars(
                select(OutboundJob.id)
                .where(OutboundJob.state == JobState.QUEUED.value)
                .where(
                    (OutboundJob.next_attempt_at.is_(None)) | (OutboundJob.next_attempt_at <= now)
                )
                .order_by(OutboundJob.id)
            ).all()
        accepted = 0
        for job_id in due:
            try:
                if self.submit(job_id):
                    accepted += 1
            except AuthError:
                # Logged in submit(). Every job waits, not just this one, so a bad
                # password costs one request per pause instead of one per job.
                self.paused_until = self.clock() + self.auth_pause
                return accepted
        return accepted

    def submit(self, job_id: int) -> bool:
        """Claim one queued job, post it, record the outcome. True if FAXAGE took it."""
        try:
            spooled = self.intake.ensure_spooled(job_id)
        except OSError as exc:
            # Leave it queued for the next pass; one stuck file must not stop the rest.
            log.error(
                "outbound.spool_move_failed",
                job_id=job_id,
                error=str(exc),
                fix=f"check that faxd can write to {self.settings.spool_dir}",
                retry_in_seconds=self.backoff_max,
            )
            self._defer(job_id, f"could not move the file into the spool ({exc.strerror})")
            return False
        if not spooled:
            self._fail(job_id, "the file to send is missing from the spool; drop it again")
            return False
        if not self._source_unchanged(job_id):
            self._fail(job_id, f"the file {CHANGED_REASON}")
            return False
        job = self._claim(job_id)
        if job is None:
            return False  # another process (faxd cancel) changed it first
        with structlog.contextvars.bound_contextvars(job_id=job.id, faxno=job.faxno):
            try:
                jobid = self.client.sendfax(
                    job.faxno,
                    job.recipname,
                    [
                        FaxFile(
                            name=job.source_name,
                            path=Path(job.spool_path),
                            # 0 / "" = not recorded (rows older than hashing at intake)
                            size=job.size or None,
                            sha256=job.sha256 or None,
                        )
                    ],
                    tagname=self.settings.tagname,
                    tagnumber=self.settings.tagnumber,
                    resolution=self.settings.resolution,
                    priority=self.settings.priority,
                    # only when set: stand-in clients of older tests lack the keyword
                    **({"url_notify": self.url_notify} if self.url_notify else {}),
                )
            except FileChangedError as exc:
                self._fail(job.id, exc.message)
                return False
            except OutcomeUnknownError as exc:
                self._note(job.id, exc.message)
                log.warning("outbound.sendfax_outcome_unknown", error=exc.message)
                return False
            except PermanentError as exc:
                self._fail(job.id, f"FAXAGE refused the fax: {exc.message}")
                return False
            except AuthError as exc:
                self._requeue(job.id, exc.message, delay=self.backoff_max)
                log.error(
                    "outbound.login_refused",
                    error=exc.message,
                    fix="check [faxage] username, company and password",
                    paused_seconds=self.auth_pause.total_seconds(),
                )
                raise
            except ProviderError as exc:
                # Only errors raised before the POST reached FAXAGE get here
                # (the client turns "may have arrived" into OutcomeUnknownError).
                self._requeue_or_fail(job.id, job.attempts, exc.message)
                return False
            except OSError as exc:
                self._fail(
                    job.id,
                    f"the spooled file could not be read ({exc.strerror}); "
                    "drop the document in the outbox again",
                )
                return False
            self._record_jobid(job.id, jobid)
            log.info("outbound.submitted", faxage_jobid=jobid)
            return True

    def _source_unchanged(self, job_id: int) -> bool:
        with self.db.session() as session:
            job = session.get(OutboundJob, job_id)
            sha256 = job.sha256 if job is not None else None
        return self.intake.source_unchanged(job_id, sha256)

    def _claim(self, job_id: int) -> OutboundJob | None:
        """Move the job queued -> submitting and commit, unless someone else moved it."""
        now = self.clock()
        with self.db.session() as session:
            # A conditional UPDATE first: it takes SQLite's write lock, so a `faxd
            # cancel` in another process cannot slip in between our read and write.
            claimed = session.execute(
                update(OutboundJob)
                .where(OutboundJob.id == job_id, OutboundJob.state == JobState.QUEUED.value)
                .values(updated_at=now)
            )
            if getattr(claimed, "rowcount", 0) != 1:
                return None
            job = session.get(OutboundJob, job_id, populate_existing=True)
            assert job is not None
            advance(job, JobState.SUBMITTING)
            job.attempts += 1
            job.updated_at = now
            session.flush()
            session.expunge(job)
        return job

    def _record_jobid(self, job_id: int, jobid: int) -> None:
        with self.db.session() as session:
            job = session.get(OutboundJob, job_id)
            assert job is not None
            advance(job, JobState.SUBMITTED)
            job.faxage_jobid = jobid
            job.submitted_at = self.clock()
            job.last_error = None
            job.next_attempt_at = None

    def _note(self, job_id: int, error: str) -> None:
        with self.db.session() as session:
            job = session.get(OutboundJob, job_id)
            assert job is not None
            job.last_error = error

    def _defer(self, job_id: int, error: str) -> None:
        """Keep a queued job queued, not due again for ``backoff_max`` seconds."""
        with self.db.session() as session:
            job = session.get(OutboundJob, job_id)
            assert job is not None
            job.last_error = error
            job.next_attempt_at = self.clock() + timedelta(seconds=self.backoff_max)

    def _requeue(self, job_id: int, error: str, *, delay: float) -> None:
        with self.db.session() as session:
            job = session.get(OutboundJob, job_id)
            assert job is not None
            advance(job, JobState.QUEUED)
            job.last_error = error
            job.next_attempt_at = self.clock() + timedelta(seconds=delay)

    def _requeue_or_fail(self, job_id: int, attempts: int, error: str) -> None:
        # ``attempts`` comes from the claim; nothing else touches a submitting job.
        if attempts >= self.settings.max_attempts:
            self._fail(
                job_id,
                f"gave up after {attempts} attempts; last error: {error}; "
                "check the network and FAXAGE, then run faxd retry",
            )
            return
        delay = min(self.backoff_max, self.backoff_base * 2 ** max(0, attempts - 1))
        self._requeue(job_id, error, delay=delay)
        log.warning("outbound.sendfax_retry_later", error=error, retry_in_seconds=delay)

    def _fail(self, job_id: int, reason: str) -> None:
        """Mark the job failed and move its file to the failed folder with ``reason``."""
        self.intake.release(job_id)
        with self.db.session() as session:
            job = session.get(OutboundJob, job_id)
            if job is None:
                return  # intake dropped it: the file changed while it was being taken
            advance(job, JobState.FAILED)
            job.last_error = reason
            job.completed_at = self.clock()
            faxno = job.faxno  # also logged from outside a job's bound context
            event = events.job_failed(job.id, faxno=faxno, file=job.source_name, reason=reason)
            events.record(session.connection(), self.notify, event, now=self.clock())
            try:
                dest = fail_job_file(job, self.settings, reason)
            except OSError as exc:
                log.error(
                    "outbound.failed_move_failed", job_id=job_id, faxno=faxno, error=str(exc)
                )
                dest = None
            if dest is not None:
                job.final_path = str(dest)
        log.warning("outbound.job_failed", job_id=job_id, faxno=faxno, reason=reason)

    # -- reconciling lost answers ----------------------------------------------------

    def reconcile(self) -> None:
        """Resolve every ``submitting`` job: match it in ``status``, else resend once."""
        with self.db.session() as session:
            pending = session.scalars(
                select(OutboundJob)
                .where(OutboundJob.state == JobState.SUBMITTING.value)
                .order_by(OutboundJob.id)
            ).all()
            for job in pending:
                session.expunge(job)
            if not pending:
                return
            owned = set(
                session.scalars(
                    select(OutboundJob.faxage_jobid).where(OutboundJob.faxage_jobid.is_not(None))
                ).all()
            )
        try:
            records = self.client.status()
        except ProviderError as exc:
            log.warning("outbound.reconcile_deferred", error=exc.message, jobs=len(pending))
            return
        for job in pending:
            with structlog.contextvars.bound_contextvars(job_id=job.id, faxno=job.faxno):
                match = self.find_match(job, records, owned)
                if match is UNSURE:
                    self._report_unsure(job.id)
                elif match is not None:
                    owned.add(match.jobid)
                    self._record_jobid(job.id, match.jobid)
                    log.info("outbound.reconciled", faxage_jobid=match.jobid)
                elif job.resends == 0:
                    self._resend_once(job.id)
                else:
                    self._fail(
                        job.id,
                        "FAXAGE did not confirm the fax after a resend and no status record "
                        "matches it; check the FAXAGE web portal before running faxd retry",
                    )

    def find_match(
        self, job: OutboundJob, records: Iterable[StatusRecord], owned: set[int | None]
    ) -> StatusRecord | Unsure | None:
        """The earliest record for the job's number sent since it was created, not owned.

        A record for the number whose sendtime is unknown (unreadable or all
        zeros) may be this job: it is the match when it is the only candidate,
        and otherwise the answer is :data:`UNSURE`, never ``None`` (which
        would resend a fax FAXAGE may already have).
        """
        earliest = job.created_at - self.clock_skew
        ours = [
            record
            for record in records
            if record.jobid not in owned and normalize_caller_id(record.destnum) == job.faxno
        ]
        unknown = [record for record in ours if record.sendtime is None]
        dated = [
            record
            for record in ours
            if record.sendtime is not None and self._as_utc(record.sendtime) >= earliest
        ]
        if unknown:
            return unknown[0] if len(unknown) == 1 and not dated else UNSURE
        return min(dated, key=lambda r: (r.sendtime, r.jobid), default=None)

    def _report_unsure(self, job_id: int) -> None:
        """Leave the job ``submitting`` for the next pass; say so once per job."""
        if job_id in self._unsure_reported:
            return
        self._unsure_reported.add(job_id)
        message = (
            f"cannot tell whether FAXAGE got job {job_id}; check the portal; "
            "faxd asks again at the next pass"
        )
        self._note(job_id, message)  # shown by faxd jobs while the job waits
        log.warning(
            "outbound.reconcile_unsure",
            message=message,
            reason="a status record for the number has a sendtime faxd cannot read",
        )

    def _as_utc(self, naive: datetime) -> datetime:
        if self.sendtime_zone is not None:
            return naive.replace(tzinfo=self.sendtime_zone).astimezone(UTC)
        return naive.astimezone(UTC)  # naive = this machine's local time

    def _resend_once(self, job_id: int) -> None:
        with self.db.session() as session:
            job = session.get(OutboundJob, job_id)
            assert job is not None
            advance(job, JobState.QUEUED)
            job.resends += 1
            job.next_attempt_at = None
        log.warning(
            "outbound.resending_once",
            reason="no FAXAGE status record matches the unanswered sendfax",
        )
