"""A simulated iFax account over real HTTP on loopback, for tests and the demo.

It speaks what ``reference/providers-wire-notes.md`` says iFax speaks: JSON
POSTs under ``/v1/customer/...`` with an ``accessToken`` header, envelopes
``{"status", "message", "data"}``, inbound listing over an ``MM/DD/YYYY``
window newest first, paged with ``lastFaxId``, downloads as base64 inside
JSON.  Nothing is ever deleted (iFax documents no delete), so a seeded fax
counts as ``released`` once it was downloaded at least once.  Sent faxes are
``sending`` for ``settle_seconds`` (by the injected clock), then ``delivered``,
or ``failed`` for a number in ``fail_numbers``.

Faults come from :mod:`faxd.sim.faults` (``http500``, ``reset``, ``slow``,
``truncate``) plus iFax's own: ``auth`` (the token refused, code 12001),
``rate_limit`` (HTTP 429) and ``corrupt_base64`` (a download whose base64 is
damaged).  Requests that break the wire rules (no JSON type, no token header,
a date not in ``MM/DD/YYYY``) are kept in ``violations``.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import itertools
import json
import random
import re
import socket
import struct
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import structlog

from faxd.clock import Clock, system_clock
from faxd.sim.documents import count_pages, make_pdf
from faxd.sim.faults import Fault, FaultPlan
from faxd.sim.httpbase import ServedSimulator, SimHandler, serve_until_signalled
from faxd.sim.push import Pusher, PushesCallbacks

log = structlog.get_logger(__name__)

DEMO_TOKEN = "demo-ifax-access-token-0001"  # noqa: S105 - the simulator's documented demo key
PREFIX = "/v1/customer/"
#: How often (every 0.1 s) a sent job is checked for having settled before its
#: status webhook is given up (a test's injected clock may never get there).
SETTLE_CHECKS = 600
#: Operations by path under ``/v1/customer/``.
PATHS = {
    "fax-send": "fax-send",
    "fax-status": "fax-status",
    "fax-lists": "fax-lists",
    "inbound/fax-list-all": "fax-list-all",
    "inbound/fax-download": "fax-download",
}
IFAX_KINDS = frozenset({"http500", "reset", "slow", "truncate", "auth", "rate_limit"})
DOWNLOAD_KINDS = frozenset({"truncate", "corrupt_base64"})
AFTER_KINDS = frozenset({"http500", "reset", "auth", "rate_limit"})
_DATE = re.compile(r"^(\d{2})/(\d{2})/(\d{4})$")
_E164 = re.compile(r"^\+[1-9]\d{7,14}$")


class IfaxFault(Fault):
    """A fault whose download-only kinds fire on ``fax-download`` alone."""

    def applies_to(self, operation: str) -> bool:
        if self.operation is not None and self.operation != operation:
            return False
        return self.kind not in DOWNLOAD_KINDS or operation == "fax-download"


class IfaxFaultPlan(FaultPlan):
    """:class:`FaultPlan` with iFax's own kinds."""

    fault_class = IfaxFault

    def check(self, kind: str, operation: str | None, after: bool) -> None:
        kinds = IFAX_KINDS | DOWNLOAD_KINDS
        if kind not in kinds:
            raise ValueError(f"unknown fault kind {kind!r}; choose one of {sorted(kinds)}")
        if operation is not None and operation not in PATHS.values():
            raise ValueError(
                f"unknown operation {operation!r}; choose one of {sorted(PATHS.values())}"
            )
        if kind in DOWNLOAD_KINDS and operation not in (None, "fax-download"):
            raise ValueError(f"{kind} only applies to fax-download")
        if after and kind not in AFTER_KINDS:
            raise ValueError(f"after=True only applies to {sorted(AFTER_KINDS)}")


