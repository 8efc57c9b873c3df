"""Recovery paths: a move that fails or a crash mid-move never loses, steals or doubles a file."""

from __future__ import annotations

import hashlib
import queue
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from faxd.outbound.intake import Intake
from faxd.outbound.service import (
    IDLE_WAIT_SECONDS,
    Outbound,
    list_jobs,
    queue_files,
    retry_job,
)
from faxd.providers.faxage.provider import FaxageOutbound
from faxd.store.models import OutboundJob
from faxd.store.states import JobState


def add_job(db: Any, **values: Any) -> int:
    """Insert an outbound job row as a crash would have left it."""
    now = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
    defaults: dict[str, Any] = {
        "faxno": "3035551212",
        "source_name": "3035551212.pdf",
        "source_relpath": "3035551212.pdf",
        "created_at": now,
        "updated_at": now,
    }
    defaults.update(values)
    with db.session() as session:
        job = OutboundJob(**defaults)
        session.add(job)
        session.flush()
        job_id: int = job.id
        return job_id


def test_new_file_with_an_old_jobs_name_is_not_adopted_at_start_up(
    make_settings: Callable[..., Any], folders: Any, db: Any
) -> None:
    """A submitted job whose spool file already went to sent/ does not take a new same-name drop."""
    old = b"%PDF-1.4 yesterday"
    (folders.sent / "3035551212.pdf").write_bytes(old)
    add_job(
        db,
        state=JobState.SUBMITTED.value,
        remote_jobid="7001",
        spool_path=str(folders.spool / "1-3035551212.pdf"),
        final_path=str(folders.sent / "3035551212.pdf"),
        size=len(old),
        sha256=hashlib.sha256(old).hexdigest(),
    )
    new = folders.hot / "3035551212.pdf"
    new.write_bytes(b"%PDF-1.4 today's different letter")
    Intake(make_settings(), db).reconcile()
    assert new.read_bytes() == b"%PDF-1.4 today's different letter"
    assert not (folders.spool / "1-3035551212.pdf").exists()


def test_queued_job_does_not_adopt_a_different_file_of_the_same_name(
    make_settings: Callable[..., Any], folders: Any, db: Any
) -> None:
    """Resuming an interrupted spool move takes the source only if its bytes are the job's."""
    recorded = b"%PDF-1.4 the original"
    add_job(
        db,
        state=JobState.QUEUED.value,
        spool_path=str(folders.spool / "1-3035551212.pdf"),
        size=len(recorded),
        sha256=hashlib.sha256(recorded).hexdigest(),
    )
    other = folders.hot / "3035551212.pdf"
    other.write_bytes(b"%PDF-1.4 a later, different document")
    intake = Intake(make_settings(), db)
    intake.reconcile()
    assert other.exists()
    (job,) = list_jobs(db)
    assert not intake.ensure_spooled(job.id)


def test_spool_failure_leaves_no_job_and_no_duplicate_on_rescan(
    make_settings: Callable[..., Any], folders: Any, db: Any, tmp_path: Path
) -> None:
    """If the file cannot be moved into the spool, no job row is left to pile up per rescan."""
    blocker = tmp_path / "spool-is-a-file"
    blocker.write_bytes(b"")
    intake = Intake(make_settings(spool_dir=blocker), db)
    path = folders.hot / "3035551212.pdf"
    path.write_bytes(b"%PDF-1.4 stuck")
    assert intake.take(path) is None
    assert intake.take(path) is None  # the next rescan
    assert list_jobs(db) == []
    assert path.read_bytes() == b"%PDF-1.4 stuck"


def test_one_unspoolable_job_does_not_block_the_others(
    make_settings: Callable[..., Any], folders: Any, db: Any, client: Any, sim: Any
) -> None:
    """A queued job whose file cannot be moved into the spool is skipped; later jobs still go."""
    stuck = folders.hot / "3035551212.pdf"
    stuck.write_bytes(b"%PDF-1.4 stuck")
    add_job(
        db,
        state=JobState.QUEUED.value,
        spool_path=str(folders.spool / "no-such-folder" / "1-3035551212.pdf"),
        size=stuck.stat().st_size,
        sha256=hashlib.sha256(stuck.read_bytes()).hexdigest(),
    )
    good = folders.spool / "2-3035551213.pdf"
    good.write_bytes(b"%PDF-1.4 fine")
    add_job(
        db,
        state=JobState.QUEUED.value,
        faxno="3035551213",
        source_name="3035551213.pdf",
        source_relpath="3035551213.pdf",
        spool_path=str(good),
    )
    service = Outbound(make_settings(), db, FaxageOutbound(client, make_settings()))
    assert service.submit_pending() == 1
    assert sim.sendfax_posts == 1
    assert stuck.exists()
    assert [j.state for j in list_jobs(db)] == [JobState.QUEUED.value, JobState.SUBMITTED.value]


