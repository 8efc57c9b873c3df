"""The iFax client against the simulator over real HTTP: retries, downloads, sends."""

from __future__ import annotations

import hashlib
import socket
from datetime import date
from pathlib import Path

import pytest
from ifax_support import IFAX_TOKEN, StepClock

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
from faxd.providers.ifax.client import IfaxClient
from faxd.providers.ifax.sendbody import JsonFileBody
from faxd.providers.ifax.sim import IfaxSimulator
from faxd.sim.documents import make_pdf, make_tiff

DAY = date(2026, 3, 10)


def _count(sim: IfaxSimulator, operation: str) -> int:
    return sum(1 for op, _ in sim.requests if op == operation)


def _spool(tmp_path: Path, data: bytes, name: str = "doc.pdf") -> tuple[Path, int, str]:
    path = tmp_path / name
    path.write_bytes(data)
    return path, len(data), hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------- listing


def test_pages_run_to_the_end_and_list_every_fax(
    ifax_sim: IfaxSimulator, ifax_client: IfaxClient
) -> None:
    seeded = ifax_sim.seed_inbound(8)
    pages = list(ifax_client.inbound_pages(DAY, DAY))
    listed = [f.remote_id for page in pages for f in page.faxes]
    assert sorted(listed) == sorted(f.remote_id for f in seeded)
    assert len(pages) == 4  # 3 + 3 + 2 + the empty page that ends it
    sent = [body for op, body in ifax_sim.requests if op == "fax-list-all"]
    assert sent[0].get("lastFaxId") is None and sent[1]["lastFaxId"]
    assert all(b["startDate"] == "03/10/2026" for b in sent)
    assert ifax_sim.violations == []


def test_a_transient_fault_on_a_page_is_retried(
    ifax_sim: IfaxSimulator, ifax_client: IfaxClient
) -> None:
    ifax_sim.seed_inbound(4)
    ifax_sim.inject("http500", operation="fax-list-all", times=1)
    ifax_sim.inject("rate_limit", operation="fax-list-all", times=1)
    listed = [f for page in ifax_client.inbound_pages(DAY, DAY) for f in page.faxes]
    assert len(listed) == 4


def test_a_refused_token_is_not_retried(ifax_sim: IfaxSimulator, ifax_client: IfaxClient) -> None:
    ifax_sim.inject("auth")
    with pytest.raises(AuthError, match="iFax dashboard"):
        list(ifax_client.inbound_pages(DAY, DAY))
    assert _count(ifax_sim, "fax-list-all") == 1


def test_a_wrong_token_is_an_auth_error(ifax_sim: IfaxSimulator) -> None:
    client = IfaxClient("not-the-token-1234", base_url=ifax_sim.base_url, sleep=lambda s: None)
    with pytest.raises(AuthError):
        client.check_login(DAY)


def test_check_login_reads_harmlessly(ifax_sim: IfaxSimulator, ifax_client: IfaxClient) -> None:
    assert ifax_client.check_login(DAY).startswith("token accepted")
    assert [op for op, _ in ifax_sim.requests] == ["fax-lists"]


# ---------------------------------------------------------------- downloads


def _ids(remote_id: str) -> tuple[str, str]:
    job, _, transaction = remote_id.partition(":")
    return job, transaction


def test_download_is_decoded_and_verified(
    ifax_sim: IfaxSimulator, ifax_client: IfaxClient, tmp_path: Path
) -> None:
    (fax,) = ifax_sim.seed_inbound(1, size=300_000)
    result = ifax_client.download(*_ids(fax.remote_id), tmp_path / "in.pdf")
    assert result.path.read_bytes() == fax.data
    assert (result.size, result.sha256, result.kind) == (
        len(fax.data),
        hashlib.sha256(fax.data).hexdigest(),
        "pdf",
    )
    assert fax.released


