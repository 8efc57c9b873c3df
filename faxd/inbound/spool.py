"""The spool: where a downloaded fax waits, verified, until it is delivered.

A fax is downloaded to ``<spool_dir>/<provider>-<id>.part``, then fsync'd and
renamed to ``<provider>-<id>.pdf`` / ``.tif`` and the directory fsync'd, so
after a crash the spool holds either a complete file or a ``.part`` to throw
away (DESIGN invariants 1, 2).  ``<id>`` is the provider's remote id only when
it is plain letters, digits, ``-`` and ``_`` (FAXAGE's recvids are); any other
id is named by its sha256, so nothing a provider sends becomes a path
(invariant 4).  Several providers share the directory: each pipeline's spool
only ever removes files of its own provider (and FAXAGE's also the
``<recvid>.pdf`` files an older faxd left, which their rows still name).

Each fax has its own files, so several faxes can be spooled at once without
sharing anything but the directory.  Faxes are private: the spool folder is made
0700 and every spool file is 0600 from before its first byte, whatever the umask.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from collections.abc import Collection, Iterable, Mapping
from pathlib import Path

from faxd.durable import file_sha256, fsync_dir, fsync_file
from faxd.filemodes import PRIVATE_FILE, create_private, make_dirs

#: Whose spool files an older faxd named by the bare remote id (it knew no other provider).
LEGACY_PROVIDER = "faxage"
#: File extension of each verified kind (``DownloadResult.kind``).
EXTENSIONS = {"pdf": "pdf", "tiff": "tif"}
PART_SUFFIX = ".part"
#: A remote id that may stand in a file name as it is.
_PLAIN_ID = re.compile(r"[A-Za-z0-9_-]{1,80}")


class Spool:
    """The spool files of one provider's faxes in the inbound spool directory."""

    def __init__(self, root: Path, provider: str = "faxage") -> None:
        self.root = root
        self.provider = provider

    def stem(self, remote_id: str) -> str:
        """The file name (without extension) of fax ``remote_id``: safe, and unique per id."""
        if _PLAIN_ID.fullmatch(remote_id):
            return f"{self.provider}-{remote_id}"
        return f"{self.provider}-x{hashlib.sha256(remote_id.encode()).hexdigest()[:40]}"

    def ensure(self) -> None:
        """Create the spool directory (and parents, all 0700) if it is missing."""
        make_dirs(self.root)

    def part_path(self, remote_id: str) -> Path:
        """Where the download of fax ``remote_id`` is streamed to."""
        return self.root / f"{self.stem(remote_id)}{PART_SUFFIX}"

    def new_part(self, remote_id: str) -> Path:
        """:meth:`part_path`, created empty and 0600, so the download never widens it."""
        part = self.part_path(remote_id)
        part.unlink(missing_ok=True)  # a crashed download's leftover, of whatever mode
        create_private(part)
        return part

    def final_path(self, remote_id: str, kind: str) -> Path:
        """Where the verified file of fax ``remote_id`` lives until it is delivered."""
        return self.root / f"{self.stem(remote_id)}.{extension(kind)}"

    def commit(self, part: Path, remote_id: str, kind: str) -> Path:
        """Make a finished download durable under its final name and return that name.

        fsync the data, rename over any older copy, fsync the directory: once
        this returns, a power cut cannot leave a shorter file under the name.
        This is the one fsync of the directory for a download (the transport
        fsyncs only the file's data); the file's own fsync here costs next to
        nothing after the client's, and keeps this promise whoever wrote it.
        """
        if stat.S_IMODE(os.stat(part).st_mode) != PRIVATE_FILE:
            # Whoever created it, and with whatever umask.  Only when needed: a chmod
            # dirties the inode, and the fsync below would then force a journal commit
            # for every fax although new_part() already made the file 0600.
            os.chmod(part, PRIVATE_FILE)
        fsync_file(part)
        final = self.final_path(remote_id, kind)
        os.replace(part, final)
        fsync_dir(self.root)
        return final

    def discard_part(self, remote_id: str) -> None:
        """Remove a leftover partial download of ``remote_id``, if any."""
        self.part_path(remote_id).unlink(missing_ok=True)

    def remove(self, path: Path | str | None) -> None:
        """Remove a spooled file once its fax is finished (missing is fine)."""
        if path is None:
            return
        target = Path(path)
        if target.parent != self.root and target.parent.resolve() != self.root.resolve():
            # Only ever delete our own files, whatever a database row says.
            return
        target.unlink(missing_ok=True)

    def files(self) -> list[Path]:
        """This provider's files in the spool directory (finished, partial, or an older faxd's)."""
        if not self.root.is_dir():
            return []
        found: list[Path] = []
        for entry in sorted(self.root.iterdir()):
            stem, dot, _suffix = entry.name.partition(".")
            if dot and self._owns(stem) and entry.is_file():
                found.append(entry)
        return found

    def stale_files(
        self,
        keep: Mapping[str, str | None],
        *,
        busy: Collection[str] = (),
        among: Iterable[Path] | None = None,
    ) -> list[Path]:
        """This provider's spool files that no unfinished fax needs (partials, finished faxes).

        ``keep`` maps each unfinished fax's remote id to the spool file its
        row records (``None``: none yet).  The files of the faxes in ``busy``
        (remote ids another instance is working on, in a spool folder the
        servers share) are left alone, its partial download too.  ``among``:
        the files to judge (default: :meth:`files`, listed now).
        """
        wanted = {self.stem(remote_id) for remote_id in keep}
        wanted.update(Path(path).name.partition(".")[0] for path in keep.values() if path)
        in_hand = {self.stem(remote_id) for remote_id in busy}
        stale: list[Path] = []
        for entry in self.files() if among is None else among:
            stem = entry.name.partition(".")[0]
            if stem in in_hand:
                continue
            if entry.name.endswith(PART_SUFFIX) or stem not in wanted:
                stale.append(entry)
        return stale

    def _owns(self, stem: str) -> bool:
        """Whether a spool file of this name is this provider's to clean up."""
        if stem.startswith(f"{self.provider}-"):
            return True
        # Files of a faxd from before issue 11: named by the bare FAXAGE recvid.
        return self.provider == LEGACY_PROVIDER and stem.isdigit()


def extension(kind: str) -> str:
    """The file extension for a verified kind: ``pdf`` or ``tif``."""
    try:
        return EXTENSIONS[kind]
    except KeyError:
        raise ValueError(f"unknown fax file kind {kind!r}; expected pdf or tiff") from None


def matches(path: Path, size: int | None, sha256: str | None) -> bool:
    """Whether ``path`` still holds exactly the bytes recorded (size and sha256)."""
    if size is None or sha256 is None:
        return False
    try:
        if path.stat().st_size != size:
            return False
        return file_sha256(path) == sha256
    except OSError:
        return False
