"""The simulator calls back like FAXAGE: url_notify after a job, the inbound push on a new fax."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest

from faxd.providers.faxage.sending import FaxFile
from faxd.sim.documents import make_pdf


class Receiver:
    """A real HTTP server that records each POST's path and form."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, dict[str, str]]] = []
        self.got = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                form = parse_qs(self.rfile.read(length).decode(), keep_blank_values=True)
                receiver.posts.append((self.path, {k: v[0] for k, v in form.items()}))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"OK")
                receiver.got.set()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()
    r.server.server_close()


def test_url_notify_posts_the_status_record_without_the_query(
    sim: Any, client: Any, receiver: Receiver, tmp_path: Path
) -> None:
    doc = tmp_path / "a.pdf"
    doc.write_bytes(make_pdf("x", pagecount=2))
    jobid = client.sendfax(
        "3035550123", "Bob", [FaxFile(name="a.pdf", path=doc)],
        url_notify=f"{receiver.url}/hook/abc/faxage?dropped=1#frag",
    )  # fmt: skip
    assert receiver.got.wait(30)
    path, form = receiver.posts[0]
    assert path == "/hook/abc/faxage"
    assert form["jobid"] == str(jobid) and form["shortstatus"] == "success"
    assert form["destnum"] == "3035550123" and form["pagecount"] == "2"
    assert set(form) >= {"commid", "longstatus", "sendtime", "completetime", "xmittime"}


def test_inbound_push_posts_the_new_fax(sim: Any, receiver: Receiver) -> None:
    sim.push_url = f"{receiver.url}/push?x=1"
    fax = sim.add_fax("3035550199", "(303)555-0100", pagecount=3)
    assert receiver.got.wait(30)
    path, form = receiver.posts[0]
    assert path == "/push"
    assert form["recvid"] == str(fax.recvid) and form["pagecount"] == "3"
    assert set(form) == {"recvid", "recvdate", "starttime", "cid", "dnis", "pagecount", "tsid"}


def test_no_push_without_a_url(sim: Any, receiver: Receiver) -> None:
    sim.add_fax("3035550199")
    assert not receiver.got.wait(1.0)
    assert sim.push_posts == [] and sim.push_failures == 0
