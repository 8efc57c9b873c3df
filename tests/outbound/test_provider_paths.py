"""The outbound core on providers that differ from FAXAGE, through the provider interface.

``DictProvider`` is a small OutboundProvider that keeps its jobs in a dict: it
is the interface itself, not a patched module.  It can behave like VoIP.ms
(``send`` returns no id; its list of sent faxes lags) or like faxnummer.de
(no list to reconcile a lost answer with, no cancel).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from faxd.errors import FaxdError, OutcomeUnknownError, TransientError
from faxd.outbound.commands import cancel_job
from faxd.outbound.follow import FollowUp
from faxd.outbound.intake import Intake
from faxd.outbound.submitter import Submitter
from faxd.providers.base import (
    Capabilities,
    JobOutcome,
    JobStatus,
    SendRequest,
    StatusAnswer,
)
from faxd.providers.faxage.provider import FaxageOutbound
from faxd.store.models import OutboundJob
from faxd.store.states import JobState

GRACE = timedelta(minutes=15)


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


class DictProvider:
    """An OutboundProvider whose jobs live in ``self.jobs`` (remote id -> status)."""

    def __init__(
        self,
        clock: FakeClock,
        *,
        name: str = "voipms",
        returns_id: bool = False,
        reconcile: bool = True,
        lose_answer: bool = False,
    ) -> None:
        self.name = name
        self.account = "office@example.com"
        self.capabilities = Capabilities(
            receive=False,
            send=True,
            send_types=frozenset({"pdf"}),
            send_returns_id=returns_id,
            reconcile=reconcile,
            cancel=False,
        )
        self.clock = clock
        self.lose_answer = lose_answer
        self.jobs: dict[str, JobStatus] = {}
        self.sent: list[SendRequest] = []
        self.listed = False  # whether recent_jobs shows the jobs yet (VoIP.ms lags)
        self.calls: list[str] = []
        self.errors: list[Exception] = []  # raised by the next sends, in order

    def send(self, request: SendRequest) -> str | None:
        self.calls.append("send")
        if self.errors:
            raise self.errors.pop(0)  # before the POST reached the provider
        self.sent.append(request)
        remote = f"sent-{len(self.sent)}"
        self.jobs[remote] = JobStatus(
            remote_id=remote,
            outcome=JobOutcome.PENDING,
            status="queued",
            number=request.number,
            sent_at=self.clock() + timedelta(seconds=2),
        )
        if self.lose_answer:
            raise OutcomeUnknownError("read timed out", operation="send")
        return remote if self.capabilities.send_returns_id else None

    def statuses(self, remote_ids: Sequence[str]) -> StatusAnswer:
        self.calls.append("statuses")
        return StatusAnswer(jobs=tuple(self.jobs[i] for i in remote_ids if i in self.jobs))

    def recent_jobs(self, since: datetime) -> StatusAnswer:
        self.calls.append("recent_jobs")
        if not self.capabilities.reconcile:
            raise AssertionError("recent_jobs called on a provider that cannot reconcile")
        return StatusAnswer(jobs=tuple(self.jobs.values()) if self.listed else ())

    def cancel(self, remote_id: str) -> None:
        raise AssertionError("cancel called on a provider that cannot cancel")

    def forget(self, remote_id: str) -> None:
        self.calls.append(f"forget {remote_id}")

    def finish(self, remote_id: str, outcome: JobOutcome, reason: str = "") -> None:
        self.jobs[remote_id] = replace(
            self.jobs[remote_id], outcome=outcome, status=outcome.value, reason=reason
        )


def queue_job(
    make_settings: Callable[..., Any],
    db: Any,
    folders: Any,
    clock: FakeClock,
    name: str = "3035551212.pdf",
    data: bytes = b"%PDF-1.4 queued",
) -> int:
    """Drop ``name`` in the outbox and let the real intake make it a job."""
    (folders.hot / name).write_bytes(data)
    job_id = Intake(make_settings(), db, clock=clock).take(folders.hot / name)
    assert job_id is not None
    return job_id


def job_of(db: Any, job_id: int) -> OutboundJob:
    with db.session() as session:
        job: OutboundJob | None = session.get(OutboundJob, job_id)
        assert job is not None
        return job


def wire(
    make_settings: Callable[..., Any], db: Any, provider: DictProvider, clock: FakeClock
) -> tuple[Submitter, FollowUp]:
    settings = make_settings(clear_after_status=False)
    submitter = Submitter(settings, db, provider, clock=clock, lost_grace=GRACE)
    follow = FollowUp(
        settings, db, provider, clock=clock, lost_grace=GRACE, submitter=submitter
    )
    return submitter, follow


@dataclass
class OneJob:
    """A provider, the core wired to it, and one job that went through a submit pass."""

    clock: FakeClock
    provider: DictProvider
    submitter: Submitter
    follow: FollowUp
    job_id: int


def sent_one(
    make_settings: Callable[..., Any], folders: Any, db: Any, **kind: Any
) -> OneJob:
    clock = FakeClock()
    provider = DictProvider(clock, **kind)
    submitter, follow = wire(make_settings, db, provider, clock)
    job_id = queue_job(make_settings, db, folders, clock)
    submitter.submit_pending()
    return OneJob(clock, provider, submitter, follow, job_id)


def test_a_send_without_an_id_is_found_by_number_and_time_then_followed_to_the_end(
    make_settings: Callable[..., Any], folders: Any, db: Any
) -> None:
    """VoIP.ms gives no id: the job is submitted, named from recent_jobs, then filed."""
    clock = FakeClock()
    provider = DictProvider(clock)
    submitter, follow = wire(make_settings, db, provider, clock)
    job_id = queue_job(make_settings, db, folders, clock)
    assert submitter.submit_pending() == 1
    job = job_of(db, job_id)
    assert (job.state, job.provider, job.remote_jobid) == ("submitted", "voipms", None)
    assert provider.sent[0].number == "+13035551212"  # E.164 for every provider

    clock.now += timedelta(minutes=1)
    assert follow.follow_up() == 0  # not listed yet: waits, nothing resent
    submitter.reconcile()
    submitter.submit_pending()
    assert len(provider.sent) == 1 and job_of(db, job_id).remote_jobid is None

    provider.listed = True
    assert follow.follow_up() == 0
    assert job_of(db, job_id).remote_jobid == "sent-1"
    provider.finish("sent-1", JobOutcome.SENT)
    assert follow.follow_up() == 1
    job = job_of(db, job_id)
    assert (job.state, job.final_path) == ("sent", str(folders.sent / "3035551212.pdf"))
    assert len(provider.sent) == 1


def test_a_send_without_an_id_never_listed_is_failed_with_a_reason_not_resent(
    make_settings: Callable[..., Any], folders: Any, db: Any
) -> None:
    """Not in the provider's list after the grace period: failed, telling what to check."""
    one = sent_one(make_settings, folders, db)
    one.clock.now += GRACE - timedelta(seconds=1)
    one.follow.follow_up()
    assert job_of(db, one.job_id).state == "submitted"
    one.clock.now += timedelta(seconds=1)
    one.follow.follow_up()
    one.submitter.reconcile()
    one.submitter.submit_pending()
    job = job_of(db, one.job_id)
    assert job.state == "failed" and len(one.provider.sent) == 1
    reason = (folders.failed / "3035551212.pdf.txt").read_text()
    assert "VoIP.ms took the fax but did not list it" in reason and "portal" in reason


