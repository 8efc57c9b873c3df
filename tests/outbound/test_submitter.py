"""Submission decisions by error type, with a fake FAXAGE client behind the real adapter."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from structlog.testing import capture_logs

from faxd.errors import AuthError, OutcomeUnknownError, PermanentError, TransientError
from faxd.outbound.service import list_jobs
from faxd.outbound.submitter import UNSURE, Submitter
from faxd.providers.base import JobStatus
from faxd.providers.faxage.provider import FaxageOutbound
from faxd.providers.faxage.records import StatusRecord, StatusResult
from faxd.store.models import OutboundJob
from faxd.store.states import JobState


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


class FakeClient:
    """Answers sendfax from a script of results (an int JOBID or an exception)."""

    def __init__(self, *results: int | Exception) -> None:
        self.results = list(results)
        self.sent: list[tuple[str, str, list[Any]]] = []
        self.records: list[StatusRecord] = []

    def sendfax(self, faxno: str, recipname: str, files: Sequence[Any], **_: Any) -> int:
        self.sent.append((faxno, recipname, list(files)))
        result = self.results.pop(0)
        if isinstance(result, Exception):
            raise result
        return result

    account = "acme@12345"

    def status(self, jobids: Sequence[int] | None = None, **_: Any) -> list[StatusRecord]:
        return list(self.records)

    def status_result(self, jobids: Sequence[int] | None = None, **_: Any) -> StatusResult:
        return StatusResult(records=tuple(self.records))

    def clear(self, jobid: int) -> None:
        pass

    def stopfax(self, jobid: int) -> None:
        pass


def queue_job(db: Any, folders: Any, clock: FakeClock, faxno: str = "+13035551212") -> int:
    spool = folders.spool / f"{faxno}.pdf"
    spool.write_bytes(b"%PDF-1.4 queued")
    with db.session() as session:
        job = OutboundJob(
            state=JobState.QUEUED.value,
            faxno=faxno,
            source_name=f"{faxno}.pdf",
            source_relpath=f"{faxno}.pdf",
            spool_path=str(spool),
            created_at=clock(),
            updated_at=clock(),
        )
        session.add(job)
        session.flush()
        return job.id


def build(
    make_settings: Callable[..., Any], db: Any, client: FakeClient, clock: FakeClock
) -> Submitter:
    settings = make_settings(max_attempts=3)
    return Submitter(
        settings, db, FaxageOutbound(client, settings), clock=clock, backoff_base=10.0
    )


def as_job(record: StatusRecord) -> JobStatus:
    """A status record as the FAXAGE adapter hands it to the core."""
    return FaxageOutbound(FakeClient()).job_status(record)


def state_of(db: Any, job_id: int) -> OutboundJob:
    with db.session() as session:
        job: OutboundJob | None = session.get(OutboundJob, job_id)
        assert job is not None
        return job


def test_unsent_transient_fault_requeues_with_backoff(
    make_settings: Callable[..., Any], folders: Any, db: Any
) -> None:
    """A fault before the POST reached FAXAGE puts the job back in the queue, later."""
    clock = FakeClock()
    client = FakeClient(TransientError("connection refused", operation="sendfax"), 7001)
    submitter = build(make_settings, db, client, clock)
    job_id = queue_job(db, folders, clock)
    assert submitter.submit_pending() == 0
    job = state_of(db, job_id)
    assert job.state == JobState.QUEUED.value
    assert job.next_attempt_at == clock() + timedelta(seconds=10)
    assert submitter.submit_pending() == 0  # not due yet: nothing posted
    assert len(client.sent) == 1
    clock.now += timedelta(seconds=10)
    assert submitter.submit_pending() == 1
    assert state_of(db, job_id).remote_jobid == "7001"


def test_transient_faults_give_up_after_max_attempts(
    make_settings: Callable[..., Any], folders: Any, db: Any
) -> None:
    """After max_attempts unsent faults the job fails with a reason file."""
    clock = FakeClock()
    client = FakeClient(*[TransientError("ERR01: Database connection failed")] * 3)
    submitter = build(make_settings, db, client, clock)
    job_id = queue_job(db, folders, clock)
    for _ in range(3):
        submitter.submit_pending()
        clock.now += timedelta(hours=1)
    job = state_of(db, job_id)
    assert job.state == JobState.FAILED.value
    assert "gave up after 3 attempts" in (folders.failed / "+13035551212.pdf.txt").read_text()


def test_outcome_unknown_stays_submitting_and_is_not_resent_blindly(
    make_settings: Callable[..., Any], folders: Any, db: Any
) -> None:
    """A lost answer leaves the job submitting; the next pass reconciles, it does not repost."""
    clock = FakeClock()
    client = FakeClient(OutcomeUnknownError("read timed out", operation="sendfax"))
    submitter = build(make_settings, db, client, clock)
    job_id = queue_job(db, folders, clock)
    submitter.submit_pending()
    assert state_of(db, job_id).state == JobState.SUBMITTING.value
    client.records = [
        StatusRecord(
            jobid=9123,
            commid="1",
            destname="",
            destnum="(303)555-1212",
            shortstatus="pending",
            longstatus="In Queue",
            sendtime=(clock() + timedelta(seconds=3)).astimezone().replace(tzinfo=None),
            completetime=None,
            xmittime="00:00:00",
        )
    ]
    submitter.reconcile()
    submitter.submit_pending()
    job = state_of(db, job_id)
    assert (job.state, job.remote_jobid, job.resends) == (JobState.SUBMITTED.value, "9123", 0)
    assert len(client.sent) == 1


def test_record_sent_before_the_job_existed_is_not_a_match(
    make_settings: Callable[..., Any], folders: Any, db: Any
) -> None:
    """A fax to the same number sent an hour before the job was created is someone else's."""
    clock = FakeClock()
    client = FakeClient(OutcomeUnknownError("reset", operation="sendfax"), 8000)
    submitter = build(make_settings, db, client, clock)
    job_id = queue_job(db, folders, clock)
    submitter.submit_pending()
    client.records = [
        StatusRecord(
            jobid=5555,
            commid="1",
            destname="",
            destnum="(303)555-1212",
            shortstatus="success",
            longstatus="Success",
            sendtime=(clock() - timedelta(hours=1)).astimezone().replace(tzinfo=None),
            completetime=None,
            xmittime="00:00:30",
        )
    ]
    submitter.reconcile()
    submitter.submit_pending()
    job = state_of(db, job_id)
    assert (job.remote_jobid, job.resends) == ("8000", 1)