@pytest.mark.parametrize("kind", ["truncate", "corrupt_base64", "http500", "reset"])
def test_a_damaged_download_is_retried(
    ifax_sim: IfaxSimulator, ifax_client: IfaxClient, tmp_path: Path, kind: str
) -> None:
    (fax,) = ifax_sim.seed_inbound(1, size=50_000)
    ifax_sim.inject(kind, operation="fax-download", times=1)
    result = ifax_client.download(*_ids(fax.remote_id), tmp_path / "in.pdf")
    assert result.path.read_bytes() == fax.data
    assert _count(ifax_sim, "fax-download") == 2


@pytest.mark.parametrize("kind", ["truncate", "corrupt_base64"])
def test_a_download_damaged_every_time_leaves_no_file(
    ifax_sim: IfaxSimulator, ifax_client: IfaxClient, tmp_path: Path, kind: str
) -> None:
    (fax,) = ifax_sim.seed_inbound(1, size=50_000)
    ifax_sim.inject(kind, operation="fax-download")
    dest = tmp_path / "in.pdf"
    with pytest.raises(DownloadError):
        ifax_client.download(*_ids(fax.remote_id), dest)
    assert not dest.exists()


def test_a_download_past_the_limit_is_cut_off(
    ifax_sim: IfaxSimulator, ifax_client: IfaxClient, tmp_path: Path
) -> None:
    (fax,) = ifax_sim.seed_inbound(1, size=200_000)
    dest = tmp_path / "in.pdf"
    with pytest.raises(TooLargeError) as caught:
        ifax_client.download(*_ids(fax.remote_id), dest, max_bytes=100_000)
    assert caught.value.limit == 100_000
    assert not dest.exists()
    assert _count(ifax_sim, "fax-download") == 1  # permanent: not retried
    ok = ifax_client.download(*_ids(fax.remote_id), dest, max_bytes=len(fax.data))
    assert ok.size == len(fax.data)


def test_a_download_that_is_not_a_fax_file_is_refused(
    ifax_sim: IfaxSimulator, ifax_client: IfaxClient, tmp_path: Path
) -> None:
    (fax,) = ifax_sim.seed_inbound(1)
    fax.data = b"<html>an error page, base64-encoded</html>"
    dest = tmp_path / "in.pdf"
    with pytest.raises(DownloadError, match="not a PDF or TIFF"):
        ifax_client.download(*_ids(fax.remote_id), dest)
    assert not dest.exists()


def test_a_missing_fax_is_not_found(ifax_client: IfaxClient, tmp_path: Path) -> None:
    with pytest.raises(NotFoundError):
        ifax_client.download("1", "2", tmp_path / "x.pdf")
    assert not (tmp_path / "x.pdf").exists()


# ---------------------------------------------------------------- sending


def test_send_streams_the_file_and_returns_the_job_id(
    ifax_sim: IfaxSimulator, ifax_client: IfaxClient, tmp_path: Path
) -> None:
    data = make_pdf("outgoing", 3, size=400_000)
    path, size, sha = _spool(tmp_path, data)
    job = ifax_client.send(
        "+13035550101", path, file_name="doc.pdf", size=size, sha256=sha, quality="HD"
    )
    (sent,) = ifax_sim.jobs
    assert job == str(sent.job_id)
    assert sent.data == data and sent.number == "+13035550101"
    assert ifax_sim.requests[-1][1]["faxQuality"] == "HD"
    assert ifax_sim.violations == []


def test_a_tiff_is_sent_as_it_is(
    ifax_sim: IfaxSimulator, ifax_client: IfaxClient, tmp_path: Path
) -> None:
    data = make_tiff("scan", 2)
    path, size, sha = _spool(tmp_path, data, "scan.tif")
    ifax_client.send("+13035550101", path, file_name="scan.tif", size=size, sha256=sha)
    assert ifax_sim.jobs[0].data == data


def test_a_changed_file_is_never_sent(
    ifax_sim: IfaxSimulator, ifax_client: IfaxClient, tmp_path: Path
) -> None:
    path, size, sha = _spool(tmp_path, make_pdf("taken"))
    path.write_bytes(make_pdf("swapped"))
    # Refused before the POST by the size/sha256 check, not cut off mid-stream.
    with pytest.raises(FileChangedError, match="is not the file faxd took"):
        ifax_client.send("+13035550101", path, file_name="doc.pdf", size=size, sha256=sha)
    assert _count(ifax_sim, "fax-send") == 0 and ifax_sim.jobs == []


