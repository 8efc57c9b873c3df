"""What ``faxd send``, ``faxd jobs``, ``faxd retry`` and ``faxd cancel`` do to jobs.

These run in the CLI process, possibly while the daemon runs: they only touch
the database and the spool/failed folders, through the same intake path and
state machine the daemon uses, so a job queued here is picked up by the
daemon's next submit pass.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import select

from faxd.clock import system_clock
from faxd.config import OutboundSettings
from faxd.errors import FaxdError, IntakeError, NotFoundError, PermanentError
from faxd.outbound import files
from faxd.outbound.accepted import Acceptance
from faxd.outbound.documents import inspect_file
from faxd.outbound.intake import Intake, fail_job_file
from faxd.outbound.numbers import label
from faxd.phone import parse_number
from faxd.providers.base import OutboundProvider
from faxd.store.claims import Claims
from faxd.store.db import Database
from faxd.store.models import OutboundJob
from faxd.store.states import JobState, advance


def queue_files(
    paths: Sequence[Path],
    faxno: str,
    name: str | None,
    *,
    config: OutboundSettings,
    db: Database,
    accepts: Acceptance | None = None,
    claims: Claims | None = None,
) -> list[int]:
    """Queue one job per file for ``faxno`` (``faxd send``); the files are copied, not moved.

    A file that lies in the hot folder is moved into the spool instead, as a
    dropped file would be, so the hot folder cannot make a second job of it.
    Every file is checked before any is queued, so a bad one queues nothing;
    ``accepts`` says which types the sending provider takes or faxd converts;
    ``claims`` name the instance the new jobs are born claimed by (this
    machine's ``[database] instance``; the host name when not given).
    Raises :class:`IntakeError` naming the problem.
    """
    try:
        number = parse_number(faxno, config.country)
    except ValueError as exc:
        raise IntakeError(str(exc)) from None
    # A link named on the command line is the user's own choice: read what it points to.
    resolved = [Path(path).resolve() for path in paths]
    intake = Intake(config, db, clock=system_clock, accepts=accepts, claims=claims)
    for path in resolved:
        intake.accepts.check(path.name)
        inspect_file(path, config.max_file_mb)
    hot = Path(config.hot_folder)
    hot_resolved = hot.resolve()
    kept_apart = [
        Path(folder).resolve()
        for folder in (config.sent_folder, config.failed_folder, config.spool_dir)
    ]
    queued = []
    for path in resolved:
        in_outbox = path.is_relative_to(hot_resolved) and not any(
            path.is_relative_to(folder) for folder in kept_apart
        )
        if in_outbox:
            queued.append(
                intake.take_over(hot / path.relative_to(hot_resolved), number, name or "")
            )
        else:
            queued.append(intake.queue_copy(path, number, name or ""))
    return queued


def list_jobs(db: Database, state: str | JobState | None = None) -> list[OutboundJob]:
    """Jobs in id order, optionally only those in ``state``."""
    query = select(OutboundJob).order_by(OutboundJob.id)
    if state is not None:
        try:
            wanted = JobState(state)
        except ValueError:
            names = ", ".join(s.value for s in JobState)
            raise FaxdError(f"unknown job state {state!r}; use one of: {names}") from None
        query = query.where(OutboundJob.state == wanted.value)
    with db.session() as session:
        return list(session.scalars(query).all())


def retry_job(db: Database, job_id: int) -> OutboundJob:
    """Put a failed or cancelled job back in the queue, its file back in the spool."""
    with db.session() as session:
        job = _get(session.get(OutboundJob, job_id), job_id)
        if job.state not in (JobState.FAILED.value, JobState.CANCELLED.value):
            raise FaxdError(
                f"job {job_id} is {job.state}; only failed or cancelled jobs can be retried"
            )
        spool = Path(job.spool_path)
        if not os.path.lexists(spool):
            kept = Path(job.final_path) if job.final_path else None
            if kept is None or not os.path.lexists(kept):
                raise FaxdError(
                    f"job {job_id}: its file is no longer in the failed folder ({kept}); "
                    "drop the document in the outbox again instead"
                )
            # The file first: a crash leaves it in the spool.  Copied when the
            # failed folder is on another file system (rename fails with EXDEV).
            placed = files.move_no_clobber(kept, spool.parent, spool.name, tag=str(job.id))
            job.spool_path = str(placed)
            files.reason_path(kept).unlink(missing_ok=True)
        advance(job, JobState.QUEUED)
        job.attempts = 0
        job.resends = 0
        job.next_attempt_at = None
        job.last_error = None
        job.remote_jobid = None
        job.submitted_at = None
        job.shortstatus = None
        job.longstatus = None
        job.completed_at = None
        job.final_path = None
        job.cleared = 0
        return job


def cancel_job(
    db: Database,
    provider: OutboundProvider,
    job_id: int,
    *,
    config: OutboundSettings | None = None,
    intake: Intake | None = None,
) -> OutboundJob:
    """Cancel a job: locally when queued, on the provider when submitted (FAXAGE ``stopfax``).

    A submitted job can be cancelled only on a provider that can stop a job
    (``capabilities.cancel``) and only once its remote id is known.

    With ``config`` the file moves to the failed folder with a reason beside
    it; without, it stays in the spool (``faxd retry`` revives it either way).
    ``intake`` is the daemon's, when it cancels in-process: the job's source
    kept open for the polling-mode re-check is closed now (from another
    process the daemon's next follow-up pass closes it).
    """
    with db.session() as session:
        found = _get(session.get(OutboundJob, job_id), job_id)
        state, remote, owner = found.state, found.remote_jobid, found.provider
    if state == JobState.SUBMITTED.value:
        name = label(owner)
        if owner != provider.name or not provider.capabilities.cancel or remote is None:
            why = (
                f"{name} offers no way to stop a fax"
                if owner == provider.name and not provider.capabilities.cancel
                else f"faxd does not know its {name} job id yet"
                if owner == provider.name
                else f"it was sent with {name}, not the configured {label(provider.name)}"
            )
            raise FaxdError(
                f"job {job_id} cannot be cancelled: {why}; it may already be transmitting"
            )
        # Outside any transaction: the daemon keeps writing while the provider answers.
        try:
            provider.cancel(remote)
        except NotFoundError as exc:
            raise FaxdError(f"job {job_id} cannot be cancelled: {exc.message}") from None
        except PermanentError as exc:
            raise FaxdError(
                f"job {job_id} cannot be cancelled any more ({name}: {exc.message}); "
                "it may already be transmitting"
            ) from None
    elif state != JobState.QUEUED.value:
        raise FaxdError(f"job {job_id} is {state}; only queued or submitted jobs can be cancelled")
    with db.session() as session:
        job = _get(session.get(OutboundJob, job_id), job_id)
        if job.state != state:
            raise FaxdError(f"job {job_id} changed to {job.state} meanwhile; look again")
        advance(job, JobState.CANCELLED)
        job.completed_at = system_clock()
        job.last_error = "cancelled with faxd cancel"
        if config is not None:
            dest = fail_job_file(
                job, config, "cancelled with faxd cancel; run faxd retry to send it after all"
            )
            if dest is not None:
                job.final_path = str(dest)
    if intake is not None:
        intake.release(job_id)
    return job


def _get(job: OutboundJob | None, job_id: int) -> OutboundJob:
    if job is None:
        raise FaxdError(f"there is no outbound job {job_id}; faxd jobs lists them")
    return job