def test_permanent_error_fails_at_once(
    make_settings: Callable[..., Any], folders: Any, db: Any
) -> None:
    """ERR04 is not retried: the job fails with FAXAGE's reason beside the file."""
    clock = FakeClock()
    client = FakeClient(PermanentError("ERR04: Fax number appears to be invalid", code="ERR04"))
    submitter = build(make_settings, db, client, clock)
    job_id = queue_job(db, folders, clock)
    submitter.submit_pending()
    clock.now += timedelta(days=1)
    submitter.submit_pending()
    assert len(client.sent) == 1
    assert state_of(db, job_id).state == JobState.FAILED.value
    reason = (folders.failed / "+13035551212.pdf.txt").read_text()
    assert "ERR04" in reason and "invalid" in reason


def test_login_refused_stops_the_pass(
    make_settings: Callable[..., Any], folders: Any, db: Any
) -> None:
    """ERR02 requeues the job and posts nothing more in that pass."""
    clock = FakeClock()
    client = FakeClient(AuthError("ERR02: Login incorrect", code="ERR02"))
    submitter = build(make_settings, db, client, clock)
    first = queue_job(db, folders, clock, "+13035551212")
    second = queue_job(db, folders, clock, "+13035551213")
    submitter.submit_pending()
    assert len(client.sent) == 1
    assert state_of(db, first).state == JobState.QUEUED.value
    assert state_of(db, second).state == JobState.QUEUED.value


def test_missing_spool_file_fails_the_job(
    make_settings: Callable[..., Any], folders: Any, db: Any
) -> None:
    """A job whose file vanished from the spool fails instead of posting nothing."""
    clock = FakeClock()
    client = FakeClient()
    submitter = build(make_settings, db, client, clock)
    job_id = queue_job(db, folders, clock)
    Path(state_of(db, job_id).spool_path).unlink()
    submitter.submit_pending()
    assert client.sent == []
    assert [j.state for j in list_jobs(db)] == [JobState.FAILED.value]


