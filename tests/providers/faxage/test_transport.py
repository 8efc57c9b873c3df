"""The HTTP transport against a scripted loopback server: errors mapped, downloads verified."""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path

import pytest
from scripted_http import ScriptedServer, lying_length, reply, reset, stall, trickle

from faxd.errors import (
    DownloadError,
    NotFoundError,
    PermanentError,
    TransientError,
)
from faxd.providers.faxage.transport import RequestsTransport, was_sent

PDF = b"%PDF-1.4\n" + bytes(range(256)) * 400 + b"\n%%EOF\n"
TIFF_LE = b"II*\x00" + b"\x01" * 5000
TIFF_BE = b"MM\x00*" + b"\x02" * 5000
FORM = [("username", "u"), ("operation", "getfax"), ("faxid", "5")]


def transport(server: ScriptedServer, timeout: float = 2.0) -> RequestsTransport:
    return RequestsTransport(server.base_url, timeout=timeout)


def test_post_text_returns_the_body_and_sends_the_form(scripted: ScriptedServer) -> None:
    """post_text POSTs the form (arrays repeated, '+' kept) and returns the answer text."""
    scripted.then(reply("JOBID: 12\n"))
    form = [("faxfiledata[]", "ab+c/=="), ("faxfiledata[]", "x y"), ("operation", "sendfax")]
    text = transport(scripted).post_text("httpsfax.php", form, operation="sendfax")
    assert text == "JOBID: 12\n"
    (req,) = scripted.received
    assert req.path == "/httpsfax.php"
    assert req.form == form
    assert b"ab%2Bc%2F%3D%3D" in req.raw


def test_post_text_raises_for_err_answers(scripted: ScriptedServer) -> None:
    """An ERRnn answer on HTTP 200 raises its classified error."""
    scripted.then(reply("ERR14: FAX ID 5 not found or does not belong to you"))
    with pytest.raises(NotFoundError):
        transport(scripted).post_text("httpsfax.php", FORM, operation="delfax")


def test_post_text_passes_empty_answer_codes_through(scripted: ScriptedServer) -> None:
    """ERR11 from listfax is returned for the parser to read as "nothing"."""
    scripted.then(reply("ERR11: No incoming faxes available"))
    assert (
        transport(scripted).post_text("httpsfax.php", FORM, operation="listfax").startswith("ERR11")
    )


@pytest.mark.parametrize("status", [500, 502, 503, 429])
def test_server_errors_are_transient_and_sent(scripted: ScriptedServer, status: int) -> None:
    """HTTP 5xx (and 429) are transient, and the request may have reached the server."""
    scripted.then(reply("oops", status=status))
    with pytest.raises(TransientError) as caught:
        transport(scripted).post_text("httpsfax.php", FORM, operation="listfax")
    assert f"HTTP {status}" in str(caught.value)
    assert was_sent(caught.value)


@pytest.mark.parametrize("status", [404, 403, 302])
def test_client_errors_and_redirects_are_permanent(scripted: ScriptedServer, status: int) -> None:
    """A 4xx or a redirect means base_url is wrong: permanent, and the message says so."""
    scripted.then(reply("nope", status=status, headers={"Location": "https://elsewhere/"}))
    with pytest.raises(PermanentError, match="base_url"):
        transport(scripted).post_text("httpsfax.php", FORM, operation="listfax")


def test_connection_refused_is_transient_and_unsent(dead_url: str) -> None:
    """A refused connection is transient and marked as never sent."""
    with pytest.raises(TransientError) as caught:
        RequestsTransport(dead_url, timeout=2.0).post_text("httpsfax.php", FORM, operation="x")
    assert not was_sent(caught.value)


def test_read_timeout_is_transient_and_maybe_sent(scripted: ScriptedServer) -> None:
    """A read timeout is transient but the request may have been processed."""
    scripted.then(stall(1.0))
    with pytest.raises(TransientError) as caught:
        transport(scripted, timeout=0.3).post_text("httpsfax.php", FORM, operation="sendfax")
    assert was_sent(caught.value)