def test_a_lost_answer_without_ids_waits_for_the_list_instead_of_resending(
    make_settings: Callable[..., Any], folders: Any, db: Any
) -> None:
    """A crash after an id-less POST: the lagging list gets its grace before any resend."""
    one = sent_one(make_settings, folders, db, lose_answer=True)
    assert job_of(db, one.job_id).state == "submitting"
    for _ in range(3):
        one.clock.now += timedelta(minutes=2)
        one.submitter.reconcile()
        one.submitter.submit_pending()
    assert len(one.provider.sent) == 1 and job_of(db, one.job_id).state == "submitting"
    one.provider.listed = True
    one.submitter.reconcile()
    job = job_of(db, one.job_id)
    assert (job.state, job.remote_jobid, job.resends) == ("submitted", "sent-1", 0)


def test_a_lost_answer_the_provider_cannot_reconcile_fails_with_a_portal_reason(
    make_settings: Callable[..., Any], folders: Any, db: Any
) -> None:
    """faxnummer.de has no list: never resent, never asked; the user checks the portal."""
    clock = FakeClock()
    provider = DictProvider(clock, name="faxnummer", returns_id=True, reconcile=False)
    provider.lose_answer = True
    submitter, _follow = wire(make_settings, db, provider, clock)
    job_id = queue_job(make_settings, db, folders, clock)
    submitter.submit_pending()
    assert job_of(db, job_id).state == "failed"  # at once, not at the next pass
    submitter.reconcile()
    clock.now += timedelta(days=1)
    submitter.submit_pending()
    assert provider.calls == ["send"]
    assert job_of(db, job_id).state == "failed"
    reason = (folders.failed / "3035551212.pdf.txt").read_text()
    assert "faxnummer.de" in reason and "check the sent faxes in faxnummer.de's portal" in reason


