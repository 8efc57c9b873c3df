"""The bytes sent are the bytes checked (issue 10, findings 1 and 6).

Real files, the real simulator over HTTP, the real database: an attacker
thread swaps the dropped file for a symlink to a secret while faxd takes it;
a spool copy changed after intake; a source that grows after it was taken in
polling mode; a writer that keeps its file open through a long pause.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from faxd.outbound.intake import Intake
from faxd.outbound.service import Outbound, list_jobs
from faxd.outbound.submitter import Submitter
from faxd.providers.faxage.client import FaxageClient
from faxd.providers.faxage.provider import FaxageOutbound
from faxd.store.states import JobState

ROUNDS = 200
#: The reason issue 10 asks for, word for word.
CHANGED_REASON = "changed while being sent; drop it again"


def _assert_failed(db: Any, fragment: str) -> None:
    """The one job failed, and its reason says ``fragment``."""
    (job,) = list_jobs(db)
    assert job.state == JobState.FAILED.value
    assert fragment in (job.last_error or "")


def _reason_files(folder: Path) -> list[str]:
    return [p.read_text() for p in sorted(folder.glob("*.txt"))]


def test_symlink_swapped_in_while_taken_never_sends_the_secret(
    make_settings: Callable[..., Any], folders: Any, sim: Any, db: Any, client: Any, tmp_path: Path
) -> None:
    """A thread swapping the outbox file with a symlink to a secret never gets the secret faxed."""
    secret_dir = tmp_path / "credentials"
    secret_dir.mkdir()
    secret = secret_dir / "faxage-password"
    secret_bytes = b"SECRET-" + secrets.token_hex(24).encode()
    secret.write_bytes(secret_bytes)
    secret_stat = secret.stat()
    document = b"%PDF-1.4 the real document " + secrets.token_bytes(64)
    settings = make_settings()
    intake = Intake(settings, db)
    target = folders.hot / "3035551234.txt"
    link_tmp = folders.hot / ".swap-link"
    doc_tmp = folders.hot / ".swap-doc"

    for round_no in range(ROUNDS):
        target.write_bytes(document)
        stop = threading.Event()
        # A replaced name is a new file, never taken as the old one's job: the
        # attacker stops after a few swaps (leaving the document) so rounds are taken.
        swaps = round_no % 20

        def swap(stop: threading.Event = stop, swaps: int = swaps) -> None:
            for _ in range(swaps):
                if stop.is_set():
                    return
                link_tmp.unlink(missing_ok=True)
                os.symlink(secret, link_tmp)
                os.replace(link_tmp, target)
                doc_tmp.write_bytes(document)
                os.replace(doc_tmp, target)

        attacker = threading.Thread(target=swap)
        attacker.start()
        try:
            intake.take(target)
        finally:
            stop.set()
            attacker.join()
        for leftover in (target, link_tmp, doc_tmp):
            leftover.unlink(missing_ok=True)

    submitter = Submitter(settings, db, FaxageOutbound(client, settings), intake=intake)
    submitter.submit_pending()
    assert sim.jobs, "no round was taken at all; the test proved nothing"
    # Every file taken was the document itself: a round the attacker won is a
    # rejected link, never a job whose spool copy is something else.
    assert {job.state for job in list_jobs(db)} == {JobState.SUBMITTED.value}
    for job in sim.jobs.values():
        for _name, content in job.files:
            assert secret_bytes not in content
            assert content == document
    for job in list_jobs(db):
        spool = Path(job.spool_path)
        assert not spool.is_symlink()
    assert secret.read_bytes() == secret_bytes
    assert not secret.is_symlink()
    assert (secret.stat().st_ino, secret.stat().st_mtime_ns) == (
        secret_stat.st_ino,
        secret_stat.st_mtime_ns,
    )


def test_spool_copy_changed_after_intake_fails_the_job_unsent(
    make_settings: Callable[..., Any], folders: Any, sim: Any, db: Any, client: Any
) -> None:
    """A spool copy that no longer matches the job's sha256: failed with a reason, no POST."""
    settings = make_settings()
    intake = Intake(settings, db)
    path = folders.hot / "3035551212.pdf"
    path.write_bytes(b"%PDF-1.4 what was checked")
    job_id = intake.take(path)
    assert job_id is not None
    (job,) = list_jobs(db)
    Path(job.spool_path).write_bytes(b"%PDF-1.4 what was swapped")  # same size, other bytes
    Submitter(settings, db, FaxageOutbound(client, settings), intake=intake).submit_pending()
    assert sim.sendfax_posts == 0
    _assert_failed(db, "changed while being sent")
    (reason,) = _reason_files(folders.failed)
    assert "drop it again" in reason


