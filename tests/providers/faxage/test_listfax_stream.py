"""A listfax answer read as it arrives, a batch of lines at a time, and the getfax byte cap.

Over real HTTP (the scripted loopback server and the simulator): the answer is
handed on in batches with line numbers counted from its start, a line with no
end is dropped at a fixed length instead of held, an answer that breaks off
raises only after the batches before it, and a getfax body past its limit is
cut off with no file left, whether or not it declared its length.
"""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from scripted_http import Action, Received, ScriptedServer, lying_length, reply

from faxd.errors import AuthError, DownloadError, TooLargeError
from faxd.providers.faxage import FaxageClient
from faxd.providers.faxage.transport import MAX_LINE, split_batches

MiB = 1024 * 1024


def line(recvid: int) -> str:
    return (
        f"{recvid}\t2024-05-01 10:00:00\t2024-05-01 09:59:30\t(303) 555-0100\t"
        f"(303) 555-0101\tfax{recvid}.pdf\t1"
    )


def answer(count: int, *, bad: dict[int, str] | None = None) -> str:
    """``count`` listfax lines (recvids 1..count), line n replaced by ``bad[n]``."""
    return "".join((bad or {}).get(n, line(n)) + "\n" for n in range(1, count + 1))


def client_for(url: str, password: str = "pw-Listing-9") -> FaxageClient:  # noqa: S107
    return FaxageClient("acme", "12345", password, base_url=url, timeout=5.0, retries=0)


def endless(head: bytes, total: int) -> Action:
    """Answer 200 without Content-Length (the body ends when the connection does)."""

    def act(handler: BaseHTTPRequestHandler, _req: Received) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "application/octet-stream")
        handler.send_header("Connection", "close")
        handler.end_headers()
        handler.close_connection = True
        try:
            handler.wfile.write(head)
            block = b"\0" * 65536
            sent = len(head)
            while sent < total:
                handler.wfile.write(block)
                sent += len(block)
        except OSError:
            pass  # the client hung up at its limit, as it should

    return act


def test_listfax_arrives_in_batches_numbered_from_the_start(scripted: ScriptedServer) -> None:
    """2500 lines in batches of 1000: every record, and a bad line keeps its real number."""
    scripted.then(reply(answer(2500, bad={1500: "15x0\tgarbage"})))
    batches = list(client_for(scripted.base_url).listfax_batches(batch_lines=1000))
    assert len(batches) == 3
    assert [len(b.records) for b in batches] == [1000, 999, 500]
    assert [r.recvid for b in batches for r in b.records] == [
        n for n in range(1, 2501) if n != 1500
    ]
    (bad,) = batches[1].malformed
    assert bad.lineno == 1500 and "garbage" in bad.text


def test_listfax_whole_answer_still_available(scripted: ScriptedServer) -> None:
    """listfax() gathers the batches for callers that want everything."""
    scripted.then(reply(answer(1200)))
    result = client_for(scripted.base_url).listfax()
    assert len(result.records) == 1200 and result.malformed == ()


def test_listfax_that_breaks_off_raises_after_the_batches_before(
    scripted: ScriptedServer,
) -> None:
    """A body cut short hands over the batches that arrived, then raises a transient error."""
    body = answer(3000).encode()
    scripted.then(lying_length(body[: len(body) * 2 // 3], len(body)))
    seen: list[int] = []
    with pytest.raises(DownloadError):
        for batch in client_for(scripted.base_url).listfax_batches(batch_lines=500):
            seen.extend(r.recvid for r in batch.records)
    assert len(seen) >= 1500 and seen == list(range(1, len(seen) + 1))


def test_listfax_err_answers_are_read_before_any_batch(scripted: ScriptedServer) -> None:
    """ERR02 raises from the request itself; ERR11 is an empty listing."""
    password = "pw-Listing-9"
    scripted.then(
        reply(f"ERR02: Login incorrect\n{password}"),
        reply("ERR11: No incoming faxes available"),
    )
    client = client_for(scripted.base_url, password)
    with pytest.raises(AuthError) as refused:
        client.listfax_batches()
    assert password not in str(refused.value)
    assert client.listfax().records == ()


def test_line_with_no_end_is_dropped_not_held() -> None:
    """A 5 MB line is reported as too long, its neighbours parse, numbering holds."""
    huge = b"9" * (5 * MiB)
    chunks = [
        b"first\nsecond",
        b"-half\n",
        *(huge[i : i + 65536] for i in range(0, len(huge), 65536)),
    ]
    chunks.append(b"\nlast\n")
    (batch,) = split_batches(chunks)
    assert batch.text.split("\n") == ["first", "second-half", "", "last"]
    ((lineno, start),) = batch.too_long
    assert lineno == 3 and start.startswith("999") and len(start) < MAX_LINE


def test_batches_never_start_with_a_line_that_reads_as_an_error() -> None:
    """A line that looks like an ERR answer stays inside a batch, where it is just malformed."""
    text = "1\n2\nERR01: Database connection failed\n3\n"
    batches = list(split_batches([text.encode()], batch_lines=2))
    assert [b.text for b in batches] == ["1\n2\nERR01: Database connection failed", "3"]
    assert [b.first for b in batches] == [1, 4]


def test_getfax_over_the_cap_leaves_no_file(sim: Any, tmp_path: Path) -> None:
    """The simulator serves a 2 MiB fax; with a 1 MiB cap it is refused and nothing is left."""
    fax = sim.add_fax("3035550101", data=b"%PDF-1.4\n" + b"x" * (2 * MiB))
    client = FaxageClient(sim.username, sim.company, sim.password, base_url=sim.base_url)
    dest = tmp_path / "fax.part"
    with pytest.raises(TooLargeError) as caught:
        client.getfax(fax.recvid, dest, max_bytes=MiB)
    assert caught.value.limit == MiB and not caught.value.transient
    assert not dest.exists() and list(tmp_path.iterdir()) == []
    assert fax.getfax_count == 1  # permanent: not retried
    result = client.getfax(fax.recvid, dest, max_bytes=3 * MiB)
    assert result.size == len(fax.data)


def test_getfax_body_without_length_is_cut_at_the_cap(
    scripted: ScriptedServer, tmp_path: Path
) -> None:
    """No Content-Length and a body that goes on: refused at the cap, the part file gone."""
    scripted.then(endless(b"%PDF-1.4\n", 50 * MiB))
    dest = tmp_path / "fax.part"
    with pytest.raises(TooLargeError):
        client_for(scripted.base_url).getfax(7, dest, max_bytes=MiB)
    assert not dest.exists()


def test_getfax_declared_over_the_cap_is_refused_before_the_body(
    scripted: ScriptedServer, tmp_path: Path
) -> None:
    """A Content-Length past the cap is refused from the headers: permanent, not a short body."""
    scripted.then(lying_length(b"%PDF-1.4\n", 5 * MiB))
    dest = tmp_path / "fax.part"
    with pytest.raises(TooLargeError) as caught:
        client_for(scripted.base_url).getfax(7, dest, max_bytes=MiB)
    assert "Content-Length says 5242880 bytes" in caught.value.message
    assert not dest.exists()