@dataclass
class SimIfaxFax:
    """A received fax waiting on the simulated account."""

    job_id: int
    transaction_id: int
    received: datetime  # naive UTC
    cid: str
    dnis: str
    data: bytes
    pages: int
    downloads: int = 0

    @property
    def remote_id(self) -> str:
        """How faxd names it: ``jobId:transactionId``."""
        return f"{self.job_id}:{self.transaction_id}"

    @property
    def released(self) -> bool:
        """Downloaded at least once (iFax deletes nothing)."""
        return self.downloads > 0

    def webhook(self) -> dict[str, Any]:
        """The "Inbound Fax Events" webhook iFax posts for this fax (JSON, no file)."""
        start = int(self.received.replace(tzinfo=UTC).timestamp())
        return {
            "direction": "inbound",
            "jobId": self.job_id,
            "transactionId": self.transaction_id,
            "faxCallLength": 30,
            "faxCallStart": start,
            "faxCallEnd": start + 30,
            "faxTotalPages": self.pages,
            "faxReceivedPages": self.pages,
            "faxStatus": "received",
            "success": True,
            "fromNumber": self.cid,
            "toNumber": self.dnis,
            "code": 0,
            "message": "Fax received",
        }


@dataclass
class SimIfaxJob:
    """A fax sent through ``fax-send``."""

    job_id: int
    number: str
    caller_id: str
    file_name: str
    data: bytes
    created: datetime
    fails: bool
    settle: timedelta
    clock: Clock = field(repr=False)

    @property
    def status(self) -> str:
        """``sending`` until settled, then ``delivered`` or ``failed``."""
        if self.clock() - self.created < self.settle:
            return "sending"
        return "failed" if self.fails else "delivered"

    def record(self) -> dict[str, Any]:
        """The fax object iFax returns for this job."""
        status = self.status
        pages = count_pages(self.file_name, self.data)
        done = status != "sending"
        return {
            "jobId": self.job_id,
            "fromNumber": self.caller_id,
            "toNumber": self.number,
            "faxCallStart": int(self.created.timestamp()),
            "faxCallEnd": int((self.created + self.settle).timestamp()) if done else None,
            "faxTotalPages": pages,
            "faxTransferredPages": (0 if self.fails else pages) if done else 0,
            "faxStatus": status,
            "message": {"failed": "Busy", "delivered": "Normal clearing of fax."}.get(
                status, "Fax processed for sending"
            ),
            "code": {"failed": 3931, "delivered": 0}.get(status, -3),
        }


