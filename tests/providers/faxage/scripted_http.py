"""A scripted HTTP server on loopback for the FAXAGE transport and client tests.

Imported by ``conftest.py`` (fixtures) and by the tests (the answer builders).

The simulator answers like FAXAGE; these tests also need answers FAXAGE would
only give on a bad day (a Content-Length that lies, an ``ERR`` body where a PDF
should be, a reset after the request arrived).  ``scripted`` serves a queue of
such answers and records every POST it received.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl


@dataclass
class Received:
    """One request as the server saw it."""

    path: str
    headers: dict[str, str]
    raw: bytes
    form: list[tuple[str, str]]


Action = Callable[[BaseHTTPRequestHandler, Received], None]


def reply(body: bytes | str, *, status: int = 200, headers: dict[str, str] | None = None) -> Action:
    """Answer with ``body`` and a true Content-Length."""
    data = body.encode() if isinstance(body, str) else body

    def act(handler: BaseHTTPRequestHandler, _req: Received) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", "text/html; charset=UTF-8")
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    return act


def lying_length(body: bytes, declared: int) -> Action:
    """Answer 200 with ``body`` but claim ``declared`` bytes, then close."""

    def act(handler: BaseHTTPRequestHandler, _req: Received) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "application/octet-stream")
        handler.send_header("Content-Length", str(declared))
        handler.end_headers()
        handler.wfile.write(body)
        handler.wfile.flush()
        handler.close_connection = True

    return act


def reset() -> Action:
    """Read the request, then reset the connection without answering."""

    def act(handler: BaseHTTPRequestHandler, _req: Received) -> None:
        handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        handler.close_connection = True

    return act


def trickle(head: bytes, declared: int, seconds: float) -> Action:
    """Send ``head``, then one byte every 20 ms for ``seconds``, then hang up.

    Every read returns within any read timeout, yet the body never ends: only
    an overall deadline stops the download.
    """

    def act(handler: BaseHTTPRequestHandler, _req: Received) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "application/octet-stream")
        handler.send_header("Content-Length", str(declared))
        handler.end_headers()
        handler.wfile.write(head)
        handler.wfile.flush()
        end = time.monotonic() + seconds
        try:
            while time.monotonic() < end:
                handler.wfile.write(b"x")
                handler.wfile.flush()
                time.sleep(0.02)
        except OSError:
            pass  # the client gave up, as it should
        handler.close_connection = True

    return act


def stall(seconds: float, then: Action | None = None) -> Action:
    """Wait ``seconds`` before answering (to trip the client's read timeout)."""

    def act(handler: BaseHTTPRequestHandler, req: Received) -> None:
        time.sleep(seconds)
        (then or reply("late"))(handler, req)

    return act


@dataclass
class ScriptedServer:
    """Serves queued actions in order, then ``default``; keeps every request."""

    default: Action = field(default_factory=lambda: reply("OK"))
    actions: list[Action] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None
    #: Client connections open right now (keep-alive ones included).
    open_connections: int = 0

    @property
    def base_url(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def then(self, *actions: Action) -> ScriptedServer:
        self.actions.extend(actions)
        return self

    def start(self) -> None:
        script = self
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def setup(self) -> None:
                super().setup()
                with lock:
                    script.open_connections += 1

            def finish(self) -> None:
                with lock:
                    script.open_connections -= 1
                super().finish()

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length)
                req = Received(
                    self.path,
                    {k: v for k, v in self.headers.items()},
                    raw,
                    parse_qsl(raw.decode("latin-1"), keep_blank_values=True),
                )
                script.received.append(req)
                action = script.actions.pop(0) if script.actions else script.default
                action(self, req)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        server = self.server
        threading.Thread(
            target=lambda: server.serve_forever(poll_interval=0.05), daemon=True
        ).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
