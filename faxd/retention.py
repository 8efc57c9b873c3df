"""Retention: sent/ and failed/ and the finished records don't grow forever.

HylaFAX's ``faxcron`` taught offices to expect that a fax server cleans up
after itself; faxd does it daily inside the daemon and on demand with
``faxd cleanup [--dry-run]`` (DESIGN "Operations").  What it may remove is
narrow on purpose:

- files in ``sent_folder`` older than ``sent_days`` and in ``failed_folder``
  older than ``failed_days``, each with its reason file (``NAME.txt``);
- database rows of faxes and jobs that finished more than ``records_days`` ago,
  and of admin notifications sent that long ago (with the events they carried).

What it never touches:

- a file whose job is not finished (a retried job's file stays, whatever its age);
- a symlink, or anything outside those two folders (nothing is followed);
- the folders written by folder actions: they are the office's archive;
- the row of a fax still on its provider (kept on purpose, e.g. iFax's keep-on-server,
  failed or held): the next listing would find it again and, with its row gone,
  deliver it twice.

A file's age is counted from when its job finished, as recorded; a file with
no job row (a rejected drop, or one whose row was already removed) from its
inode change time, which its move into the folder set.  Rows are removed in
small batches, each its own short transaction, so the daemon's writers never
wait long behind a cleanup.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import structlog
from sqlalchemy import Delete, Select, delete, func, or_, select

from faxd.clock import Clock, system_clock
from faxd.config import OutboundSettings, RetentionSettings
from faxd.outbound.files import reason_path
from faxd.store.db import Database
from faxd.store.models import (
    AdminEvent,
    AdminNotification,
    Delivery,
    InboundFax,
    OutboundJob,
)
from faxd.store.states import FaxState, JobState

log = structlog.get_logger(__name__)

#: Rows removed per transaction.
BATCH_SIZE = 500

#: Job states after which the job's file is no longer needed by faxd.
FINISHED_JOB_STATES = frozenset({JobState.SENT, JobState.FAILED, JobState.CANCELLED})


@dataclass(frozen=True)
class Removal:
    """One file removed (or, in a dry run, that would be)."""

    path: Path
    folder: str  # "sent" | "failed"
    finished: datetime  # when its job finished (or the file arrived)


@dataclass
class CleanupReport:
    """What one cleanup removed, or would remove with ``dry_run``."""

    dry_run: bool
    files: list[Removal] = field(default_factory=list)
    fax_rows: int = 0
    job_rows: int = 0
    notice_rows: int = 0  # admin mails sent (with the events they carried)
    errors: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """The report as a person reads it, one line per file and one per kind of row."""
        verb = "would remove" if self.dry_run else "removed"
        out = [
            f"{verb} {item.path} ({item.folder}, finished {item.finished:%Y-%m-%d})"
            for item in self.files
        ]
        out.append(
            f"{verb} {self.fax_rows} fax record(s), {self.job_rows} job record(s) and "
            f"{self.notice_rows} sent notification(s)"
        )
        out.extend(f"could not remove: {error}" for error in self.errors)
        return out


class Retention:
    """Applies ``[retention]`` to the sent and failed folders and to the database."""

    def __init__(
        self,
        db: Database,
        settings: RetentionSettings,
        outbound: OutboundSettings,
        *,
        clock: Clock = system_clock,
        batch_size: int = BATCH_SIZE,
    ) -> None:
        self.db = db
        self.settings = settings
        self.outbound = outbound
        self.clock = clock
        self.batch_size = batch_size

    def run(self, *, dry_run: bool = False) -> CleanupReport:
        """Remove what is past its time (``dry_run``: only list it)."""
        report = CleanupReport(dry_run=dry_run)
        now = self.clock()
        folders = (
            ("sent", self.outbound.sent_folder, self.settings.sent_days),
            ("failed", self.outbound.failed_folder, self.settings.failed_days),
        )
        jobs = self._job_files()
        for label, folder, days in folders:
            if days is not None:
                self._clean_folder(label, folder, now - timedelta(days=days), jobs, report)
        if self.settings.records_days is not None:
            cutoff = now - timedelta(days=self.settings.records_days)
            report.fax_rows = self._remove_fax_rows(cutoff, dry_run=dry_run)
            report.job_rows = self._remove_job_rows(cutoff, dry_run=dry_run)
            report.notice_rows = self._remove_notice_rows(cutoff, dry_run=dry_run)
        log.info(
            "retention pass",
            dry_run=dry_run,
            files=len(report.files),
            fax_rows=report.fax_rows,
            job_rows=report.job_rows,
            errors=len(report.errors),
        )
        return report

    # -- files ---------------------------------------------------------------------

    def _job_files(self) -> dict[str, tuple[str, datetime | None]]:
        """Each job's final path -> (state, when it finished)."""
        with self.db.session() as session:
            rows = session.execute(
                select(OutboundJob.final_path, OutboundJob.state, OutboundJob.completed_at).where(
                    OutboundJob.final_path.is_not(None)
                )
            ).all()
        return {str(path): (state, completed) for path, state, completed in rows}

    def _clean_folder(
        self,
        label: str,
        folder: Path,
        cutoff: datetime,
        jobs: dict[str, tuple[str, datetime | None]],
        report: CleanupReport,
    ) -> None:
        for path, info in _regular_files(folder):
            if path.name.endswith(".txt") and path.with_name(path.name[:-4]).exists():
                continue  # a reason file goes with its file
            job = jobs.get(str(path))
            if job is not None and JobState(job[0]) not in FINISHED_JOB_STATES:
                continue
            finished = (job[1] if job is not None else None) or datetime.fromtimestamp(
                info.st_ctime, UTC
            )
            if finished >= cutoff:
                continue
            report.files.append(Removal(path, label, finished))
            if report.dry_run:
                continue
            for victim in (path, reason_path(path)):
                try:
                    if victim == path or os.path.lexists(victim):
                        _unlink_if_regular(victim)
                except OSError as exc:
                    report.errors.append(f"{victim}: {exc.strerror or exc}")
                    log.warning("retention could not remove a file", path=str(victim),
                                error=str(exc))  # fmt: skip

    # -- rows ----------------------------------------------------------------------

    def _remove_fax_rows(self, cutoff: datetime, *, dry_run: bool) -> int:
        ids = select(InboundFax.id).where(
            (InboundFax.state == FaxState.DONE.value)
            & InboundFax.deleted_at.is_not(None)
            & (InboundFax.deleted_at < cutoff)
        )
        return self._remove_rows(
            ids,
            lambda batch: (
                delete(Delivery).where(Delivery.fax_id.in_(batch)),
                delete(InboundFax).where(InboundFax.id.in_(batch)),
            ),
            dry_run=dry_run,
        )

    def _remove_job_rows(self, cutoff: datetime, *, dry_run: bool) -> int:
        ids = select(OutboundJob.id).where(
            OutboundJob.state.in_([state.value for state in FINISHED_JOB_STATES])
            & or_(
                OutboundJob.completed_at < cutoff,
                OutboundJob.completed_at.is_(None) & (OutboundJob.updated_at < cutoff),
            )
        )
        return self._remove_rows(
            ids, lambda batch: (delete(OutboundJob).where(OutboundJob.id.in_(batch)),),
            dry_run=dry_run,
        )  # fmt: skip

    def _remove_notice_rows(self, cutoff: datetime, *, dry_run: bool) -> int:
        ids = select(AdminNotification.id).where(
            AdminNotification.sent_at.is_not(None) & (AdminNotification.sent_at < cutoff)
        )
        return self._remove_rows(
            ids,
            lambda batch: (
                delete(AdminEvent).where(AdminEvent.notification_id.in_(batch)),
                delete(AdminNotification).where(AdminNotification.id.in_(batch)),
            ),
            dry_run=dry_run,
        )

    def _remove_rows(
        self,
        ids: Select[int],
        deletes: Callable[[list[int]], tuple[Delete, ...]],
        *,
        dry_run: bool,
    ) -> int:
        """Delete the rows ``ids`` selects, a batch per short transaction (or count them)."""
        if dry_run:
            with self.db.session() as session:
                return session.scalar(select(func.count()).select_from(ids.subquery())) or 0
        removed = 0
        while True:
            with self.db.session() as session:
                batch = list(session.scalars(ids.limit(self.batch_size)))
                for statement in deletes(batch) if batch else ():
                    session.execute(statement)
            if not batch:
                return removed
            removed += len(batch)


def _regular_files(folder: Path) -> Iterator[tuple[Path, os.stat_result]]:
    """Every regular file under ``folder``, never following a symlink."""
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return
    for entry in entries:
        try:
            info = entry.stat(follow_symlinks=False)
        except FileNotFoundError:
            continue  # a reason file already removed with its document
        if stat.S_ISDIR(info.st_mode):
            yield from _regular_files(Path(entry.path))
        elif stat.S_ISREG(info.st_mode):
            yield Path(entry.path), info


def _unlink_if_regular(path: Path) -> None:
    """Remove ``path`` if it is (still) a regular file; a symlink swapped in is left alone."""
    if stat.S_ISREG(os.lstat(path).st_mode):
        os.unlink(path)
