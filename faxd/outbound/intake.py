"""Turn a settled file into exactly one queued job, or reject it with a reason.

Checks (in this order): a file reached through a linked folder is left
alone; a symlink or anything but a regular file is refused and never
opened; the type must be one the sending provider takes or faxd converts to
PDF (:mod:`faxd.outbound.accepted`); the name or folder must carry a
10-digit number; the file must not be empty, not larger than
``[outbound] max_file_mb``, and must be readable.  A reject moves the file to
the failed folder with ``<name>.txt`` beside it.

The bytes sent are the bytes checked: the folder holding the file is
opened from the hot folder down, one ``O_NOFOLLOW`` component at a time
(:func:`files.open_folder`), and everything after (open, unlink, the move
of a rejected file) happens relative to that pinned folder, so a subfolder
swapped for a symlink cannot lead outside the outbox.  The file is opened
once with ``O_NOFOLLOW`` and checked with ``fstat``, then hashed and copied
into a new private spool file *from that descriptor*, never by its name, so
a symlink swapped in meanwhile is never read.  The copy and the removal of
the source happen under the spool lock, only while the source's name still
leads to the inode that was checked: of two takers racing for one file (the
daemon and ``faxd send``) only the one that removes it keeps its job.  The
submitter checks size and sha256 of the spool copy again before every POST.
In polling mode (a network share, where no close event says a writer is
done) the source's descriptor is also kept until the job leaves
``queued``/``submitting``, and every submit attempt refuses a file that grew
or changed after it was taken.

Crash safety (DESIGN invariant 5): the job row is committed first, recording
the spool path ``<job_id>-<name>`` it is about to have; then the file is
copied there.  A crash between the two leaves a queued row whose spool file
is missing while the source is still in the outbox; :meth:`Intake.reconcile`
(run at start-up, before the first scan) finishes the copy for that row, so the
file is neither lost nor taken as a second job.

Several instances sharing the hot folder (DESIGN "Several instances"): before
it is even opened, a dropped file is renamed into this instance's claim folder
(:mod:`faxd.outbound.claimfolder`); an instance that loses that rename leaves
the file alone, so only one ever creates a job for it.  Everything above then
happens in the claim folder, and a file that becomes neither a job nor a
reject is put back.  The job row is born claimed by this instance
(:mod:`faxd.outbound.jobclaims`) until its file is in the spool, so no other
instance takes the job meanwhile.  :meth:`Intake.recover` adopts what dead
instances had claimed and takes what is left in this instance's claim folder.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePath

import structlog
from sqlalchemy import select

from faxd.clock import Clock, system_clock
from faxd.config import OutboundSettings
from faxd.durable import fsync_dir
from faxd.errors import FileChangedError, IntakeError
from faxd.filemodes import make_dirs
from faxd.outbound import files, naming
from faxd.outbound.accepted import Acceptance
from faxd.outbound.claimfolder import IN_PLACE, ClaimFolders
from faxd.outbound.documents import (
    Inspected,
    check_regular,
    hash_document,
    open_document,
)
from faxd.outbound.jobclaims import JobClaims
from faxd.store.claims import Claims
from faxd.store.db import Database
from faxd.store.models import OutboundJob
from faxd.store.states import JobState

log = structlog.get_logger(__name__)

#: Taken instead of the spool folder's flock where the share cannot lock (ENOLCK).
_NO_FLOCK = threading.Lock()
#: At most this many taken sources are kept open for the polling-mode re-check.
MAX_HELD = 256
#: The reason a job gets when its file changed after faxd took it.
CHANGED_REASON = "changed while being sent; drop it again"
#: Why opening a file's folder found nothing to take (gone, or a link in the way).
_NOT_THERE = (errno.ENOENT, errno.ELOOP, errno.ENOTDIR)
#: The states in which a job may still be submitted from its source.
_SUBMITTABLE = (JobState.QUEUED.value, JobState.SUBMITTING.value)


@dataclass(frozen=True)
class _Held:
    """A taken source file's descriptor, kept (polling mode) to see it change until submit."""

    fd: int
    size: int
    mtime_ns: int
    sha256: str = ""  # as taken: the job's own becomes the PDF's if it is converted


