"""VoipmsClient against the real simulator over HTTP on loopback."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path

import pytest
import structlog
from voipms_helpers import write_pdf

from faxd.errors import (
    AuthError,
    DownloadError,
    FileChangedError,
    NotFoundError,
    OutcomeUnknownError,
    TooLargeError,
    TransientError,
)
from faxd.providers.base import JobOutcome
from faxd.providers.voipms.client import VoipmsClient
from faxd.providers.voipms.sim import VoipmsSimulator
from faxd.sim.documents import make_pdf


def today(sim: VoipmsSimulator) -> tuple[object, object]:
    day = sim.now().date()
    return day - timedelta(days=1), day


def methods(sim: VoipmsSimulator) -> list[str]:
    return [method for method, _ in sim.requests]


def test_listing_reads_the_inbox(voipms_sim: VoipmsSimulator, voipms_client: VoipmsClient) -> None:
    seeded = voipms_sim.seed_inbound(4)
    start, end = today(voipms_sim)
    listing = voipms_client.received(start, end, "INBOX")  # type: ignore[arg-type]
    assert sorted(f.remote_id for f in listing.faxes) == sorted(f.remote_id for f in seeded)
    by_id = {f.remote_id: f for f in listing.faxes}
    assert by_id[seeded[1].remote_id].caller_id == "7205550142"  # from "ACME LAB <7205550142>"
    assert methods(voipms_sim) == ["getFaxMessages"]


def test_empty_folder_is_an_empty_listing(
    voipms_sim: VoipmsSimulator, voipms_client: VoipmsClient
) -> None:
    start, end = today(voipms_sim)
    assert voipms_client.received(start, end, "INBOX").faxes == ()  # type: ignore[arg-type]


def test_download_decodes_and_verifies(
    voipms_sim: VoipmsSimulator, voipms_client: VoipmsClient, tmp_path: Path
) -> None:
    (fax,) = voipms_sim.seed_inbound(1, size=300_000)
    dest = tmp_path / "fax.pdf"
    got = voipms_client.download(fax.remote_id, dest)
    assert dest.read_bytes() == fax.data
    assert got.size == len(fax.data)
    assert got.sha256 == hashlib.sha256(fax.data).hexdigest()
    assert got.kind == "pdf"


def test_download_past_the_limit_leaves_no_file(
    voipms_sim: VoipmsSimulator, voipms_client: VoipmsClient, tmp_path: Path
) -> None:
    (fax,) = voipms_sim.seed_inbound(1, size=400_000)
    dest = tmp_path / "fax.pdf"
    with pytest.raises(TooLargeError):
        voipms_client.download(fax.remote_id, dest, max_bytes=200_000)
    assert not dest.exists()
    # Content-Length alone was not enough to refuse it here: the decoded bytes were counted.
    with pytest.raises(TooLargeError):
        voipms_client.download(fax.remote_id, dest, max_bytes=len(fax.data) - 1)
    assert not dest.exists()
    assert voipms_client.download(fax.remote_id, dest, max_bytes=len(fax.data)).size == len(
        fax.data
    )


@pytest.mark.parametrize("kind", ["truncate", "corrupt_base64", "http500", "reset"])
def test_a_faulty_download_is_retried(
    voipms_sim: VoipmsSimulator,
    voipms_client: VoipmsClient,
    tmp_path: Path,
    kind: str,
    sleeps: list[float],
) -> None:
    (fax,) = voipms_sim.seed_inbound(1, size=100_000)
    voipms_sim.inject(kind, operation="getFaxMessagePDF", times=1)
    dest = tmp_path / "fax.pdf"
    assert (
        voipms_client.download(fax.remote_id, dest).sha256 == hashlib.sha256(fax.data).hexdigest()
    )
    assert len(sleeps) == 1
    assert methods(voipms_sim) == ["getFaxMessagePDF", "getFaxMessagePDF"]


@pytest.mark.parametrize("kind", ["truncate", "corrupt_base64"])
def test_a_download_that_never_verifies_fails_without_a_file(
    voipms_sim: VoipmsSimulator, voipms_client: VoipmsClient, tmp_path: Path, kind: str
) -> None:
    (fax,) = voipms_sim.seed_inbound(1, size=100_000)
    voipms_sim.inject(kind)
    dest = tmp_path / "fax.pdf"
    with pytest.raises(DownloadError):
        voipms_client.download(fax.remote_id, dest)
    assert not dest.exists()


def test_download_of_a_file_that_is_not_a_pdf_fails(
    voipms_sim: VoipmsSimulator, voipms_client: VoipmsClient, tmp_path: Path
) -> None:
    fax = voipms_sim.add_fax("3035550101", "3035550100", data=b"<html>not a fax</html>" * 50)
    dest = tmp_path / "fax.pdf"
    with pytest.raises(DownloadError, match="not a PDF"):
        voipms_client.download(fax.remote_id, dest)
    assert not dest.exists()


def test_download_of_a_missing_fax_is_not_found(
    voipms_sim: VoipmsSimulator, voipms_client: VoipmsClient, tmp_path: Path
) -> None:
    with pytest.raises(NotFoundError):
        voipms_client.download("424242", tmp_path / "x.pdf")
    assert methods(voipms_sim) == ["getFaxMessagePDF"]


def test_api_limit_waits_a_minute_then_retries(
    voipms_sim: VoipmsSimulator, voipms_client: VoipmsClient, sleeps: list[float]
) -> None:
    voipms_sim.inject("api_limit", times=2)
    start, end = today(voipms_sim)
    voipms_client.received(start, end, "INBOX")  # type: ignore[arg-type]
    assert sleeps == [60.0, 60.0]


@pytest.mark.parametrize("kind", ["auth", "ip"])
def test_auth_faults_are_not_retried(
    voipms_sim: VoipmsSimulator, voipms_client: VoipmsClient, kind: str
) -> None:
    voipms_sim.inject(kind)
    with pytest.raises(AuthError):
        voipms_client.folders()
    assert methods(voipms_sim) == ["getFaxFolders"]


def test_the_ip_allow_list_is_an_auth_error(
    voipms_sim: VoipmsSimulator, voipms_client: VoipmsClient
) -> None:
    voipms_sim.allowed_ips = {"192.0.2.1"}
    with pytest.raises(AuthError, match="allow-list"):
        voipms_client.folders()
    voipms_sim.allowed_ips = {"127.0.0.1"}
    assert "INBOX" in voipms_client.folders()


def test_a_wrong_password_is_an_auth_error(voipms_sim: VoipmsSimulator) -> None:
    client = VoipmsClient("office@example.com", "wrong-password", base_url=voipms_sim.base_url)
    with pytest.raises(AuthError, match="API password"):
        client.folders()
    client.close()


def test_transient_faults_give_up_after_the_retries(
    voipms_sim: VoipmsSimulator, voipms_client: VoipmsClient, sleeps: list[float]
) -> None:
    voipms_sim.inject("http500")
    with pytest.raises(TransientError):
        voipms_client.folders()
    assert len(sleeps) == 3
    assert len(voipms_sim.requests) == 4


def test_delete_and_a_second_delete(
    voipms_sim: VoipmsSimulator, voipms_client: VoipmsClient
) -> None:
    (fax,) = voipms_sim.seed_inbound(1)
    voipms_client.delete(fax.remote_id)
    assert fax.deleted and fax.released
    with pytest.raises(NotFoundError):
        voipms_client.delete(fax.remote_id)


def test_a_delete_whose_answer_was_lost_is_retried_into_not_found(
    voipms_sim: VoipmsSimulator, voipms_client: VoipmsClient
) -> None:
    (fax,) = voipms_sim.seed_inbound(1)
    voipms_sim.inject("reset", operation="deleteFaxMessage", times=1, after=True)
    with pytest.raises(NotFoundError):
        voipms_client.delete(fax.remote_id)
    assert fax.deleted


# ---------------------------------------------------------------- sending


def send(client: VoipmsClient, path: Path, data: bytes, number: str = "3035550199") -> None:
    client.send(
        path,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        to_number=number,
        from_name="Acme",
        from_number="3035550101",
    )


def test_send_posts_the_file_streamed_and_returns_no_id(
    voipms_sim: VoipmsSimulator, voipms_client: VoipmsClient, tmp_path: Path
) -> None:
    data = make_pdf("outgoing", 2, size=700_000)
    send(voipms_client, write_pdf(tmp_path, data), data)
    (job,) = voipms_sim.jobs
    assert job.data == data
    assert job.number == "3035550199"
    assert job.pages == 2
    assert voipms_sim.requests[-1][0] == "sendFaxMessage"


def test_a_changed_file_is_not_sent(
    voipms_sim: VoipmsSimulator, voipms_client: VoipmsClient, tmp_path: Path
) -> None:
    data = make_pdf("outgoing")
    path = write_pdf(tmp_path, data)
    path.write_bytes(data.replace(b"outgoing", b"OUTGOING"))
    with pytest.raises(FileChangedError, match="nothing was sent"):
        send(voipms_client, path, data)
    path.write_bytes(data + b"x")
    with pytest.raises(FileChangedError):
        send(voipms_client, path, data)
    assert voipms_sim.requests == []
    assert voipms_sim.jobs == []


def test_a_symlink_is_not_followed(
    voipms_sim: VoipmsSimulator, voipms_client: VoipmsClient, tmp_path: Path
) -> None:
    data = make_pdf("outgoing")
    target = write_pdf(tmp_path, data)
    link = tmp_path / "link.pdf"
    link.symlink_to(target)
    with pytest.raises(FileChangedError):
        send(voipms_client, link, data)
    assert voipms_sim.jobs == []


@pytest.mark.parametrize(("kind", "after"), [("reset", True), ("http500", True), ("reset", False)])
def test_a_lost_send_answer_is_outcome_unknown_and_never_reposted(
    voipms_sim: VoipmsSimulator,
    voipms_client: VoipmsClient,
    tmp_path: Path,
    kind: str,
    after: bool,
) -> None:
    data = make_pdf("outgoing")
    voipms_sim.inject(kind, operation="sendFaxMessage", after=after)
    with pytest.raises(OutcomeUnknownError, match="SENT folder"):
        send(voipms_client, write_pdf(tmp_path, data), data)
    assert methods(voipms_sim) == ["sendFaxMessage"]
    assert len(voipms_sim.jobs) == (1 if after else 0)


def test_a_send_refused_with_api_limit_is_posted_again(
    voipms_sim: VoipmsSimulator, voipms_client: VoipmsClient, tmp_path: Path, sleeps: list[float]
) -> None:
    data = make_pdf("outgoing")
    voipms_sim.inject("api_limit", operation="sendFaxMessage", times=1)
    send(voipms_client, write_pdf(tmp_path, data), data)
    assert len(voipms_sim.jobs) == 1
    assert sleeps == [60.0]


def test_a_send_to_nowhere_is_refused_permanently(
    voipms_sim: VoipmsSimulator, voipms_client: VoipmsClient, tmp_path: Path
) -> None:
    data = make_pdf("outgoing")
    with pytest.raises(Exception, match="invalid_to_number") as caught:
        send(voipms_client, write_pdf(tmp_path, data), data, number="12")
    assert not caught.value.transient  # type: ignore[attr-defined]
    assert voipms_sim.jobs == []


def test_never_connected_send_is_retried(tmp_path: Path, sleeps: list[float]) -> None:
    client = VoipmsClient(
        "u@example.com",
        "pw-never-connected",
        base_url="http://127.0.0.1:9/api/v1/rest.php",
        timeout=2.0,
        retries=2,
        backoff=0.0,
        sleep=sleeps.append,
    )
    data = make_pdf("outgoing")
    with pytest.raises(TransientError) as caught:
        send(client, write_pdf(tmp_path, data), data)
    assert not isinstance(caught.value, OutcomeUnknownError)
    assert len(sleeps) == 2
    client.close()


def test_surprises_are_logged_once(
    voipms_sim: VoipmsSimulator, voipms_client: VoipmsClient, tmp_path: Path
) -> None:
    voipms_sim.seed_inbound(2)
    voipms_sim.extra_fields = {"note": "hi", "fax_to_sip": "0"}
    data = make_pdf("outgoing")
    send(voipms_client, write_pdf(tmp_path, data), data)
    voipms_sim.jobs[0].status = "WARPED"
    start, end = today(voipms_sim)
    with structlog.testing.capture_logs() as logs:
        for _ in range(3):
            assert len(voipms_client.received(start, end, "INBOX").faxes) == 2  # type: ignore[arg-type]
            (job,) = voipms_client.sent(start, end).jobs  # type: ignore[arg-type]
            assert job.outcome is JobOutcome.PENDING
    warnings = sorted(
        (e["event"], e.get("field") or e.get("status")) for e in logs if e["log_level"] == "warning"
    )
    assert warnings == [
        ("voipms.unknown_fax_status", "WARPED"),
        ("voipms.unknown_field", "fax_to_sip"),
        ("voipms.unknown_field", "note"),
    ]
