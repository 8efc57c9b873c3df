"""Send queued jobs through the outbound provider so that no job is ever posted twice.

The ledger rule (DESIGN invariant 5, STYLE §6): a job is claimed and committed
as ``submitting`` *before* the POST and becomes ``submitted`` with the
provider's job id after it.  If the answer is lost (a crash, a reset after the
request went out: :class:`~faxd.errors.OutcomeUnknownError`) the job stays
``submitting``, and :meth:`Submitter.reconcile` looks for it among the
provider's recent jobs (same number, sent at or after the job was created, an
id no other job owns) before it resends — at most once, and the log says so.
A job for the number whose send time cannot be read is never grounds to
resend: it is the match when it is the only candidate, and otherwise the job
stays ``submitting`` until a later pass can tell.

Providers differ, and :class:`~faxd.providers.base.Capabilities` says how:

- ``send_returns_id`` false (VoIP.ms): an accepted POST makes the job
  ``submitted`` without an id; the follow-up finds it among the recent jobs.
  Its lists lag, so a lost answer is not resent before ``lost_grace`` has
  passed since the POST.
- ``reconcile`` false (faxnummer.de): nothing can tell whether a lost answer
  was a sent fax, so the job fails with a reason telling the user to look in
  the provider's portal before dropping the file again; it is never resent.

The bytes sent are the bytes taken: the spool copy's size and sha256 are
checked against the job before every POST (the adapter streams the file and
checks it per attempt, retries and resends included), and in polling mode the
source file intake kept open must not have changed since it was taken.  A
mismatch fails the job with the reason and posts nothing.

Retry decisions read the error *type*: a transient fault where the POST
certainly never reached the provider goes back to ``queued`` with backoff;
:class:`~faxd.errors.PermanentError` fails the job with the provider's reason;
:class:`~faxd.errors.AuthError` stops the pass.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path

import structlog
from sqlalchemy import select, update
from sqlalchemy.orm import Session

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
from faxd.outbound.numbers import e164, label, same_number
from faxd.outbound.sendable import Converter, convert_with_libraries, make_sendable
from faxd.providers.base import JobStatus, OutboundProvider, SendRequest
from faxd.store.claims import Claims
from faxd.store.db import Database
from faxd.store.models import OutboundJob
from faxd.store.states import JobState, advance

log = structlog.get_logger(__name__)

#: How far the provider's clock may lag ours when matching a lost answer to a job.
DEFAULT_CLOCK_SKEW = timedelta(minutes=5)
#: After the provider refuses the login, how long no job is posted (one log line each time).
DEFAULT_AUTH_PAUSE = timedelta(minutes=5)
#: How long a provider that returns no job id may take to list a sent job.
DEFAULT_LOST_GRACE = timedelta(minutes=15)


class Unsure(enum.Enum):
    """:meth:`Submitter.find_match` cannot tell whether the provider has the job."""

    UNSURE = "unsure"


#: A listed job may be ours but cannot be told apart: neither match nor resend.
UNSURE = Unsure.UNSURE


def lost_answer_reason(provider: str) -> str:
    """Why a job whose send answer was lost fails when the provider cannot be asked."""
    name = label(provider)
    return (
        f"the answer from {name} was lost, and {name} offers no list to tell whether the "
        f"fax went out; check the sent faxes in {name}'s portal before dropping the file again"
    )


def find_match(
    job: OutboundJob,
    listed: Iterable[JobStatus],
    owned: set[str],
    *,
    clock_skew: timedelta = DEFAULT_CLOCK_SKEW,
    zone: tzinfo | None = None,
) -> JobStatus | Unsure | None:
    """The earliest listed job to the job's number sent since it was created, not owned.

    A listed job for the number whose send time is unknown may be this job: it
    is the match when it is the only candidate, and otherwise the answer is
    :data:`UNSURE`, never ``None`` (which would resend a fax the provider may
    already have).  Naive send times are read in ``zone`` (``None``: this
    machine's zone).
    """
    earliest = job.created_at - clock_skew
    ours = [
        status
        for status in listed
        if status.remote_id not in owned and same_number(status.number, job.faxno)
    ]
    unknown = [status for status in ours if status.sent_at is None]
    dated = [
        (as_utc(status.sent_at, zone), status)
        for status in ours
        if status.sent_at is not None and as_utc(status.sent_at, zone) >= earliest
    ]
    if unknown:
        return unknown[0] if len(unknown) == 1 and not dated else UNSURE
    best = min(
        dated, key=lambda pair: (pair[0], len(pair[1].remote_id), pair[1].remote_id), default=None
    )
    return best[1] if best is not None else None


def as_utc(when: datetime, zone: tzinfo | None) -> datetime:
    """A provider's time as aware UTC; a naive one is read in ``zone`` (``None``: local)."""
    if when.tzinfo is None and zone is not None:
        when = when.replace(tzinfo=zone)
    return when.astimezone(UTC)  # naive = this machine's local time


class Submitter:
    """Posts queued jobs and reconciles ``submitting`` ones."""

    def __init__(
        self,
        settings: OutboundSettings,
        db: Database,
        provider: OutboundProvider,
        *,
        clock: Clock = system_clock,
        intake: Intake | None = None,
        backoff_base: float = 30.0,
        backoff_max: float = 1800.0,
        clock_skew: timedelta = DEFAULT_CLOCK_SKEW,
        sendtime_zone: tzinfo | None = None,
        auth_pause: timedelta = DEFAULT_AUTH_PAUSE,
        lost_grace: timedelta = DEFAULT_LOST_GRACE,
        notify: NotifySettings | None = None,
        url_notify: str | None = None,
        convert: Converter = convert_with_libraries,
        claims: Claims | None = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self.provider = provider
        self.clock = clock
        self.intake = intake or Intake(settings, db, clock=clock, claims=claims)
        #: Claims on jobs (the intake's: one holder per job in this process, too).
        self.jobs = self.intake.jobs
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.clock_skew = clock_skew
        #: The zone of the provider's naive send times; ``None`` = this machine's.
        self.sendtime_zone = sendtime_zone
        self.auth_pause = auth_pause
        self.lost_grace = lost_grace
        self.notify = notify  # ``[notify]``: a failed job writes job_failed with its state
        #: Where the provider posts the job's status when it finishes ([http] public_url).
        self.url_notify = url_notify
        #: Set when the provider refused the login: no job is posted before then.
        self.paused_until: datetime | None = None
        #: Turns a file the provider does not take into a PDF (faxd.outbound.convert).
        self.convert = convert
        #: Jobs already logged as impossible to reconcile yet (logged once each).
        self._unsure_reported: set[int] = set()

    @property
    def label(self) -> str:
        return label(self.provider.name)

    # -- sending ---------------------------------------------------------------------

    def submit_pending(self) -> int:
        """Post every queued job that is due; return how many the provider accepted."""
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
                .where(self.jobs.available(now))
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
        """Claim one queued job, post it, record the outcome. True if the provider took it.

        The job is claimed in the database first, so another instance sharing
        it neither posts it too nor, while the POST is under way, takes it for
        a lost answer and reconciles it; the claim is given back afterwards.
        """
        # A new job's file may still be on its way into the spool (the hot-folder
        # thread holds the job until then): wait for that, as for the spool lock.
        if not self.jobs.take(job_id, wait=True):
            return False  # another instance has it
        try:
            return self._submit_taken(job_id)
        finally:
            self.jobs.give_back(job_id)

    def _submit_taken(self, job_id: int) -> bool:
        try:
            spooled = self.intake.ensure_spooled(job_id)
        except OSError as exc:
            self._spool_trouble(job_id, exc, "spool_move_failed", "move the file into the spool")
            return False
        if not spooled:
            self.fail(job_id, "the file to send is missing from the spool; drop it again")
            return False
        if not self._source_unchanged(job_id):
            self.fail(job_id, f"the file {CHANGED_REASON}")
            return False
        try:
            unsendable = make_sendable(
                self.db,
                job_id,
                accepted=self.provider.capabilities.send_types,
                provider=self.provider.name,
                spool_dir=Path(self.settings.spool_dir),
                convert=self.convert,
            )
        except OSError as exc:
            self._spool_trouble(job_id, exc, "conversion_failed", "convert the file in the spool")
            return False
        if unsendable is not None:
            self.fail(job_id, unsendable)
            return False
        job = self._claim(job_id)
        if job is None:
            return False  # another process (faxd cancel) changed it first
        with structlog.contextvars.bound_contextvars(job_id=job.id, faxno=job.faxno):
            if not self.jobs.keep(job.id):
                # Our lease lapsed and another instance took the job: it is ``submitting``
                # with nothing posted, which that instance's reconcile resolves.
                log.warning("outbound.claim_lost", detail="not posted: another instance has it")
                return False
            try:
                remote = self.provider.send(
                    SendRequest(
                        job_id=job.id,
                        number=e164(job.faxno),
                        recipient=job.recipname,
                        path=Path(job.spool_path),
                        filename=job.source_name,
                        size=job.size,
                        sha256=job.sha256,
                        url_notify=self.url_notify,
                    )
                )
            except FileChangedError as exc:
                self.fail(job.id, exc.message)
                return False
            except OutcomeUnknownError as exc:
                log.warning("outbound.sendfax_outcome_unknown", error=exc.message)
                if not self.provider.capabilities.reconcile:
                    self.fail(job.id, lost_answer_reason(self.provider.name))
                else:
                    self._note(job.id, exc.message)
                return False
            except PermanentError as exc:
                self.fail(job.id, f"{self.label} refused the fax: {exc.message}")
                return False
            except AuthError as exc:
                self._requeue(job.id, exc.message, delay=self.backoff_max)
                log.error(
                    "outbound.login_refused",
                    error=exc.message,
                    fix=f"check the login settings in [{self.provider.name}]",
                    paused_seconds=self.auth_pause.total_seconds(),
                )
                raise
            except ProviderError as exc:
                # Only errors raised before the POST reached the provider get here
                # (the adapter turns "may have arrived" into OutcomeUnknownError).
                self._requeue_or_fail(job.id, job.attempts, exc.message)
                return False
            except OSError as exc:
                self.fail(
                    job.id,
                    f"the spooled file could not be read ({exc.strerror}); "
                    "drop the document in the outbox again",
                )
                return False
            self._record_jobid(job.id, remote)
            log.info("outbound.submitted", remote_jobid=remote, provider=self.provider.name)
            return True

    def _spool_trouble(self, job_id: int, exc: OSError, event: str, what: str) -> None:
        """Leave the job queued for a later pass; one stuck file must not stop the rest."""
        log.error(
            f"outbound.{event}",
            job_id=job_id,
            error=str(exc),
            fix=f"check that faxd can write to {self.settings.spool_dir}",
            retry_in_seconds=self.backoff_max,
        )
        self._defer(job_id, f"could not {what} ({exc.strerror})")

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
            job.provider = self.provider.name
            job.submitted_at = now  # when the POST went out: the lost-answer grace counts from it
            job.updated_at = now
            session.flush()
            session.expunge(job)
        return job

    def _record_jobid(self, job_id: int, remote: str | None) -> None:
        """The POST was accepted: ``submitted``, with the id when the provider gave one."""
        with self.db.session() as session:
            job = session.get(OutboundJob, job_id)
            assert job is not None
            advance(job, JobState.SUBMITTED)
            job.remote_jobid = remote
            if remote is not None or job.submitted_at is None:
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
            self.fail(
                job_id,
                f"gave up after {attempts} attempts; last error: {error}; "
                f"check the network and {self.label}, then run faxd retry",
            )
            return
        delay = min(self.backoff_max, self.backoff_base * 2 ** max(0, attempts - 1))
        self._requeue(job_id, error, delay=delay)
        log.warning("outbound.sendfax_retry_later", error=error, retry_in_seconds=delay)

    def fail(self, job_id: int, reason: str) -> None:
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
                log.error("outbound.failed_move_failed", job_id=job_id, faxno=faxno, error=str(exc))
                dest = None
            if dest is not None:
                job.final_path = str(dest)
        log.warning("outbound.job_failed", job_id=job_id, faxno=faxno, reason=reason)

    # -- reconciling lost answers ----------------------------------------------------

    def reconcile(self) -> None:
        """Resolve every ``submitting`` job: match it in the recent jobs, else resend once.

        Only jobs no live other instance holds: a job another instance is
        posting right now is ``submitting`` too, and must not be resent.
        Each is claimed for the time it is looked at (a dead instance's after
        its lease lapsed).
        """
        now = self.clock()
        with self.db.session() as session:
            ids = session.scalars(
                select(OutboundJob.id)
                .where(OutboundJob.state == JobState.SUBMITTING.value)
                .where(self.jobs.available(now))
                .order_by(OutboundJob.id)
            ).all()
        taken = [job_id for job_id in ids if self.jobs.take(job_id)]
        try:
            self._reconcile_taken(taken)
        finally:
            for job_id in taken:
                self.jobs.give_back(job_id)

    def _reconcile_taken(self, job_ids: Sequence[int]) -> None:
        if not job_ids:
            return
        name = self.provider.name
        with self.db.session() as session:
            pending = session.scalars(
                select(OutboundJob)
                .where(OutboundJob.id.in_(job_ids))
                .where(OutboundJob.state == JobState.SUBMITTING.value)  # not resolved meanwhile
                .order_by(OutboundJob.id)
            ).all()
            for job in pending:
                session.expunge(job)
            if not pending:
                return
            owned = self.owned_ids(session)
        if not self.provider.capabilities.reconcile:
            for job in pending:
                with structlog.contextvars.bound_contextvars(job_id=job.id, faxno=job.faxno):
                    self.fail(job.id, lost_answer_reason(name))
            return
        since = min(job.created_at for job in pending) - self.clock_skew
        try:
            listed = self.provider.recent_jobs(since).jobs
        except ProviderError as exc:
            log.warning("outbound.reconcile_deferred", error=exc.message, jobs=len(pending))
            return
        for job in pending:
            with structlog.contextvars.bound_contextvars(job_id=job.id, faxno=job.faxno):
                match = self.find_match(job, listed, owned)
                if match is UNSURE:
                    self.report_unsure(job.id)
                elif match is not None:
                    owned.add(match.remote_id)
                    self._record_jobid(job.id, match.remote_id)
                    log.info("outbound.reconciled", remote_jobid=match.remote_id, provider=name)
                elif self._within_grace(job):
                    continue  # an id-less provider may not list the job yet
                elif job.resends == 0:
                    self._resend_once(job.id)
                else:
                    self.fail(
                        job.id,
                        f"{self.label} did not confirm the fax after a resend and none of its "
                        f"jobs matches it; check the {self.label} web portal before running "
                        "faxd retry",
                    )

    def owned_ids(self, session: Session) -> set[str]:
        """The remote ids jobs of this provider already own."""
        found = session.scalars(
            select(OutboundJob.remote_jobid)
            .where(OutboundJob.provider == self.provider.name)
            .where(OutboundJob.remote_jobid.is_not(None))
        ).all()
        return {remote for remote in found if remote is not None}

    def find_match(
        self, job: OutboundJob, listed: Iterable[JobStatus], owned: set[str]
    ) -> JobStatus | Unsure | None:
        """:func:`find_match` with this submitter's clock skew and zone."""
        return find_match(job, listed, owned, clock_skew=self.clock_skew, zone=self.sendtime_zone)

    def _within_grace(self, job: OutboundJob) -> bool:
        """Whether a provider without job ids may still list the job (its lists lag)."""
        if self.provider.capabilities.send_returns_id or job.submitted_at is None:
            return False
        return self.clock() - job.submitted_at < self.lost_grace

    def report_unsure(self, job_id: int) -> None:
        """Leave the job ``submitting`` for the next pass; say so once per job."""
        if job_id in self._unsure_reported:
            return
        self._unsure_reported.add(job_id)
        message = (
            f"cannot tell whether {self.label} got job {job_id}; check the portal; "
            "faxd asks again at the next pass"
        )
        self._note(job_id, message)  # shown by faxd jobs while the job waits
        log.warning(
            "outbound.reconcile_unsure",
            message=message,
            reason="a listed job for the number has a send time faxd cannot read",
        )

    def _resend_once(self, job_id: int) -> None:
        with self.db.session() as session:
            job = session.get(OutboundJob, job_id)
            assert job is not None
            advance(job, JobState.QUEUED)
            job.resends += 1
            job.next_attempt_at = None
        log.warning(
            "outbound.resending_once",
            reason=f"no job listed by {self.label} matches the unanswered send",
        )