class Intake:
    """Creates jobs from settled outbox files and from ``faxd send``."""

    def __init__(
        self,
        settings: OutboundSettings,
        db: Database,
        *,
        clock: Clock = system_clock,
        accepts: Acceptance | None = None,
        claims: Claims | None = None,
        flock: Callable[[int, int], None] = fcntl.flock,
    ) -> None:
        self.settings = settings
        self._flock = flock  # the spool folder's lock (a share may refuse it: ENOLCK)
        #: The types the sending provider takes or faxd converts (FAXAGE's by default).
        self.accepts = accepts or Acceptance()
        self.db = db
        self.clock = clock
        self.hot_folder = Path(settings.hot_folder)
        self.spool_dir = Path(settings.spool_dir)
        #: Which instance this is among those sharing the database and the hot folder.
        self.claims = claims or Claims.solo(db, clock=clock)
        #: Job claims, shared with the submitter and follow-up built on this intake.
        self.jobs = JobClaims(self.claims.jobs)
        self.claim_folders = ClaimFolders(self.hot_folder, self.claims.name)
        self.max_file_mb = settings.max_file_mb
        self.country = settings.country
        # Rejected files whose source could not be removed: (relpath, dev, ino, size,
        # mtime) -> not copied to the failed folder again on every rescan.
        self._rejected: set[tuple[str, int, int, int, int]] = set()
        self._held: dict[int, _Held] = {}
        self._held_lock = threading.Lock()
        self._cap_logged = False  # "the re-check is off" is said once per time the cap is hit
        self._flock_warned = False  # "the share cannot lock" is said once

    # -- the hot folder ------------------------------------------------------------

    def take(self, path: Path) -> int | None:
        """Queue ``path`` (inside the hot folder) as a job, or reject it. Returns the job id."""
        relpath = path.relative_to(self.hot_folder)
        if naming.is_ignored_path(relpath):
            return None
        try:
            folder_fd = files.open_folder(self.hot_folder, relpath)
        except OSError as exc:
            if exc.errno in _NOT_THERE:
                return None  # gone, or reached through a linked folder: the link is refused
            raise
        try:
            return self._claim_and_take(folder_fd, path, relpath)
        finally:
            os.close(folder_fd)

    def _claim_and_take(self, folder_fd: int, path: Path, relpath: PurePath) -> int | None:
        """Rename the file into this instance's claim folder first; take it only if it came."""
        if not self._waiting(folder_fd, path):
            return None
        claimed = self.claim_folders.claim(folder_fd, relpath)
        if claimed is IN_PLACE:
            return self._take_in(folder_fd, path, relpath)
        if claimed is None:
            log.debug("outbound.taken_elsewhere", file=path.name)
            return None
        try:
            return self._take_in(claimed, path, relpath)
        finally:
            try:
                # Neither a job nor a reject (still being written, the spool failed):
                # back where the person put it, to be taken again like a new drop.
                self.claim_folders.put_back(claimed, folder_fd, path.name)
            finally:
                os.close(claimed)
                self.claim_folders.tidy(relpath)

    def _take_in(self, folder_fd: int, path: Path, relpath: PurePath) -> int | None:
        """:meth:`take` for ``path``, whose file lies under its name in the folder ``folder_fd``.

        That folder is the outbox folder the file was dropped in, or the claim
        folder it was renamed into (:mod:`faxd.outbound.claimfolder`).
        """
        if not self._waiting(folder_fd, path):
            return None
        try:
            # first: a link's own name says nothing about its target
            check_regular(path, dir_fd=folder_fd)
            self.accepts.check(path.name)
            destination = naming.parse_destination(relpath, self.country)
            fd, st = open_document(path, dir_fd=folder_fd)
        except IntakeError as exc:
            self._reject(folder_fd, path, exc.message)
            return None
        try:
            try:
                found = hash_document(path.name, fd, st, self.max_file_mb)
            except IntakeError as exc:
                self._reject(folder_fd, path, exc.message)
                return None
            return self._queue(fd, st, path, relpath, destination, found, folder_fd=folder_fd)
        finally:
            os.close(fd)

    def _waiting(self, folder_fd: int, path: Path) -> bool:
        """Whether ``path``'s name is (still) in ``folder_fd`` and not a reject already seen."""
        try:
            os.stat(path.name, dir_fd=folder_fd, follow_symlinks=False)
        except FileNotFoundError:
            return False
        return not self._already_rejected(path, folder_fd)

    def take_over(self, path: Path, faxno: str, recipname: str) -> int:
        """Queue a file that lies in the hot folder for ``faxno`` and take it out of there.

        ``faxd send`` on an outbox file: the file moves into the spool like a
        dropped one (so the hot folder cannot make a second job of it).
        """
        self.accepts.check(path.name)
        relpath = path.relative_to(self.hot_folder)
        try:
            folder_fd = files.open_folder(self.hot_folder, relpath)
        except OSError as exc:
            raise IntakeError(
                f"the folder of {path.name!r} cannot be opened ({exc.strerror}); faxd never "
                "follows a linked folder in the outbox: put the document in a real folder"
            ) from None
        try:
            fd, st = open_document(path, dir_fd=folder_fd)
            try:
                found = hash_document(path.name, fd, st, self.max_file_mb)
                destination = naming.Destination(faxno, recipname[: naming.RECIPIENT_MAX])
                job_id = self._queue(fd, st, path, relpath, destination, found, folder_fd=folder_fd)
            finally:
                os.close(fd)
            gone = job_id is None and not files.is_same(folder_fd, path.name, st)
        finally:
            os.close(folder_fd)
        if job_id is None:
            if gone:
                raise IntakeError(
                    f"{path.name!r} left the outbox while faxd took it (the running daemon "
                    "may have queued it already); check faxd jobs before sending it again"
                )
            raise IntakeError(
                f"{path.name!r} changed or could not be moved while faxd took it; "
                "wait until it is complete and run faxd send again"
            )
        return job_id

    def _reject(self, folder_fd: int, path: Path, reason: str) -> Path | None:
        """Move ``path`` (its folder pinned as ``folder_fd``) to failed/ with the reason."""
        tag = "rejected-" + self.clock().strftime("%Y%m%d-%H%M%S")
        failed = Path(self.settings.failed_folder)
        try:
            try:
                dest = files.move_no_clobber(path, failed, path.name, tag=tag, src_dir_fd=folder_fd)
            except files.SourceKeptError as kept:
                # Copied but not removed (a read-only outbox folder): say why beside the
                # copy, and remember the file so a rescan does not copy it again.
                files.write_reason(files.reason_path(kept.dest), reason)
                raise
            files.write_reason(files.reason_path(dest), reason)
        except FileNotFoundError:
            return None
        except OSError as exc:
            key = self._rejected_key(path, folder_fd)
            if key is not None:
                self._rejected.add(key)
            log.error(
                "outbound.reject_move_failed",
                path=str(path),
                reason=reason,
                error=str(exc),
                fix=f"check that faxd can write to {failed} and to {path.parent}",
            )
            return None
        log.warning("outbound.rejected", file=path.name, reason=reason, moved_to=str(dest))
        return dest

    def _rejected_key(self, path: Path, folder_fd: int) -> tuple[str, int, int, int, int] | None:
        try:
            st = os.stat(path.name, dir_fd=folder_fd, follow_symlinks=False)
        except OSError:
            return None
        return (str(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)

    def _already_rejected(self, path: Path, folder_fd: int) -> bool:
        if not self._rejected:
            return False
        key = self._rejected_key(path, folder_fd)
        if key in self._rejected:
            return True
        # Forget what is gone or changed (a new document under the same name is new).
        self._rejected = {k for k in self._rejected if k[0] != str(path)}
        return False

    # -- faxd send -------------------------------------------------------------------

    def queue_copy(self, path: Path, faxno: str, recipname: str) -> int:
        """Queue a copy of ``path`` (anywhere) for ``faxno``; the original stays put."""
        self.accepts.check(path.name)
        fd, st = open_document(path)
        try:
            found = hash_document(path.name, fd, st, self.max_file_mb)
            destination = naming.Destination(faxno, recipname[: naming.RECIPIENT_MAX])
            job_id = self._queue(fd, st, path.absolute(), None, destination, found)
        finally:
            os.close(fd)
        if job_id is None:
            raise IntakeError(
                f"{path.name!r} changed while faxd copied it; wait until it is complete "
                "and run faxd send again"
            )
        return job_id

    # -- polling mode: a taken file must not change until it is sent -------------------

    def source_unchanged(self, job_id: int, sha256: str | None) -> bool:
        """Whether the job's source (kept open in polling mode) still holds what was taken.

        Size, mtime and sha256 are compared.  True when nothing is held (inotify
        mode, a ``faxd send`` copy, or a daemon restarted since).  The
        descriptor stays held, so a retry after a transient error checks
        again; :meth:`release` and :meth:`release_finished` close it.
        """
        with self._held_lock:
            held = self._held.get(job_id)
            if held is None:
                return True
            fd = os.dup(held.fd)  # a release meanwhile must not close it under us
        try:
            st = os.fstat(fd)
            if (st.st_size, st.st_mtime_ns) != (held.size, held.mtime_ns):
                return False
            expected = held.sha256 or sha256
            return expected is None or files.hash_fd(fd)[1] == expected
        except OSError:
            return False
        finally:
            os.close(fd)

    def release(self, job_id: int | None = None) -> None:
        """Close the held descriptor of ``job_id`` (of every job when ``None``)."""
        with self._held_lock:
            if job_id is None:
                held, self._held = list(self._held.values()), {}
            else:
                one = self._held.pop(job_id, None)
                held = [one] if one is not None else []
        for item in held:
            os.close(item.fd)

    def release_finished(self) -> None:
        """Close the descriptors of jobs no longer ``queued`` or ``submitting``.

        A job cancelled (maybe by ``faxd cancel`` in another process), sent or
        failed will not be submitted again from its source; without this its
        descriptor would stay open until the daemon stops and use up the cap.
        """
        with self._held_lock:
            ids = list(self._held)
        if not ids:
            return
        with self.db.session() as session:
            live = set(
                session.scalars(
                    select(OutboundJob.id).where(
                        OutboundJob.id.in_(ids),
                        OutboundJob.state.in_(_SUBMITTABLE),
                    )
                ).all()
            )
        for job_id in ids:
            if job_id not in live:
                self.release(job_id)

    # -- crash recovery --------------------------------------------------------------

    def recover(self) -> int:
        """Crash recovery of the hot folder (start-up and every rescan); how many jobs it queued.

        Files a dead instance had claimed are adopted first, then spool copies
        a crash interrupted are finished, then what is still in this
        instance's claim folder is taken as if it had just been claimed.
        """
        self.adopt_dead()
        self.reconcile()
        return self.take_leftovers()

    def reconcile(self) -> None:
        """Finish spool copies a crash interrupted (run before the first scan)."""
        now = self.clock()
        with self.db.session() as session:
            # Only these can be resumed (see ensure_spooled); for the rest it is a no-op.
            rows = session.execute(
                select(OutboundJob.id, OutboundJob.spool_path).where(
                    OutboundJob.state == JobState.QUEUED.value,
                    OutboundJob.remote_jobid.is_(None),
                    self.jobs.available(now),
                )
            ).all()
        for job_id, spool in rows:
            if os.path.lexists(spool):
                continue  # the common case: nothing was cut off
            if not self.jobs.take(job_id):
                continue  # being created or resumed right now (here or elsewhere)
            try:
                self.ensure_spooled(job_id)
            finally:
                self.jobs.give_back(job_id)

    def adopt_dead(self) -> int:
        """Move the files claimed by instances that died into this instance's claim folder.

        Returns how many files were moved (:meth:`take_leftovers` takes them).
        """
        dead = [name for name in self.claims.dead_instances() if self.claim_folders.holds(name)]
        if not dead:
            return 0
        adopted = 0
        with self._spool_lock():  # not while a resumed copy reads from their folder
            for name in dead:
                moved = self.claim_folders.adopt(name)
                adopted += moved
                if moved:
                    log.warning(
                        "outbound.claims_adopted",
                        instance=name,
                        files=moved,
                        detail="files that instance had claimed before it stopped are taken here",
                    )
        return adopted

    def take_leftovers(self) -> int:
        """Take the files in this instance's claim folder that no job waits for; how many."""
        queued = 0
        for relpath in self.claim_folders.leftovers():
            if self._awaits_resume(relpath):
                continue  # a job's interrupted copy needs it (ensure_spooled)
            try:
                claim_fd = self.claim_folders.open_claimed(relpath)
            except OSError as exc:
                log.warning("outbound.claim_unreadable", file=str(relpath), error=str(exc))
                continue
            try:
                log.info("outbound.claim_taken_again", file=str(relpath))
                if self._take_in(claim_fd, self.hot_folder / relpath, relpath) is not None:
                    queued += 1
            finally:
                os.close(claim_fd)
                self.claim_folders.tidy(relpath)
        return queued

    def _awaits_resume(self, relpath: PurePath) -> bool:
        """Whether a queued job whose copy into the spool was cut off came from ``relpath``."""
        with self.db.session() as session:
            spools = session.scalars(
                select(OutboundJob.spool_path).where(
                    OutboundJob.source_relpath == str(relpath),
                    OutboundJob.state == JobState.QUEUED.value,
                    OutboundJob.remote_jobid.is_(None),
                )
            ).all()
        return any(not os.path.lexists(spool) for spool in spools)

    def ensure_spooled(self, job_id: int) -> bool:
        """Make sure the job's file is in the spool; False if it is gone for good."""
        with self.db.session() as session:
            job = session.get(OutboundJob, job_id)
            if job is None:
                return False
            spool = Path(job.spool_path)
            source_relpath = job.source_relpath
            sha256, size, faxno = job.sha256, job.size, job.faxno
            # Only a job never claimed can have been cut off before its file reached
            # the spool; any later state found it there (and follow-up moves it on).
            resumable = job.state == JobState.QUEUED.value and job.remote_jobid is None
        if os.path.lexists(spool):
            return True  # what it holds is checked before every POST
        if not resumable:
            return False
        with self._spool_lock():  # intake (maybe another process) may be copying it now
            sources = self._sources(source_relpath)
            return self._resume(job_id, spool, sources, sha256, size, faxno)

    def _sources(self, source_relpath: str) -> list[Path]:
        """Where a job's file may still lie if its copy into the spool was cut off.

        A dropped file lies in the claim folder of the instance that took it
        (this one, or a dead one whose folder is not adopted yet); one that
        ``faxd send`` took over lies in the outbox itself; a copy ``faxd send``
        made comes from anywhere (an absolute path).
        """
        if not source_relpath:
            return []
        given = Path(source_relpath)
        if given.is_absolute():
            return [given]
        places = [self.claim_folders.mine / given, self.hot_folder / given]
        if not any(os.path.lexists(place) for place in places):
            places += [
                self.claim_folders.root / name / given for name in self.claims.dead_instances()
            ]
        return places

    def _resume(
        self,
        job_id: int,
        spool: Path,
        sources: list[Path],
        sha256: str | None,
        size: int | None,
        faxno: str,
    ) -> bool:
        if os.path.lexists(spool):
            return True
        tmp = _spool_tmp(spool)
        present = [source for source in sources if os.path.lexists(source)]
        if _holds(tmp, sha256, size) and not any(
            source.is_relative_to(self.hot_folder) for source in present
        ):
            # The copy finished and the source was removed; only the rename is left.
            return _rename_copy(tmp, spool)
        # A complete copy with the source still in the outbox: the crash fell between
        # the copy and the source's removal.  Renaming the copy alone would leave the
        # source to become a second job (a second fax); the move is redone instead.
        for source in present:
            if self._resume_source(job_id, spool, source, sha256, size, faxno):
                return True
        # The outbox name now holds another document (its own job): ours is the copy.
        return _holds(tmp, sha256, size) and _rename_copy(tmp, spool)

    def _resume_source(
        self,
        job_id: int,
        spool: Path,
        source: Path,
        sha256: str | None,
        size: int | None,
        faxno: str,
    ) -> bool:
        """Redo the move of ``source`` into the spool if it holds the job's bytes."""
        folder_fd = None
        if source.is_relative_to(self.hot_folder):
            try:
                folder_fd = files.open_folder(self.hot_folder, source.relative_to(self.hot_folder))
            except OSError:
                return False
        try:
            return self._resume_from(job_id, spool, source, folder_fd, sha256, size, faxno)
        finally:
            if folder_fd is not None:
                os.close(folder_fd)

    def _resume_from(
        self,
        job_id: int,
        spool: Path,
        source: Path,
        folder_fd: int | None,
        sha256: str | None,
        size: int | None,
        faxno: str,
    ) -> bool:
        try:
            fd, st = open_document(source, dir_fd=folder_fd)
        except IntakeError:
            return False
        except FileNotFoundError:
            return False
        try:
            found = Inspected(*files.hash_fd(fd))
            if (sha256 and found.sha256 != sha256) or (size is not None and found.size != size):
                # A newer document under the same name: it is its own job, never this one's.
                return False
            log.warning(
                "outbound.spool_move_resumed", job_id=job_id, faxno=faxno, source=str(source)
            )
            self._copy_in(fd, st, source, spool, found, folder_fd=folder_fd)
        except FileChangedError:
            return False
        finally:
            os.close(fd)
        return True

    # -- internals -------------------------------------------------------------------

    def _queue(
        self,
        fd: int,
        st: os.stat_result,
        path: Path,
        relpath: PurePath | None,
        destination: naming.Destination,
        found: Inspected,
        *,
        folder_fd: int | None = None,
    ) -> int | None:
        """Commit the job row, then copy the file into the spool (see the module doc).

        With ``folder_fd`` (the source's pinned outbox folder) the source is
        moved: removed once copied, and the job kept only if this taker removed it.
        """
        job_id, spool = self._insert_job(path, relpath, destination, found)
        try:
            return self._spool_new(fd, st, path, spool, job_id, destination, found, folder_fd)
        finally:
            self.jobs.give_back(job_id)

    def _insert_job(
        self,
        path: Path,
        relpath: PurePath | None,
        destination: naming.Destination,
        found: Inspected,
    ) -> tuple[int, Path]:
        """Commit the job row, claimed by this thread until its file is in the spool.

        Born claimed, so no other instance can take the job (and fail it for
        a spool file that is still being copied) before it is ready.
        """
        now = self.clock()
        born: int | None = None
        try:
            with self.db.session() as session:
                job = OutboundJob(
                    state=JobState.QUEUED.value,
                    instance=self.jobs.instance,
                    lease_until=self.jobs.lease_until(now),
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
                born = job.id
                self.jobs.born(born)  # before the commit: no other thread sees it unclaimed
                return born, Path(job.spool_path)
        except BaseException:
            if born is not None:
                self.jobs.forget(born)
            raise

    def _spool_new(
        self,
        fd: int,
        st: os.stat_result,
        path: Path,
        spool: Path,
        job_id: int,
        destination: naming.Destination,
        found: Inspected,
        folder_fd: int | None,
    ) -> int | None:
        """Copy a new job's file into the spool (moved, with ``folder_fd``); the job id or None."""
        move = folder_fd is not None
        try:
            self._spool(fd, st, path, spool, found, folder_fd=folder_fd)
        except FileChangedError as exc:
            # Still being written: not a job yet; its next write brings it back.
            self._forget_job(job_id)
            log.warning("outbound.changed_while_taken", file=path.name, detail=exc.message)
            return None
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
        if move and self.settings.poll_seconds:
            self._hold(job_id, fd, st, found.sha256)
        log.info(
            "outbound.queued",
            job_id=job_id,
            faxno=destination.faxno,
            file=path.name,
            size=found.size,
        )
        return job_id

    def _hold(self, job_id: int, fd: int, st: os.stat_result, sha256: str) -> None:
        with self._held_lock:
            # Bounded: a burst on a share while FAXAGE is down must not use up
            # the descriptors; beyond the cap a job goes without the re-check.
            if len(self._held) < MAX_HELD:
                self._held[job_id] = _Held(os.dup(fd), st.st_size, st.st_mtime_ns, sha256)
                self._cap_logged = False
                return
            if self._cap_logged:
                return
            self._cap_logged = True
        log.warning(
            "outbound.recheck_cap_reached",
            held=MAX_HELD,
            detail="files taken from now on are not re-checked against their source at submit",
            fix="let FAXAGE catch up with the queue (faxd jobs) or use inotify instead of polling",
        )

    @contextlib.contextmanager
    def _spool_lock(self) -> Iterator[None]:
        """Held while a file is copied into the spool, across threads and processes.

        The job row is committed before its copy exists, so the submitter (or
        the daemon, for a ``faxd send`` copy) may find the row first; it waits
        here instead of starting a second copy of the same file.
        """
        make_dirs(self.spool_dir)  # faxd's own state: 0700 whatever the umask
        fd = os.open(self.spool_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            try:
                self._flock(fd, fcntl.LOCK_EX)
            except OSError as exc:
                if exc.errno not in (errno.ENOLCK, errno.EOPNOTSUPP):
                    raise
                # A network share without a lock manager (NFS without lockd): the
                # threads of this process still take turns; only a `faxd send`
                # racing the daemon for the same job is left unguarded.
                self._unlocked_spool(exc)
                with _NO_FLOCK:
                    yield
                return
            yield
        finally:
            os.close(fd)  # releases the lock

    def _unlocked_spool(self, exc: OSError) -> None:
        if self._flock_warned:
            return
        self._flock_warned = True
        log.warning(
            "outbound.spool_lock_unsupported",
            folder=str(self.spool_dir),
            error=exc.strerror,
            fix="enable file locking on the share (NFS: run the lock manager, not nolock)",
        )

    def _forget_job(self, job_id: int) -> None:
        with self.db.session() as session:
            job = session.get(OutboundJob, job_id)
            if job is not None:
                session.delete(job)

    def _spool(
        self,
        fd: int,
        st: os.stat_result,
        source: Path,
        spool: Path,
        found: Inspected,
        *,
        folder_fd: int | None,
    ) -> None:
        """Copy the open document into a new private spool file; remove the outbox source.

        The bytes come from the descriptor that was checked, into a temporary
        name, fsync'd; then the source is removed (only if its name still leads
        to the same inode), then the temporary is renamed: a crash at any point
        leaves either the source or a complete temporary to resume from.
        """
        with self._spool_lock():
            if not os.path.lexists(spool):  # else the submitter finished it meanwhile
                self._copy_in(fd, st, source, spool, found, folder_fd=folder_fd)

    def _copy_in(
        self,
        fd: int,
        st: os.stat_result,
        source: Path,
        spool: Path,
        found: Inspected,
        *,
        folder_fd: int | None,
    ) -> None:
        """Copy, then remove the source in ``folder_fd`` (if given); run under the spool lock.

        Another taker of the same file (``faxd send`` racing the daemon) holds
        the lock in turn: whoever comes second finds the name gone or leading
        elsewhere and gets :class:`FileChangedError`, so one file is one job.
        """
        if folder_fd is not None and not files.is_same(folder_fd, source.name, st):
            raise FileChangedError(f"{source.name!r} was taken or replaced meanwhile")
        tmp = _spool_tmp(spool)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        copied = Inspected(*files.copy_fd_to_new(fd, tmp))
        if copied != found:
            os.unlink(tmp)
            raise FileChangedError(
                f"{source.name!r} changed while faxd copied it into the spool "
                f"({found.size} -> {copied.size} bytes)"
            )
        fsync_dir(self.spool_dir)
        if folder_fd is not None and not files.unlink_if_same(source, st, dir_fd=folder_fd):
            os.unlink(tmp)
            raise FileChangedError(f"{source.name!r} was taken or replaced meanwhile")
        os.replace(tmp, spool)
        fsync_dir(self.spool_dir)


def _spool_tmp(spool: Path) -> Path:
    return spool.with_name(f".{spool.name}.faxd-tmp")


def _rename_copy(tmp: Path, spool: Path) -> bool:
    """Put a complete spool copy in place under its final name."""
    os.replace(tmp, spool)
    fsync_dir(spool.parent)
    return True


def _holds(path: Path, sha256: str | None, size: int | None) -> bool:
    """Whether ``path`` (never followed) holds the bytes a job recorded (by hash, else size)."""
    try:
        fd, st = files.open_nofollow(path)
    except OSError:
        return False
    try:
        if not stat.S_ISREG(st.st_mode):
            return False
        found_size, found_sha = files.hash_fd(fd)
    except OSError:
        return False
    finally:
        os.close(fd)
    if sha256:
        return found_sha == sha256
    return size is None or found_size == size


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