class IfaxSimulator(ServedSimulator, PushesCallbacks):
    """The simulated account and its HTTP server (``base_url`` ends in ``/v1``)."""

    thread_name = "ifax-sim"

    def __init__(
        self,
        token: str = DEMO_TOKEN,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int = 0,
        clock: Clock = system_clock,
        settle_seconds: float = 1.0,
        latency: float = 0.0,
        slow_seconds: float = 5.0,
        page_size: int = 25,
    ) -> None:
        self.token = token
        self.host = host
        self.port = port
        self.clock = clock
        self.settle_seconds = settle_seconds
        self.latency = latency
        self.slow_seconds = slow_seconds
        self.page_size = page_size
        self.faults = IfaxFaultPlan(random.Random(seed))  # noqa: S311 - reproducible, not crypto
        self.faxes: list[SimIfaxFax] = []
        self.jobs: list[SimIfaxJob] = []
        self.fail_numbers: set[str] = set()
        self.violations: list[str] = []
        #: Never called: iFax has no delete; kept so tests can treat every simulator alike.
        self.delete_check: Callable[[SimIfaxFax], str | None] | None = None
        self.requests: list[tuple[str, dict[str, Any]]] = []
        #: The account's webhook URL (``push_url``): JSON per received fax and per sent one
        #: that finished, as iFax's Webhooks feature posts them.
        self.pusher = Pusher()
        self.lock = threading.Lock()
        self._ids = itertools.count(70_000_001)
        self._init_serving()

    def __repr__(self) -> str:
        return f"IfaxSimulator(base_url={self.base_url!r}, token='********')"

    # ------------------------------------------------------------------ lifecycle

    @property
    def base_url(self) -> str:
        """What goes in ``[ifax] base_url``."""
        return f"http://{self.host}:{self.port}/v1"

    # ------------------------------------------------------------------ faults

    # ------------------------------------------------------------------ seeding

    def seed_inbound(
        self,
        n: int,
        dnis: Sequence[str] = ("+13035550100",),
        *,
        cid: str = "+13035550199",
        received_at: datetime | None = None,
        size: int | None = None,
    ) -> list[SimIfaxFax]:
        """Add ``n`` received faxes (unique PDFs), received at ``received_at`` or now."""
        made: list[SimIfaxFax] = []
        when = received_at or self.clock().replace(tzinfo=None, microsecond=0)
        with self.lock:
            for index in range(n):
                job = next(self._ids)
                pages = 1 + job % 3
                fax = SimIfaxFax(
                    job_id=job,
                    transaction_id=job * 7 + 3,
                    received=when,
                    cid=cid,
                    dnis=dnis[index % len(dnis)],
                    data=make_pdf(f"iFax {job}", pages, size=size),
                    pages=pages,
                )
                self.faxes.append(fax)
                made.append(fax)
        for fax in made:
            self.pusher.post(_webhook(fax.webhook()), "application/json")
        return made

    # ------------------------------------------------------------------ operations

    def dispatch(self, operation: str, token: str, body: dict[str, Any]) -> _Answer:
        """Check the token and run one operation."""
        if token != self.token:
            return _auth_answer()
        handler: Callable[[dict[str, Any]], _Answer] = getattr(
            self, "_" + operation.replace("-", "_")
        )
        return handler(body)

    def _window(self, body: dict[str, Any], operation: str) -> tuple[date, date] | None:
        days: list[date] = []
        for key in ("startDate", "endDate"):
            match = _DATE.match(str(body.get(key, "")))
            if match is None:
                self.violations.append(f"{operation}: {key} {body.get(key)!r} is not MM/DD/YYYY")
                return None
            try:
                days.append(date(int(match[3]), int(match[1]), int(match[2])))
            except ValueError:
                return None
        return days[0], days[1]

    def _fax_list_all(self, body: dict[str, Any]) -> _Answer:
        window = self._window(body, "fax-list-all")
        if window is None:
            return _error("Invalid date range", -2040)
        start, end = window
        with self.lock:
            faxes = [f for f in self.faxes if start <= f.received.date() <= end]
        faxes.sort(key=lambda f: (f.received, f.job_id), reverse=True)
        last = str(body.get("lastFaxId") or "")
        if last:
            ids = [str(f.job_id) for f in faxes]
            faxes = faxes[ids.index(last) + 1 :] if last in ids else []
        page = [
            {
                "jobId": f.job_id,
                "transactionId": f.transaction_id,
                "fromNumber": f.cid,
                "toNumber": f.dnis,
                "receivedTime": f.received.strftime("%Y-%m-%d %H:%M:%S"),
                "faxTotalPages": f.pages,
                "faxStatus": "received",
            }
            for f in faxes[: self.page_size]
        ]
        return _ok(page, "Fax list response")

    def _fax_download(self, body: dict[str, Any]) -> _Answer:
        job, transaction = str(body.get("jobId", "")), str(body.get("transactionId", ""))
        with self.lock:
            found = [
                f
                for f in self.faxes
                if (str(f.job_id), str(f.transaction_id)) == (job, transaction)
            ]
            if found:
                found[0].downloads += 1
        if not found:
            return _error("Can not find Fax.", 12130)
        return _Answer(
            200, {"status": 1, "message": "Download Fax Response", "data": ""}, found[0].data
        )

    def _fax_send(self, body: dict[str, Any]) -> _Answer:
        number = str(body.get("faxNumber", ""))
        if not _E164.match(number):
            return _error("Invalid faxNumber", 120100)
        files = body.get("faxData")
        if not isinstance(files, list) or not files or not isinstance(files[0], dict):
            return _error("No valid documents attached", -123)
        try:
            data = base64.b64decode(str(files[0].get("fileData", "")), validate=True)
        except ValueError:
            return _error("Invalid file format", 120109)
        if not data.startswith((b"%PDF-", b"II*\x00", b"MM\x00*", b"\x89PNG", b"\xff\xd8")):
            return _error("Invalid file format", 120109)
        with self.lock:
            job = SimIfaxJob(
                job_id=next(self._ids),
                number=number,
                caller_id=str(body.get("callerId", "")),
                file_name=str(files[0].get("fileName", "")),
                data=data,
                created=self.clock(),
                fails=number in self.fail_numbers,
                settle=timedelta(seconds=self.settle_seconds),
                clock=self.clock,
            )
            self.jobs.append(job)
        self._push_when_settled(job)
        return _ok({"jobId": job.job_id}, "Fax processed for sending")

    def _push_when_settled(self, job: SimIfaxJob) -> None:
        """Post the job's outbound status webhook once it has settled (by the clock)."""
        if not self.pusher.url:
            return

        def settled(checks: int = 0) -> None:
            if job.status == "sending":  # the injected clock is not there yet: check again
                if checks < SETTLE_CHECKS and not self._stopping.is_set():
                    retry = threading.Timer(0.1, settled, args=(checks + 1,))
                    retry.daemon = True
                    retry.start()
                return
            payload = {"direction": "outbound", **job.record()}
            self.pusher.post(_webhook(payload), "application/json")

        timer = threading.Timer(self.settle_seconds + 0.05, settled)
        timer.daemon = True
        timer.start()

    def _fax_status(self, body: dict[str, Any]) -> _Answer:
        with self.lock:
            found = [j for j in self.jobs if str(j.job_id) == str(body.get("jobId"))]
        if not found:
            return _error("Fax with this id does not exist", 12021)
        return _ok(found[0].record(), "Fax status response")

    def _fax_lists(self, body: dict[str, Any]) -> _Answer:
        window = self._window(body, "fax-lists")
        if window is None:
            return _error("Invalid date range", -2040)
        start, end = window
        with self.lock:
            jobs = [j for j in self.jobs if start <= j.created.date() <= end]
        return _ok([j.record() for j in jobs], "Fax list response")


