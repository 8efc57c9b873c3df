"""The faxnummer.de client against the simulator over real HTTP, in each answer format."""

from __future__ import annotations

import hashlib
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from faxd.config.model import FaxnummerSettings
from faxd.errors import (
    AuthError,
    ConfigError,
    FileChangedError,
    NotFoundError,
    OutcomeUnknownError,
    PermanentError,
    TransientError,
)
from faxd.providers.base import JobOutcome
from faxd.providers.faxnummer.client import FaxnummerClient
from faxd.providers.faxnummer.multipart import MultipartBody
from faxd.providers.faxnummer.sim import FaxnummerSimulator
from faxd.sim.documents import make_pdf

FORMATS = ("json", "xml", "kv")


@dataclass
class StepClock:
    """A clock tests move by hand, so a job's lifecycle needs no sleeping."""

    now: datetime = field(default_factory=lambda: datetime(2026, 3, 2, 9, 0, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Sleeps:
    """Records the backoff delays instead of sleeping."""

    delays: list[float] = field(default_factory=list)

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@dataclass
class Pdf:
    path: Path
    data: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


@pytest.fixture
def clock() -> StepClock:
    return StepClock()


@pytest.fixture(params=FORMATS)
def fxsim(request: pytest.FixtureRequest, clock: StepClock) -> Iterator[FaxnummerSimulator]:
    with FaxnummerSimulator(answer_format=request.param, clock=clock, settle_seconds=30) as sim:
        yield sim


@pytest.fixture
def pdf(tmp_path: Path) -> Pdf:
    data = make_pdf("Fax to Berlin", 2, size=600_000)
    path = tmp_path / "letter.pdf"
    path.write_bytes(data)
    return Pdf(path, data)


def settings(sim: FaxnummerSimulator, **changes: str) -> FaxnummerSettings:
    values = {
        "product_login": sim.login,
        "product_code": sim.code,
        "base_url": sim.base_url,
        "source": "+49 30 1234567",
        "sender": "Acme GmbH",
        "status_email": "fax@acme.example",
    }
    values.update(changes)
    return FaxnummerSettings(**values)  # type: ignore[arg-type]


def make_client(
    sim: FaxnummerSimulator, sleeps: Sleeps | None = None, **changes: str
) -> FaxnummerClient:
    return FaxnummerClient(settings(sim, **changes), sleep=sleeps or Sleeps(), retries=2)


def send(client: FaxnummerClient, pdf: Pdf, number: str = "+49 30 5550101") -> str:
    return client.send_fax(
        pdf.path, destination=number, size=len(pdf.data), sha256=pdf.sha256, reference="job 7"
    )


def test_send_uploads_the_pdf_and_the_documented_fields(
    fxsim: FaxnummerSimulator, pdf: Pdf
) -> None:
    """The file part holds the exact bytes; numbers go out as 00..., sender and email as set."""
    client = make_client(fxsim)
    uuid = send(client, pdf)
    [job] = fxsim.jobs
    assert job.uuid == uuid
    assert job.data == pdf.data
    assert (job.destination, job.number) == ("0049305550101", "+49305550101")
    assert (job.source, job.sender, job.email) == ("0049301234567", "Acme GmbH", "fax@acme.example")
    assert job.reference == "job 7"
    client.close()


def test_status_goes_new_running_done_ok(
    fxsim: FaxnummerSimulator, pdf: Pdf, clock: StepClock
) -> None:
    client = make_client(fxsim)
    uuid = send(client, pdf)
    first = client.status(uuid)
    assert (first.outcome, first.status) == (JobOutcome.PENDING, "NEW")
    clock.advance(15)
    assert client.status(uuid).status == "RUNNING"
    clock.advance(15)
    done = client.status(uuid)
    assert (done.outcome, done.status, done.pages_sent) == (JobOutcome.SENT, "DONE-OK", 2)
    assert done.number == "+49305550101"


def test_failing_number_ends_done_error_with_the_cause_in_words(
    fxsim: FaxnummerSimulator, pdf: Pdf, clock: StepClock
) -> None:
    fxsim.fail_numbers.add("+49 30 5550199")
    fxsim.fail_cause = 34
    client = make_client(fxsim)
    uuid = send(client, pdf, "0049305550199")
    clock.advance(25)
    retry = client.status(uuid)
    assert (retry.outcome, retry.status) == (JobOutcome.PENDING, "RETRY")
    clock.advance(5)
    failed = client.status(uuid)
    assert (failed.outcome, failed.status) == (JobOutcome.FAILED, "DONE-ERROR")
    assert "Q.850 cause 34" in failed.reason
    assert "no circuit" in failed.reason


def test_each_format_is_logged_once_per_operation(fxsim: FaxnummerSimulator, pdf: Pdf) -> None:
    client = make_client(fxsim)
    with capture_logs() as logs:
        uuid = send(client, pdf)
        send(client, pdf)
        client.status(uuid)
        client.status(uuid)
    seen = [(e["operation"], e["format"]) for e in logs if e["event"] == "faxnummer.answer_format"]
    assert seen == [("SendFax", fxsim.answer_format), ("GetSentFaxStatus", fxsim.answer_format)]


def test_unknown_job_is_not_found(fxsim: FaxnummerSimulator) -> None:
    with pytest.raises(NotFoundError):
        make_client(fxsim).status("faxsend-acc12345-nosuchjob")


def test_file_changed_before_the_post_sends_nothing(fxsim: FaxnummerSimulator, pdf: Pdf) -> None:
    """The size/sha256 faxd took are checked before every POST."""
    pdf.path.write_bytes(pdf.data[:-10] + b"0123456789")
    with pytest.raises(FileChangedError, match="sha256"):
        send(make_client(fxsim), pdf)
    assert fxsim.jobs == []
    assert fxsim.requests == []


def test_symlink_is_not_followed(fxsim: FaxnummerSimulator, pdf: Pdf, tmp_path: Path) -> None:
    link = tmp_path / "link.pdf"
    link.symlink_to(pdf.path)
    with pytest.raises(FileChangedError, match="cannot be opened"):
        make_client(fxsim).send_fax(
            link, destination="+4930555", size=len(pdf.data), sha256=pdf.sha256
        )
    assert fxsim.jobs == []


def test_file_changed_while_streaming_is_cut_before_its_end(pdf: Pdf) -> None:
    """A file rewritten after the check is cut off: its last piece never leaves."""
    body = MultipartBody(
        [("sCommand", "SendFax")],
        file_field="sFax",
        path=pdf.path,
        filename="fax.pdf",
        mime_type="application/pdf",
        size=len(pdf.data),
        sha256=pdf.sha256,
    )
    with body:
        pdf.path.write_bytes(pdf.data[:-10] + b"0123456789")
        sent = b""
        with pytest.raises(FileChangedError, match="while it was being sent"):
            for chunk in body:
                sent += chunk
    assert len(sent) < len(body)
    assert pdf.data[-10:] not in sent[-4096:]


def test_multipart_body_length_is_exact(pdf: Pdf) -> None:
    with MultipartBody(
        [("a", "ü")],
        file_field="sFax",
        path=pdf.path,
        filename='we"ird\r\n.pdf',
        mime_type="application/pdf",
        size=len(pdf.data),
        sha256=pdf.sha256,
    ) as body:
        joined = b"".join(body)
    assert len(joined) == len(body)
    assert b'filename="we_ird__.pdf"' in joined


@pytest.mark.parametrize("kind", ["reset", "http500"])
def test_post_broken_after_sending_is_outcome_unknown(
    fxsim: FaxnummerSimulator, pdf: Pdf, kind: str
) -> None:
    """The job was made but its answer lost: never resent, and the caller is told why."""
    fxsim.inject(kind, operation="SendFax", after=True, times=1)
    sleeps = Sleeps()
    with pytest.raises(OutcomeUnknownError, match="customer centre"):
        send(make_client(fxsim, sleeps), pdf)
    assert len(fxsim.jobs) == 1
    assert sleeps.delays == []


def test_truncated_send_answer_is_outcome_unknown(fxsim: FaxnummerSimulator, pdf: Pdf) -> None:
    fxsim.inject("truncate", operation="SendFax", times=1)
    with pytest.raises(OutcomeUnknownError):
        send(make_client(fxsim), pdf)
    assert len(fxsim.jobs) == 1


def test_failed_answer_is_resent_because_no_job_was_made(
    fxsim: FaxnummerSimulator, pdf: Pdf
) -> None:
    fxsim.inject("failed", operation="SendFax", times=1)
    sleeps = Sleeps()
    uuid = send(make_client(fxsim, sleeps), pdf)
    assert [job.uuid for job in fxsim.jobs] == [uuid]
    assert len(sleeps.delays) == 1


def test_connection_refused_is_retried_and_stays_transient(pdf: Pdf) -> None:
    """Nothing left the machine, so SendFax may be posted again; at the end it is transient."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sim = FaxnummerSimulator()
    sim.port = port  # never started: nothing listens there
    sleeps = Sleeps()
    client = FaxnummerClient(settings(sim), sleep=sleeps, retries=2)
    with pytest.raises(TransientError) as caught:
        send(client, pdf)
    assert not isinstance(caught.value, OutcomeUnknownError)
    assert caught.value.sent is False
    assert len(sleeps.delays) == 2


def test_status_retries_transient_faults(fxsim: FaxnummerSimulator, pdf: Pdf) -> None:
    client = make_client(fxsim)
    uuid = send(client, pdf)
    for kind in ("http500", "truncate", "reset"):
        fxsim.inject(kind, operation="GetSentFaxStatus", times=1)
        assert client.status(uuid).outcome is JobOutcome.PENDING
    assert [op for op, _ in fxsim.requests].count("GetSentFaxStatus") == 6


def test_auth_fault_is_an_auth_error_and_not_retried(fxsim: FaxnummerSimulator) -> None:
    fxsim.inject("auth")
    sleeps = Sleeps()
    with pytest.raises(AuthError, match="sProductCode"):
        make_client(fxsim, sleeps).status("faxsend-x")
    assert sleeps.delays == []


def test_wrong_login_says_to_use_the_product_login(fxsim: FaxnummerSimulator, pdf: Pdf) -> None:
    with pytest.raises(AuthError) as caught:
        send(make_client(fxsim, product_login="kunde4711"), pdf)
    assert "sProductLogin" in str(caught.value)
    assert "Kundencenter" in str(caught.value)
    assert fxsim.jobs == []


def test_product_code_never_leaks(fxsim: FaxnummerSimulator, pdf: Pdf) -> None:
    """A wrong code and every fault: the code is in no exception, repr or log line."""
    code = "Wr0ng-Pr0duct-C0de"
    client = make_client(fxsim, product_code=code)
    texts: list[str] = [repr(client), repr(client.settings), repr(fxsim)]
    with capture_logs() as logs:
        for fault in ("http500", "reset", "failed", None):
            fxsim.clear_faults()
            if fault:
                fxsim.inject(fault)
            with pytest.raises((AuthError, TransientError, OutcomeUnknownError)) as caught:
                send(client, pdf)
            texts += [str(caught.value), repr(caught.value)]
    texts += [repr(entry) for entry in logs]
    assert texts
    assert not [t for t in texts if code in t]


@pytest.mark.parametrize(
    ("sender", "words"),
    [("A" * 21, "21 characters"), ("Müller & Söhne", "printable ASCII"), ("Fax\tline", "ASCII")],
)
def test_sender_is_checked_with_a_clear_error(
    fxsim: FaxnummerSimulator, sender: str, words: str
) -> None:
    with pytest.raises(ConfigError, match=words):
        make_client(fxsim, sender=sender)


def test_twenty_printable_characters_are_a_valid_sender(
    fxsim: FaxnummerSimulator, pdf: Pdf
) -> None:
    send(make_client(fxsim, sender="Acme GmbH ~ Berlin 1"), pdf)
    assert fxsim.jobs[0].sender == "Acme GmbH ~ Berlin 1"


def test_missing_email_and_bad_number_are_refused_before_any_post(
    fxsim: FaxnummerSimulator, pdf: Pdf
) -> None:
    with pytest.raises(ConfigError, match="sEmail"):
        make_client(fxsim, status_email="")
    with pytest.raises(PermanentError, match="not a phone number"):
        send(make_client(fxsim), pdf, "call me maybe")
    assert fxsim.requests == []