def test_spool_copy_changed_between_retries_is_not_sent(
    make_settings: Callable[..., Any], folders: Any, sim: Any, db: Any
) -> None:
    """Every POST is checked: a change while the client waits to retry fails the job unsent."""
    settings = make_settings()
    intake = Intake(settings, db)
    path = folders.hot / "3035551212.pdf"
    path.write_bytes(b"%PDF-1.4 first bytes")
    assert intake.take(path) is not None
    (job,) = list_jobs(db)
    spool = Path(job.spool_path)

    def tamper(_seconds: float) -> None:
        spool.write_bytes(b"%PDF-1.4 other bytes, longer")

    sim.inject("err01", operation="sendfax", times=1)  # nothing queued: the client retries
    retrying = FaxageClient(
        sim.username, sim.company, sim.password, base_url=sim.base_url, backoff=0.0, sleep=tamper
    )
    try:
        Submitter(settings, db, FaxageOutbound(retrying, settings), intake=intake).submit_pending()
    finally:
        retrying.close()
    assert sim.sendfax_posts == 1  # the first, refused with ERR01; no second POST
    assert sim.jobs == {}
    _assert_failed(db, "changed while being sent")


def test_polling_source_growing_after_it_was_taken_fails_its_job(
    make_settings: Callable[..., Any], folders: Any, sim: Any, db: Any, client: Any
) -> None:
    """On a share (polling), a file written to after it was taken is never sent half-written."""
    settings = make_settings(poll_seconds=0.2)
    intake = Intake(settings, db)
    path = folders.hot / "3035551212.pdf"
    with path.open("wb") as scanner:
        scanner.write(b"%PDF-1.4 page one ")
        scanner.flush()
        assert intake.take(path) is not None  # unchanged long enough: taken mid-document
        scanner.write(b"page two")
    Submitter(settings, db, FaxageOutbound(client, settings), intake=intake).submit_pending()
    assert sim.sendfax_posts == 0
    _assert_failed(db, CHANGED_REASON)
    (reason,) = _reason_files(folders.failed)
    assert CHANGED_REASON in reason


def test_polling_source_rewritten_with_its_mtime_put_back_fails_its_job(
    make_settings: Callable[..., Any], folders: Any, sim: Any, db: Any, client: Any
) -> None:
    """Same size, same mtime, other bytes: the sha256 re-check at submit still refuses it."""
    settings = make_settings(poll_seconds=0.2)
    intake = Intake(settings, db)
    path = folders.hot / "3035551212.pdf"
    path.write_bytes(b"%PDF-1.4 page one")
    before = os.stat(path)
    with path.open("r+b") as writer:
        assert intake.take(path) is not None
        writer.write(b"%PDF-1.4 PAGE ONE")
        writer.flush()
        os.utime(writer.fileno(), ns=(before.st_atime_ns, before.st_mtime_ns))
    Submitter(settings, db, FaxageOutbound(client, settings), intake=intake).submit_pending()
    assert sim.sendfax_posts == 0
    _assert_failed(db, CHANGED_REASON)


def test_hard_linked_file_reopened_for_writing_waits_for_its_close(
    make_outbound: Callable[..., Outbound], folders: Any, sim: Any, db: Any, tmp_path: Path
) -> None:
    """A file that appears whole (a link) and is then written to waits for that writer's close."""
    service = make_outbound(settle_seconds=0.5)
    outside = tmp_path / "scan.pdf"
    outside.write_bytes(b"%PDF-1.4 page one ")
    path = folders.hot / "3035551212.pdf"
    os.link(outside, path)
    with path.open("ab") as scanner:
        scanner.write(b"page two ")
        scanner.flush()
        time.sleep(2.5)  # five settle periods, open for writing all along
        assert list_jobs(db) == [], "taken while still open for writing"
        scanner.write(b"page three")
    assert _wait(lambda: len(list_jobs(db)) == 1 and not path.exists())
    service.submit_pending()
    (job,) = sim.jobs.values()
    assert job.files[0][1] == b"%PDF-1.4 page one page two page three"


def test_polling_source_left_alone_is_sent(
    make_settings: Callable[..., Any], folders: Any, sim: Any, db: Any, client: Any
) -> None:
    """The polling re-check passes a file nobody touched after it was taken."""
    settings = make_settings(poll_seconds=0.2)
    intake = Intake(settings, db)
    path = folders.hot / "3035551212.pdf"
    path.write_bytes(b"%PDF-1.4 whole")
    assert intake.take(path) is not None
    submitter = Submitter(settings, db, FaxageOutbound(client, settings), intake=intake)
    assert submitter.submit_pending() == 1
    (job,) = sim.jobs.values()
    assert job.files[0][1] == b"%PDF-1.4 whole"


def test_writer_pausing_with_the_file_open_is_not_taken_until_it_closes(
    make_outbound: Callable[..., Outbound], folders: Any, sim: Any, db: Any
) -> None:
    """inotify: a file still open for writing waits past settle_seconds for its close."""
    service = make_outbound(settle_seconds=0.5)
    path = folders.hot / "3035551212 - Scanner.pdf"
    first, second = b"%PDF-1.4 page one " * 100, b"page two " * 100
    with path.open("wb") as scanner:
        scanner.write(first)
        scanner.flush()
        time.sleep(2.5)  # five settle periods with the file open and unchanged
        assert list_jobs(db) == [], "taken while still open for writing"
        scanner.write(second)
    assert _wait(lambda: len(list_jobs(db)) == 1 and not path.exists())
    service.submit_pending()
    assert sim.sendfax_posts == 1
    (job,) = sim.jobs.values()
    assert job.files[0][1] == first + second
    assert len(list_jobs(db)) == 1


def _wait(condition: Callable[[], bool], timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()
