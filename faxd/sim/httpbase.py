"""The HTTP plumbing every provider simulator shares: serve, track connections, stop.

Why one module: the simulators differ in their wire format, not in how they
serve it.  Each runs a :class:`SimServer` in a daemon thread, answers through
a :class:`SimHandler` subclass, and must be able to stop mid-request (a test
that simulates an outage cuts every open keep-alive connection).  Getting
that right once here keeps the provider simulators to their protocol.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType, TracebackType
from typing import Any, ClassVar, Self

import structlog

from faxd.sim.faults import Fault, FaultPlan

log = structlog.get_logger(__name__)


class SimServer(ThreadingHTTPServer):
    """A threading server that knows its open connections, so ``stop`` can cut them."""

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 128
    sim: Any  # the simulator the handler answers for

    def __init__(self, address: tuple[str, int], handler: type[SimHandler]) -> None:
        super().__init__(address, handler)
        self.open_connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()

    def handle_error(self, request: object, client_address: object) -> None:
        # A client that hangs up (after a truncated answer, say) is not a server fault.
        log.debug("sim.connection_error", exc_info=True)

    def cut_connections(self) -> None:
        """Shut every open keep-alive connection, so a stopped simulator answers nothing."""
        with self.connections_lock:
            connections = list(self.open_connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class SimHandler(BaseHTTPRequestHandler):
    """One connection, registered with its server while it is open; logs nothing.

    Request lines can carry secrets (VoIP.ms's GET query has the API password),
    so nothing of a request is logged here.
    """

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    timeout = 120
    server: SimServer

    def setup(self) -> None:
        super().setup()
        with self.server.connections_lock:
            self.server.open_connections.add(self.connection)

    def finish(self) -> None:
        with self.server.connections_lock:
            self.server.open_connections.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: object) -> None:
        del format, args


class ServedSimulator:
    """Start, stop, pause and fault injection for a simulator with ``host``, ``port``, ``faults``.

    A subclass sets :attr:`handler_class` and :attr:`thread_name`, calls
    :meth:`_init_serving` in its ``__init__``, and writes its protocol.
    """

    handler_class: ClassVar[type[SimHandler]]
    thread_name: ClassVar[str]
    host: str
    port: int
    faults: FaultPlan

    @property
    def base_url(self) -> str:
        """Where the simulator answers (each simulator adds its own path)."""
        return f"http://{self.host}:{self.port}"

    def _init_serving(self) -> None:
        self._server: SimServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    def start(self) -> Self:
        """Bind and serve in a daemon thread; ``port=0`` picks a free port."""
        if self._server is not None:
            return self
        self._stopping.clear()
        server = SimServer((self.host, self.port), self.handler_class)
        server.sim = self
        self.port = int(server.server_address[1])
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"{self.thread_name}-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and cut open connections (a request in flight gets no answer)."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        server.cut_connections()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def pause(self, seconds: float) -> None:
        """Sleep in a handler thread, cut short when the simulator stops."""
        if seconds > 0:
            self._stopping.wait(seconds)

    def inject(
        self,
        kind: str,
        *,
        operation: str | None = None,
        times: int | None = None,
        rate: float | None = None,
        after: bool = False,
    ) -> Fault:
        """Make requests fail on demand; see the simulator's module docstring for the kinds."""
        return self.faults.inject(kind, operation=operation, times=times, rate=rate, after=after)

    def clear_faults(self) -> None:
        """Remove every injected fault."""
        self.faults.clear()


def serve_until_signalled(
    sim: ServedSimulator, *, label: str, banner: Callable[[], str], prepare: Callable[[], object]
) -> int:
    """``python -m faxd.sim``'s loop for any simulator: start, prepare, banner, wait for a signal.

    The banner goes to stdout once the simulator is ready (what a script waits
    for); ``prepare`` seeds it first.  Returns the exit status: 1 when the
    port cannot be bound, 0 after SIGINT or SIGTERM.
    """
    done = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        sim.start()
    except OSError as exc:
        print(
            f"cannot listen on {sim.host}:{sim.port}: {exc.strerror}; "
            "pick another --port (0 chooses a free one)",
            file=sys.stderr,
        )
        return 1
    with sim:
        prepare()
        print(banner(), flush=True)
        done.wait()
    print(f"{label} simulator stopped", flush=True)
    return 0
