"""Moving outbox files without ever overwriting or following anything.

Files travel hot folder -> spool -> sent/failed, and each hop must survive a
crash and never clobber a file a person put there: a clash gets a tag (the job
id) added to the name.  Moves use ``link`` + ``unlink`` (atomic and refusing to
overwrite) with a copy fallback across file systems, never follow symlinks,
and fsync the folders involved so a power cut cannot undo a finished move.

The outbox is reached through directory descriptors: each folder between
the hot folder and a file is opened with ``O_NOFOLLOW`` relative to the one
above (:func:`open_folder`), and the file is opened, checked, unlinked or
moved relative to that pinned folder, so a subfolder swapped for a symlink
never lets faxd read or remove anything outside the outbox.

Reading is by file descriptor: a document is opened once with ``O_NOFOLLOW``
(a symlink swapped in at the last moment is refused) and ``O_NONBLOCK`` (a FIFO
cannot stall the worker), checked with ``fstat``, and copied, hashed and
verified from that same descriptor, so the bytes faxd checks are the bytes it
spools and sends, whatever happens to the name meanwhile.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import stat
import uuid
from pathlib import Path, PurePath

from faxd.durable import fsync_dir, fsync_dir_fd, hash_fd, open_nofollow

__all__ = [
    "REASON_MODE",
    "SPOOL_MODE",
    "SourceKeptError",
    "candidate_names",
    "copy_durably",
    "copy_fd_to_new",
    "hash_fd",
    "is_same",
    "move_no_clobber",
    "open_folder",
    "open_nofollow",
    "reason_path",
    "unlink_if_same",
    "write_reason",
]

_COPY_CHUNK = 1024 * 1024
#: What spool files are created with, whatever the umask: faxes are private.
SPOOL_MODE = 0o600
#: A reason file beside a failed document: for the office group, not other users.
REASON_MODE = 0o640


def copy_fd_to_new(src_fd: int, dest: Path, *, mode: int = SPOOL_MODE) -> tuple[int, str]:
    """Copy what ``src_fd`` holds (from offset 0) into a new file ``dest``; fsync it.

    ``dest`` is created with ``O_EXCL | O_NOFOLLOW`` (it must not exist, not
    even as a link) and given ``mode`` whatever the umask.  Returns the size
    and hex sha256 of the bytes written, hashed as they were copied.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    out = os.open(dest, flags, mode)
    digest = hashlib.sha256()
    size = 0
    try:
        os.fchmod(out, mode)
        while chunk := os.pread(src_fd, _COPY_CHUNK, size):
            digest.update(chunk)
            size += len(chunk)
            view = memoryview(chunk)
            while view:
                view = view[os.write(out, view) :]
        os.fsync(out)
    except BaseException:
        os.close(out)
        with contextlib.suppress(OSError):
            os.unlink(dest)
        raise
    os.close(out)
    return size, digest.hexdigest()


