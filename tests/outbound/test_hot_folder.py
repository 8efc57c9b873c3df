"""End to end: files dropped in a real folder become faxes on the FAXAGE simulator."""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from faxd.outbound.service import Outbound, list_jobs
from faxd.providers.faxage.provider import FaxageOutbound


def wait_for(condition: Callable[[], bool], timeout: float = 10.0, step: float = 0.05) -> bool:
    """Poll ``condition`` until it is true or ``timeout`` seconds pass; return the last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return condition()


def files_in(folder: Path) -> dict[str, bytes]:
    """Every regular file under ``folder`` (relative name -> bytes), reason files included."""
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


FAIL_NUMBER = "3035550110"

# (path relative to the outbox, expected number, expected recipient name)
TEN_FILES = [
    ("3035550101.pdf", "3035550101", ""),
    ("303-555-0102 - Acme Corp.pdf", "3035550102", "Acme Corp"),
    ("1 (303) 555-0103_Acme.pdf", "3035550103", "Acme"),
    ("3035550104 - Bob.tif", "3035550104", "Bob"),
    ("(303) 555-0105 Jones & Co.docx", "3035550105", "Jones & Co"),
    ("+1 303 555 0106.txt", "3035550106", ""),
    ("303.555.0107 - Dr Who.jpg", "3035550107", "Dr Who"),
    ("3035550108/report.pdf", "3035550108", ""),
    ("303-555-0109 Lab/results.html", "3035550109", "Lab"),
    (f"{FAIL_NUMBER} - Nobody.pdf", FAIL_NUMBER, "Nobody"),
]


def drop(hot: Path, relpath: str, data: bytes) -> Path:
    """Write a file into the outbox the way a person's copy would."""
    path = hot / relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def run_until_done(service: Outbound, db: Any, count: int, timeout: float = 20.0) -> None:
    """Drive submit and follow-up passes (as the daemon's scheduler would)."""

    def finished() -> bool:
        service.submit_pending()
        service.follow_up()
        done = [j for j in list_jobs(db) if j.state in ("sent", "failed")]
        return len(done) >= count

    assert wait_for(finished, timeout=timeout, step=0.2), [
        (j.id, j.state, j.last_error) for j in list_jobs(db)
    ]


@pytest.mark.parametrize("poll_seconds", [None, 0.2], ids=["inotify", "polling"])
def test_ten_dropped_files_are_each_sent_once(
    poll_seconds: float | None,
    make_outbound: Callable[..., Outbound],
    folders: Any,
    sim: Any,
    db: Any,
) -> None:
    """Ten files (both name forms and the folder form) -> ten POSTs with the exact bytes."""
    sim.fail_numbers.add(FAIL_NUMBER)
    sim.job_seconds = 0.2
    service = make_outbound(poll_seconds=poll_seconds)
    contents = {relpath: b"%PDF-1.4\n" + secrets.token_bytes(2048) for relpath, *_ in TEN_FILES}
    for relpath, data in contents.items():
        drop(folders.hot, relpath, data)

    assert wait_for(lambda: len(list_jobs(db)) == 10, timeout=15), list_jobs(db)
    run_until_done(service, db, 10)

    assert sim.sendfax_posts == 10
    posted = {job.faxno: job for job in sim.jobs.values()}
    assert len(sim.jobs) == 10
    for relpath, faxno, recipname in TEN_FILES:
        job = posted[faxno]
        assert job.recipname == recipname
        assert [data for _name, data in job.files] == [contents[relpath]]

    sent = files_in(folders.sent)
    assert sorted(sent) == sorted(Path(r).name for r, faxno, _ in TEN_FILES if faxno != FAIL_NUMBER)
    for relpath, faxno, _ in TEN_FILES:
        if faxno != FAIL_NUMBER:
            assert sent[Path(relpath).name] == contents[relpath]
    failed_name = f"{FAIL_NUMBER} - Nobody.pdf"
    failed = files_in(folders.failed)
    assert failed[failed_name] == contents[failed_name]
    reason = failed[failed_name + ".txt"].decode()
    assert reason.count("\n") == 1 and "FAXAGE could not deliver the fax" in reason

    assert [p for p in folders.hot.rglob("*") if p.is_file()] == []
    states = sorted(j.state for j in list_jobs(db))
    assert states == ["failed"] + ["sent"] * 9
    assert all(j.cleared == 1 for j in list_jobs(db))
    assert all(job.cleared for job in sim.jobs.values())


