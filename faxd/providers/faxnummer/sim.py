"""A simulated faxnummer.de account (sending only) as a real HTTP server on loopback.

It speaks the webrequests API as the faxnummer.de document and the wire notes
describe: multipart POSTs to one URL with ``sProductLogin``, ``sProductCode``
and ``sCommand``; ``SendFax`` takes the PDF as the file part ``sFax`` and
answers a ``WR_Request_UUID``; ``GetSentFaxStatus`` lists the job as
``WR_DataList_1_...``, going NEW -> RUNNING -> DONE-OK, or for a number in
``fail_numbers`` NEW -> RUNNING -> RETRY -> DONE-ERROR with ``fail_cause``.
How the answers are written is undocumented, so ``answer_format`` chooses
JSON, XML or ``KEY=VALUE`` lines and the client is tested on each.

Faults are those of :mod:`faxd.sim.faults` (``http500``, ``reset``, ``slow``,
``truncate``: the answer is cut after half its bytes) plus faxnummer.de's own
answers: ``auth`` (``Productcode invalid``) and ``failed`` (``Failed to send
Fax``, an internal error).  ``after=True`` (http500, reset) runs the operation
first and loses only its answer, the case a client cannot reconcile.

Usage::

    with FaxnummerSimulator(answer_format="xml") as sim:
        FaxnummerClient(FaxnummerSettings(sim.login, sim.code, base_url=sim.base_url, ...))
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import re
import socket
import struct
import sys
import threading
import uuid as uuidlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email import policy
from email.parser import BytesParser
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

import structlog

from faxd.clock import Clock, system_clock
from faxd.logs import configure_logging
from faxd.sim.faults import Fault, FaultPlan
from faxd.sim.httpbase import ServedSimulator, SimHandler, serve_until_signalled
from faxd.sim.models import TIME_FORMAT

__all__ = ["FAULT_KINDS", "FaxnummerSimulator", "SimSend", "main"]

log = structlog.get_logger(__name__)

#: The fault kinds this simulator knows (``truncate`` applies to every operation here).
FAULT_KINDS = frozenset({"http500", "reset", "slow", "truncate", "auth", "failed"})
AFTER_KINDS = frozenset({"http500", "reset"})
OPERATIONS = ("SendFax", "GetSentFaxStatus")
PATH = "/webrequests/product-voip/index.php"

Fields = list[tuple[str, str]]


@dataclass
class SimSend:
    """One SendFax job: what was uploaded and where it goes.

    ``number`` is the destination in E.164 (``+4930...``) when it was dialled
    internationally (``0049...``), else as given; ``status`` is worked out from
    the simulator's clock whenever someone looks.
    """

    uuid: str
    number: str
    destination: str
    data: bytes = field(repr=False)
    email: str
    sender: str
    source: str
    reference: str
    created: datetime
    fail: bool
    settle_seconds: float
    clock: Clock = field(repr=False)
    cause: int = 17

    @property
    def age(self) -> float:
        return (self.clock() - self.created).total_seconds()

    @property
    def status(self) -> str:
        """NEW, RUNNING, RETRY (failing numbers only), DONE-OK or DONE-ERROR."""
        age, settle = self.age, self.settle_seconds
        if age >= settle:
            return "DONE-ERROR" if self.fail else "DONE-OK"
        if age < settle / 3:
            return "NEW"
        if self.fail and age >= 2 * settle / 3:
            return "RETRY"
        return "RUNNING"

    @property
    def files(self) -> list[tuple[str, bytes]]:
        """The upload as ``(name, bytes)``, like the other simulators' jobs."""
        return [(self.reference or "fax.pdf", self.data)]


class _Fault(Fault):
    """A fault that may fire for any operation (this API has no downloads to limit it to)."""

    def applies_to(self, operation: str) -> bool:
        return self.operation is None or self.operation == operation


class _Faults(FaultPlan):
    """:class:`FaultPlan` with faxnummer.de's kinds; drawing is the base class's."""

    fault_class = _Fault

    def check(self, kind: str, operation: str | None, after: bool) -> None:
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; choose one of {sorted(FAULT_KINDS)}")
        if operation is not None and operation not in OPERATIONS:
            raise ValueError(f"unknown operation {operation!r}; choose one of {OPERATIONS}")
        if after and kind not in AFTER_KINDS:
            raise ValueError(f"after=True only applies to {sorted(AFTER_KINDS)}")


