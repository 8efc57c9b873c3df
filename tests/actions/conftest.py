"""Fixtures for the delivery actions: spool files, a stand-in ``lp``, odd SMTP servers.

- ``make_item``: writes a real fax file into a spool folder and returns the
  :class:`~faxd.actions.base.Deliverable` for it (sha256 and size computed).
- ``make_lp``: writes an executable stand-in for CUPS ``lp`` into ``tmp_path``
  that records its argv to a file and prints what the test asks for.
- ``start_smtp``: starts an aiosmtpd server on loopback with the given
  handler and server options (TLS, AUTH, refusing recipients); stopped after.
- ``tls_files``: a self-signed certificate for 127.0.0.1 made with openssl.
- ``read_only_dir``: a folder faxd cannot write into, even as root.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from faxd.actions.base import Deliverable
from faxd.routing import FaxFacts

PDF_BYTES = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
TIFF_BYTES = b"II*\x00\x08\x00\x00\x00" + bytes(range(256)) * 4

MakeItem = Callable[..., Deliverable]


@pytest.fixture
def spool_dir(tmp_path: Path) -> Path:
    path = tmp_path / "spool"
    path.mkdir()
    return path


@pytest.fixture
def make_item(spool_dir: Path) -> MakeItem:
    def make(
        *,
        recvid: int = 4711,
        dnis: str = "+13035550101",
        cid: str = "+13035550100",
        pages: int | None = 2,
        kind: str = "pdf",
        data: bytes | None = None,
        route: str = "sales",
        received: datetime = datetime(2024, 3, 4, 9, 15, 30),
    ) -> Deliverable:
        if data is None:
            data = PDF_BYTES if kind == "pdf" else TIFF_BYTES
        ext = "pdf" if kind == "pdf" else "tif"
        path = spool_dir / f"{recvid}.{ext}"
        path.write_bytes(data)
        facts = FaxFacts(recvid, dnis, cid, pages, ext, received)
        return Deliverable(
            facts=facts,
            route=route,
            path=path,
            sha256=hashlib.sha256(data).hexdigest(),
            size=len(data),
            kind=kind,
        )

    return make


@dataclass
class LpStandIn:
    """An executable that behaves like ``lp`` as far as faxd can tell."""

    command: str
    calls_file: Path

    def calls(self) -> list[list[str]]:
        """The argv (without the program) of every run, in order."""
        if not self.calls_file.exists():
            return []
        return [json.loads(line) for line in self.calls_file.read_text().splitlines()]


_LP_SCRIPT = """#!{python}
import json, sys, time
with open({calls!r}, "a") as f:
    f.write(json.dumps(sys.argv[1:]) + "\\n")
time.sleep({sleep!r})
sys.stdout.write({stdout!r})
sys.stderr.write({stderr!r})
sys.exit({exit_code!r})
"""


@pytest.fixture
def make_lp(tmp_path: Path) -> Callable[..., LpStandIn]:
    counter = iter(range(1000))

    def make(
        *,
        stdout: str = "request id is sales-laser-42 (1 file(s))\n",
        stderr: str = "",
        exit_code: int = 0,
        sleep: float = 0.0,
    ) -> LpStandIn:
        n = next(counter)
        script = tmp_path / f"lp-{n}"
        calls = tmp_path / f"lp-{n}.calls"
        script.write_text(
            _LP_SCRIPT.format(
                python=sys.executable,
                calls=str(calls),
                sleep=sleep,
                stdout=stdout,
                stderr=stderr,
                exit_code=exit_code,
            )
        )
        script.chmod(0o755)
        return LpStandIn(str(script), calls)

    return make


@pytest.fixture
def start_smtp() -> Iterator[Callable[..., Any]]:
    """Start aiosmtpd controllers on loopback; all are stopped at the end."""
    from aiosmtpd.controller import Controller

    started: list[Any] = []

    def start(handler: Any, **server_options: Any) -> Any:
        controller = Controller(handler, hostname="127.0.0.1", port=_free_port(), **server_options)
        controller.start()
        started.append(controller)
        return controller

    yield start
    for controller in started:
        controller.stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class TlsFiles:
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(self.cert, self.key)
        return ctx

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cert))


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return TlsFiles(cert, key)


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[Path]:
    """A folder nobody can create files in: mode 0555, or immutable when we are root."""
    folder = tmp_path / "locked"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    chattr = shutil.which("chattr")
    locked = chattr is not None and subprocess.run([chattr, "+i", str(folder)]).returncode == 0
    if not locked:
        pytest.skip("running as root without chattr +i: cannot make a folder unwritable")
    try:
        yield folder
    finally:
        subprocess.run([str(chattr), "-i", str(folder)], check=True)