def test_rejected_files_land_in_failed_with_a_reason(
    make_outbound: Callable[..., Outbound],
    folders: Any,
    sim: Any,
    db: Any,
    tmp_path: Path,
) -> None:
    """Bad type, no number, 9 digits, empty, symlink, FIFO: each in failed/ with one line."""
    outside = tmp_path / "private" / "salaries.pdf"
    outside.parent.mkdir()
    outside.write_bytes(b"%PDF-1.4 secret")
    drop(folders.hot, "3035551212.exe", b"MZ not a document")
    drop(folders.hot, "quarterly report.pdf", b"%PDF-1.4 a")
    drop(folders.hot, "303555121.pdf", b"%PDF-1.4 b")
    drop(folders.hot, "3035551213.pdf", b"")
    os.symlink(outside, folders.hot / "3035551214.pdf")
    os.mkfifo(folders.hot / "3035551215.pdf")  # unreadable as a document, even for root
    litter = {
        ".3035551216.pdf": b"hidden",
        "~$3035551217.docx": b"lock",
        "3035551218.pdf.part": b"partial",
        "3035551219.tmp": b"temp",
        "3035551220.pdf.crdownload": b"download",
        "._3035551221.pdf": b"resource fork",
        "Thumbs.db": b"thumbs",
        "desktop.ini": b"ini",
        "@eaDir/3035551222.pdf": b"synology",
    }
    for relpath, data in litter.items():
        drop(folders.hot, relpath, data)
    make_outbound()

    expected = {
        "3035551212.exe": ".exe files are not supported",
        "quarterly report.pdf": "has no fax number",
        "303555121.pdf": "has 9 digits",
        "3035551213.pdf": "is empty",
        "3035551214.pdf": "is a symbolic link",
        "3035551215.pdf": "not a regular file",
    }
    reasons = {name: folders.failed / (name + ".txt") for name in expected}
    assert wait_for(lambda: all(p.exists() for p in reasons.values()), timeout=10), sorted(
        os.listdir(folders.failed)
    )
    for name, words in expected.items():
        line = reasons[name].read_text()
        assert words in line, line
        assert line.endswith("\n") and line.count("\n") == 1
        assert os.path.lexists(folders.failed / name)
    assert (folders.failed / "3035551214.pdf").is_symlink()  # moved as a link, never followed
    assert outside.read_bytes() == b"%PDF-1.4 secret"

    time.sleep(1.0)  # several settle periods: litter must still be untouched
    for relpath, data in litter.items():
        assert (folders.hot / relpath).read_bytes() == data
    assert list_jobs(db) == []
    assert sim.sendfax_posts == 0


def test_linked_folder_is_refused_and_not_followed(
    make_outbound: Callable[..., Outbound], folders: Any, sim: Any, db: Any, tmp_path: Path
) -> None:
    """A symlink to a folder outside the outbox is refused; nothing behind it is sent."""
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "report.pdf").write_bytes(b"%PDF-1.4 not for faxing")
    os.symlink(outside, folders.hot / "3035551212")
    make_outbound()
    reason = folders.failed / "3035551212.txt"
    assert wait_for(reason.exists, timeout=10), sorted(os.listdir(folders.failed))
    assert "symbolic link" in reason.read_text()
    time.sleep(1.0)
    assert (outside / "report.pdf").read_bytes() == b"%PDF-1.4 not for faxing"
    assert list_jobs(db) == []
    assert sim.sendfax_posts == 0


@pytest.mark.skipif(
    os.geteuid() == 0,
    reason="root reads any file; test_unreadable_file.py checks this as nobody under root",
)
def test_file_without_read_permission_is_rejected(
    make_outbound: Callable[..., Outbound], folders: Any, db: Any
) -> None:
    """A file faxd may not read is moved to failed/ with a permissions reason."""
    path = drop(folders.hot, "3035551212.pdf", b"%PDF-1.4 locked")
    path.chmod(0)
    make_outbound()
    reason = folders.failed / "3035551212.pdf.txt"
    assert wait_for(reason.exists, timeout=10)
    assert "read permission" in reason.read_text()
    assert list_jobs(db) == []


def test_name_clash_in_sent_never_overwrites(
    make_outbound: Callable[..., Outbound], folders: Any, sim: Any, db: Any
) -> None:
    """A file already in sent/ under the same name is kept; the new one gets the job id."""
    sim.job_seconds = 0.1
    (folders.sent / "3035551212.pdf").write_bytes(b"yesterday's fax")
    service = make_outbound()
    drop(folders.hot, "3035551212.pdf", b"%PDF-1.4 today")
    assert wait_for(lambda: len(list_jobs(db)) == 1)
    run_until_done(service, db, 1)
    job = list_jobs(db)[0]
    assert (folders.sent / "3035551212.pdf").read_bytes() == b"yesterday's fax"
    assert (folders.sent / f"3035551212-{job.id}.pdf").read_bytes() == b"%PDF-1.4 today"
    assert job.final_path == str(folders.sent / f"3035551212-{job.id}.pdf")


def test_files_present_at_start_up_are_taken(
    make_outbound: Callable[..., Outbound], folders: Any, db: Any
) -> None:
    """Files already waiting in the outbox when faxd starts become jobs."""
    drop(folders.hot, "3035551212.pdf", b"%PDF-1.4 early")
    drop(folders.hot, "3035551213/a.pdf", b"%PDF-1.4 early too")
    make_outbound()
    # The row is committed just before its file is copied into the spool.
    assert wait_for(
        lambda: len(jobs := list_jobs(db)) == 2 and all(Path(j.spool_path).exists() for j in jobs)
    )
    assert sorted(j.faxno for j in list_jobs(db)) == ["+13035551212", "+13035551213"]
    assert all(Path(j.spool_path).read_bytes().startswith(b"%PDF") for j in list_jobs(db))