def test_a_job_left_submitting_by_a_crash_fails_when_the_provider_cannot_reconcile(
    make_settings: Callable[..., Any], folders: Any, db: Any
) -> None:
    """After a restart, a submitting job on a provider without a list is failed, not resent."""
    clock = FakeClock()
    provider = DictProvider(clock, name="faxnummer", returns_id=True, reconcile=False)
    submitter, _follow = wire(make_settings, db, provider, clock)
    job_id = queue_job(make_settings, db, folders, clock)
    with db.session() as session:
        job = session.get(OutboundJob, job_id)
        assert job is not None
        job.state = JobState.SUBMITTING.value  # as a kill -9 right after the POST leaves it
    submitter.reconcile()
    submitter.submit_pending()
    assert provider.calls == []
    assert job_of(db, job_id).state == "failed"
    assert "portal" in (folders.failed / "3035551212.pdf.txt").read_text()


def test_a_provider_with_ids_is_followed_by_statuses_and_failures_keep_its_reason(
    make_settings: Callable[..., Any], folders: Any, db: Any
) -> None:
    """An id returned at send is followed with statuses(); the reason names the provider."""
    one = sent_one(make_settings, folders, db, name="ifax", returns_id=True)
    assert job_of(db, one.job_id).remote_jobid == "sent-1"
    one.provider.finish("sent-1", JobOutcome.FAILED, "the line was busy")
    assert one.follow.follow_up() == 1
    assert "recent_jobs" not in one.provider.calls
    reason = (folders.failed / "3035551212.pdf.txt").read_text()
    assert "iFax could not deliver the fax: the line was busy" in reason


def test_cancel_of_a_submitted_job_is_refused_when_the_provider_cannot_stop_one(
    make_settings: Callable[..., Any], folders: Any, db: Any
) -> None:
    one = sent_one(make_settings, folders, db, name="ifax", returns_id=True)
    with pytest.raises(FaxdError, match="iFax offers no way to stop a fax"):
        cancel_job(db, one.provider, one.job_id)
    assert job_of(db, one.job_id).state == "submitted"


def test_the_spool_file_is_what_the_request_names(
    make_settings: Callable[..., Any], folders: Any, db: Any
) -> None:
    """The request carries the spool path, name, size and hash the job recorded."""
    one = sent_one(make_settings, folders, db, returns_id=True)
    (request,) = one.provider.sent
    job = job_of(db, one.job_id)
    assert (request.job_id, request.path, request.filename) == (
        one.job_id,
        Path(job.spool_path),
        "3035551212.pdf",
    )