def test_retry_from_a_failed_folder_on_another_file_system(
    make_settings: Callable[..., Any],
    db: Any,
    client: Any,
    sim: Any,
    tmp_path: Path,
    other_mount: Path,
) -> None:
    """faxd retry brings the file back from a failed folder on another mount (no EXDEV crash)."""
    settings = make_settings(failed_folder=other_mount)
    sim.fail_numbers.add("3035551212")
    sim.job_seconds = 0.0
    doc = tmp_path / "3035551212.pdf"
    doc.write_bytes(b"%PDF-1.4 across mounts")
    (job_id,) = queue_files([doc], "3035551212", None, config=settings, db=db)
    service = Outbound(settings, db, FaxageOutbound(client, settings))
    service.submit_pending()
    service.follow_up()
    assert (other_mount / "3035551212.pdf").exists()

    sim.fail_numbers.clear()
    retried = retry_job(db, job_id)
    assert retried.state == JobState.QUEUED.value
    assert not (other_mount / "3035551212.pdf").exists()
    assert Path(retried.spool_path).read_bytes() == b"%PDF-1.4 across mounts"
    service.submit_pending()
    service.follow_up()
    assert list_jobs(db)[0].state == JobState.SENT.value


class RecordingQueue(queue.Queue[Path]):
    """The worker's queue, noting the timeout of every wait and every put."""

    def __init__(self) -> None:
        super().__init__()
        self.waits: list[float | None] = []
        self.puts: list[Path] = []
        self.waited = threading.Event()  # set on every blocking get

    def get(self, block: bool = True, timeout: float | None = None) -> Path:
        if block:
            self.waits.append(timeout)
            self.waited.set()
        return super().get(block, timeout)

    def put(self, item: Path, block: bool = True, timeout: float | None = None) -> None:
        self.puts.append(item)
        super().put(item, block, timeout)


def test_idle_worker_sleeps_instead_of_ticking(
    make_settings: Callable[..., Any], db: Any, client: Any
) -> None:
    """With nothing waiting to settle, the worker blocks for the idle wait, not one tick,
    and stop() wakes it through its queue rather than leaving it to time out.

    Judged by the timeouts the worker waits with, not by counting wake-ups in a
    wall-clock window, so a slow machine cannot turn it red.
    """
    settings = make_settings()
    service = Outbound(settings, db, FaxageOutbound(client, settings), tick_seconds=0.05)
    paths = RecordingQueue()
    service._paths = paths  # the worker's queue, and the watcher's with it
    service.watcher.paths = paths
    service.start()
    try:
        # The first wait is after the start-up scan; wait for the one after it as well.
        deadline = time.monotonic() + 120
        while len(paths.waits) < 2:
            assert time.monotonic() < deadline, paths.waits
            paths.waited.wait(1.0)
            paths.waited.clear()
        assert all(t is not None and t >= IDLE_WAIT_SECONDS for t in paths.waits), paths.waits
        puts_before_stop = len(paths.puts)
        worker = service._worker
    finally:
        service.stop()
    assert worker is not None and not worker.is_alive()
    assert len(paths.puts) > puts_before_stop  # stop() put a wake-up where the worker waits


def test_one_unfileable_job_does_not_stop_the_follow_up_pass(
    make_settings: Callable[..., Any],
    folders: Any,
    db: Any,
    client: Any,
    sim: Any,
    tmp_path: Path,
) -> None:
    """If one finished job's reason file cannot be written, the others are still filed."""
    sim.fail_numbers.add("3035551212")
    sim.job_seconds = 0.0
    (folders.failed / "3035551212.pdf.txt").mkdir()  # blocks the reason file
    docs = []
    for number in ("3035551212", "3035551213"):
        doc = tmp_path / f"{number}.pdf"
        doc.write_bytes(b"%PDF-1.4 " + number.encode())
        docs.append(doc)
    settings = make_settings()
    queue_files([docs[0]], "3035551212", None, config=settings, db=db)
    queue_files([docs[1]], "3035551213", None, config=settings, db=db)
    service = Outbound(settings, db, FaxageOutbound(client, settings))
    service.submit_pending()
    assert service.follow_up() == 1
    states = {j.faxno: j.state for j in list_jobs(db)}
    assert states == {"+13035551212": JobState.SUBMITTED.value, "+13035551213": JobState.SENT.value}
    assert not [p for p in folders.failed.iterdir() if p.name.endswith(".faxd-tmp")]
    (folders.failed / "3035551212.pdf.txt").rmdir()
    assert service.follow_up() == 1  # the blocked one is filed on the next pass
    assert "could not deliver" in (folders.failed / "3035551212.pdf.txt").read_text()
