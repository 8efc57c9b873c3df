"""Deliver a fax by writing it into a folder, atomically and idempotently.

DESIGN invariants 1 and 2 rest on this module: a fax counts as delivered to a
folder only once its bytes are on disk under their final name, and delivering
the same fax again after a crash must land on the same path with the same
bytes, never beside it as ``name (1).pdf``.  So:

1. The path comes from the route's template (:func:`faxd.templates.render_path`
   makes every value safe for a file name) and must stay inside the template's
   fixed root, the folder written before the first field.
2. A file already at the path with the same sha256 means "already delivered".
   A different file there is never overwritten.
3. Otherwise the spool file is copied to a hidden temporary name in the target
   folder, fsync'd, hard-linked to the final name (a link never replaces an
   existing file; file systems without hard links fall back to a rename after
   an existence check), and the folder is fsync'd.
4. Temporaries a crashed earlier run left behind are removed the first time
   this process delivers into their folder (:class:`TempSweeper`): once per
   folder, not per fax, because listing a folder costs time in proportion to
   the faxes already in it.
"""

from __future__ import annotations

import errno
import hashlib
import os
import secrets
import threading
from pathlib import Path
from string import Formatter
from typing import Literal

import structlog

from faxd.actions.base import Deliverable
from faxd.config import FolderSpec
from faxd.durable import file_sha256, fsync_dir
from faxd.errors import DeliveryError
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
    prefix = ""
    try:
        for literal, name, _spec, _conversion in Formatter().parse(template):
            prefix += literal
            if name is not None:
                break
    except ValueError:  # a broken template: render_path refuses it with the reason
        prefix = template.split("{", 1)[0]
    cut = prefix.rfind("/")
    if cut < 0:
        return Path(".")
    return Path(prefix[:cut] or "/")


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

    def sweep_once(self, folder: Path) -> None:
        """Remove other runs' temporaries from ``folder``, unless done before in this run."""
        with self._lock:
            if folder in self._swept:
                return
            self._swept.add(folder)
        mine = f"{_TEMP_MARK}{self.run}-"
        try:
            with os.scandir(folder) as entries:
                stale = [
                    Path(entry.path)
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
        for path in stale:
            try:
                path.unlink()
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
        self.sweeper = sweeper

    @property
    def target(self) -> str:
        return f"folder {self.template}"

    def deliver(self, item: Deliverable) -> str:
        """Place the fax at its final path; return that path."""
        final = self.final_path(item)
        folder = final.parent
        try:
            state = _existing(final, item.sha256)
            if state == "absent":
                _make_folders(folder)
                temp = _write_temp(item, folder / self.sweeper.temp_name(final.name))
                try:
                    placed = _place_no_clobber(temp, final)
                    # If something appeared there meanwhile, judge it like any other.
                    state = "same" if placed else _existing(final, item.sha256)
                finally:
                    temp.unlink(missing_ok=True)
            if state == "same":
                # Also when it was there already: a crash may have come before this fsync.
                fsync_dir(folder, ignore_unsupported=True)
        except DeliveryError:
            raise
        except OSError as exc:
            raise DeliveryError(_os_error_message(exc, final), transient=True) from exc
        if state == "different":
            raise DeliveryError(
                f"a different file is already at {final}; move it away or change the folder "
                f"template {self.template!r} so each fax gets its own name (e.g. with "
                "{recvid})",
                transient=False,
            )
        self.sweeper.sweep_once(folder)
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
        return rendered.absolute()


def _existing(final: Path, sha256: str) -> Literal["absent", "same", "different"]:
    """What is at ``final`` now: nothing, these very bytes, or something else."""
    if not os.path.lexists(final):
        return "absent"
    if final.is_file() and file_sha256(final) == sha256.lower():
        return "same"
    return "different"


def _make_folders(folder: Path) -> None:
    """Create ``folder`` and its missing parents, fsyncing each new entry's parent."""
    missing: list[Path] = []
    current = folder
    while not current.exists() and current != current.parent:
        missing.append(current)
        current = current.parent
    for path in reversed(missing):
        try:
            path.mkdir()
        except FileExistsError:
            if not path.is_dir():
                raise
        fsync_dir(path.parent, ignore_unsupported=True)


def _write_temp(item: Deliverable, temp: Path) -> Path:
    """Copy the spool file to the fresh name ``temp``, checked and fsync'd."""
    digest = hashlib.sha256()
    size = 0
    try:
        src = item.path.open("rb")
    except OSError as exc:
        raise DeliveryError(
            f"cannot read the spool file {item.path}: {exc.strerror or exc}; fetch the fax again",
            transient=False,
        ) from exc
    try:
        with src, temp.open("xb") as dst:
            while chunk := src.read(_CHUNK):
                digest.update(chunk)
                size += len(chunk)
                dst.write(chunk)
            dst.flush()
            os.fsync(dst.fileno())
        if digest.hexdigest() != item.sha256.lower() or size != item.size:
            raise DeliveryError(
                f"the spool file {item.path} ({size} bytes) no longer matches what was "
                f"downloaded ({item.size} bytes, sha256 {item.sha256[:12]}...); it was "
                "changed after download, so fetch the fax again",
                transient=False,
            )
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return temp


def _place_no_clobber(temp: Path, final: Path) -> bool:
    """Give ``temp``'s file the name ``final`` unless something is there; True if placed."""
    try:
        os.link(temp, final)
        return True
    except FileExistsError:
        return False
    except OSError as exc:
        if exc.errno not in _NO_HARD_LINKS:
            raise
    # No hard links here (FAT, some network shares): a rename after a check.
    if os.path.lexists(final):
        return False
    os.rename(temp, final)
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