class FaxnummerSimulator(ServedSimulator):
    """A faxnummer.de product login served over HTTP; ``.base_url`` goes in ``[faxnummer]``."""

    thread_name = "faxnummer-sim"

    def __init__(
        self,
        login: str = "acc12345",
        code: str = "demo-product-code",
        *,
        seed: int = 0,
        answer_format: str = "kv",
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Clock = system_clock,
        settle_seconds: float = 1.0,
        latency: float = 0.0,
        slow_seconds: float = 5.0,
    ) -> None:
        if answer_format not in ("json", "xml", "kv"):
            raise ValueError(f"answer_format {answer_format!r}: choose json, xml or kv")
        self.login = login
        self.code = code
        self.answer_format = answer_format
        self.host = host
        self.port = port
        self.clock = clock
        self.settle_seconds = settle_seconds
        self.latency = latency
        self.slow_seconds = slow_seconds
        self.fail_numbers: set[str] = set()
        self.fail_cause = 17
        self.jobs: list[SimSend] = []
        self.requests: list[tuple[str, str]] = []  # (operation, product login); never the code
        self.faults: FaultPlan = _Faults(random.Random(seed))  # noqa: S311 - reproducible
        self._lock = threading.Lock()
        self._init_serving()

    def __repr__(self) -> str:
        return (
            f"FaxnummerSimulator(login={self.login!r}, code='********', "
            f"answer_format={self.answer_format!r}, base_url={self.base_url!r})"
        )

    # ------------------------------------------------------------------ lifecycle

    @property
    def base_url(self) -> str:
        """The full webrequests URL (faxnummer.de's base_url is the endpoint itself)."""
        return f"http://{self.host}:{self.port}{PATH}"

    # ------------------------------------------------------------------ faults

    # ------------------------------------------------------------------ protocol

    def dispatch(self, form: dict[str, str], files: dict[str, bytes]) -> Fields:
        """Check the login and run one command; the answer's fields."""
        if form.get("sProductLogin") != self.login:
            return _failed("Webrequest is not available for this account")
        if form.get("sProductCode") != self.code:
            return _failed("Productcode invalid")
        command = form.get("sCommand", "")
        if command == "SendFax":
            return self._send(form, files)
        if command == "GetSentFaxStatus":
            return self._status(form.get("sJobUUID", ""))
        return _failed(f"Unknown command {command[:40]}")

    def _send(self, form: dict[str, str], files: dict[str, bytes]) -> Fields:
        destination = form.get("sDestination", "")
        data = files.get("sFax", b"")
        sender = form.get("sSender", "")
        if not data.startswith(b"%PDF-") or form.get("mimeType", "application/pdf") != (
            "application/pdf"
        ):
            return _failed("Fax wrong format")
        if not re.fullmatch(r"\d{3,20}", destination):
            return _failed("Destination wrong format")
        if not re.fullmatch(r"[^@\s]+@[^@\s]+", form.get("sEmail", "")):
            return _failed("Email wrong format")
        if not re.fullmatch(r"[ -~]{0,20}", sender):
            return _failed("Sender wrong format")
        number = "+" + destination[2:] if destination.startswith("00") else destination
        job = SimSend(
            uuid=f"faxsend-{self.login}-{uuidlib.uuid4().hex[:20]}",
            number=number,
            destination=destination,
            data=data,
            email=form.get("sEmail", ""),
            sender=sender,
            source=form.get("sSource", ""),
            reference=form.get("sFaxFileName", ""),
            created=self.clock(),
            fail=_canon(destination) in {_canon(n) for n in self.fail_numbers},
            settle_seconds=self.settle_seconds,
            clock=self.clock,
            cause=self.fail_cause,
        )
        with self._lock:
            self.jobs.append(job)
        return [("WR_Status", "ok"), ("WR_Comment", ""), ("WR_Request_UUID", job.uuid)]

    def _status(self, uuid: str) -> Fields:
        with self._lock:
            job = next((j for j in self.jobs if j.uuid == uuid), None)
        if job is None:
            return _failed("Job not found")
        status = job.status
        prefix = "WR_DataList_1_"
        item = [
            ("JobUUID", job.uuid),
            ("CreateDateTime", job.created.strftime(TIME_FORMAT)),
            ("LastChangeDateTime", self.clock().strftime(TIME_FORMAT)),
            ("DestinationNumber", job.destination),
            ("FromNumber", job.source or "00493000000000"),
            ("FaxFileName", job.reference),
            ("Status", status),
            ("RemoteTSI", "" if job.fail else "REMOTE FAX"),
        ]
        if status.startswith("DONE"):
            pages = str(max(1, job.data.count(b"/Type /Page ")))
            item += [
                ("StatusQ850Cause", str(job.cause) if job.fail else "16"),
                ("ConnectionDuration", "0" if job.fail else "42"),
                ("PagesSent", "0" if job.fail else pages),
            ]
        elif status == "RETRY":
            item += [("StatusQ850Cause", str(job.cause)), ("SendTriesRemaining", "2")]
        return [
            ("WR_Status", "ok"),
            ("WR_DataList_ObjectCount", "1"),
            *((prefix + key, value) for key, value in item),
        ]

    def render(self, fields: Fields) -> tuple[bytes, str]:
        """The answer body in ``answer_format``, and its Content-Type."""
        if self.answer_format == "json":
            return json.dumps(dict(fields)).encode(), "application/json"
        if self.answer_format == "xml":
            inner = "".join(f"<{key}>{escape(value)}</{key}>" for key, value in fields)
            text = f'<?xml version="1.0" encoding="UTF-8"?>\n<Response>{inner}</Response>\n'
            return text.encode(), "text/xml; charset=UTF-8"
        return "".join(f"{key}={value}\n" for key, value in fields).encode(), "text/plain"


