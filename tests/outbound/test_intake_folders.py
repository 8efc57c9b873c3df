"""A swapped outbox folder, two takers of one file, and the polling re-check's descriptors.

Issue 10 findings 1 and 8, as a reviewer reproduced them: a subfolder of the
outbox swapped for a symlink to a private folder must never let faxd read,
send, delete or move what that folder holds; ``faxd send`` racing the daemon
on one outbox file makes one job, not two; and the source kept open for the
polling-mode re-check stays open across retries and is closed once its job is
cancelled or finished.  Real files, real threads, the real simulator and
database throughout.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from structlog.testing import capture_logs

from faxd.errors import IntakeError
from faxd.outbound.commands import cancel_job
from faxd.outbound.intake import CHANGED_REASON, MAX_HELD, Intake
from faxd.outbound.service import Outbound, list_jobs
from faxd.outbound.submitter import Submitter
from faxd.providers.faxage.client import FaxageClient
from faxd.providers.faxage.provider import FaxageOutbound
from faxd.store.states import JobState

#: Takes per swap test: enough that faxd before the fix lost every run tried.
ROUNDS = 3000
RACE_ROUNDS = 60


#: The attacker, a process of its own so it swaps truly in parallel with faxd
#: (a thread would only run between the GIL switches of faxd's thread).
_SWAP_LOOP = """
import os, sys
folder, elsewhere, aside, stop = sys.argv[1:5]
cycles = 0
while not os.path.exists(stop):
    os.rename(folder, aside)
    os.symlink(elsewhere, folder)
    os.unlink(folder)
    os.rename(aside, folder)
    cycles += 1
    if cycles == 1:
        print("swapping", flush=True)
print(cycles)
"""


class FolderSwapper:
    """Swaps ``folder`` between itself and a symlink to ``elsewhere`` until stopped.

    Every cycle ends with the real folder back in place, so after the ``with``
    block the outbox is as the test left it; ``cycles`` says how often it swapped.
    """

    def __init__(self, folder: Path, elsewhere: Path) -> None:
        self.folder = folder
        self.elsewhere = elsewhere
        self.aside = folder.with_name(".aside-" + folder.name)  # ignored by intake
        self.stop_file = folder.parent.parent / "stop-swapping"
        self.cycles = 0
        self._child: subprocess.Popen[str] | None = None

    def __enter__(self) -> FolderSwapper:
        args = [self.folder, self.elsewhere, self.aside, self.stop_file]
        self._child = subprocess.Popen(
            [sys.executable, "-c", _SWAP_LOOP, *map(str, args)], stdout=subprocess.PIPE, text=True
        )
        assert self._child.stdout is not None
        assert self._child.stdout.readline() == "swapping\n"  # faxd starts once it runs
        return self

    def __exit__(self, *_exc: object) -> None:
        assert self._child is not None
        self.stop_file.touch()
        out, _ = self._child.communicate(timeout=60)
        assert self._child.returncode == 0
        self.stop_file.unlink()
        self.cycles = int(out)


def _private_folder(tmp_path: Path, name: str) -> tuple[Path, bytes, os.stat_result]:
    private = tmp_path / "private"
    private.mkdir()
    content = b"%PDF-1.4 SOMEONE ELSE'S FAX " + secrets.token_hex(16).encode()
    (private / name).write_bytes(content)
    return private, content, os.stat(private / name)


def _put(folder_fd: int, name: str, content: bytes) -> None:
    """Write ``name`` into the real folder (by descriptor: its name may be a link just now)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW
    fd = os.open(name, flags, 0o644, dir_fd=folder_fd)
    try:
        os.write(fd, content)
    finally:
        os.close(fd)


def _assert_untouched(private: Path, name: str, content: bytes, before: os.stat_result) -> None:
    assert sorted(p.name for p in private.iterdir()) == [name]
    now = os.lstat(private / name)
    assert (now.st_ino, now.st_nlink, now.st_mtime_ns) == (
        before.st_ino,
        before.st_nlink,
        before.st_mtime_ns,
    )
    assert (private / name).read_bytes() == content