def test_reset_after_request_is_transient_and_maybe_sent(scripted: ScriptedServer) -> None:
    """A connection reset after the request was read is transient and not marked unsent."""
    scripted.then(reset())
    with pytest.raises(TransientError) as caught:
        transport(scripted).post_text("httpsfax.php", FORM, operation="sendfax")
    assert was_sent(caught.value)


def test_one_session_per_thread(scripted: ScriptedServer) -> None:
    """Each thread gets its own requests.Session, kept while it lives; close() starts afresh."""
    t = transport(scripted)
    sessions: list[object] = []

    def grab() -> None:
        sessions.append(t._session())

    threads = [threading.Thread(target=grab) for _ in range(3)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    grab()
    grab()
    assert len({id(s) for s in sessions}) == 4
    assert sessions[3] is sessions[4]
    t.close()
    grab()
    assert sessions[5] is not sessions[4]


def test_finished_threads_leave_no_open_connections(scripted: ScriptedServer) -> None:
    """A session dies with its thread: a job per fresh thread does not pile up sockets."""
    t = transport(scripted)
    scripted.default = reply("3035551212\n")

    def job() -> None:
        t.post_text("httpsfax.php", FORM, operation="listlines")

    for _ in range(8):
        worker = threading.Thread(target=job)
        worker.start()
        worker.join()
    deadline = time.monotonic() + 5.0
    while scripted.open_connections > 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(scripted.received) == 8
    assert scripted.open_connections == 0
    t.close()


# ------------------------------------------------------------------ downloads


def test_download_streams_verifies_and_names(scripted: ScriptedServer, tmp_path: Path) -> None:
    """A good PDF is written, hashed and sized; the server's name is sanitised; identity asked."""
    scripted.then(
        reply(PDF, headers={"Content-Disposition": 'attachment; filename="../../etc/passwd"'})
    )
    dest = tmp_path / "fax.pdf"
    result = transport(scripted).download("httpsfax.php", FORM, dest, operation="getfax")
    assert dest.read_bytes() == PDF
    assert (result.path, result.size, result.kind) == (dest, len(PDF), "pdf")
    assert result.sha256 == hashlib.sha256(PDF).hexdigest()
    assert result.server_filename == "passwd"
    assert scripted.received[0].headers["Accept-Encoding"] == "identity"


@pytest.mark.parametrize("body", [TIFF_LE, TIFF_BE])
def test_download_accepts_both_tiff_byte_orders(
    scripted: ScriptedServer, tmp_path: Path, body: bytes
) -> None:
    """TIFF in either byte order is accepted and reported as tiff."""
    scripted.then(reply(body))
    result = transport(scripted).download("httpsfax.php", FORM, tmp_path / "f", operation="getfax")
    assert result.kind == "tiff" and result.size == len(body)


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"ERR12: FAX ID 5 not found or does not belong to you", NotFoundError),
        (b"ERR13: File could not be opened", TransientError),
        (b"ERR01: Database connection failed", TransientError),
    ],
)
def test_download_err_body_raises_and_leaves_no_file(
    scripted: ScriptedServer, tmp_path: Path, body: bytes, error: type[Exception]
) -> None:
    """An ERR body where a fax should be raises its class and leaves no file behind."""
    scripted.then(reply(body))
    dest = tmp_path / "fax.pdf"
    with pytest.raises(error) as caught:
        transport(scripted).download("httpsfax.php", FORM, dest, operation="getfax")
    assert not isinstance(caught.value, DownloadError)
    assert not dest.exists()


def test_download_short_body_is_download_error(scripted: ScriptedServer, tmp_path: Path) -> None:
    """A body shorter than its Content-Length fails and the partial file is removed."""
    scripted.then(lying_length(PDF[:50_000], declared=len(PDF)))
    dest = tmp_path / "fax.pdf"
    with pytest.raises(DownloadError):
        transport(scripted).download("httpsfax.php", FORM, dest, operation="getfax")
    assert not dest.exists()


def test_download_wrong_magic_is_download_error(scripted: ScriptedServer, tmp_path: Path) -> None:
    """An HTML page instead of a fax is rejected by its magic bytes; no file is left."""
    scripted.then(reply(b"<html><body>maintenance</body></html>"))
    dest = tmp_path / "fax.pdf"
    with pytest.raises(DownloadError, match="not a PDF or TIFF"):
        transport(scripted).download("httpsfax.php", FORM, dest, operation="getfax")
    assert not dest.exists()


