"""The streamed sendfax body is byte for byte the form ``requests`` built from the whole file."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

import pytest
from scripted_http import ScriptedServer, reply

from faxd.errors import FileChangedError
from faxd.providers.faxage.formbody import FormBody
from faxd.providers.faxage.sending import FaxFile, file_tokens
from faxd.providers.faxage.transport import RequestsTransport


def _tricky_bytes(size: int) -> bytes:
    """Bytes whose base64 is full of ``+``, ``/`` and ends in ``=`` padding."""
    pattern = bytes([0xFB, 0xEF, 0xBE, 0xFF, 0xFF, 0xFF, 0x3E, 0x3F])
    return (pattern * (size // len(pattern) + 1))[:size]


@pytest.mark.parametrize("size", [1, 2, 3, 100, 196_607, 196_608, 600_001])
def test_streamed_body_equals_urlencode_of_the_whole_form(tmp_path: Path, size: int) -> None:
    """Pieces of base64 joined and URL-encoded equal ``urlencode`` of the full base64 string."""
    data = _tricky_bytes(size)
    doc = tmp_path / "scan.pdf"
    doc.write_bytes(data)
    small = b"\x00+/= small"
    files = [FaxFile("scan.pdf", doc), FaxFile.from_bytes("note.txt", small)]
    tokens = file_tokens(files)
    names = list(tokens)
    pairs = [
        ("username", "acme"),
        ("password", "p@ss+w/rd=&x"),
        ("recipname", "Jones & Co + Sons"),
        ("faxfilenames[]", "scan.pdf"),
        ("faxfilenames[]", "note.txt"),
        ("faxfiledata[]", names[0]),
        ("faxfiledata[]", names[1]),
        ("tagname", "Ünïcode"),
    ]
    expected_pairs = [
        (name, base64.b64encode(data).decode("ascii"))
        if value == names[0]
        else (name, base64.b64encode(small).decode("ascii"))
        if value == names[1]
        else (name, value)
        for name, value in pairs
    ]
    # What requests sent for data=[pairs]: urlencode of the UTF-8 encoded pairs.
    expected = urlencode([(k.encode(), v.encode()) for k, v in expected_pairs]).encode("ascii")
    with FormBody(pairs, tokens) as body:
        streamed = b"".join(body)
        assert len(body) == len(expected)
    assert streamed == expected
    first_file = next(v for k, v in parse_qsl(streamed.decode("ascii")) if k == "faxfiledata[]")
    assert base64.b64decode(first_file) == data
    assert "+" in first_file or size < 3  # a base64 '+' arrives as '+', not as a space


def test_token_outside_faxfiledata_is_sent_as_text(tmp_path: Path) -> None:
    """Only faxfiledata[] values stand for files: the same text elsewhere is just text."""
    tokens = file_tokens([FaxFile.from_bytes("a.pdf", b"%PDF")])
    (token,) = tokens
    with FormBody([("recipname", token)], tokens) as body:
        assert b"".join(body) == urlencode([("recipname", token)]).encode("ascii")


def test_changed_file_is_refused_before_sending(tmp_path: Path) -> None:
    """A file that no longer has the recorded size or sha256 raises before a byte is produced."""
    doc = tmp_path / "a.pdf"
    doc.write_bytes(b"%PDF-1.4 taken")
    good = FaxFile("a.pdf", doc, size=14, sha256="0" * 64)
    tokens = file_tokens([good])
    with pytest.raises(FileChangedError, match="drop it again"):
        FormBody([("faxfiledata[]", next(iter(tokens)))], tokens)


def test_file_changing_while_streamed_is_cut_off_before_its_end(tmp_path: Path) -> None:
    """A change after the first read raises before the last piece leaves."""
    doc = tmp_path / "a.pdf"
    doc.write_bytes(_tricky_bytes(500_000))
    tokens = file_tokens([FaxFile("a.pdf", doc)])
    with FormBody([("faxfiledata[]", next(iter(tokens)))], tokens) as body:
        pieces = iter(body)
        sent = next(pieces) + next(pieces)
        with doc.open("r+b") as out:
            out.seek(450_000)
            out.write(b"changed")
        with pytest.raises(FileChangedError, match="changed while it was being sent"):
            for piece in pieces:
                sent += piece
    assert len(sent) < len(body)


def test_symlink_is_never_read(tmp_path: Path) -> None:
    """A path that is a symlink is refused (O_NOFOLLOW), not followed to its target."""
    secret = tmp_path / "secret"
    secret.write_bytes(b"password")
    link = tmp_path / "a.pdf"
    os.symlink(secret, link)
    tokens = file_tokens([FaxFile("a.pdf", link)])
    with pytest.raises(OSError, match="Too many levels of symbolic links"):
        FormBody([("faxfiledata[]", next(iter(tokens)))], tokens)


def test_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    """A FIFO in the spool's place is refused at once (O_NONBLOCK, fstat), never read."""
    fifo = tmp_path / "a.pdf"
    os.mkfifo(fifo)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    tokens = file_tokens([FaxFile("a.pdf", fifo)])
    with pytest.raises(FileChangedError, match="regular file"):
        FormBody([("faxfiledata[]", next(iter(tokens)))], tokens)


def test_transport_posts_the_stream_with_content_length_not_chunked(
    scripted: ScriptedServer, tmp_path: Path
) -> None:
    """The body goes out as a plain form with a true Content-Length and the form content type."""
    doc = tmp_path / "scan.pdf"
    doc.write_bytes(_tricky_bytes(300_000))
    tokens = file_tokens([FaxFile("scan.pdf", doc)])
    scripted.then(reply("JOBID: 5\n"))
    pairs = [("operation", "sendfax"), ("faxfiledata[]", next(iter(tokens)))]
    with FormBody(pairs, tokens) as body:
        text = RequestsTransport(scripted.base_url).post_text(
            "httpsfax.php", body, operation="sendfax"
        )
        length = len(body)
    assert text == "JOBID: 5\n"
    (seen,) = scripted.received
    headers = {k.lower(): v for k, v in seen.headers.items()}
    assert headers["content-length"] == str(length)
    assert "transfer-encoding" not in headers
    assert headers["content-type"] == "application/x-www-form-urlencoded"
    assert base64.b64decode(dict(seen.form)["faxfiledata[]"]) == doc.read_bytes()
