"""The VoIP.ms and iFax simulators call back the way the real providers post.

VoIP.ms: a multipart ``url_callback`` per new fax with the fax as part ``pdf``
and the fields ``from`` and ``to``.  iFax: JSON webhooks, ``direction:
"inbound"`` for a received fax and ``direction: "outbound"`` with the final
``faxStatus`` once a sent fax settles.  A real HTTP receiver records them.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from faxd.providers.ifax.sim import IfaxSimulator
from faxd.providers.voipms.sim import VoipmsSimulator


class Recorder:
    """A real HTTP server that keeps each POST's (path, content type, body)."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, str, bytes]] = []
        self.got = threading.Condition()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")
                with recorder.got:
                    recorder.posts.append((self.path, self.headers["Content-Type"], body))
                    recorder.got.notify_all()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, count: int) -> list[tuple[str, str, bytes]]:
        with self.got:
            assert self.got.wait_for(lambda: len(self.posts) >= count, timeout=30)
            return list(self.posts)


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    found = Recorder()
    yield found
    found.server.shutdown()
    found.server.server_close()


def test_voipms_posts_a_multipart_url_callback_with_the_fax(recorder: Recorder) -> None:
    with VoipmsSimulator() as sim:
        sim.add_fax("3035550100", "3035550199")  # before push_url: nobody is told
        sim.push_url = f"{recorder.url}/hook/t/voipms"
        fax = sim.add_fax("3035550100", "3035550199")
        sim.add_fax("3035550100", "3035550188", folder="SENT")  # not a received fax
        ((path, content_type, body),) = recorder.wait_for(1)
    assert path == "/hook/t/voipms" and content_type.startswith("multipart/form-data")
    message = BytesParser(policy=HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body
    )
    parts = {
        part.get_param("name", header="content-disposition"): part
        for part in message.iter_parts()
    }
    assert set(parts) == {"pdf", "from", "to"}
    assert parts["pdf"].get_payload(decode=True) == fax.data
    assert parts["from"].get_content().strip() == "3035550199"
    assert parts["to"].get_content().strip() == "3035550100"
    assert sim.pusher.posts and sim.pusher.failures == 0


def test_ifax_posts_inbound_and_outbound_webhooks_as_json(recorder: Recorder) -> None:
    with IfaxSimulator(settle_seconds=0.2) as sim:
        sim.push_url = f"{recorder.url}/hook/t/ifax"
        (fax,) = sim.seed_inbound(1)
        posts = recorder.wait_for(1)
        inbound: dict[str, Any] = json.loads(posts[0][2])
        assert posts[0][1] == "application/json"
        assert inbound["direction"] == "inbound" and inbound["faxStatus"] == "received"
        assert (inbound["jobId"], inbound["transactionId"]) == (fax.job_id, fax.transaction_id)
        assert "data" not in inbound  # iFax's webhook carries no file
        document = {"fileName": "a.pdf", "fileData": "JVBERi0xLjQ="}  # %PDF-1.4
        answer = requests.post(
            f"{sim.base_url}/customer/fax-send",
            json={"faxNumber": "+13035550123", "faxData": [document]},
            headers={"accessToken": sim.token},
            timeout=10,
        )
        assert answer.json()["status"] == 1
        job = sim.jobs[0]
        outbound: dict[str, Any] = json.loads(recorder.wait_for(2)[1][2])
    assert outbound["direction"] == "outbound" and outbound["jobId"] == job.job_id
    assert outbound["faxStatus"] == "delivered"