def test_download_empty_body_is_download_error(scripted: ScriptedServer, tmp_path: Path) -> None:
    """An empty 200 answer is not a fax."""
    scripted.then(reply(b""))
    with pytest.raises(DownloadError):
        transport(scripted).download("httpsfax.php", FORM, tmp_path / "f", operation="getfax")


def test_download_expect_restricts_kind(scripted: ScriptedServer, tmp_path: Path) -> None:
    """dltrans expects a PDF: a TIFF answer is rejected."""
    scripted.then(reply(TIFF_LE))
    with pytest.raises(DownloadError, match="not a PDF"):
        transport(scripted).download(
            "httpsfax.php", FORM, tmp_path / "t.pdf", operation="dltrans", expect=("pdf",)
        )


def test_download_overall_deadline(scripted: ScriptedServer, tmp_path: Path) -> None:
    """A download still running past its deadline fails (clock injected, no waiting)."""
    ticks = iter(range(0, 10_000, 10))
    t = RequestsTransport(
        scripted.base_url, timeout=2.0, download_deadline=15.0, monotonic=lambda: next(ticks)
    )
    scripted.then(reply(PDF))
    dest = tmp_path / "slow.pdf"
    with pytest.raises(DownloadError, match="longer than 15 s"):
        t.download("httpsfax.php", FORM, dest, operation="getfax")
    assert not dest.exists()


def test_download_deadline_stops_a_trickling_body(scripted: ScriptedServer, tmp_path: Path) -> None:
    """A body that trickles in (each read within the timeout) is cut off at the deadline."""
    scripted.then(trickle(b"%PDF-1.4\n", declared=10_000_000, seconds=4.0))
    t = RequestsTransport(scripted.base_url, timeout=1.0, download_deadline=0.3)
    dest = tmp_path / "slow.pdf"
    with pytest.raises(DownloadError, match="longer than 0 s"):
        t.download("httpsfax.php", FORM, dest, operation="getfax")
    t.close()
    assert not dest.exists()


def test_download_http_500_is_transient(scripted: ScriptedServer, tmp_path: Path) -> None:
    """HTTP 500 on a download is transient and leaves no file."""
    scripted.then(reply(b"Internal Server Error", status=500))
    dest = tmp_path / "f.pdf"
    with pytest.raises(TransientError, match="HTTP 500"):
        transport(scripted).download("httpsfax.php", FORM, dest, operation="getfax")
    assert not dest.exists()


def test_download_replaces_a_stale_partial(scripted: ScriptedServer, tmp_path: Path) -> None:
    """A leftover file at dest (from a crash) is overwritten by the verified download."""
    dest = tmp_path / "fax.pdf"
    dest.write_bytes(b"stale partial" * 100_000)
    scripted.then(reply(PDF))
    result = transport(scripted).download("httpsfax.php", FORM, dest, operation="getfax")
    assert dest.read_bytes() == PDF and result.size == len(PDF)


def test_proxy_from_the_environment_is_used(
    scripted: ScriptedServer, dead_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HTTP(S)_PROXY, read once per session, carries the requests (absolute URL to the proxy)."""
    monkeypatch.setenv("HTTP_PROXY", scripted.base_url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    scripted.then(reply("JOBID: 7\n"))
    through = RequestsTransport(dead_url, timeout=2.0)
    assert through.post_text("httpsfax.php", FORM, operation="sendfax") == "JOBID: 7\n"
    through.close()
    (req,) = scripted.received
    assert req.path == f"{dead_url}/httpsfax.php"


def test_no_proxy_from_the_environment_is_honoured(
    scripted: ScriptedServer, dead_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A host listed in NO_PROXY is reached directly, not through HTTP_PROXY."""
    monkeypatch.setenv("HTTP_PROXY", scripted.base_url)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    direct = RequestsTransport(dead_url, timeout=2.0)
    with pytest.raises(TransientError) as caught:
        direct.post_text("httpsfax.php", FORM, operation="listlines")
    direct.close()
    assert not was_sent(caught.value)  # refused at the (dead) FAXAGE address itself
    assert scripted.received == []