def _failed(comment: str) -> Fields:
    return [("WR_Status", "failed"), ("WR_Comment", comment)]


def _canon(number: str) -> str:
    """A number's digits without the international prefix (``+49..``, ``0049..`` -> ``49..``)."""
    digits = re.sub(r"\D", "", number)
    return digits[2:] if number.strip().startswith("00") else digits


def _parse_multipart(content_type: str, body: bytes) -> tuple[dict[str, str], dict[str, bytes]]:
    """Form fields and file parts of a ``multipart/form-data`` body."""
    head = f"Content-Type: {content_type}\r\n\r\n".encode("latin-1")
    message = BytesParser(policy=policy.HTTP).parsebytes(head + body)
    form: dict[str, str] = {}
    files: dict[str, bytes] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        if part.get_filename() is not None:
            files[name] = data
        else:
            form[name] = data.decode("utf-8", errors="replace")
    return form, files


class _Handler(SimHandler):
    """One connection: read the POST, apply faults, answer like faxnummer.de."""

    def log_message(self, format: str, *args: object) -> None:
        log.debug("sim.http", line=format % args)

    def do_GET(self) -> None:
        self._answer(b"faxnummer.de simulator (faxd): POST to " + PATH.encode() + b"\n", 200)

    def do_POST(self) -> None:
        sim = self.server.sim
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        if len(body) < length:
            # The client hung up mid-body (killed): a web server never runs such a request,
            # so a half-uploaded fax is never sent.
            self.close_connection = True
            return
        content_type = self.headers.get("Content-Type", "")
        if content_type.lower().startswith("multipart/form-data"):
            form, files = _parse_multipart(content_type, body)
        else:
            form, files = dict(parse_qsl(body.decode("utf-8", "replace"))), {}
        operation = form.get("sCommand", "")
        with sim._lock:
            sim.requests.append((operation, form.get("sProductLogin", "")))
        fired = sim.faults.draw(operation)
        kinds = {fault.kind for fault in fired}
        sim.pause(sim.latency)
        if "slow" in kinds:
            sim.pause(sim.slow_seconds)
        replacing = [f for f in fired if f.kind not in ("slow", "truncate")]
        before = [f for f in replacing if not f.after]
        if before:
            self._fault(before[0].kind)
            return
        if self.path.split("?", 1)[0] != PATH:
            self._answer(b"404 Not Found\n", 404)
            return
        try:
            fields = sim.dispatch(form, files)
        except Exception:
            log.exception("sim.operation_failed", operation=operation)
            self._answer(b"500 Internal Server Error\n", 500)
            return
        if replacing:
            self._fault(replacing[0].kind)
            return
        data, content_type = sim.render(fields)
        self._answer(data, 200, content_type, truncate="truncate" in kinds)

    def _fault(self, kind: str) -> None:
        sim = self.server.sim
        if kind == "reset":
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
                self.connection.close()
        elif kind == "http500":
            self._answer(b"500 Internal Server Error\n", 500)
        else:
            comment = "Productcode invalid" if kind == "auth" else "Failed to send Fax"
            data, content_type = sim.render(_failed(comment))
            self._answer(data, 200, content_type)

    def _answer(
        self,
        data: bytes,
        status: int = 200,
        content_type: str = "text/plain",
        *,
        truncate: bool = False,
    ) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2] if truncate else data)
            if truncate:
                self.close_connection = True
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True


# ---------------------------------------------------------------------- command line


FaxnummerSimulator.handler_class = _Handler


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m faxd.sim --provider faxnummer``: serve until SIGINT or SIGTERM."""
    parser = argparse.ArgumentParser(
        prog="python -m faxd.sim --provider faxnummer",
        description="Serve a simulated faxnummer.de account over HTTP (for tests and demos).",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8027, help="port (0 picks a free one)")
    parser.add_argument("--seed", type=int, default=0, help="random seed for fault rates")
    parser.add_argument("--login", default="acc12345", help="sProductLogin")
    parser.add_argument("--code", default="demo-product-code", help="sProductCode")
    parser.add_argument("--format", choices=("json", "xml", "kv"), default="kv")
    parser.add_argument("--settle-seconds", type=float, default=5.0)
    parser.add_argument(
        "--fail-number", action="append", default=[], help="a number whose faxes fail"
    )
    args = parser.parse_args(argv)
    configure_logging(level="info")
    sim = FaxnummerSimulator(
        args.login,
        args.code,
        seed=args.seed,
        answer_format=args.format,
        host=args.host,
        port=args.port,
        settle_seconds=args.settle_seconds,
    )
    sim.fail_numbers.update(args.fail_number)
    return serve_until_signalled(
        sim,
        label="faxnummer.de",
        banner=lambda: (
            f"faxnummer.de simulator listening on {sim.base_url} "
            f"(product_login {args.login!r}, answers as {args.format}); "
            f"base_url for faxd: {sim.base_url}"
        ),
        prepare=lambda: None,
    )


if __name__ == "__main__":
    sys.exit(main())