def test_subfolder_swapped_for_a_link_never_leaks_or_removes_a_private_file(
    make_settings: Callable[..., Any], folders: Any, sim: Any, db: Any, client: Any, tmp_path: Path
) -> None:
    """outbox/<number>/ swapped for a link to a private folder: nothing there is sent or removed."""
    private, secret, secret_stat = _private_folder(tmp_path, "scan.pdf")
    settings = make_settings()
    intake = Intake(settings, db)
    sub = folders.hot / "3035551212"
    sub.mkdir()
    real = os.open(sub, os.O_RDONLY | os.O_DIRECTORY)  # the real folder, wherever it is moved
    document = b"%PDF-1.4 the real document " + secrets.token_bytes(32)
    try:
        with FolderSwapper(sub, private) as swapper:
            for _ in range(ROUNDS):
                _put(real, "scan.pdf", document)
                intake.take(sub / "scan.pdf")
    finally:
        os.close(real)
    assert swapper.cycles >= ROUNDS // 10, "the attacker hardly ran; the test proved nothing"
    Submitter(settings, db, FaxageOutbound(client, settings), intake=intake).submit_pending()
    _assert_untouched(private, "scan.pdf", secret, secret_stat)
    assert sim.jobs, "no round was taken at all; the test proved nothing"
    for job in sim.jobs.values():
        for _name, content in job.files:
            assert content == document
    assert {job.state for job in list_jobs(db)} == {JobState.SUBMITTED.value}
    for path in folders.failed.iterdir():
        assert secret not in path.read_bytes()


def test_rejected_file_in_a_swapped_subfolder_never_moves_a_private_file(
    make_settings: Callable[..., Any], folders: Any, db: Any, tmp_path: Path
) -> None:
    """A reject moves the outbox file only, never a same-named file behind a swapped-in link."""
    private, precious, precious_stat = _private_folder(tmp_path, "faxd.exe")
    intake = Intake(make_settings(), db)
    sub = folders.hot / "3035551212"
    sub.mkdir()
    real = os.open(sub, os.O_RDONLY | os.O_DIRECTORY)
    moved = 0
    try:
        with FolderSwapper(sub, private) as swapper:
            for n in range(ROUNDS):
                _put(real, "faxd.exe", b"not a fax %d" % n)
                intake.take(sub / "faxd.exe")
                for path in folders.failed.iterdir():  # emptied: names run out after 100
                    if not path.name.endswith(".txt"):
                        assert path.read_bytes() == b"not a fax %d" % n
                        moved += 1
                    path.unlink()
    finally:
        os.close(real)
    assert swapper.cycles >= ROUNDS // 10, "the attacker hardly ran; the test proved nothing"
    _assert_untouched(private, "faxd.exe", precious, precious_stat)
    assert moved, "no round was rejected at all; the test proved nothing"
    assert list_jobs(db) == []


def test_faxd_send_racing_the_daemon_on_one_outbox_file_makes_one_job(
    make_settings: Callable[..., Any], folders: Any, sim: Any, db: Any, client: Any
) -> None:
    """The daemon's take and `faxd send`'s take_over race on each file: one job, one POST."""
    settings = make_settings()
    daemon, command = Intake(settings, db), Intake(settings, db)
    documents = {}
    for n in range(RACE_ROUNDS):
        name = f"3035551212 - round {n}.pdf"
        path = folders.hot / name
        documents[name] = b"%%PDF-1.4 round %d " % n + secrets.token_bytes(16)
        path.write_bytes(documents[name])
        start = threading.Barrier(2)

        def send(path: Path = path, start: threading.Barrier = start) -> None:
            start.wait()
            with contextlib.suppress(IntakeError):  # the daemon had it first: faxd send says so
                command.take_over(path, "3035551212", "Acme")

        racer = threading.Thread(target=send)
        racer.start()
        start.wait()
        daemon.take(path)
        racer.join()
        assert not path.exists()
    jobs = list_jobs(db)
    assert Counter(job.source_name for job in jobs) == Counter(list(documents))
    assert len(list(folders.spool.iterdir())) == RACE_ROUNDS
    Submitter(settings, db, FaxageOutbound(client, settings), intake=daemon).submit_pending()
    assert sim.sendfax_posts == RACE_ROUNDS
    sent = sorted(content for job in sim.jobs.values() for _name, content in job.files)
    assert sent == sorted(documents.values())


