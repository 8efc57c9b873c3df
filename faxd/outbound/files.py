"""Moving outbox files without ever overwriting or following anything.

Files travel hot folder -> spool -> sent/failed, and each hop must survive a
crash and never clobber a file a person put there: a clash gets a tag (the job
id) added to the name.  Moves use ``link`` + ``unlink`` (atomic and refusing to
overwrite) with a copy fallback across file systems, never follow symlinks,
and fsync the folders involved so a power cut cannot undo a finished move.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import uuid
from pathlib import Path

from faxd.durable import fsync_dir

_COPY_CHUNK = 1024 * 1024


def candidate_names(name: str, tag: str) -> list[str]:
    """``name``, then ``name`` with ``tag`` before the extension, then numbered variants."""
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem:
        stem, ext = name, ""
    suffix = f".{ext}" if ext else ""
    names = [name, f"{stem}-{tag}{suffix}"]
    names += [f"{stem}-{tag}-{n}{suffix}" for n in range(2, 100)]
    return names


def move_no_clobber(src: Path, folder: Path, name: str, *, tag: str) -> Path:
    """Move ``src`` into ``folder`` under ``name`` (or a tagged variant); return the new path.

    ``src`` itself is moved even when it is a symlink or a FIFO: nothing is
    followed or opened except to copy a regular file across file systems.
    """
    folder.mkdir(parents=True, exist_ok=True)
    for candidate in candidate_names(name, tag):
        dest = folder / candidate
        try:
            _place(src, dest)
        except FileExistsError:
            continue
        with contextlib.suppress(FileNotFoundError):
            os.unlink(src)
        fsync_dir(folder)
        fsync_dir(src.parent)
        return dest
    raise FileExistsError(f"{folder}: too many files named like {name!r}; clean up the folder")


def _place(src: Path, dest: Path) -> None:
    """Give ``src`` the name ``dest`` (or copy it there); FileExistsError if ``dest`` exists.

    A hard link refuses to overwrite atomically.  Where links are not allowed
    (``fs.protected_hardlinks`` for another user's file, SMB mounts) a rename
    after an existence check does the job; only across file systems is the
    file copied, which needs it to be readable.
    """
    try:
        os.link(src, dest, follow_symlinks=False)
        return
    except FileExistsError:
        raise
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            if os.path.lexists(dest):
                raise FileExistsError(dest) from None
            os.rename(src, dest)
            return
    tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}.faxd-tmp")
    st = os.lstat(src)
    if stat.S_ISLNK(st.st_mode):
        os.symlink(os.readlink(src), tmp)
    elif stat.S_ISFIFO(st.st_mode):
        os.mkfifo(tmp, 0o600)
    else:
        copy_durably(src, tmp)
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


def copy_durably(src: Path, dest: Path) -> None:
    """Copy a regular file's bytes to ``dest`` and fsync it (``dest`` must not exist)."""
    with open(src, "rb") as reader, open(dest, "xb") as writer:
        shutil.copyfileobj(reader, writer, _COPY_CHUNK)
        writer.flush()
        os.fsync(writer.fileno())


def write_reason(path: Path, reason: str) -> None:
    """Write the one-line ``reason`` to ``path`` atomically (replacing an older reason)."""
    line = " ".join(reason.split()) + "\n"
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.faxd-tmp")
    try:
        with open(tmp, "x", encoding="utf-8") as out:
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
