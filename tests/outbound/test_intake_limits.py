"""Outbox edges: the size limit, `faxd send` on an outbox file, an undeletable reject, modes.

Real folders, the real database, the real service where timing matters.
"""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import stat
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from faxd.errors import IntakeError
from faxd.outbound.commands import queue_files
from faxd.outbound.files import copy_durably
from faxd.outbound.intake import MAX_HELD, Intake
from faxd.outbound.service import Outbound, list_jobs

MiB = 1024 * 1024


@contextlib.contextmanager
def umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def test_file_over_max_file_mb_is_rejected_naming_the_limit(
    make_settings: Callable[..., Any], folders: Any, db: Any
) -> None:
    """A drop larger than [outbound] max_file_mb goes to failed/ with a reason naming the key."""
    intake = Intake(make_settings(max_file_mb=1), db)
    big = folders.hot / "3035551212.pdf"
    big.write_bytes(b"%PDF-1.4" + b"\0" * (MiB + MiB // 2))
    assert intake.take(big) is None
    assert list_jobs(db) == []
    assert not big.exists()
    reason = (folders.failed / "3035551212.pdf.txt").read_text()
    assert "1 MB limit" in reason and "[outbound] max_file_mb" in reason
    small = folders.hot / "3035551213.pdf"
    small.write_bytes(b"%PDF-1.4" + b"\0" * (MiB - 8))  # exactly 1 MiB is allowed
    assert intake.take(small) is not None


def test_faxd_send_refuses_a_file_over_the_limit(
    make_settings: Callable[..., Any], tmp_path: Path, db: Any
) -> None:
    """`faxd send` names the same limit instead of queueing a file faxd would not stream."""
    big = tmp_path / "scan.pdf"
    big.write_bytes(b"%PDF-1.4" + b"\0" * (2 * MiB))
    with pytest.raises(IntakeError, match=r"max_file_mb"):
        queue_files([big], "3035551212", None, config=make_settings(max_file_mb=1), db=db)
    assert list_jobs(db) == []


def test_faxd_send_on_a_file_in_the_outbox_makes_one_job(
    make_outbound: Callable[..., Outbound], folders: Any, db: Any
) -> None:
    """`faxd send` on an outbox file moves it out: the hot folder makes no second job of it."""
    service = make_outbound(settle_seconds=1.0)
    path = folders.hot / "3035551212 - Acme.pdf"
    path.write_bytes(b"%PDF-1.4 sent by hand")
    (job_id,) = queue_files([path], "3035559999", "Bob", config=service.config, db=db)
    time.sleep(3.0)  # three settle periods and a rescan's worth for the hot folder to act
    service.rescan()
    time.sleep(1.5)
    jobs = list_jobs(db)
    assert [(j.id, j.faxno, j.recipname) for j in jobs] == [(job_id, "+13035559999", "Bob")]
    assert not path.exists()
    assert Path(jobs[0].spool_path).read_bytes() == b"%PDF-1.4 sent by hand"


def test_faxd_send_elsewhere_still_leaves_the_original(
    make_settings: Callable[..., Any], tmp_path: Path, db: Any
) -> None:
    """Outside the outbox `faxd send` copies, as before: the user's file stays where it was."""
    doc = tmp_path / "letter.pdf"
    doc.write_bytes(b"%PDF-1.4 mine")
    queue_files([doc], "3035551212", None, config=make_settings(), db=db)
    assert doc.read_bytes() == b"%PDF-1.4 mine"
    assert len(list_jobs(db)) == 1


@pytest.fixture
def immutable_folder(folders: Any) -> Iterator[Path]:
    """An outbox subfolder nobody (root included) can remove files from (chattr +i)."""
    folder = folders.hot / "3035551212"
    folder.mkdir()
    (folder / "notes.exe").write_bytes(b"MZ not a document")
    if shutil.which("chattr") is None:
        pytest.skip("needs chattr to make a folder whose files cannot be removed")
    done = subprocess.run(["chattr", "+i", str(folder)], capture_output=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"chattr +i is not supported here: {done.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=True)


def test_rejected_file_that_cannot_be_removed_is_copied_to_failed_once(
    make_settings: Callable[..., Any], folders: Any, db: Any, immutable_folder: Path
) -> None:
    """A reject whose source stays put is copied once with its reason, not on every rescan."""
    intake = Intake(make_settings(), db)
    path = immutable_folder / "notes.exe"
    for _ in range(3):  # the start-up scan and two rescans
        assert intake.take(path) is None
    assert path.exists()
    assert sorted(p.name for p in folders.failed.iterdir()) == ["notes.exe", "notes.exe.txt"]
    assert ".exe" in (folders.failed / "notes.exe.txt").read_text()


def test_spool_files_are_private_whatever_the_umask(
    make_settings: Callable[..., Any], folders: Any, tmp_path: Path, db: Any
) -> None:
    """Under umask 022 a dropped file and a `faxd send` copy both land in the spool as 0600."""
    settings = make_settings()
    with umask(0o022):
        dropped = folders.hot / "3035551212.pdf"
        dropped.write_bytes(b"%PDF-1.4 dropped")
        dropped.chmod(0o644)
        Intake(settings, db).take(dropped)
        sent = tmp_path / "by-hand.pdf"
        sent.write_bytes(b"%PDF-1.4 by hand")
        sent.chmod(0o644)
        queue_files([sent], "3035551213", None, config=settings, db=db)
    with umask(0o277):  # a umask that would leave the owner unable to write
        again = folders.hot / "3035551214.pdf"
        again.write_bytes(b"%PDF-1.4 under 277")
        Intake(settings, db).take(again)
    modes = [stat.S_IMODE(os.lstat(j.spool_path).st_mode) for j in list_jobs(db)]
    assert modes == [0o600, 0o600, 0o600]


def test_copy_to_another_folder_keeps_the_file_own_mode(tmp_path: Path) -> None:
    """A cross-file-system move (copy) keeps a private spool file private under umask 022."""
    source = tmp_path / "spool.pdf"
    source.write_bytes(b"%PDF-1.4 private")
    source.chmod(0o600)
    with umask(0o022):
        copy_durably(source, tmp_path / "sent.pdf")
    assert stat.S_IMODE(os.lstat(tmp_path / "sent.pdf").st_mode) == 0o600
    assert (tmp_path / "sent.pdf").read_bytes() == b"%PDF-1.4 private"
    shared = tmp_path / "shared.pdf"
    shared.write_bytes(b"%PDF-1.4 for the office group")
    shared.chmod(0o640)
    with umask(0o077):
        copy_durably(shared, tmp_path / "shared-copy.pdf")
    assert stat.S_IMODE(os.lstat(tmp_path / "shared-copy.pdf").st_mode) == 0o640


def test_polling_mode_keeps_a_bounded_number_of_sources_open(
    make_settings: Callable[..., Any], folders: Any, db: Any
) -> None:
    """A burst on a share keeps at most MAX_HELD taken sources open for the re-check."""
    intake = Intake(make_settings(poll_seconds=0.2), db)
    before = len(os.listdir("/proc/self/fd"))
    try:
        for n in range(MAX_HELD + 20):
            path = folders.hot / f"30355{n:05d}.pdf"
            path.write_bytes(b"%%PDF-1.4 burst %d" % n)
            assert intake.take(path) is not None
        held = len(os.listdir("/proc/self/fd")) - before
        assert MAX_HELD - 5 <= held <= MAX_HELD + 5
    finally:
        intake.release()
    assert len(os.listdir("/proc/self/fd")) - before <= 5


def test_running_out_of_descriptors_is_not_the_file_fault(
    make_settings: Callable[..., Any], folders: Any, db: Any
) -> None:
    """EMFILE while opening a drop leaves it in the outbox for the next pass; no reject."""
    intake = Intake(make_settings(), db)
    path = folders.hot / "3035551212.pdf"
    path.write_bytes(b"%PDF-1.4 fine")
    probe = os.open("/dev/null", os.O_RDONLY)
    os.close(probe)  # the next descriptor number a new open would get
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (probe, hard))
    try:
        with pytest.raises(OSError, match="Too many open files"):
            intake.take(path)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert path.exists()
    assert list(folders.failed.iterdir()) == []
    assert intake.take(path) is not None


def test_a_share_that_cannot_lock_still_takes_files_and_says_so_once(
    make_settings: Callable[..., Any], folders: Any, db: Any
) -> None:
    """NFS without its lock manager answers flock with ENOLCK: files are still taken."""
    import errno

    from structlog.testing import capture_logs

    def no_locks(fd: int, operation: int) -> None:
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    intake = Intake(make_settings(), db, flock=no_locks)
    with capture_logs() as logs:
        for n in range(2):
            drop = folders.hot / f"303555121{n}.pdf"
            drop.write_bytes(b"%PDF-1.4 on a share " + bytes([n]))
            assert intake.take(drop) is not None
    assert [Path(j.spool_path).read_bytes()[-1] for j in list_jobs(db)] == [0, 1]
    warned = [e for e in logs if e["event"] == "outbound.spool_lock_unsupported"]
    assert len(warned) == 1 and "lock manager" in warned[0]["fix"]