@dataclass(frozen=True)
class _Answer:
    """An HTTP answer: a JSON envelope, and a file to put base64 into ``data``."""

    status: int
    envelope: dict[str, Any]
    file: bytes | None = None

    def body(self, *, corrupt: bool = False) -> bytes:
        if self.file is None:
            return json.dumps(self.envelope).encode()
        text = base64.b64encode(self.file)
        if corrupt:
            middle = len(text) // 2
            text = text[:middle] + b"!#!#" + text[middle + 4 :]
        head = json.dumps({k: v for k, v in self.envelope.items() if k != "data"})[:-1]
        return head.encode() + b', "data": "' + text.replace(b"/", b"\\/") + b'"}'


def _webhook(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload).encode("utf-8")


def _ok(data: object, message: str) -> _Answer:
    return _Answer(200, {"status": 1, "message": message, "data": data})


def _error(message: str, code: int) -> _Answer:
    return _Answer(200, {"status": 0, "message": message, "code": code})


def _auth_answer() -> _Answer:
    return _Answer(200, {"status": 0, "message": "accessToken invalid", "code": 12001})


class _Handler(SimHandler):
    def log_message(self, format: str, *args: object) -> None:
        log.debug("ifax_sim.http", line=format % args)

    def do_POST(self) -> None:
        sim = self.server.sim
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length > 0 else b""
        if len(raw) < length:
            # The client hung up mid-body (killed): a web server never runs such a request,
            # and a body cut short is no wire-rule violation of the client's.
            self.close_connection = True
            return
        path = self.path.split("?", 1)[0]
        operation = PATHS.get(path[len(PREFIX) :]) if path.startswith(PREFIX) else None
        if operation is None:
            self._send(404, b'{"message": "Not Found"}')
            return
        if "json" not in self.headers.get("Content-Type", ""):
            sim.violations.append(f"{operation}: Content-Type is not application/json")
        token = self.headers.get("accessToken")
        if token is None:
            sim.violations.append(f"{operation}: no accessToken header")
        try:
            body = json.loads(raw)
        except ValueError:
            sim.violations.append(f"{operation}: the body is not JSON")
            body = {}
        body = body if isinstance(body, dict) else {}
        logged = {k: v for k, v in body.items() if k != "faxData"}
        with sim.lock:
            sim.requests.append((operation, logged))
        fired = sim.faults.draw(operation)
        kinds = {fault.kind for fault in fired}
        sim.pause(sim.latency)
        if "slow" in kinds:
            sim.pause(sim.slow_seconds)
        replacing = [f for f in fired if f.kind in AFTER_KINDS]
        if any(not f.after for f in replacing):
            self._fault(next(f.kind for f in replacing if not f.after))
            return
        try:
            answer = sim.dispatch(operation, token or "", body)
        except Exception:
            log.exception("ifax_sim.operation_failed", operation=operation)
            answer = _Answer(500, {"status": 0, "message": "Internal error", "code": 256})
        if replacing:
            self._fault(replacing[0].kind)
            return
        data = answer.body(corrupt="corrupt_base64" in kinds)
        self._send(answer.status, data, truncate="truncate" in kinds)

    def _fault(self, kind: str) -> None:
        if kind == "reset":
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
                self.connection.close()
        elif kind == "http500":
            self._send(500, b"<html><body>500 Internal Server Error</body></html>")
        elif kind == "rate_limit":
            self._send(429, b'{"status": 0, "message": "Too many requests"}')
        else:
            self._send(200, _auth_answer().body())

    def _send(self, status: int, data: bytes, *, truncate: bool = False) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2] if truncate else data)
            if truncate:
                self.close_connection = True
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True


