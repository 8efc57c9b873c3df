"""Deliver a fax by writing it into a folder, atomically and idempotently.

DESIGN invariants 1 and 2 rest on this module: a fax counts as delivered to a
folder only once its bytes are on disk under their final name, and delivering
the same fax again after a crash must land on the same path with the same
bytes, never beside it as ``name (1).pdf``.  So:

1. The path comes from the route's template (:func:`faxd.templates.render_path`
   makes every value safe for a file name) and must stay inside the template's
   fixed root, the folder written before the first field.
2. Everything below the root is reached through directory file descriptors,
   one ``openat(O_NOFOLLOW)`` per folder: whoever may write the delivery tree
   (office staff) cannot swap a symlink in between a check and the write to
   send a fax elsewhere.  A link found there is refused and the fax stays
   pending.
3. A file already at the path with the same sha256 means "already delivered".
   A different file there is never overwritten, nor is faxd's own spool file
   taken for a delivery (the config loader also refuses such an overlap).
4. Otherwise the spool file is copied to a hidden temporary name in the target
   folder, given its mode (and group), fsync'd, hard-linked to the final name
   (a link never replaces an existing file; file systems without hard links
   fall back to a rename after an existence check), and the folder is fsync'd.
   Modes are set explicitly (0640 files, 0750 folders unless the action says
   otherwise), whatever the umask of whoever started faxd: faxes are private.
5. Temporaries a crashed earlier run left behind are removed the first time
   this process delivers into their folder (:class:`TempSweeper`): once per
   folder, not per fax, because listing a folder costs time in proportion to
   the faxes already in it.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import secrets
import stat
import threading
from pathlib import Path
from typing import Literal

import structlog

from faxd.actions.base import Deliverable
from faxd.config import FolderSpec
from faxd.config.overlaps import fixed_root
from faxd.durable import fsync_dir_fd, hash_fd, open_nofollow
from faxd.errors import DeliveryError
from faxd.filemodes import missing_folders
from faxd.templates import render_path

log = structlog.get_logger(__name__)

_CHUNK = 1024 * 1024
_TEMP_MARK = ".faxd-tmp-"
#: Marks this process's temporaries: a sweep never takes one still being written.
_RUN = secrets.token_hex(4)
# Errors from os.link that mean "this file system has no hard links".
_NO_HARD_LINKS = frozenset(
    {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK, errno.ENOSYS}
)


def template_root(template: str) -> Path:
    """The fixed folder a path template writes under: its literal text before the first
    field (``{{`` read as ``{``), cut back to the last ``/``.
    ``/srv/fax/{dnis}/fax-{recvid}.pdf`` -> ``/srv/fax``.
    """
    return fixed_root(template)[0]


class TempSweeper:
    """Removes the temporaries of earlier runs, once per folder per process.

    A temporary of this run lives only inside :meth:`FolderAction.deliver`,
    which removes it whatever happens; one named for another run was left by
    a run that was killed (or lost power) mid-copy, so it is litter.  Each
    folder is listed once, the first time this process delivers into it.
    Another faxd delivering into the same folder at that moment would see its
    copy fail and retry it later: nothing is lost or doubled.
    """

    def __init__(self, run: str = _RUN) -> None:
        self.run = run
        self._swept: set[Path] = set()
        self._lock = threading.Lock()

    def temp_name(self, name: str) -> str:
        """A fresh hidden name for a copy on its way to ``name``."""
        return f".{name[:200]}{_TEMP_MARK}{self.run}-{secrets.token_hex(6)}"

    def sweep_once(self, folder: Path, dir_fd: int) -> None:
        """Remove other runs' temporaries from ``folder`` (open as ``dir_fd``), once a run."""
        with self._lock:
            if folder in self._swept:
                return
            self._swept.add(folder)
        mine = f"{_TEMP_MARK}{self.run}-"
        try:
            with os.scandir(dir_fd) as entries:
                stale = [
                    entry.name
                    for entry in entries
                    if entry.name.startswith(".")
                    and _TEMP_MARK in entry.name
                    and mine not in entry.name
                    and entry.is_file(follow_symlinks=False)
                ]
        except OSError as exc:
            log.warning(
                "cannot list folder for stale temporaries", path=str(folder), error=str(exc)
            )
            return
        for name in stale:
            path = folder / name
            try:
                os.unlink(name, dir_fd=dir_fd)
                log.info("removed stale temporary file", path=str(path))
            except OSError as exc:
                log.warning("cannot remove stale temporary file", path=str(path), error=str(exc))


#: The sweeper of this process (every FolderAction shares it unless given another).
SWEEPER = TempSweeper()


class FolderAction:
    """Write the fax to the path its route's template names."""

    type = "folder"

    def __init__(self, spec: FolderSpec, *, sweeper: TempSweeper = SWEEPER) -> None:
        self.template = spec.path
        self.root = template_root(spec.path)
        self.file_mode = spec.mode
        self.dir_mode = spec.dir_mode
        self.gid = spec.gid
        self.group = spec.group
        self.sweeper = sweeper

    @property
    def target(self) -> str:
        return f"folder {self.template}"

    def deliver(self, item: Deliverable) -> str:
        """Place the fax at its final path; return that path."""
        final = self.final_path(item)
        try:
            folder_fd = self._open_folder(final.parent)
            try:
                self._place(item, final, folder_fd)
                self.sweeper.sweep_once(final.parent, folder_fd)
            finally:
                os.close(folder_fd)
        except DeliveryError:
            raise
        except OSError as exc:
            raise DeliveryError(_os_error_message(exc, final), transient=True) from exc
        return str(final)

    def final_path(self, item: Deliverable) -> Path:
        """The rendered path for ``item``; refuses one that leaves the template's root."""
        try:
            rendered = Path(render_path(self.template, item.template_fields()))
            root = self.root.resolve()
            resolved = rendered.resolve()
        except (ValueError, OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop
            raise DeliveryError(
                f"cannot use the folder template {self.template!r} of route {item.route!r}: "
                f"{exc}; fix the template or the folders it names",
                transient=False,
            ) from exc
        if resolved == root or not resolved.is_relative_to(root):
            raise DeliveryError(
                f"the folder template {self.template!r} of route {item.route!r} gave "
                f"{str(rendered)!r}, which is outside {str(root)!r} (a symlink may point "
                "elsewhere); fix the template or the folder",
                transient=False,
            )
        return Path(os.path.normpath(rendered.absolute()))

    # -- the walk: folders by descriptor, never through a link below the root ------------

    def _open_folder(self, folder: Path) -> int:
        """An fd of ``folder``, reached from the root without following any link below it.

        Missing folders are made (mode and group set); links and links swapped
        in mid-walk are refused.  Above the root, the admin's own layout (which
        may use links, e.g. ``/srv -> /data/srv``) is followed as written.
        """
        root = Path(os.path.normpath(self.root.absolute()))
        fd = self._open_root(root)
        try:
            current = root
            for name in folder.relative_to(root).parts:
                current = current / name
                child = _open_child(name, fd, current)
                if child is None:
                    self._make_child(name, fd)
                    child = _open_child(name, fd, current)
                    if child is None:  # removed again at once: someone is playing
                        raise DeliveryError(
                            f"the folder {current} vanished right after faxd made it; "
                            "check who else writes the delivery tree",
                            transient=True,
                        )
                os.close(fd)
                fd = child
            return fd
        except BaseException:
            os.close(fd)
            raise

    def _open_root(self, root: Path) -> int:
        """An fd of the root, made with its missing parents if need be."""
        try:
            return os.open(root, _DIR_FLAGS)
        except FileNotFoundError:
            pass
        for path in missing_folders(root):
            parent_fd = os.open(path.parent, _DIR_FLAGS)
            try:
                self._make_child(path.name, parent_fd)
            finally:
                os.close(parent_fd)
        return os.open(root, _DIR_FLAGS)

    def _make_child(self, name: str, parent_fd: int) -> None:
        """Make folder ``name`` in ``parent_fd`` with this action's mode and group."""
        try:
            os.mkdir(name, self.dir_mode, dir_fd=parent_fd)
        except FileExistsError:
            return  # made meanwhile by another thread; the open decides if it will do
        child = os.open(name, _DIR_FLAGS | os.O_NOFOLLOW, dir_fd=parent_fd)
        try:
            self._set_owner_mode(child, self.dir_mode)
        finally:
            os.close(child)
        fsync_dir_fd(parent_fd, ignore_unsupported=True)

    def _set_owner_mode(self, fd: int, mode: int) -> None:
        """Group first: chown may clear set-id bits, chmod then sets the mode exactly."""
        if self.gid is not None:
            try:
                os.fchown(fd, -1, self.gid)
            except PermissionError as exc:
                raise DeliveryError(
                    f"cannot give group {self.group!r} to what faxd delivers: permission "
                    f"denied; add the user faxd runs as (uid {os.geteuid()}) to the group "
                    f"{self.group!r} and restart faxd, or remove the folder action's group",
                    transient=True,
                ) from exc
        os.fchmod(fd, mode)

    # -- the file ------------------------------------------------------------------------

    def _place(self, item: Deliverable, final: Path, folder_fd: int) -> None:
        """Put the fax at ``final`` (in ``folder_fd``) or find it there already."""
        name = final.name
        state = _existing(item, final, folder_fd)
        if state == "absent":
            temp = self.sweeper.temp_name(name)
            self._write_temp(item, folder_fd, temp, final)
            try:
                placed = _place_no_clobber(temp, name, folder_fd)
                # If something appeared there meanwhile, judge it like any other.
                state = "same" if placed else _existing(item, final, folder_fd)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(temp, dir_fd=folder_fd)
        if state == "different":
            raise DeliveryError(
                f"a different file is already at {final}; move it away or change the folder "
                f"template {self.template!r} so each fax gets its own name (e.g. with "
                "{recvid})",
                transient=False,
            )
        # Also when it was there already: a crash may have come before this fsync.
        fsync_dir_fd(folder_fd, ignore_unsupported=True)

    def _write_temp(self, item: Deliverable, folder_fd: int, temp: str, final: Path) -> None:
        """Copy the spool file to the fresh name ``temp``: checked, moded and fsync'd."""
        try:
            src = item.path.open("rb")
        except OSError as exc:
            raise DeliveryError(
                f"cannot read the spool file {item.path}: {exc.strerror or exc}; "
                "fetch the fax again",
                transient=False,
            ) from exc
        digest = hashlib.sha256()
        size = 0
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            with src:
                out = os.open(temp, flags, self.file_mode, dir_fd=folder_fd)
                with os.fdopen(out, "wb") as dst:
                    self._set_owner_mode(out, self.file_mode)
                    while chunk := src.read(_CHUNK):
                        digest.update(chunk)
                        size += len(chunk)
                        dst.write(chunk)
                    dst.flush()
                    os.fsync(out)
            if digest.hexdigest() != item.sha256.lower() or size != item.size:
                raise DeliveryError(
                    f"the spool file {item.path} ({size} bytes) no longer matches what was "
                    f"downloaded ({item.size} bytes, sha256 {item.sha256[:12]}...); it was "
                    "changed after download, so fetch the fax again",
                    transient=False,
                )
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp, dir_fd=folder_fd)
            raise


#: Flags that open a folder for use as a ``dir_fd``.
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC


def _open_child(name: str, parent_fd: int, path: Path) -> int | None:
    """An fd of folder ``name`` in ``parent_fd``, ``None`` if missing; a link is refused."""
    try:
        return os.open(name, _DIR_FLAGS | os.O_NOFOLLOW, dir_fd=parent_fd)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
            raise
        if not stat.S_ISLNK(os.stat(name, dir_fd=parent_fd, follow_symlinks=False).st_mode):
            raise  # a file where a folder should be: the caller's message names it
        raise DeliveryError(
            f"{path} is a symbolic link, and faxd never follows links inside a delivery "
            "tree (someone who may write there could point it anywhere); replace it with "
            "a real folder. The fax stays pending and is tried again",
            transient=True,
        ) from exc


def _existing(
    item: Deliverable, final: Path, folder_fd: int
) -> Literal["absent", "same", "different"]:
    """What is at ``final`` now: nothing, these very bytes, or something else.

    A link is "something else" (never followed).  faxd's own spool file, which
    a folder template pointing into the spool would find, is refused: it is
    not a delivery, and calling it one would let the spool clean-up delete the
    only copy (issue 10, finding 2; the config loader refuses such a template).
    """
    try:
        found = os.stat(final.name, dir_fd=folder_fd, follow_symlinks=False)
    except FileNotFoundError:
        return "absent"
    if _same_file(found, item.path):
        raise DeliveryError(
            f"{final} is faxd's own spool file of this fax, not a delivery: the folder "
            "template points into the spool ([inbound] spool_dir); give the folder action a "
            "folder of its own and restart faxd",
            transient=False,
        )
    if not stat.S_ISREG(found.st_mode):
        return "different"
    try:
        # O_NONBLOCK: a FIFO swapped in since the stat must not hang the worker.
        fd, opened = open_nofollow(Path(final.name), dir_fd=folder_fd)
    except FileNotFoundError:
        return "absent"
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "different"  # a link swapped in since the stat: never followed
        raise
    try:
        if not stat.S_ISREG(opened.st_mode):
            return "different"
        _size, sha256 = hash_fd(fd)
    finally:
        os.close(fd)
    return "same" if sha256 == item.sha256.lower() else "different"


def _same_file(found: os.stat_result, path: Path) -> bool:
    try:
        spool = os.stat(path)
    except OSError:
        return False
    return (found.st_dev, found.st_ino) == (spool.st_dev, spool.st_ino)


def _place_no_clobber(temp: str, name: str, folder_fd: int) -> bool:
    """Give ``temp``'s file the name ``name`` unless something is there; True if placed."""
    try:
        os.link(temp, name, src_dir_fd=folder_fd, dst_dir_fd=folder_fd, follow_symlinks=False)
        return True
    except FileExistsError:
        return False
    except OSError as exc:
        if exc.errno not in _NO_HARD_LINKS:
            raise
    # No hard links here (FAT, some network shares): a rename after a check.
    try:
        os.stat(name, dir_fd=folder_fd, follow_symlinks=False)
        return False
    except FileNotFoundError:
        pass
    os.rename(temp, name, src_dir_fd=folder_fd, dst_dir_fd=folder_fd)
    return True


def _os_error_message(exc: OSError, final: Path) -> str:
    folder = final.parent
    if isinstance(exc, PermissionError):
        return (
            f"cannot write {final}: permission denied on {exc.filename or folder}; let the "
            f"user faxd runs as (uid {os.geteuid()}) write to {folder} or change the "
            "folder action's path"
        )
    if exc.errno == errno.ENOSPC:
        return f"cannot write {final}: no space left on the disk holding {folder}"
    where = exc.filename or final
    return f"cannot write {final}: {exc.strerror or exc} ({where})"