def _held_sources(name: str) -> int:
    """How many of this process's descriptors lead to a file called ``name``."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if Path(target.removesuffix(" (deleted)")).name == name:
            count += 1
    return count


def test_polling_recheck_is_repeated_after_a_transient_error(
    make_settings: Callable[..., Any], folders: Any, sim: Any, db: Any
) -> None:
    """A source that changes between two submit attempts fails its job; no second POST."""
    settings = make_settings(poll_seconds=0.2)
    intake = Intake(settings, db)
    path = folders.hot / "3035551212.pdf"
    once = FaxageClient(
        sim.username, sim.company, sim.password, base_url=sim.base_url, retries=0, backoff=0.0
    )
    try:
        with path.open("wb") as scanner:
            scanner.write(b"%PDF-1.4 page one ")
            scanner.flush()
            job_id = intake.take(path)
            assert job_id is not None
            sim.inject("err01", operation="sendfax", times=1)  # transient: requeued
            submitter = Submitter(settings, db, FaxageOutbound(once, settings), intake=intake)
            assert submitter.submit(job_id) is False
            (job,) = list_jobs(db)
            assert job.state == JobState.QUEUED.value
            scanner.write(b"page two")
        assert submitter.submit(job_id) is False
    finally:
        once.close()
        intake.release()
    assert sim.sendfax_posts == 1  # the refused first one only
    assert sim.jobs == {}
    (job,) = list_jobs(db)
    assert job.state == JobState.FAILED.value
    assert CHANGED_REASON in (job.last_error or "")


def test_cancelled_job_releases_its_source_at_the_next_follow_up(
    make_settings: Callable[..., Any], folders: Any, db: Any, client: Any
) -> None:
    """`faxd cancel` from another process: the daemon's next follow-up closes the source."""
    # not started: no threads
    service = Outbound(make_settings(poll_seconds=0.2), db, FaxageOutbound(client))
    name = "3035551212 cancelled.pdf"
    (folders.hot / name).write_bytes(b"%PDF-1.4 cancel me")
    try:
        job_id = service.intake.take(folders.hot / name)
        assert job_id is not None
        assert _held_sources(name) == 1
        cancel_job(db, FaxageOutbound(client), job_id)  # another process: no intake to release
        assert _held_sources(name) == 1
        service.follow_up()
        assert _held_sources(name) == 0
    finally:
        service.intake.release()


def test_cancel_in_the_daemon_releases_the_source_at_once(
    make_settings: Callable[..., Any], folders: Any, db: Any, client: Any
) -> None:
    """A cancel run with the daemon's intake closes the kept source right away."""
    intake = Intake(make_settings(poll_seconds=0.2), db)
    name = "3035551212 cancelled here.pdf"
    (folders.hot / name).write_bytes(b"%PDF-1.4 cancel me")
    try:
        job_id = intake.take(folders.hot / name)
        assert job_id is not None
        assert _held_sources(name) == 1
        cancel_job(db, FaxageOutbound(client), job_id, intake=intake)
        assert _held_sources(name) == 0
    finally:
        intake.release()


def test_reaching_the_recheck_cap_is_logged_once(
    make_settings: Callable[..., Any], folders: Any, db: Any
) -> None:
    """Past MAX_HELD kept sources the re-check goes off: the log says so, once."""
    intake = Intake(make_settings(poll_seconds=0.2), db)
    try:
        with capture_logs() as logs:
            for n in range(MAX_HELD + 5):
                path = folders.hot / f"30355{n:05d}.pdf"
                path.write_bytes(b"%%PDF-1.4 burst %d" % n)
                assert intake.take(path) is not None
    finally:
        intake.release()
    capped = [entry for entry in logs if entry["event"] == "outbound.recheck_cap_reached"]
    assert len(capped) == 1
    assert capped[0]["held"] == MAX_HELD
    assert "fix" in capped[0]


def test_unreadable_spool_file_says_to_drop_the_document_again(
    make_settings: Callable[..., Any], folders: Any, sim: Any, db: Any, client: Any
) -> None:
    """A spool file swapped for a symlink fails its job unsent, saying what to do."""
    settings = make_settings()
    intake = Intake(settings, db)
    path = folders.hot / "3035551212.pdf"
    path.write_bytes(b"%PDF-1.4 spooled")
    assert intake.take(path) is not None
    (job,) = list_jobs(db)
    spool = Path(job.spool_path)
    elsewhere = folders.hot.parent / "elsewhere.pdf"
    elsewhere.write_bytes(b"%PDF-1.4 spooled")
    spool.unlink()
    spool.symlink_to(elsewhere)
    Submitter(settings, db, FaxageOutbound(client, settings), intake=intake).submit_pending()
    assert sim.sendfax_posts == 0
    (job,) = list_jobs(db)
    assert job.state == JobState.FAILED.value
    assert "drop the document in the outbox again" in (job.last_error or "")