def test_a_file_changed_while_streaming_is_cut_off_before_its_end(tmp_path: Path) -> None:
    data = make_pdf("long", size=1_000_000)
    path, size, sha = _spool(tmp_path, data)
    body = JsonFileBody(b'{"fileData": "', path, b'"}', size=size, sha256=sha)
    with body:
        pieces = iter(body)
        sent = [next(pieces), next(pieces)]
        with path.open("r+b") as f:  # the same inode, rewritten behind faxd's back
            f.seek(size - 10)
            f.write(b"0123456789")
        with pytest.raises(FileChangedError, match="changed while it was being sent"):
            sent.extend(pieces)
    assert sum(map(len, sent)) < len(body)


@pytest.mark.parametrize("kind", ["reset", "http500"])
def test_a_send_whose_answer_is_lost_is_outcome_unknown(
    ifax_sim: IfaxSimulator, ifax_client: IfaxClient, tmp_path: Path, kind: str
) -> None:
    path, size, sha = _spool(tmp_path, make_pdf("once"))
    ifax_sim.inject(kind, operation="fax-send", after=True)
    with pytest.raises(OutcomeUnknownError):
        ifax_client.send("+13035550101", path, file_name="doc.pdf", size=size, sha256=sha)
    assert len(ifax_sim.jobs) == 1  # queued once, never posted again
    assert _count(ifax_sim, "fax-send") == 1


def test_a_send_refused_for_rate_is_retried_once_queued(
    ifax_sim: IfaxSimulator, ifax_client: IfaxClient, tmp_path: Path
) -> None:
    path, size, sha = _spool(tmp_path, make_pdf("rate"))
    ifax_sim.inject("rate_limit", operation="fax-send", times=1)
    ifax_client.send("+13035550101", path, file_name="doc.pdf", size=size, sha256=sha)
    assert len(ifax_sim.jobs) == 1 and _count(ifax_sim, "fax-send") == 2


def test_a_send_that_never_connected_is_transient_not_unknown(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = IfaxClient(
        IFAX_TOKEN, base_url=f"http://127.0.0.1:{port}/v1", retries=1, sleep=lambda s: None
    )
    path, size, sha = _spool(tmp_path, make_pdf("nowhere"))
    with pytest.raises(TransientError) as caught:
        client.send("+13035550101", path, file_name="doc.pdf", size=size, sha256=sha)
    assert not isinstance(caught.value, OutcomeUnknownError)


def test_an_invalid_number_is_permanent(ifax_client: IfaxClient, tmp_path: Path) -> None:
    path, size, sha = _spool(tmp_path, make_pdf("bad number"))
    with pytest.raises(Exception, match="Invalid faxNumber") as caught:
        ifax_client.send("12345", path, file_name="doc.pdf", size=size, sha256=sha)
    assert not caught.value.transient  # type: ignore[attr-defined]


def test_status_settles_to_delivered_or_failed(
    ifax_sim: IfaxSimulator, ifax_client: IfaxClient, tmp_path: Path, clock: StepClock
) -> None:
    path, size, sha = _spool(tmp_path, make_pdf("follow"))
    ifax_sim.fail_numbers.add("+13035550102")
    good = ifax_client.send("+13035550101", path, file_name="doc.pdf", size=size, sha256=sha)
    bad = ifax_client.send("+13035550102", path, file_name="doc.pdf", size=size, sha256=sha)
    assert ifax_client.status(good).jobs[0].outcome is JobOutcome.PENDING
    clock.advance(seconds=ifax_sim.settle_seconds + 1)
    assert ifax_client.status(good).jobs[0].outcome is JobOutcome.SENT
    failed = ifax_client.status(bad).jobs[0]
    assert failed.outcome is JobOutcome.FAILED and "Busy" in failed.reason
    listed = ifax_client.sent_list(DAY, DAY).jobs
    assert {j.remote_id for j in listed} == {good, bad}
    with pytest.raises(NotFoundError):
        ifax_client.status("999")
