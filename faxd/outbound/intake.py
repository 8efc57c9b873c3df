"""Turn a settled file into exactly one queued job, or reject it with a reason.

Checks (in this order): a symlink or anything but a regular file is refused
and never opened; the type must be one FAXAGE sends; the name or folder must
carry a 10-digit number; the file must not be empty and must be readable.  A
reject moves the file to the failed folder with ``<name>.txt`` beside it.

Crash safety (DESIGN invariant 5): the job row is committed first, recording
the spool path ``<job_id>-<name>`` it is about to have; then the file is
renamed there.  A crash between the two leaves a queued row whose spool file
is missing while the source is still in the outbox; :meth:`Intake.reconcile`
(run at start-up, before the first scan) finishes the move for that row, so the
file is neither lost nor taken as a second job.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path, PurePath

import structlog
from sqlalchemy import select

from faxd.clock import Clock, system_clock
from faxd.config import OutboundSettings
from faxd.durable import file_sha256, fsync_dir, fsync_file
from faxd.errors import IntakeError
from faxd.outbound import files, naming
from faxd.store.db import Database
from faxd.store.models import OutboundJob
from faxd.store.states import JobState

log = structlog.get_logger(__name__)

_READ_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Inspected:
    """What intake learned about a file that passed the checks."""

    size: int
    sha256: str


def check_regular(path: Path) -> os.stat_result:
    """Refuse a symlink, a folder, a FIFO or a device (without opening it); return its lstat."""
    name = path.name
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise IntakeError(
            f"{name!r} does not exist; check the name (it may have been moved or deleted)"
        ) from None
    except OSError as exc:
        raise IntakeError(
            f"{name!r} cannot be read ({exc.strerror}); check its permissions"
        ) from None
    if stat.S_ISLNK(st.st_mode):
        raise IntakeError(
            f"{name!r} is a symbolic link; faxd never follows links: copy the document "
            "itself into the outbox"
        )
    if not stat.S_ISREG(st.st_mode):
        kind = "a folder" if stat.S_ISDIR(st.st_mode) else "a pipe or device"
        raise IntakeError(
            f"{name!r} cannot be read as a document: it is {kind}, not a regular file; "
            "save the document as a normal file and drop it in the outbox again"
        )
    return st


def inspect_file(path: Path) -> Inspected:
    """Check that ``path`` is a non-empty readable regular file; hash it.

    Never follows a symlink and never opens a FIFO or device (opening a FIFO
    would block the worker).  Raises :class:`IntakeError` with the reason.
    """
    name = path.name
    st = check_regular(path)
    if st.st_size == 0:
        raise IntakeError(
            f"{name!r} is empty (0 bytes); save the document again and drop it in the outbox"
        )
    digest = hashlib.sha256()
    size = 0
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        raise IntakeError(
            f"{name!r} cannot be read ({exc.strerror}); give the faxd user read "
            "permission on it and drop it in the outbox again"
        ) from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise IntakeError(f"{name!r} changed into something that is not a regular file")
        while chunk := os.read(fd, _READ_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    except OSError as exc:
        raise IntakeError(
            f"{name!r} cannot be read ({exc.strerror}); copy it again and drop it in the outbox"
        ) from None
    finally:
        os.close(fd)
    if size == 0:
        raise IntakeError(
            f"{name!r} is empty (0 bytes); save the document again and drop it in the outbox"
        )
    return Inspected(size, digest.hexdigest())


class Intake:
    """Creates jobs from settled outbox files and from ``faxd send``."""

    def __init__(
        self, settings: OutboundSettings, db: Database, *, clock: Clock = system_clock
    ) -> None:
        self.settings = settings
        self.db = db
        self.clock = clock
        self.hot_folder = Path(settings.hot_folder)
        self.spool_dir = Path(settings.spool_dir)

    # -- the hot folder ------------------------------------------------------------

    def take(self, path: Path) -> int | None:
        """Queue ``path`` (inside the hot folder) as a job, or reject it. Returns the job id."""
        relpath = path.relative_to(self.hot_folder)
        if naming.is_ignored_path(relpath) or not os.path.lexists(path):
            return None
        if _through_symlink(self.hot_folder, relpath):
            return None  # reached through a linked folder: the link itself is refused
        try:
            check_regular(path)  # first: a link's own name says nothing about its target
            naming.check_extension(path.name)
            destination = naming.parse_destination(relpath)
            found = inspect_file(path)
        except IntakeError as exc:
            self.reject(path, exc.message)
            return None
        return self._queue(path, relpath, destination, found, move=True)

    def reject(self, path: Path, reason: str) -> Path | None:
        """Move ``path`` to the failed folder with ``<name>.txt`` holding ``reason``."""
        tag = "rejected-" + self.clock().strftime("%Y%m%d-%H%M%S")
        failed = Path(self.settings.failed_folder)
        try:
            dest = files.move_no_clobber(path, failed, path.name, tag=tag)
            files.write_reason(files.reason_path(dest), reason)
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.error(
                "outbound.reject_move_failed",
                path=str(path),
                reason=reason,
                error=str(exc),
                fix=f"check that faxd can write to {failed}",
            )
            return None
        log.warning("outbound.rejected", file=path.name, reason=reason, moved_to=str(dest))
        return dest

    # -- faxd send -------------------------------------------------------------------

    def queue_copy(self, path: Path, faxno: str, recipname: str) -> int:
        """Queue a copy of ``path`` (anywhere) for ``faxno``; the original stays put."""
        naming.check_extension(path.name)
        found = inspect_file(path)
        destination = naming.Destination(faxno, recipname[: naming.RECIPIENT_MAX])
        job_id = self._queue(path.absolute(), None, destination, found, move=False)
        assert job_id is not None  # a failed copy raises instead
        return job_id

    # -- crash recovery --------------------------------------------------------------

    def reconcile(self) -> None:
        """Finish spool moves a crash interrupted (run before the first scan)."""
        with self.db.session() as session:
            # Only these can be resumed (see ensure_spooled); for the rest it is a no-op.
            ids = session.scalars(
                select(OutboundJob.id).where(
                    OutboundJob.state == JobState.QUEUED.value,
                    OutboundJob.faxage_jobid.is_(None),
                )
            ).all()
        for job_id in ids:
            self.ensure_spooled(job_id)

    def ensure_spooled(self, job_id: int) -> bool:
        """Make sure the job's file is in the spool; False if it is gone for good."""
        with self.db.session() as session:
            job = session.get(OutboundJob, job_id)
            if job is None:
                return False
            spool = Path(job.spool_path)
            source = self.source_path(job)
            sha256, size, faxno = job.sha256, job.size, job.faxno
            # Only a job never claimed can have been cut off before its file reached
            # the spool; any later state found it there (and follow-up moves it on).
            resumable = job.state == JobState.QUEUED.value and job.faxage_jobid is None
        if spool.exists():
            return True
        if not resumable:
            return False
        tmp = _spool_tmp(spool)
        if tmp.exists() and file_sha256(tmp) == sha256:
            # The copy finished and the source was removed; only the rename is left.
            os.replace(tmp, spool)
            fsync_dir(spool.parent)
            return True
        if source is None or not os.path.lexists(source) or os.path.islink(source):
            return False
        if not _same_file(source, sha256, size):
            # A newer document under the same name: it is its own job, never this one's.
            return False
        log.warning("outbound.spool_move_resumed", job_id=job_id, faxno=faxno, source=str(source))
        self._spool(source, spool, move=source.is_relative_to(self.hot_folder))
        return True

    def source_path(self, job: OutboundJob) -> Path | None:
        """Where the job's file came from (absolute for `faxd send`, else in the outbox)."""
        if not job.source_relpath:
            return None
        return self.hot_folder / job.source_relpath

    # -- internals -------------------------------------------------------------------

    def _queue(
        self,
        path: Path,
        relpath: PurePath | None,
        destination: naming.Destination,
        found: Inspected,
        *,
        move: bool,
    ) -> int | None:
        now = self.clock()
        with self.db.session() as session:
            job = OutboundJob(
                state=JobState.QUEUED.value,
                faxno=destination.faxno,
                recipname=destination.recipname,
                source_name=path.name,
                source_relpath=str(relpath if relpath is not None else path),
                spool_path="",
                size=found.size,
                sha256=found.sha256,
                created_at=now,
                updated_at=now,
            )
            session.add(job)
            session.flush()
            job.spool_path = str(self.spool_dir / f"{job.id}-{path.name}")
            job_id, spool = job.id, Path(job.spool_path)
        try:
            self._spool(path, spool, move=move)
        except OSError as exc:
            # The file provably did not move (no crash): drop the row, or every
            # rescan would add another job for the same file.
            self._forget_job(job_id)
            if not move:
                raise
            log.error(
                "outbound.spool_move_failed",
                file=path.name,
                error=str(exc),
                fix=f"check that faxd can move files from {path.parent} into {self.spool_dir}",
            )
            return None
        log.info(
            "outbound.queued",
            job_id=job_id,
            faxno=destination.faxno,
            file=path.name,
            size=found.size,
        )
        return job_id

    def _forget_job(self, job_id: int) -> None:
        with self.db.session() as session:
            job = session.get(OutboundJob, job_id)
            if job is not None:
                session.delete(job)

    def _spool(self, source: Path, spool: Path, *, move: bool) -> None:
        """Rename (outbox) or copy (`faxd send`) ``source`` to ``spool``.

        Across file systems the bytes go to a temporary name first, then the
        outbox file is removed, then the temporary is renamed: a crash at any
        point leaves either the source or a complete temporary to resume from.
        """
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        if move:
            try:
                os.rename(source, spool)
                # Whoever wrote the file may never have fsync'd it: without this a
                # power cut could leave the job's only copy empty.
                fsync_file(spool)
                fsync_dir(source.parent)
                fsync_dir(self.spool_dir)
                return
            except OSError as exc:
                if exc.errno != errno.EXDEV:
                    raise
        tmp = _spool_tmp(spool)
        tmp.unlink(missing_ok=True)
        files.copy_durably(source, tmp)
        fsync_dir(self.spool_dir)
        if move:
            os.unlink(source)
            fsync_dir(source.parent)
        os.replace(tmp, spool)
        fsync_dir(self.spool_dir)


def _through_symlink(root: Path, relpath: PurePath) -> bool:
    """Whether a folder between ``root`` and the file is a symlink (leads outside)."""
    current = root
    for part in relpath.parts[:-1]:
        current = current / part
        if current.is_symlink():
            return True
    return False


def _spool_tmp(spool: Path) -> Path:
    return spool.with_name(f".{spool.name}.faxd-tmp")


def _same_file(path: Path, sha256: str | None, size: int | None) -> bool:
    """Whether ``path`` holds the bytes a job recorded (by hash, else by size)."""
    try:
        if sha256:
            return file_sha256(path) == sha256
        return size is None or os.lstat(path).st_size == size
    except OSError:
        return False


def fail_job_file(job: OutboundJob, settings: OutboundSettings, reason: str) -> Path | None:
    """Move a job's spool file to the failed folder with the reason beside it."""
    spool = Path(job.spool_path)
    if not os.path.lexists(spool):
        return None
    dest = files.move_no_clobber(
        spool, Path(settings.failed_folder), job.source_name, tag=str(job.id)
    )
    files.write_reason(files.reason_path(dest), reason)
    return dest