# -- files the provider does not take ---------------------------------------------------


def queue_text(make_settings: Callable[..., Any], db: Any, folders: Any, clock: FakeClock) -> int:
    return queue_job(make_settings, db, folders, clock, "3035551212 note.txt", b"call me back")


def to_pdf(calls: list[tuple[Path, frozenset[str], str]]) -> Any:
    def convert(path: Path, accepted: frozenset[str], provider: str, workdir: Path) -> Path:
        calls.append((path, accepted, provider))
        out = workdir / f"{path.stem}.pdf"
        out.write_bytes(b"%PDF-1.4 rendered " + path.read_bytes())
        return out

    return convert


def test_a_type_the_provider_lacks_is_sent_as_the_pdf_it_was_converted_to(
    make_settings: Callable[..., Any], folders: Any, db: Any
) -> None:
    """The spool copy, size and sha256 become the PDF's; the request names a .pdf."""
    clock = FakeClock()
    provider = DictProvider(clock, returns_id=True)
    calls: list[tuple[Path, frozenset[str], str]] = []
    submitter = Submitter(make_settings(), db, provider, clock=clock, convert=to_pdf(calls))
    job_id = queue_text(make_settings, db, folders, clock)
    assert submitter.submit_pending() == 1
    assert [(p.name, a, n) for p, a, n in calls] == [
        (f"{job_id}-3035551212 note.txt", frozenset({"pdf"}), "voipms")
    ]
    (request,) = provider.sent
    pdf = b"%PDF-1.4 rendered call me back"
    job = job_of(db, job_id)
    assert (request.filename, request.path.read_bytes(), request.size, request.sha256) == (
        "3035551212 note.pdf",
        pdf,
        len(pdf),
        hashlib.sha256(pdf).hexdigest(),
    )
    assert (job.spool_path, job.size, job.sha256) == (
        str(request.path),
        request.size,
        request.sha256,
    )
    assert sorted(p.name for p in folders.spool.iterdir() if p.is_file()) == [
        f"{job_id}-3035551212 note.pdf"
    ]


def test_a_file_that_cannot_be_converted_fails_into_the_failed_folder_with_the_reason(
    make_settings: Callable[..., Any], folders: Any, db: Any
) -> None:
    clock = FakeClock()
    provider = DictProvider(clock, name="faxnummer", returns_id=True, reconcile=False)
    why = "faxnummer.de takes only pdf; note.txt could not be converted"

    def refuse(path: Path, accepted: frozenset[str], name: str, workdir: Path) -> Path:
        raise FaxdError(why)

    submitter = Submitter(make_settings(), db, provider, clock=clock, convert=refuse)
    job_id = queue_text(make_settings, db, folders, clock)
    assert submitter.submit_pending() == 0
    assert provider.sent == [] and job_of(db, job_id).state == "failed"
    assert (folders.failed / "3035551212 note.txt").read_bytes() == b"call me back"
    assert (folders.failed / "3035551212 note.txt.txt").read_text() == why + "\n"


def test_faxage_takes_text_as_it_is(
    make_settings: Callable[..., Any], folders: Any, db: Any, client: Any, sim: Any
) -> None:
    """FAXAGE sends txt itself: nothing is converted, the simulator gets the text."""
    clock = FakeClock()
    calls: list[tuple[Path, frozenset[str], str]] = []
    settings = make_settings()
    faxage = FaxageOutbound(client, settings)
    submitter = Submitter(settings, db, faxage, clock=clock, convert=to_pdf(calls))
    job_id = queue_text(make_settings, db, folders, clock)
    assert submitter.submit_pending() == 1
    (sent,) = sim.jobs.values()
    assert calls == [] and sent.files[0] == ("3035551212 note.txt", b"call me back")
    assert job_of(db, job_id).remote_jobid == str(sent.jobid)


