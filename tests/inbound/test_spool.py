"""Tests of faxd.inbound.spool: durable names from the provider and remote id only, cleanup."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest

from faxd.inbound.spool import Spool, matches


def test_commit_renames_the_part_file_to_the_final_name(tmp_path: Path) -> None:
    """A finished download ends as <provider>-<id>.<ext> with the same bytes; no .part remains."""
    spool = Spool(tmp_path / "spool")
    spool.ensure()
    part = spool.part_path("42")
    part.write_bytes(b"II*\x00tiffdata")
    final = spool.commit(part, "42", "tiff")
    assert final == tmp_path / "spool" / "faxage-42.tif"
    assert final.read_bytes() == b"II*\x00tiffdata"
    assert not part.exists()


def test_matches_checks_size_and_hash(tmp_path: Path) -> None:
    """A spool file matches only with the recorded size and sha256."""
    path = tmp_path / "7.pdf"
    path.write_bytes(b"%PDF-abc")
    digest = hashlib.sha256(b"%PDF-abc").hexdigest()
    assert matches(path, 8, digest)
    path.write_bytes(b"%PDF-abd")
    assert not matches(path, 8, digest)
    assert not matches(tmp_path / "missing.pdf", 8, digest)
    assert not matches(path, None, None)


def test_stale_files_are_partials_and_faxes_not_kept(tmp_path: Path) -> None:
    """Cleanup picks .part files and finished faxes' files, never foreign files."""
    spool = Spool(tmp_path)
    for name in ("faxage-1.pdf", "faxage-2.part", "faxage-3.tif", "notes.txt", "faxage-4.pdf"):
        (tmp_path / name).write_bytes(b"x")
    stale = {p.name for p in spool.stale_files(keep={"1": None, "2": None, "4": None})}
    assert stale == {"faxage-2.part", "faxage-3.tif"}


def test_cleanup_leaves_other_providers_files_and_keeps_recorded_older_names(
    tmp_path: Path,
) -> None:
    """Each provider cleans only its own files; a FAXAGE file an older faxd named by the
    bare recvid is kept while its row still names it, and is stale once it does not."""
    faxage, voipms = Spool(tmp_path, "faxage"), Spool(tmp_path, "voipms")
    for name in ("104730.pdf", "104731.pdf", "voipms-77.pdf", "voipms-78.part", "ifax-x.pdf"):
        (tmp_path / name).write_bytes(b"x")
    kept = {"104730": str(tmp_path / "104730.pdf")}
    assert {p.name for p in faxage.stale_files(keep=kept)} == {"104731.pdf"}
    assert {p.name for p in voipms.stale_files(keep={"77": None})} == {"voipms-78.part"}


def test_a_remote_id_that_is_no_plain_name_never_becomes_a_path(tmp_path: Path) -> None:
    """An id with slashes, dots or a NUL is named by its hash; plain ids stay readable."""
    spool = Spool(tmp_path, "ifax")
    hostile = spool.final_path("../../etc/passwd:1", "pdf")
    assert hostile.parent == tmp_path and ".." not in hostile.name and "/" not in hostile.stem
    assert hostile != spool.final_path("../../etc/passwd:2", "pdf")
    assert spool.final_path("job-12_a", "pdf").name == "ifax-job-12_a.pdf"


def test_remove_refuses_paths_outside_the_spool(tmp_path: Path) -> None:
    """A row pointing outside the spool never makes faxd delete that file."""
    spool = Spool(tmp_path / "spool")
    spool.ensure()
    outside = tmp_path / "precious.pdf"
    outside.write_bytes(b"keep me")
    spool.remove(outside)
    assert outside.exists()
    inside = spool.final_path("5", "pdf")
    inside.write_bytes(b"x")
    spool.remove(inside)
    assert not inside.exists()


@pytest.mark.parametrize("umask", [0o022, 0o277])
def test_spool_folders_and_files_are_private_whatever_the_umask(tmp_path: Path, umask: int) -> None:
    """Issue 10 #5: under umask 022 the spool is 0700 and a fax in it 0600, from its first
    byte (the part file exists, 0600, before the download opens it) to its final name;
    exactly so, also under a umask that would take faxd's own write bit."""
    old = os.umask(umask)
    try:
        spool = Spool(tmp_path / "state" / "spool")
        spool.ensure()
        part = spool.new_part("42")
        assert stat.S_IMODE(part.stat().st_mode) == 0o600
        with open(part, "wb") as download:  # what the transport does: truncate and write
            download.write(b"%PDF-1.4 fax")
        final = spool.commit(part, "42", "pdf")
        written_elsewhere = spool.part_path("43")
        written_elsewhere.write_bytes(b"%PDF-1.4 another")  # 0644 under this umask
        other = spool.commit(written_elsewhere, "43", "pdf")
    finally:
        os.umask(old)
    for folder in (tmp_path / "state", tmp_path / "state" / "spool"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    assert stat.S_IMODE(final.stat().st_mode) == 0o600
    assert stat.S_IMODE(other.stat().st_mode) == 0o600
