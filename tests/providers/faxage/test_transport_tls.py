"""TLS faults against a real HTTPS server on loopback: which ones certainly left nothing.

Only a rejected certificate (the handshake) proves the request never went out;
a TLS fault while the answer is read comes after the POST, so a sendfax must
not be posted again (DESIGN invariant 5).
"""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from faxd.errors import OutcomeUnknownError, TransientError
from faxd.providers.faxage import FaxageClient, FaxFile
from faxd.providers.faxage.transport import RequestsTransport, was_sent

FORM = [("username", "u"), ("operation", "listlines")]


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (made with the openssl command)."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    where = tmp_path_factory.mktemp("tls")
    cert, key = where / "cert.pem", where / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "ec"),
            *("-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2"),
            *("-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"),
            *("-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@dataclass
class CorruptingServer:
    """HTTPS that reads each POST whole, then answers with bytes outside TLS."""

    cert: Path
    key: Path
    posts: list[bytes] = field(default_factory=list)
    listener: socket.socket = field(default_factory=socket.socket)

    @property
    def base_url(self) -> str:
        return f"https://127.0.0.1:{self.listener.getsockname()[1]}"

    def start(self) -> None:
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen()
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, self.key)
        threading.Thread(target=self._serve, args=(context,), daemon=True).start()

    def _serve(self, context: ssl.SSLContext) -> None:
        while True:
            try:
                conn, _addr = self.listener.accept()
            except OSError:
                return
            try:
                with context.wrap_socket(conn, server_side=True) as tls:
                    self.posts.append(_read_post(tls))
                    # Plain bytes on the wire: the client's TLS layer cannot decrypt them.
                    os.write(tls.fileno(), b"HTTP/1.1 200 OK\r\n\r\nJOBID: 1\n" * 4)
            except (OSError, ValueError):
                conn.close()  # e.g. the client rejected our certificate


def _read_post(tls: ssl.SSLSocket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        data += tls.recv(65536)
    head, body = data.split(b"\r\n\r\n", 1)
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += tls.recv(65536)
    return body


@pytest.fixture
def corrupting(certificate: tuple[Path, Path]) -> Iterator[CorruptingServer]:
    server = CorruptingServer(*certificate)
    server.start()
    yield server
    server.listener.close()


def test_tls_fault_after_the_post_is_not_marked_unsent(
    corrupting: CorruptingServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A TLS error while reading the answer may follow a delivered POST: not marked unsent."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(corrupting.cert))
    transport = RequestsTransport(corrupting.base_url, timeout=3.0)
    with pytest.raises(TransientError) as caught:
        transport.post_text("httpsfax.php", FORM, operation="listlines")
    transport.close()
    assert len(corrupting.posts) == 1
    assert was_sent(caught.value)


def test_sendfax_is_posted_once_when_tls_breaks_after_the_post(
    corrupting: CorruptingServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """sendfax after a post-request TLS fault reconciles instead of faxing again."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(corrupting.cert))
    client = FaxageClient(
        "acme", "12345", "pw-Secret", base_url=corrupting.base_url, sleep=lambda _s: None
    )
    with client, pytest.raises(OutcomeUnknownError):
        client.sendfax("3035550101", "Bob", [FaxFile.from_bytes("a.pdf", b"%PDF-1.4")])
    assert len(corrupting.posts) == 1


def test_rejected_certificate_is_transient_and_unsent(
    corrupting: CorruptingServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An untrusted certificate fails the handshake: nothing was sent, and it says what to check."""
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    transport = RequestsTransport(corrupting.base_url, timeout=3.0)
    with pytest.raises(TransientError, match="certificate") as caught:
        transport.post_text("httpsfax.php", FORM, operation="listlines")
    transport.close()
    assert not was_sent(caught.value)
    assert corrupting.posts == []
