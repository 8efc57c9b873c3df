"""Claim folders: how faxd instances sharing one hot folder take each dropped file once.

Two servers watching the same outbox on a network share (NFS or SMB, polling
mode) see a new file settle at about the same moment.  The database cannot
arbitrate a file that has no row yet, and a lock on one machine means nothing
to the other, so the file system does: before it even opens the file, a taker
renames it into its own claim folder, ``<hot>/.faxd-claims/<instance>/<relpath>``.
A rename within one file system is atomic, on NFS and SMB as locally: of two
instances renaming the same name, one succeeds and the other gets ``ENOENT``
and leaves the file alone.  Only the winner opens, checks, spools or rejects
the file, so only the winner ever creates a job row for it.

The claim folder lies inside the hot folder, so it is on the same file system,
and its name starts with a dot, so the watcher's scan and
:func:`faxd.outbound.naming.is_ignored_path` never take it for a drop.  Below
the instance's folder the file keeps its path relative to the hot folder, so
a number read from a subfolder's name (``outbox/3035551212/report.pdf``) still
holds for the claimed file.

A file found in a claim folder was claimed but did not (yet) become a job or
a reject: its instance crashed in between.  Intake takes what is in its own
folder again, and first adopts, by the same atomic rename, what the claim
folder of a dead instance holds (:meth:`faxd.store.claims.Claims.dead_instances`).

Where the rename cannot be done (a read-only outbox folder, a subfolder on
another file system) the file is taken in place as before this module
existed: intake keeps a job only if it removed the source itself, so a file
still becomes one job.
"""

from __future__ import annotations

import contextlib
import enum
import errno
import os
import stat
from pathlib import Path, PurePath

import structlog

from faxd.durable import fsync_dir_fd
from faxd.outbound import files
from faxd.outbound.naming import is_ignored_name

log = structlog.get_logger(__name__)

#: The folder inside the hot folder that holds one claim folder per instance.
CLAIMS_DIR = ".faxd-claims"
#: Mode of the claim folders: faxd's own, like the spool (the instances run as one user).
FOLDER_MODE = 0o700
#: A rename into the claim folder that fails with one of these cannot work here at all.
_CANNOT_RENAME = frozenset({errno.EXDEV, errno.EACCES, errno.EPERM, errno.EROFS})


class InPlace(enum.Enum):
    """:meth:`ClaimFolders.claim` cannot rename here: take the file where it lies."""

    IN_PLACE = "in place"


IN_PLACE = InPlace.IN_PLACE


