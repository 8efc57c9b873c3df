"""faxd send / jobs / retry / cancel, against the real database and simulator."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from faxd.errors import FaxdError, IntakeError
from faxd.outbound.service import (
    Outbound,
    cancel_job,
    list_jobs,
    queue_files,
    retry_job,
)
from faxd.providers.faxage.provider import FaxageOutbound
from faxd.store.states import JobState


def service_for(make_settings: Callable[..., Any], db: Any, client: Any) -> Outbound:
    """An Outbound whose passes the test drives by hand (no watcher thread)."""
    return Outbound(make_settings(), db, FaxageOutbound(client, make_settings()))


def test_send_queues_copies_through_the_same_path(
    make_settings: Callable[..., Any], db: Any, client: Any, sim: Any, tmp_path: Path
) -> None:
    """`faxd send` queues each file for the number; the originals stay where they were."""
    first = tmp_path / "letter.pdf"
    second = tmp_path / "invoice.tif"
    first.write_bytes(b"%PDF-1.4 letter")
    second.write_bytes(b"II*\x00 invoice")
    ids = queue_files([first, second], "(303) 555-1212", "Acme", config=make_settings(), db=db)
    assert len(ids) == 2
    assert first.exists() and second.exists()
    service_for(make_settings, db, client).submit_pending()
    assert sim.sendfax_posts == 2
    posted = sorted((j.faxno, j.recipname, j.files[0]) for j in sim.jobs.values())
    assert posted == [
        ("3035551212", "Acme", ("invoice.tif", b"II*\x00 invoice")),
        ("3035551212", "Acme", ("letter.pdf", b"%PDF-1.4 letter")),
    ]


@pytest.mark.parametrize(
    ("name", "data", "faxno", "words"),
    [
        ("letter.exe", b"MZ", "3035551212", "not supported"),
        ("letter.pdf", b"", "3035551212", "is empty"),
        ("letter.pdf", b"%PDF", "555-1212", "not a 10-digit fax number"),
    ],
)
def test_send_refuses_bad_input_and_queues_nothing(
    name: str,
    data: bytes,
    faxno: str,
    words: str,
    make_settings: Callable[..., Any],
    db: Any,
    tmp_path: Path,
) -> None:
    """A bad file or number raises IntakeError with the reason, and no job is created."""
    good = tmp_path / "good.pdf"
    good.write_bytes(b"%PDF-1.4 fine")
    bad = tmp_path / name
    bad.write_bytes(data)
    with pytest.raises(IntakeError) as caught:
        queue_files([good, bad], faxno, None, config=make_settings(), db=db)
    assert words in caught.value.message
    assert list_jobs(db) == []


def test_jobs_filter_by_state(make_settings: Callable[..., Any], db: Any, tmp_path: Path) -> None:
    """list_jobs filters by state and names the valid states for a typo."""
    doc = tmp_path / "a.pdf"
    doc.write_bytes(b"%PDF-1.4")
    queue_files([doc], "3035551212", None, config=make_settings(), db=db)
    assert [j.state for j in list_jobs(db, "queued")] == ["queued"]
    assert list_jobs(db, JobState.SENT) == []
    with pytest.raises(FaxdError, match="submitted"):
        list_jobs(db, "sending")


def test_retry_puts_a_failed_job_back_and_it_is_sent(
    make_settings: Callable[..., Any],
    db: Any,
    client: Any,
    sim: Any,
    folders: Any,
    tmp_path: Path,
) -> None:
    """A job that failed on FAXAGE is requeued by retry_job and sent again from failed/."""
    sim.fail_numbers.add("3035551212")
    sim.job_seconds = 0.0
    doc = tmp_path / "3035551212.pdf"
    doc.write_bytes(b"%PDF-1.4 try twice")
    (job_id,) = queue_files([doc], "3035551212", None, config=make_settings(), db=db)
    service = service_for(make_settings, db, client)
    service.submit_pending()
    service.follow_up()
    (job,) = list_jobs(db)
    assert job.state == JobState.FAILED.value
    failed_file = folders.failed / "3035551212.pdf"
    assert failed_file.exists() and Path(str(failed_file) + ".txt").exists()

    sim.fail_numbers.clear()
    retried = retry_job(db, job_id)
    assert retried.state == JobState.QUEUED.value
    assert not failed_file.exists() and not Path(str(failed_file) + ".txt").exists()
    service.submit_pending()
    service.follow_up()
    (job,) = list_jobs(db)
    assert job.state == JobState.SENT.value
    assert (folders.sent / "3035551212.pdf").read_bytes() == b"%PDF-1.4 try twice"
    assert sim.sendfax_posts == 2


def test_retry_refuses_a_job_that_is_not_failed(
    make_settings: Callable[..., Any], db: Any, tmp_path: Path
) -> None:
    """Only failed or cancelled jobs can be retried; unknown ids are named."""
    doc = tmp_path / "a.pdf"
    doc.write_bytes(b"%PDF-1.4")
    (job_id,) = queue_files([doc], "3035551212", None, config=make_settings(), db=db)
    with pytest.raises(FaxdError, match="only failed or cancelled"):
        retry_job(db, job_id)
    with pytest.raises(FaxdError, match="no outbound job 999"):
        retry_job(db, 999)


def test_cancel_queued_job_is_local(
    make_settings: Callable[..., Any],
    db: Any,
    client: Any,
    sim: Any,
    folders: Any,
    tmp_path: Path,
) -> None:
    """Cancelling a queued job never talks to FAXAGE; its file goes to failed/ with a reason."""
    doc = tmp_path / "a.pdf"
    doc.write_bytes(b"%PDF-1.4 never mind")
    (job_id,) = queue_files([doc], "3035551212", None, config=make_settings(), db=db)
    job = cancel_job(db, FaxageOutbound(client), job_id, config=make_settings())
    assert job.state == JobState.CANCELLED.value
    assert (folders.failed / "a.pdf").read_bytes() == b"%PDF-1.4 never mind"
    assert "cancelled" in (folders.failed / "a.pdf.txt").read_text()
    service_for(make_settings, db, client).submit_pending()
    assert sim.sendfax_posts == 0
    assert sim.requests == []


def test_cancel_submitted_job_runs_stopfax(
    make_settings: Callable[..., Any], db: Any, client: Any, sim: Any, tmp_path: Path
) -> None:
    """A submitted job is stopped on FAXAGE with stopfax, then marked cancelled."""
    sim.job_seconds = 600.0
    doc = tmp_path / "a.pdf"
    doc.write_bytes(b"%PDF-1.4 stop me")
    (job_id,) = queue_files([doc], "3035551212", None, config=make_settings(), db=db)
    service_for(make_settings, db, client).submit_pending()
    job = cancel_job(db, FaxageOutbound(client), job_id)
    assert job.state == JobState.CANCELLED.value
    (sim_job,) = sim.jobs.values()
    assert sim_job.stopped
    with pytest.raises(FaxdError, match="only queued or submitted"):
        cancel_job(db, FaxageOutbound(client), job_id)