def test_an_id_less_job_that_cannot_be_told_apart_waits_and_is_not_failed(
    make_settings: Callable[..., Any], folders: Any, db: Any
) -> None:
    """Two listed faxes to the number without a send time: neither taken, job not failed."""
    one = sent_one(make_settings, folders, db)
    undated = replace(one.provider.jobs["sent-1"], sent_at=None)
    one.provider.jobs = {"sent-1": undated, "other": replace(undated, remote_id="other")}
    one.provider.listed = True
    one.clock.now += GRACE * 2
    one.follow.follow_up()
    job = job_of(db, one.job_id)
    assert (job.state, job.remote_jobid) == ("submitted", None)
    assert job.last_error is not None and "cannot tell whether VoIP.ms got job" in job.last_error
    del one.provider.jobs["other"]
    one.follow.follow_up()
    assert job_of(db, one.job_id).remote_jobid == "sent-1"


def test_a_converted_job_retried_in_polling_mode_still_checks_its_source(
    make_settings: Callable[..., Any], folders: Any, db: Any
) -> None:
    """The source kept open is compared with what was taken, not with the PDF made of it."""
    clock = FakeClock()
    provider = DictProvider(clock, returns_id=True)
    provider.errors = [TransientError("connection refused", operation="send")]
    settings = make_settings(poll_seconds=0.2)
    intake = Intake(settings, db, clock=clock)
    submitter = Submitter(
        settings, db, provider, clock=clock, intake=intake, convert=to_pdf([]), backoff_base=1
    )
    (folders.hot / "3035551212 note.txt").write_bytes(b"call me back")
    job_id = intake.take(folders.hot / "3035551212 note.txt")
    assert job_id is not None
    try:
        assert submitter.submit_pending() == 0  # converted, then the transient fault
        clock.now += timedelta(minutes=1)
        assert submitter.submit_pending() == 1
    finally:
        intake.release()
    assert job_of(db, job_id).state == "submitted"
    assert provider.sent[0].path.read_bytes() == b"%PDF-1.4 rendered call me back"


def test_named_and_unnamed_jobs_finishing_in_one_pass_are_each_filed_once(
    make_settings: Callable[..., Any], folders: Any, db: Any
) -> None:
    """A job already named is in statuses() and in recent_jobs(): it is filed once."""
    one = sent_one(make_settings, folders, db)
    one.provider.listed = True
    one.follow.follow_up()
    assert job_of(db, one.job_id).remote_jobid == "sent-1"
    second = queue_job(make_settings, db, folders, one.clock, "3035550199.pdf")
    one.submitter.submit_pending()
    one.provider.finish("sent-1", JobOutcome.SENT)
    one.provider.finish("sent-2", JobOutcome.SENT)
    assert one.follow.follow_up() == 2
    assert [job_of(db, job_id).state for job_id in (one.job_id, second)] == ["sent", "sent"]


def test_a_job_cancelled_meanwhile_is_not_filed_by_a_late_status(
    make_settings: Callable[..., Any], folders: Any, db: Any
) -> None:
    """`faxd cancel` in another process between the query and the answer wins."""
    one = sent_one(make_settings, folders, db, name="ifax", returns_id=True)
    one.provider.finish("sent-1", JobOutcome.SENT)
    statuses = one.provider.statuses

    def cancelled_meanwhile(remote_ids: Sequence[str]) -> StatusAnswer:
        with db.session() as session:
            job = session.get(OutboundJob, one.job_id)
            assert job is not None
            job.state = JobState.CANCELLED.value
        return statuses(remote_ids)

    one.provider.statuses = cancelled_meanwhile  # type: ignore[method-assign]
    assert one.follow.follow_up() == 0
    assert job_of(db, one.job_id).state == "cancelled"