def test_rescan_finds_files_the_watcher_missed(
    make_settings: Callable[..., Any], folders: Any, db: Any, client: Any
) -> None:
    """With the observer stopped (as if inotify overflowed), a rescan still finds files."""
    service = Outbound(make_settings(), db, FaxageOutbound(client, make_settings()))
    service.start()
    try:
        assert wait_for(service.is_healthy)
        service.watcher.stop()  # events stop arriving, and the service notices
        assert not service.is_healthy()
        drop(folders.hot, "3035551212.pdf", b"%PDF-1.4 unseen")
        time.sleep(1.5)  # three settle periods
        assert list_jobs(db) == []
        service.rescan()
        assert wait_for(lambda: len(list_jobs(db)) == 1)
    finally:
        service.stop()


def test_dead_observer_is_restarted(
    make_outbound: Callable[..., Outbound], folders: Any, db: Any
) -> None:
    """If the observer thread dies, the worker restarts it and events flow again."""
    service = make_outbound()
    assert wait_for(service.is_healthy)
    observer = service.watcher._observer
    observer.stop()
    observer.join(timeout=5)
    assert wait_for(service.is_healthy, timeout=5)
    assert service.watcher._observer is not observer
    drop(folders.hot, "3035551212.pdf", b"%PDF-1.4 after restart")
    assert wait_for(lambda: len(list_jobs(db)) == 1)


@pytest.mark.slow
def test_slow_writer_is_sent_once_and_complete(
    make_outbound: Callable[..., Outbound], folders: Any, sim: Any, db: Any
) -> None:
    """A file written 10 KB a second for 12 s, closed after every chunk, is sent once, whole.

    settle_seconds is six times the writer's pause, so only a writer stalled
    for over 5 s (not a merely slow machine) would look finished.
    """
    service = make_outbound(settle_seconds=6.0)
    path = folders.hot / "3035551212 - Slow Scanner.pdf"
    chunks = [secrets.token_bytes(10_240) for _ in range(12)]

    def write_slowly() -> None:
        for chunk in chunks:
            with path.open("ab") as out:  # a scanner that closes the file after each page
                out.write(chunk)
            time.sleep(1.0)

    writer = threading.Thread(target=write_slowly)
    writer.start()
    while writer.is_alive():
        service.submit_pending()  # the scheduler keeps running meanwhile
        assert list_jobs(db) == [], "taken while still being written"
        time.sleep(0.3)
    writer.join()
    assert wait_for(lambda: len(list_jobs(db)) == 1, timeout=60)
    service.submit_pending()
    assert sim.sendfax_posts == 1
    (job,) = sim.jobs.values()
    assert job.files[0][1] == b"".join(chunks)


@pytest.mark.slow
def test_burst_of_500_files_each_becomes_one_job(
    make_outbound: Callable[..., Outbound], folders: Any, sim: Any, db: Any
) -> None:
    """500 files dropped at once -> 500 jobs and 500 POSTs, no duplicates, no misses."""
    service = make_outbound()
    numbers = [f"303555{n:04d}" for n in range(500)]
    for number in numbers:
        drop(folders.hot, f"{number}.pdf", b"%PDF-1.4 " + number.encode())
    assert wait_for(lambda: len(list_jobs(db)) >= 500, timeout=40), len(list_jobs(db))
    time.sleep(1.0)  # late duplicates would show up here
    jobs = list_jobs(db)
    assert sorted(j.faxno for j in jobs) == [f"+1{number}" for number in numbers]
    service.submit_pending()
    assert sim.sendfax_posts == 500
    assert sorted(j.faxno for j in sim.jobs.values()) == numbers
    for job in sim.jobs.values():
        assert job.files[0][1] == b"%PDF-1.4 " + job.faxno.encode()
    assert [p for p in folders.hot.rglob("*") if p.is_file()] == []


def test_owner_is_told_when_a_file_becomes_a_job_and_only_then(
    make_settings: Callable[..., Any], folders: Any, db: Any, client: Any
) -> None:
    """on_queued fires for an accepted file (the daemon then submits), not a rejected one."""
    service = Outbound(make_settings(), db, FaxageOutbound(client, make_settings()))
    calls: list[int] = []
    service.on_queued = lambda: calls.append(len(list_jobs(db)))
    service.start()
    try:
        drop(folders.hot, "notes.pdf", b"%PDF-1.4 no number here")
        assert wait_for(lambda: (folders.failed / "notes.pdf.txt").exists())
        assert calls == []
        drop(folders.hot, "3035551212.pdf", b"%PDF-1.4 to send")
        assert wait_for(lambda: calls != [])
        assert calls[0] == 1  # told after the job row exists
    finally:
        service.stop()
