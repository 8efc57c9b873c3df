"""A hostile client gets nowhere and stalls nothing: slow headers, huge bodies, `..`, bad tokens."""

from __future__ import annotations

import http.client
import resource
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from http_harness import Running, running_daemon, wait_until
from prometheus_client.parser import text_string_to_metric_families


@pytest.fixture
def faxd(sim: Any, tmp_path: Path) -> Iterator[Running]:
    with running_daemon(tmp_path, sim) as running:
        yield running


def sample(text: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    return 0.0


def raw(faxd: Running, request: bytes) -> bytes:
    """Send ``request`` as is on a new connection; the whole answer."""
    port = int(faxd.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(request)
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
            if b"\r\n\r\n" in b"".join(chunks):
                break
        return b"".join(chunks)


def test_slow_headers_stall_neither_the_listener_nor_polling(faxd: Running, sim: Any) -> None:
    port = int(faxd.url.rsplit(":", 1)[1])
    stop = threading.Event()
    slow = [socket.create_connection(("127.0.0.1", port)) for _ in range(20)]
    silent = socket.create_connection(("127.0.0.1", port))
    silent.sendall(b"POST /hook/")

    def drip() -> None:
        header = b"POST /hook/" + b"a" * 10_000
        for i in range(len(header)):
            if stop.wait(0.2):
                return
            for conn in slow:
                try:
                    conn.send(header[i : i + 1])
                except OSError:
                    return

    dripper = threading.Thread(target=drip, daemon=True)
    dripper.start()
    try:
        assert requests.get(f"{faxd.url}/healthz", timeout=5).status_code == 200
        sim.push_url = faxd.hook
        fax = sim.add_fax("3035550199")
        wait_until(lambda: faxd.delivered(fax.recvid))
        silent.settimeout(60)
        assert silent.recv(100) == b""  # dropped after channel_timeout, not held forever
    finally:
        stop.set()
        dripper.join(5)
        for conn in [*slow, silent]:
            conn.close()


def test_100_mb_body_is_refused_without_being_read(faxd: Running) -> None:
    port = int(faxd.url.rsplit(":", 1)[1])
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    size = 100 * 1024 * 1024
    head = (
        f"POST /hook/{faxd.token}/faxage HTTP/1.1\r\nHost: x\r\n"
        f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {size}\r\n\r\n"
    ).encode()
    sent = 0
    answer = b""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(head)
        conn.setblocking(False)
        block = b"a" * 65536
        deadline = time.monotonic() + 60
        while sent < size and time.monotonic() < deadline:
            try:
                answer += conn.recv(65536)
                if answer:
                    break
            except BlockingIOError:
                pass
            try:
                sent += conn.send(block)
            except BlockingIOError:
                time.sleep(0.01)
            except OSError:
                break
        conn.setblocking(True)
        conn.settimeout(10)
        while b"\r\n\r\n" not in answer:
            more = conn.recv(65536)
            if not more:
                break
            answer += more
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert sent < size // 4  # refused early, not after reading it all
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before
    assert grown_kib < 50 * 1024


def test_chunked_body_over_the_limit_is_refused(faxd: Running) -> None:
    chunk = b"a" * 100_000
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(3)) + b"0\r\n\r\n"
    answer = raw(
        faxd,
        f"POST /hook/{faxd.token}/faxage HTTP/1.1\r\nHost: x\r\n"
        "Transfer-Encoding: chunked\r\n\r\n".encode() + body,
    )
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]


@pytest.mark.parametrize(
    "path",
    ["/hook/{token}/../faxage", "/hook/{token}/%2e%2e", "/hook/..%2f{token}/faxage",
     "/hook/{token}/faxage/..", "/healthz/../metrics"],
)  # fmt: skip
def test_dot_dot_in_the_path_is_404_and_counted(faxd: Running, sim: Any, path: str) -> None:
    polls = sum(1 for r in list(sim.requests) if r.operation == "listfax")
    target = path.format(token=faxd.token)
    conn = http.client.HTTPConnection("127.0.0.1", int(faxd.url.rsplit(":", 1)[1]), timeout=10)
    conn.request("POST", target, body=b"recvid=1", headers={"Content-Length": "8"})
    answer = conn.getresponse()
    assert answer.status == 404
    assert answer.read() == b"not found\n"
    conn.close()
    assert sample(faxd.metrics(), "faxd_callbacks_refused_total", reason="bad_path") == 1
    assert sum(1 for r in list(sim.requests) if r.operation == "listfax") == polls


def test_wrong_token_is_404_counted_and_asks_for_nothing(faxd: Running, sim: Any) -> None:
    polls = sum(1 for r in list(sim.requests) if r.operation == "listfax")
    wrong = [
        faxd.hook.replace(faxd.token, faxd.token[:-1] + ("0" if faxd.token[-1] != "0" else "1")),
        faxd.hook.replace(faxd.token, faxd.token[:8]),
        faxd.hook.replace(faxd.token, ""),
        faxd.hook.replace("/faxage", "/nosuch"),  # right token, no such provider
    ]
    for url in wrong:
        answer = requests.post(url, data={"recvid": "1"}, timeout=10)
        assert (answer.status_code, answer.text) == (404, "not found\n")
    text = faxd.metrics()
    # the empty token makes a path of the wrong shape: 404 like the rest, counted nowhere
    assert sample(text, "faxd_callbacks_refused_total", reason="bad_token") == 3
    assert sample(text, "faxd_callbacks_total", provider="faxage", kind="inbound") == 0
    time.sleep(1.5)  # a poll asked for would have started by now
    assert sum(1 for r in list(sim.requests) if r.operation == "listfax") == polls