IfaxSimulator.handler_class = _Handler


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m faxd.sim --provider ifax``: serve until SIGINT or SIGTERM."""
    parser = argparse.ArgumentParser(
        prog="python -m faxd.sim --provider ifax",
        description="Serve a simulated iFax account over HTTP (for tests and demos).",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8026, help="port (0 picks a free one)")
    parser.add_argument("--seed", type=int, default=0, help="random seed for fault rates")
    parser.add_argument("--token", default=DEMO_TOKEN, help="the access token to accept")
    parser.add_argument("--faxes", type=int, default=3, help="received faxes to seed")
    parser.add_argument(
        "--settle-seconds", type=float, default=5.0, help="seconds a send stays 'sending'"
    )
    parser.add_argument(
        "--push-url", default=None, help="post iFax's webhooks here (received and sent faxes)"
    )
    args = parser.parse_args(argv)
    if args.faxes < 0:
        print("--faxes must be 0 or more", file=sys.stderr)
        return 2
    sim = IfaxSimulator(
        args.token,
        host=args.host,
        port=args.port,
        seed=args.seed,
        settle_seconds=args.settle_seconds,
    )
    sim.push_url = args.push_url
    return serve_until_signalled(
        sim,
        label="iFax",
        banner=lambda: (
            f"iFax simulator listening on {sim.base_url} (access token {sim.token!r}); "
            f"base_url for faxd: {sim.base_url}"
        ),
        prepare=lambda: sim.seed_inbound(args.faxes),
    )


if __name__ == "__main__":
    sys.exit(main())