def open_folder(root: Path, relpath: PurePath, *, create: int | None = None) -> int:
    """Open the folder holding ``relpath`` inside ``root``, never through a link.

    Each component between ``root`` and the file's name is opened with
    ``O_DIRECTORY | O_NOFOLLOW`` relative to the one above it, so a folder
    swapped for a symlink raises ``OSError`` (``ELOOP`` or ``ENOTDIR``) instead
    of leading outside.  With ``create`` (a mode) missing folders below
    ``root`` are made on the way.  Returns the descriptor (the caller closes it).
    """
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
    fd = os.open(root, flags)
    try:
        for part in relpath.parts[:-1]:
            if part in ("", ".", "..") or "/" in part:
                raise OSError(errno.EINVAL, f"{relpath} does not lie inside {root}")
            if create is not None:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, create, dir_fd=fd)
            inner = os.open(part, flags | os.O_NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = inner
    except BaseException:
        os.close(fd)
        raise
    return fd


def unlink_if_same(path: Path, st: os.stat_result, *, dir_fd: int | None = None) -> bool:
    """Remove ``path`` only if it is still the file ``st`` describes (same device and inode).

    The check and the unlink happen in one pinned directory (by descriptor:
    ``dir_fd``, the folder the file was opened in, or else ``path.parent``
    opened now), so a name swapped for another file or link is left alone.
    False when the name is gone or now names something else.
    """
    if dir_fd is not None:
        return _unlink_if_same_in(dir_fd, path.name, st)
    try:
        parent_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False  # its folder is gone too
    try:
        return _unlink_if_same_in(parent_fd, path.name, st)
    finally:
        os.close(parent_fd)


def is_same(dir_fd: int, name: str, st: os.stat_result) -> bool:
    """Whether ``name`` in the folder ``dir_fd`` (never followed) is the file ``st`` describes."""
    try:
        now = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return (now.st_dev, now.st_ino) == (st.st_dev, st.st_ino)


def _unlink_if_same_in(dir_fd: int, name: str, st: os.stat_result) -> bool:
    if not is_same(dir_fd, name, st):
        return False
    os.unlink(name, dir_fd=dir_fd)
    os.fsync(dir_fd)
    return True


class SourceKeptError(OSError):
    """The file was placed in its new folder but its old name could not be removed."""

    def __init__(self, errno_: int, strerror: str, filename: str, dest: Path) -> None:
        super().__init__(errno_, strerror, filename)
        self.dest = dest


def candidate_names(name: str, tag: str) -> list[str]:
    """``name``, then ``name`` with ``tag`` before the extension, then numbered variants."""
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem:
        stem, ext = name, ""
    suffix = f".{ext}" if ext else ""
    names = [name, f"{stem}-{tag}{suffix}"]
    names += [f"{stem}-{tag}-{n}{suffix}" for n in range(2, 100)]
    return names


def move_no_clobber(
    src: Path, folder: Path, name: str, *, tag: str, src_dir_fd: int | None = None
) -> Path:
    """Move ``src`` into ``folder`` under ``name`` (or a tagged variant); return the new path.

    ``src`` itself is moved even when it is a symlink or a FIFO: nothing is
    followed or opened except to copy a regular file across file systems.
    With ``src_dir_fd`` the file is ``src.name`` in that pinned folder (the
    outbox folder it was found in), whatever ``src.parent`` names by now.
    """
    folder.mkdir(parents=True, exist_ok=True)
    if src_dir_fd is None:
        parent_fd = os.open(src.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    else:
        parent_fd = src_dir_fd
    try:
        return _move_from(parent_fd, src, folder, name, tag)
    finally:
        if src_dir_fd is None:
            os.close(parent_fd)


def _move_from(dir_fd: int, src: Path, folder: Path, name: str, tag: str) -> Path:
    for candidate in candidate_names(name, tag):
        dest = folder / candidate
        try:
            _place(dir_fd, src.name, dest)
        except FileExistsError:
            if not _same_file(dir_fd, src.name, dest):
                continue
            # Linked there by a move that died before it removed the source (SIGKILL,
            # power loss): finish that move instead of giving the file a second name.
        fsync_dir(folder)
        try:
            os.unlink(src.name, dir_fd=dir_fd)
        except FileNotFoundError:
            pass
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise SourceKeptError(exc.errno or 0, reason, str(src), dest) from None
        fsync_dir_fd(dir_fd)
        return dest
    raise FileExistsError(f"{folder}: too many files named like {name!r}; clean up the folder")


def _same_file(dir_fd: int, src_name: str, dest: Path) -> bool:
    """Whether ``dest`` is another name of ``src_name`` (in folder ``dir_fd``): a hard link."""
    try:
        source = os.stat(src_name, dir_fd=dir_fd, follow_symlinks=False)
        target = os.lstat(dest)
    except FileNotFoundError:
        return False
    return (source.st_dev, source.st_ino) == (target.st_dev, target.st_ino)


def _place(dir_fd: int, src_name: str, dest: Path) -> None:
    """Give ``src_name`` (in folder ``dir_fd``) the name ``dest`` (or copy it there).

    FileExistsError if ``dest`` exists.  A hard link refuses to overwrite
    atomically.  Where links are not allowed (``fs.protected_hardlinks`` for
    another user's file, SMB mounts) a rename after an existence check does
    the job; only across file systems is the file copied, which needs it to
    be readable.
    """
    try:
        os.link(src_name, dest, src_dir_fd=dir_fd, follow_symlinks=False)
        return
    except FileExistsError:
        raise
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            if os.path.lexists(dest):
                raise FileExistsError(dest) from None
            os.rename(src_name, dest, src_dir_fd=dir_fd)
            return
    tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}.faxd-tmp")
    st = os.lstat(src_name, dir_fd=dir_fd)
    if stat.S_ISLNK(st.st_mode):
        os.symlink(os.readlink(src_name, dir_fd=dir_fd), tmp)
    elif stat.S_ISFIFO(st.st_mode):
        os.mkfifo(tmp, 0o600)
    else:
        copy_durably(Path(src_name), tmp, src_dir_fd=dir_fd)
    try:
        os.link(tmp, dest, follow_symlinks=False)
    except FileExistsError:
        raise
    except OSError:
        if os.path.lexists(dest):
            raise FileExistsError(dest) from None
        os.rename(tmp, dest)  # a file system without hard links
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def copy_durably(src: Path, dest: Path, *, src_dir_fd: int | None = None) -> None:
    """Copy a regular file's bytes to ``dest`` and fsync it (``dest`` must not exist).

    Neither end follows a link, and the copy keeps the source's own mode (a
    spool file's 0600 stays 0600 in the sent or failed folder) whatever the
    umask.  With ``src_dir_fd``, ``src`` is relative to that folder.
    """
    fd, st = open_nofollow(src, dir_fd=src_dir_fd)
    try:
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, f"{src.name!r} is not a regular file")
        copy_fd_to_new(fd, dest, mode=stat.S_IMODE(st.st_mode) & 0o777)
    finally:
        os.close(fd)


def write_reason(path: Path, reason: str) -> None:
    """Write the one-line ``reason`` to ``path`` atomically (replacing an older reason)."""
    line = " ".join(reason.split()) + "\n"
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.faxd-tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        with open(os.open(tmp, flags, REASON_MODE), "w", encoding="utf-8") as out:
            os.fchmod(out.fileno(), REASON_MODE)  # whatever the umask: the office group reads it
            out.write(line)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)  # no litter in the failed folder
        raise
    fsync_dir(path.parent)


def reason_path(file_path: Path) -> Path:
    """Where the reason for ``file_path`` in the failed folder is written."""
    return file_path.with_name(file_path.name + ".txt")