class ClaimFolders:
    """The claim folders in one hot folder, seen from one instance."""

    def __init__(self, hot_folder: Path, instance: str) -> None:
        self.hot_folder = hot_folder
        self.root = hot_folder / CLAIMS_DIR
        self.instance = instance
        self.mine = self.root / instance

    def claim(self, folder_fd: int, relpath: PurePath) -> int | InPlace | None:
        """Rename the file ``relpath`` (its folder pinned as ``folder_fd``) into my claim folder.

        Returns the descriptor of the claim folder now holding it under the
        same name (the caller closes it); ``None`` if another instance took it
        first, or an unfinished claim of mine has that name (it is taken again
        at the next rescan); :data:`IN_PLACE` when no rename can be done here.
        """
        name = relpath.name
        try:
            claim_fd = files.open_folder(self.hot_folder, self.inside(relpath), create=FOLDER_MODE)
        except OSError as exc:
            if exc.errno in _CANNOT_RENAME:
                return IN_PLACE
            raise
        try:
            if _exists(claim_fd, name):
                log.warning(
                    "outbound.claim_pending",
                    file=name,
                    detail="an earlier claim of this name is unfinished; taken at the next rescan",
                )
                os.close(claim_fd)
                return None
            os.rename(name, name, src_dir_fd=folder_fd, dst_dir_fd=claim_fd)
        except FileNotFoundError:
            os.close(claim_fd)
            return None  # another instance renamed it first: it is theirs
        except OSError as exc:
            os.close(claim_fd)
            if exc.errno in _CANNOT_RENAME:
                return IN_PLACE
            raise
        fsync_dir_fd(claim_fd, ignore_unsupported=True)
        return claim_fd

    def put_back(self, claim_fd: int, folder_fd: int, name: str) -> None:
        """Return a claimed file that did not become a job to its outbox folder.

        Never over a newer file of that name: the claim then stays, and is
        taken again at the next rescan.
        """
        if not _exists(claim_fd, name):
            return  # spooled or rejected: nothing left to give back
        try:
            try:
                os.link(
                    name, name, src_dir_fd=claim_fd, dst_dir_fd=folder_fd, follow_symlinks=False
                )
            except FileExistsError:
                return
            except OSError:  # no hard links here (SMB): a rename, after a look
                if not _exists(folder_fd, name):
                    os.rename(name, name, src_dir_fd=claim_fd, dst_dir_fd=folder_fd)
                return
            os.unlink(name, dir_fd=claim_fd)
        except OSError as exc:
            log.warning("outbound.claim_not_returned", file=name, error=str(exc))

    def tidy(self, relpath: PurePath) -> None:
        """Remove the folders below mine that held ``relpath`` once they are empty."""
        for parent in relpath.parents[:-1]:  # deepest first; my own folder stays
            try:
                (self.mine / parent).rmdir()
            except OSError:
                return  # not empty (another claim in it), or gone

    def inside(self, relpath: PurePath) -> PurePath:
        """``relpath`` (relative to the hot folder) as it lies in my claim folder."""
        return PurePath(CLAIMS_DIR, self.instance, relpath)

    def open_claimed(self, relpath: PurePath) -> int:
        """The descriptor of the claim folder holding my claimed ``relpath``."""
        return files.open_folder(self.hot_folder, self.inside(relpath))

    def holds(self, instance: str) -> bool:
        """Whether ``instance`` has a claim folder here (maybe with files to adopt)."""
        return os.path.lexists(self.root / instance)

    def leftovers(self) -> list[PurePath]:
        """The files in my claim folder, as paths relative to the hot folder."""
        return _files_under(self.mine)

    def adopt(self, dead: str) -> int:
        """Move what a dead instance's claim folder holds into mine; how many files."""
        if dead == self.instance or not dead or dead.startswith(".") or "/" in dead:
            return 0
        theirs = self.root / dead
        moved = 0
        for relpath in _files_under(theirs):
            if self._adopt_one(PurePath(dead), relpath):
                moved += 1
        _remove_empty(theirs)
        return moved

    def _adopt_one(self, dead: PurePath, relpath: PurePath) -> bool:
        try:
            src_fd = files.open_folder(self.hot_folder, PurePath(CLAIMS_DIR) / dead / relpath)
        except OSError:
            return False  # gone (another survivor took it) or not a real folder
        try:
            dst_fd = files.open_folder(self.hot_folder, self.inside(relpath), create=FOLDER_MODE)
            try:
                if _exists(dst_fd, relpath.name):
                    log.warning(
                        "outbound.claim_not_adopted", file=str(relpath), reason="name taken"
                    )
                    return False
                os.rename(relpath.name, relpath.name, src_dir_fd=src_fd, dst_dir_fd=dst_fd)
                fsync_dir_fd(dst_fd, ignore_unsupported=True)
                return True
            except FileNotFoundError:
                return False
            finally:
                os.close(dst_fd)
        finally:
            os.close(src_fd)


def _exists(folder_fd: int, name: str) -> bool:
    try:
        os.stat(name, dir_fd=folder_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return True


def _files_under(folder: Path) -> list[PurePath]:
    """Every non-folder below ``folder`` (links not followed), relative to it, sorted.

    Ignored names are left out: nothing with one is ever claimed, and an NFS
    client keeps a removed file that is still open as ``.nfsXXXX`` meanwhile.
    """
    found: list[PurePath] = []
    stack = [PurePath()]
    while stack:
        current = stack.pop()
        try:
            entries = list(os.scandir(folder / current))
        except OSError:
            continue  # gone, or not a folder: nothing to take from it
        for entry in entries:
            if is_ignored_name(entry.name):
                continue
            if entry.is_dir(follow_symlinks=False):
                stack.append(current / entry.name)
            else:
                found.append(current / entry.name)
    return sorted(found)


def _remove_empty(folder: Path) -> None:
    """Remove ``folder`` and the folders below it that are empty (links not followed)."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in entries:
        with contextlib.suppress(OSError):
            if stat.S_ISDIR(entry.stat(follow_symlinks=False).st_mode):
                _remove_empty(Path(entry.path))
    with contextlib.suppress(OSError):
        folder.rmdir()
