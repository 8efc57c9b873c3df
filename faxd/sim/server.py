"""The FAXAGE simulator as a real HTTP server on loopback.

:class:`FaxageSimulator` is the simulated account (:class:`~faxd.sim.state.SimState`)
plus a stdlib ``ThreadingHTTPServer`` (daemon threads, HTTP/1.1 keep-alive) that
serves ``/httpsfax.php``, ``/getcdr.php`` and ``/provision.php`` the way the
FAXAGE documents describe, and injects faults on demand (:mod:`faxd.sim.faults`).

Every POST is logged in ``sim.requests`` (without its password) before anything
else happens, then faults are drawn, then the login is checked, then the
operation runs.  Errors are HTTP 200 with an ``ERRnn: message`` body, exactly
as the real service answers.

Usage::

    with FaxageSimulator("acme", "12345", "secret") as sim:
        sim.seed_inbound(3)
        requests.post(sim.base_url + "/httpsfax.php", data={...})
"""

from __future__ import annotations

import random
import socket
import struct
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

import structlog

from faxd.clock import Clock, system_clock
from faxd.sim import numbers, receiving, sending
from faxd.sim.faults import FaultPlan
from faxd.sim.forms import Form
from faxd.sim.httpbase import ServedSimulator, SimHandler
from faxd.sim.models import Answer, FileAnswer, SimRequest, TextAnswer
from faxd.sim.state import DEFAULT_LINES, SimState

log = structlog.get_logger(__name__)

Operation = Callable[[SimState, Form], Answer]

HTTPSFAX = "/httpsfax.php"
GETCDR = "/getcdr.php"
PROVISION = "/provision.php"

HTTPSFAX_OPERATIONS: dict[str, Operation] = {
    "sendfax": sending.sendfax,
    "status": sending.status,
    "clear": sending.clear,
    "stopfax": sending.stopfax,
    "dlstatus": sending.dlstatus,
    "dltrans": sending.dltrans,
    "listfax": receiving.listfax,
    "getfax": receiving.getfax,
    "delfax": receiving.delfax,
    "disabledid": numbers.disabledid,
    "enabledid": numbers.enabledid,
    "portable": numbers.portable,
    "listlines": numbers.listlines,
}
PROVISION_OPERATIONS: dict[str, Operation] = {
    "listac": numbers.listac,
    "listnpanxx": numbers.listnpanxx,
    "listdids": numbers.listdids,
    "provdid": numbers.provdid,
    "deprovdid": numbers.deprovdid,
}
CHUNK = 1024 * 1024


def _error_text(path: str, code: str) -> str:
    """The ERR01/ERR02 text of an endpoint (getcdr.php and provision.php use lower case)."""
    texts = {"ERR01": "Database connection failed", "ERR02": "Login incorrect"}
    text = texts[code]
    return f"{code}: {text.lower() if path != HTTPSFAX else text}"


def _err08(form: Form) -> TextAnswer:
    """FAXAGE's answer to a POST it cannot make sense of: the whole POST echoed back."""
    return TextAnswer(f"ERR08: Unknown operation specified or bad POST {form.print_r()}")


class FaxageSimulator(ServedSimulator, SimState):
    """A simulated FAXAGE account served over HTTP on loopback.

    ``seed`` makes fault rates reproducible; ``clock`` drives job lifecycles
    and timestamps; ``latency`` seconds are added to every answer and
    ``slow_seconds`` is how long a ``slow`` fault holds an answer back.
    """

    thread_name = "faxage-sim"

    def __init__(
        self,
        username: str = "demo",
        company: str = "12345",
        password: str = "demo-password",  # noqa: S107 - the simulator's documented demo login
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int = 0,
        clock: Clock = system_clock,
        job_seconds: float = 1.0,
        latency: float = 0.0,
        slow_seconds: float = 5.0,
        lines: Iterable[str] = DEFAULT_LINES,
    ) -> None:
        super().__init__(
            username, company, password, clock=clock, job_seconds=job_seconds, lines=lines
        )
        self.host = host
        self.port = port
        self.latency = latency
        self.slow_seconds = slow_seconds
        self.faults = FaultPlan(random.Random(seed))  # noqa: S311 - reproducible faults, not crypto
        self._init_serving()

    def __repr__(self) -> str:
        return (
            f"FaxageSimulator(username={self.username!r}, company={self.company!r}, "
            f"password='********', base_url={self.base_url!r})"
        )

    # ------------------------------------------------------------------ lifecycle

    @property
    def base_url(self) -> str:
        """``http://<host>:<port>``; the client appends ``/httpsfax.php``."""
        return f"http://{self.host}:{self.port}"

    # ------------------------------------------------------------------ protocol

    def dispatch(self, path: str, operation: str, form: Form) -> Answer:
        """Check the login and run one operation of one endpoint."""
        if path not in (HTTPSFAX, GETCDR, PROVISION):
            return TextAnswer(f"Not Found: {path}", status=404)
        login = (form.text("username"), form.text("company"), form.text("password"))
        if not self.credentials_ok(*login):
            return TextAnswer(_error_text(path, "ERR02"))
        if path == GETCDR:
            return numbers.getcdr(self, form)
        if path == PROVISION:
            handler = PROVISION_OPERATIONS.get(operation)
            return handler(self, form) if handler else TextAnswer("ERR03: unknown operation")
        handler = HTTPSFAX_OPERATIONS.get(operation)
        if handler is None:
            return _err08(form)
        return handler(self, form)

    def fault_answer(self, path: str, kind: str, form: Form | None = None) -> TextAnswer:
        """What an answer-replacing fault says (``err08`` echoes ``form``)."""
        if kind == "http500":
            return TextAnswer("500 Internal Server Error\n", status=500)
        if kind == "err08":
            return _err08(form or Form([]))
        if kind == "err13":
            return TextAnswer("ERR13: File could not be opened")
        return TextAnswer(_error_text(path, kind.upper()))