def test_login_refused_pauses_every_job_not_just_the_one_refused(
    make_settings: Callable[..., Any], folders: Any, db: Any
) -> None:
    """After ERR02 no job is posted until the pause is over, then sending resumes."""
    clock = FakeClock()
    client = FakeClient(AuthError("ERR02: Login incorrect", code="ERR02"), 5001)
    submitter = build(make_settings, db, client, clock)
    queue_job(db, folders, clock, "+13035551212")
    second = queue_job(db, folders, clock, "+13035551213")
    submitter.submit_pending()
    for _ in range(10):  # the daemon's quick submit pass runs every few seconds
        clock.now += timedelta(seconds=3)
        submitter.submit_pending()
    assert len(client.sent) == 1
    clock.now += submitter.auth_pause
    submitter.submit_pending()
    # Stored as E.164; FAXAGE's adapter dials its 10 digits.
    assert [faxno for faxno, _name, _files in client.sent] == ["3035551212", "3035551213"]
    assert state_of(db, second).state == JobState.SUBMITTED.value


def _record(sendtime: datetime) -> StatusRecord:
    return StatusRecord(
        jobid=777,
        commid="1",
        destname="",
        destnum="(303)555-1212",
        shortstatus="pending",
        longstatus="In Queue",
        sendtime=sendtime,
        completetime=None,
        xmittime="00:00:00",
    )


def test_lost_answer_is_matched_in_the_zone_faxage_writes_times_in(
    make_settings: Callable[..., Any], folders: Any, db: Any
) -> None:
    """FAXAGE's naive sendtime is read in the configured zone, not this machine's."""
    clock = FakeClock()  # the job is created at 15:00 UTC = 08:00 in Denver (MST)
    job = state_of(db, queue_job(db, folders, clock))
    denver_wallclock = datetime(2026, 3, 2, 8, 0, 30)
    faxage = FaxageOutbound(FakeClient())
    in_denver = Submitter(
        make_settings(), db, faxage, clock=clock, sendtime_zone=ZoneInfo("America/Denver")
    )
    in_utc = Submitter(make_settings(), db, faxage, clock=clock, sendtime_zone=UTC)
    assert in_denver.find_match(job, [as_job(_record(denver_wallclock))], set()) is not None
    assert in_utc.find_match(job, [as_job(_record(denver_wallclock))], set()) is None


def test_two_records_with_unknown_sendtime_leave_the_job_submitting_unsent(
    make_settings: Callable[..., Any], folders: Any, db: Any
) -> None:
    """Two unclaimed records for the number, times unreadable: neither matched nor resent.

    The job stays submitting and is asked about again at every pass; the log
    says so once, then the job is matched when only one candidate is left.
    """
    clock = FakeClock()
    client = FakeClient(OutcomeUnknownError("read timed out", operation="sendfax"))
    submitter = build(make_settings, db, client, clock)
    job_id = queue_job(db, folders, clock)
    submitter.submit_pending()
    unknown = replace(_record(clock.now), sendtime=None)
    client.records = [unknown, replace(unknown, jobid=778)]
    with capture_logs() as logs:
        for _ in range(3):
            submitter.reconcile()
            submitter.submit_pending()
    job = state_of(db, job_id)
    assert (job.state, job.resends, len(client.sent)) == (JobState.SUBMITTING.value, 0, 1)
    (said,) = [entry for entry in logs if entry["event"] == "outbound.reconcile_unsure"]
    assert said["message"] == job.last_error == (
        f"cannot tell whether FAXAGE got job {job_id}; check the portal; "
        "faxd asks again at the next pass"
    )

    client.records = [unknown]
    submitter.reconcile()
    submitter.submit_pending()
    job = state_of(db, job_id)
    assert (job.state, job.remote_jobid, len(client.sent)) == (JobState.SUBMITTED.value, "777", 1)


def test_unknown_sendtime_beside_a_dated_candidate_is_unsure(
    make_settings: Callable[..., Any], folders: Any, db: Any
) -> None:
    """Either record could be the job, so find_match neither picks one nor says "none"."""
    clock = FakeClock()
    job = state_of(db, queue_job(db, folders, clock))
    submitter = build(make_settings, db, FakeClient(), clock)
    dated = as_job(_record(clock.now.astimezone().replace(tzinfo=None)))
    unknown = as_job(replace(_record(clock.now), jobid=778, sendtime=None))
    assert submitter.find_match(job, [dated, unknown], set()) is UNSURE
    assert submitter.find_match(job, [dated, unknown], {"778"}) == dated
    assert submitter.find_match(job, [unknown], {"777"}) == unknown