class _Handler(SimHandler):
    """One connection: read the POST, apply faults, answer like FAXAGE."""

    def version_string(self) -> str:
        return "Apache"

    def log_message(self, format: str, *args: object) -> None:
        log.debug("sim.http", line=format % args)

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path in ("", "/"):
            self._write(TextAnswer("FAXAGE simulator (faxd): POST to /httpsfax.php\n"))
        else:
            self._serve(b"")

    def do_POST(self) -> None:
        try:
            body = self._read_body()
        except ValueError:
            self.close_connection = True
            self._write(TextAnswer("400 Bad Request: unreadable body length\n", status=400))
            return
        except ConnectionAbortedError:
            self.close_connection = True
            return
        self._serve(body)

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            parts: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        if len(body) < length:
            # The client hung up mid-body (killed): a web server never runs such a request.
            raise ConnectionAbortedError("the request body ended before its Content-Length")
        return body

    def _serve(self, body: bytes) -> None:
        sim = self.server.sim
        path = urlsplit(self.path).path
        form = Form.parse(body)
        operation = "getcdr" if path == GETCDR else form.text("operation")
        sim.log_request(SimRequest(operation, form.logged_fields(), path))
        fired = sim.faults.draw(operation)
        kinds = {fault.kind for fault in fired}
        sim.pause(sim.latency)
        if "slow" in kinds:
            sim.pause(sim.slow_seconds)
        replacing = [f for f in fired if f.kind not in ("slow", "truncate")]
        before = [f for f in replacing if not f.after]
        if before:
            self._fault(sim, path, before[0].kind, form)
            return
        try:
            answer = sim.dispatch(path, operation, form)
        except Exception:
            log.exception("sim.operation_failed", operation=operation)
            answer = TextAnswer("500 Internal Server Error\n", status=500)
        if replacing:
            self._fault(sim, path, replacing[0].kind, form)
            return
        self._write(answer, truncate="truncate" in kinds)

    def _fault(self, sim: FaxageSimulator, path: str, kind: str, form: Form) -> None:
        if kind == "reset":
            self._reset()
        else:
            self._write(sim.fault_answer(path, kind, form))

    def _reset(self) -> None:
        """Close the connection with a TCP RST and no answer."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        except OSError:
            pass

    def _write(self, answer: Answer, *, truncate: bool = False) -> None:
        try:
            if isinstance(answer, TextAnswer):
                data = answer.body.encode("utf-8")
                self.send_response(answer.status)
                self.send_header("Content-Type", "text/html; charset=UTF-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            else:
                self._write_file(answer, truncate)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _write_file(self, answer: FileAnswer, truncate: bool) -> None:
        size = answer.size
        send = size // 2 if truncate else size
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        # PHP's header() sends the name's UTF-8 bytes as they are; http.server
        # writes header text as latin-1, so hand it those bytes one per character.
        disposition = f'attachment; filename="{answer.filename}"'
        self.send_header("Content-Disposition", disposition.encode().decode("latin-1"))
        self.send_header("Content-Length", str(size))
        self.end_headers()
        if answer.path is None:
            self.wfile.write(answer.data[:send])
        else:
            with answer.path.open("rb") as source:
                remaining = send
                while remaining > 0:
                    chunk = source.read(min(CHUNK, remaining))
                    if not chunk:
                        break
                    self.wfile.write(chunk)
                    remaining -= len(chunk)
        if truncate:
            self.close_connection = True


FaxageSimulator.handler_class = _Handler
