"""A simulated VoIP.ms account, served over real HTTP on loopback.

Speaks ``/api/v1/rest.php`` the way the wire notes describe VoIP.ms
(``/work/shared/reference/providers-wire-notes.md``): GET with a query string
or POST with a form (urlencoded or multipart), ``api_username`` /
``api_password`` / ``method`` beside the other parameters, JSON answers with a
``status`` word and numbers as strings, ``no_message`` for an empty listing,
the fax as base64 inside JSON with PHP's ``\\/`` escapes, ``sendFaxMessage``
answering with no id.  Dates are naive, in ``timezone`` (America/New_York).

The same contract as every faxd simulator (see the FAXAGE one,
:mod:`faxd.sim.server`): ``seed_inbound``, each fax's ``.released``,
``delete_check`` / ``violations``, ``jobs`` that settle to success or failure
after ``settle_seconds`` (failure for numbers in ``fail_numbers``), and faults
from :mod:`faxd.sim.faults` (``http500``, ``reset``, ``slow``, ``truncate``) plus
VoIP.ms's own: ``api_limit`` (``api_limit_exceeded``), ``auth``
(``invalid_credentials``), ``ip`` (``ip_not_enabled``) and ``corrupt_base64``.
The API IP allow-list is off unless ``allowed_ips`` is set.

    python -m faxd.sim --provider voipms      # runs :func:`main`
"""

from __future__ import annotations

import argparse
import base64
import binascii
import contextlib
import json
import random
import socket
import struct
import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any
from urllib.parse import parse_qsl, urlsplit
from zoneinfo import ZoneInfo

import structlog

from faxd.clock import Clock, system_clock
from faxd.sim.documents import count_pages, make_pdf
from faxd.sim.faults import Fault, FaultPlan
from faxd.sim.httpbase import ServedSimulator, SimHandler, serve_until_signalled
from faxd.sim.push import Pusher, PushesCallbacks, multipart

__all__ = ["SentFax", "VoipmsFax", "VoipmsSimulator", "main"]

log = structlog.get_logger(__name__)

PATH = "/api/v1/rest.php"
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
DEFAULT_LINES = ("3035550101", "3035550102", "3035550103")
SEED_CALLER_IDS = ("3035550100", "ACME LAB <7205550142>", "4155550199", "Unavailable")
SEND_TYPES = (b"%PDF-", b"II*\x00", b"MM\x00*", b"\xff\xd8\xff", b"GIF8", b"\x89PNG")
MAX_RANGE_DAYS = 92

#: Fault kinds of this simulator: FAXAGE's generic ones plus VoIP.ms's statuses.
KIND_STATUS = {
    "api_limit": "api_limit_exceeded",
    "auth": "invalid_credentials",
    "ip": "ip_not_enabled",
}
FAULT_KINDS = frozenset({"http500", "reset", "slow", "truncate", "corrupt_base64", *KIND_STATUS})
DOWNLOAD = "getFaxMessagePDF"
AFTER_KINDS = frozenset({"http500", "reset"})


class _Fault(Fault):
    """A fault whose download-only kinds apply to getFaxMessagePDF."""

    def applies_to(self, operation: str) -> bool:
        if self.operation is not None and self.operation != operation:
            return False
        return self.kind not in ("truncate", "corrupt_base64") or operation == DOWNLOAD


class _Faults(FaultPlan):
    """:class:`FaultPlan` with VoIP.ms's kinds."""

    fault_class = _Fault

    def check(self, kind: str, operation: str | None, after: bool) -> None:
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; choose one of {sorted(FAULT_KINDS)}")
        if kind in ("truncate", "corrupt_base64") and operation not in (None, DOWNLOAD):
            raise ValueError(f"{kind} only applies to {DOWNLOAD}")
        if after and kind not in AFTER_KINDS:
            raise ValueError(f"after=True only applies to {sorted(AFTER_KINDS)}")


@dataclass
class VoipmsFax:
    """One received fax in a folder of the account."""

    id: int
    folder_id: int
    date: datetime  # naive, in the simulator's timezone
    cid: str
    dnis: str
    data: bytes = field(repr=False)
    pages: int = 1
    stationid: str = ""
    deleted: bool = False
    moved_to: int | None = None
    downloads: int = 0

    @property
    def remote_id(self) -> str:
        return str(self.id)

    @property
    def released(self) -> bool:
        """Deleted, or moved out of the folder it arrived in."""
        return self.deleted or self.moved_to is not None


@dataclass
class SentFax:
    """One sendFaxMessage: what was sent, and when it settles."""

    id: int
    number: str
    from_number: str
    from_name: str
    data: bytes = field(repr=False)
    date: datetime  # naive, in the simulator's timezone
    settle_at: datetime  # aware
    fails: bool
    pages: int = 1
    station_id: str = ""
    status: str = "PENDING"


def _json(data: dict[str, Any]) -> bytes:
    """JSON as PHP's json_encode writes it (``\\/`` for ``/``)."""
    return json.dumps(data).replace("/", "\\/").encode("utf-8")


def _status(word: str) -> bytes:
    return _json({"status": word})


class VoipmsSimulator(ServedSimulator, PushesCallbacks):
    """A VoIP.ms account: folders, received faxes, sent faxes, faults."""

    thread_name = "voipms-sim"

    def __init__(
        self,
        username: str = "demo@example.com",
        password: str = "demo-api-password",  # noqa: S107 - the simulator's documented demo login
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int = 0,
        clock: Clock = system_clock,
        timezone: str = "America/New_York",
        settle_seconds: float = 1.0,
        latency: float = 0.0,
        slow_seconds: float = 5.0,
        archive: bool = True,
    ) -> None:
        self.username = username
        self.password = password
        self.host = host
        self.port = port
        self.clock = clock
        self.zone = ZoneInfo(timezone)
        self.settle_seconds = settle_seconds
        self.latency = latency
        self.slow_seconds = slow_seconds
        self.lock = threading.RLock()
        self.faults = _Faults(random.Random(seed))  # noqa: S311 - reproducible faults, not crypto
        self.folders: dict[int, str] = {1: "INBOX", 2: "SENT"}
        if archive:
            self.folders[3] = "ARCHIVE"
        self.faxes: dict[int, VoipmsFax] = {}
        self.jobs: list[SentFax] = []
        self.fail_numbers: set[str] = set()
        self.allowed_ips: set[str] | None = None
        #: Fields added to every getFaxMessages record (VoIP.ms adding fields over time).
        self.extra_fields: dict[str, str] = {}
        self.delete_check: Callable[[VoipmsFax], str | None] | None = None
        self.violations: list[str] = []
        #: (method, parameters without api_password) of every request, in order.
        self.requests: list[tuple[str, dict[str, str]]] = []
        #: The fax number's url_callback (``push_url``): a multipart post per new fax.
        self.pusher = Pusher()
        self._next_id = 1000
        self._init_serving()

    def __repr__(self) -> str:
        return f"VoipmsSimulator(username={self.username!r}, base_url={self.base_url!r})"

    # ------------------------------------------------------------------ lifecycle

    @property
    def base_url(self) -> str:
        """The full ``rest.php`` URL: what goes in ``[voipms] base_url``."""
        return f"http://{self.host}:{self.port}{PATH}"

    # ------------------------------------------------------------------ faults

    # ------------------------------------------------------------------ state

    def now(self) -> datetime:
        """The simulator's wall clock, naive in its timezone."""
        return self.clock().astimezone(self.zone).replace(tzinfo=None)

    def _new_id(self) -> int:
        with self.lock:
            self._next_id += 1
            return self._next_id

    def folder_id(self, name: str) -> int | None:
        with self.lock:
            return next((i for i, n in self.folders.items() if n == name.upper()), None)

    def add_fax(
        self,
        dnis: str,
        cid: str,
        *,
        pages: int = 1,
        when: datetime | None = None,
        folder: str = "INBOX",
        size: int | None = None,
        data: bytes | None = None,
    ) -> VoipmsFax:
        """Receive one fax into ``folder`` dated ``when`` (naive, simulator zone; default now)."""
        fax_id = self._new_id()
        folder_id = self.folder_id(folder)
        if folder_id is None:
            raise ValueError(f"no folder {folder!r}")
        fax = VoipmsFax(
            id=fax_id,
            folder_id=folder_id,
            date=when or self.now(),
            cid=cid,
            dnis=dnis,
            data=data if data is not None else make_pdf(f"Fax {fax_id}", pages, size=size),
            pages=pages,
        )
        with self.lock:
            self.faxes[fax_id] = fax
        if folder == "INBOX":
            body, content_type = multipart(
                {"from": cid, "to": dnis}, {"pdf": (f"fax-{fax_id}.pdf", fax.data)}
            )
            self.pusher.post(body, content_type)
        return fax

    def seed_inbound(
        self, n: int, dnis: Iterable[str] = DEFAULT_LINES, *, size: int | None = None
    ) -> list[VoipmsFax]:
        """Receive ``n`` faxes round-robin over ``dnis``, a minute apart ending now."""
        lines = list(dnis)
        if not lines:
            raise ValueError("seed_inbound needs at least one DNIS")
        base = self.now()
        return [
            self.add_fax(
                lines[i % len(lines)],
                SEED_CALLER_IDS[i % len(SEED_CALLER_IDS)],
                pages=1 + i % 3,
                when=base - timedelta(minutes=n - 1 - i),
                size=size,
            )
            for i in range(n)
        ]

    def _settle(self) -> None:
        now = self.clock()
        with self.lock:
            for job in self.jobs:
                if job.status == "PENDING" and now >= job.settle_at:
                    job.status = "FAILED" if job.fails else "SUCCESS"

    # ------------------------------------------------------------------ protocol

    def handle(self, params: dict[str, str], client_ip: str) -> tuple[int, bytes]:
        """Check the login and run one method; (HTTP status, JSON body)."""
        if self.allowed_ips is not None and client_ip not in self.allowed_ips:
            return 200, _status("ip_not_enabled")
        user, password = params.get("api_username", ""), params.get("api_password", "")
        if not user or not password:
            return 200, _status("missing_credentials")
        if user != self.username or password != self.password:
            return 200, _status("invalid_credentials")
        method = params.get("method", "")
        if not method:
            return 200, _status("missing_method")
        handler = _METHODS.get(method)
        if handler is None:
            return 200, _status("invalid_method")
        return 200, handler(self, params)

    def get_fax_messages(self, params: dict[str, str]) -> bytes:
        today = self.now().date()
        try:
            start = _day(params.get("from"), today)
            end = _day(params.get("to"), today)
        except ValueError:
            return _status("invalid_date")
        if end < start or (end - start).days > MAX_RANGE_DAYS:
            return _status("invalid_daterange")
        folder = params.get("folder", "ALL").upper() or "ALL"
        wanted = params.get("id")
        self._settle()
        records: list[dict[str, str]] = []
        with self.lock:
            if folder != "ALL" and self.folder_id(folder) is None:
                return _status("invalid_folder")
            for fax in self.faxes.values():
                name = self.folders.get(fax.moved_to or fax.folder_id, "")
                if fax.deleted or folder not in ("ALL", name):
                    continue
                if start <= fax.date.date() <= end and wanted in (None, str(fax.id)):
                    records.append({**_received(fax, name), **self.extra_fields})
            if folder in ("ALL", "SENT"):
                for job in self.jobs:
                    if start <= job.date.date() <= end and wanted in (None, str(job.id)):
                        records.append({**_sent(job), **self.extra_fields})
        if not records:
            return _status("no_message")
        records.sort(key=lambda r: r["date"], reverse=True)
        return _json({"status": "success", "faxes": records})

    def get_fax_pdf(self, params: dict[str, str]) -> bytes:
        with self.lock:
            fax = self._live(params.get("id", ""))
            if fax is None:
                job = next((j for j in self.jobs if str(j.id) == params.get("id")), None)
                if job is None:
                    return _status("invalid_fax_id")
                data = job.data
            else:
                fax.downloads += 1
                data = fax.data
        return _json({"status": "success", "message_base64": base64.b64encode(data).decode()})

    def _live(self, text: str) -> VoipmsFax | None:
        fax = self.faxes.get(int(text)) if text.isdigit() else None
        return None if fax is None or fax.deleted else fax

    def _check_release(self, fax: VoipmsFax) -> None:
        check = self.delete_check
        if check is None:
            return
        try:
            violation = check(fax)
        except Exception as exc:  # a broken check is a finding, not a server crash
            violation = f"delete_check raised {type(exc).__name__}: {exc}"
        if violation:
            log.warning("sim.delete_violation", fax_id=fax.id, violation=violation)
            with self.lock:
                self.violations.append(violation)

    def delete_fax(self, params: dict[str, str]) -> bytes:
        with self.lock:
            fax = self._live(params.get("id", ""))
            if fax is None:
                return _status("invalid_fax_id" if params.get("id") else "missing_id")
            fax.deleted = True
        self._check_release(fax)
        return _status("success")

    def move_fax(self, params: dict[str, str]) -> bytes:
        with self.lock:
            fax = self._live(params.get("fax_id", ""))
            if fax is None:
                return _status("invalid_fax_id" if params.get("fax_id") else "missing_id")
            target = params.get("folder_id", "")
            if not target.isdigit() or int(target) not in self.folders:
                return _status("invalid_folder_id")
            fax.moved_to = int(target)
        self._check_release(fax)
        return _status("success")

    def get_folders(self, params: dict[str, str]) -> bytes:
        with self.lock:
            folders = [{"id": str(i), "name": n} for i, n in sorted(self.folders.items())]
        return _json({"status": "success", "folders": folders})

    def set_folder(self, params: dict[str, str]) -> bytes:
        name = params.get("name", "").strip().upper()
        if not name:
            return _status("missing_folder")
        with self.lock:
            folder = params.get("id", "")
            if folder:
                if not folder.isdigit() or int(folder) not in self.folders:
                    return _status("invalid_folder_id")
                self.folders[int(folder)] = name
            elif self.folder_id(name) is None:
                self.folders[max(self.folders) + 1] = name
        return _status("success")

    def send_fax(self, params: dict[str, str]) -> bytes:
        for key in ("to_number", "from_name", "from_number"):
            if not params.get(key, "").strip():
                return _status("missing_params")
        if not params.get("file"):
            return _status("missing_file")
        try:
            data = base64.b64decode(params["file"], validate=True)
        except (binascii.Error, ValueError):
            return _status("no_base64file")
        if not data.startswith(SEND_TYPES) and not _is_text(data):
            return _status("invalid_file")
        number = params["to_number"].strip()
        if not number.isdigit() or len(number) < 10:
            return _status("invalid_to_number")
        job = SentFax(
            id=self._new_id(),
            number=number,
            from_number=params["from_number"],
            from_name=params["from_name"],
            data=data,
            date=self.now(),
            settle_at=self.clock() + timedelta(seconds=self.settle_seconds),
            fails=number in self.fail_numbers,
            pages=count_pages("", data),
            station_id=params.get("station_id", ""),
        )
        with self.lock:
            self.jobs.append(job)
        return _status("success")

    def fault_body(self, kind: str) -> tuple[int, bytes]:
        if kind == "http500":
            return 500, b"<html><body>500 Internal Server Error</body></html>"
        return 200, _status(KIND_STATUS[kind])


_METHODS: dict[str, Callable[[VoipmsSimulator, dict[str, str]], bytes]] = {
    "getFaxMessages": VoipmsSimulator.get_fax_messages,
    "getFaxMessagePDF": VoipmsSimulator.get_fax_pdf,
    "deleteFaxMessage": VoipmsSimulator.delete_fax,
    "moveFaxMessage": VoipmsSimulator.move_fax,
    "getFaxFolders": VoipmsSimulator.get_folders,
    "setFaxFolder": VoipmsSimulator.set_folder,
    "sendFaxMessage": VoipmsSimulator.send_fax,
}


def _day(text: str | None, default: date) -> date:
    if not text:
        return default
    return datetime.strptime(text.strip(), "%Y-%m-%d").date()


def _is_text(data: bytes) -> bool:
    try:
        return data[:4096].decode("utf-8").isprintable() or b"\n" in data[:4096]
    except UnicodeDecodeError:
        return False


def _received(fax: VoipmsFax, folder: str) -> dict[str, str]:
    return {
        "id": str(fax.id),
        "folder": folder,
        "date": fax.date.strftime(TIME_FORMAT),
        "callerid": fax.cid,
        "stationid": fax.stationid,
        "destination": fax.dnis,
        "description": "INBOUND FAX",
        "pages": str(fax.pages),
        "duration": "0:42",
        "status": "SUCCESS",
        "rate": "0.000",
        "total": "0.000",
        "msg": "",
    }


def _sent(job: SentFax) -> dict[str, str]:
    return {
        "id": str(job.id),
        "folder": "SENT",
        "date": job.date.strftime(TIME_FORMAT),
        "callerid": job.from_number,
        "stationid": job.station_id,
        "destination": job.number,
        "description": "OUTBOUND FAX",
        "pages": str(job.pages),
        "duration": "0:00" if job.status == "PENDING" else "0:51",
        "status": job.status,
        "rate": "0.010",
        "total": f"{0.01 * job.pages:.3f}",
        "msg": "NO ANSWER" if job.status == "FAILED" else "",
    }


def _corrupt(body: bytes) -> bytes:
    """The same answer with a character outside base64 in the middle of the fax."""
    start = body.find(b'"message_base64": "')
    if start < 0:
        return body
    middle = start + 19 + (len(body) - start - 19) // 2
    return body[:middle] + b"*" + body[middle + 1 :]


class _Handler(SimHandler):
    """One connection: read the request, apply faults, answer like VoIP.ms."""

    def log_message(self, format: str, *args: object) -> None:
        # The request line of a GET carries the API password: never log it.
        del format, args

    def do_GET(self) -> None:
        self._serve(dict(parse_qsl(urlsplit(self.path).query, keep_blank_values=True)))

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        if len(body) < length:
            # The client hung up mid-body (killed): a web server never runs such a request.
            self.close_connection = True
            return
        params = dict(parse_qsl(urlsplit(self.path).query, keep_blank_values=True))
        ctype = self.headers.get("Content-Type", "")
        if ctype.lower().startswith("multipart/form-data"):
            message = BytesParser(policy=HTTP).parsebytes(
                b"Content-Type: " + ctype.encode("latin-1") + b"\r\n\r\n" + body
            )
            for part in message.iter_parts():
                name = part.get_param("name", header="content-disposition")
                payload = part.get_payload(decode=True)
                if isinstance(name, str) and isinstance(payload, bytes):
                    params[name] = payload.decode("utf-8", errors="replace")
        else:
            params.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        self._serve(params)

    def _serve(self, params: dict[str, str]) -> None:
        sim = self.server.sim
        if urlsplit(self.path).path != PATH:
            self._write(404, b'{"status":"not_found"}')
            return
        method = params.get("method", "")
        with sim.lock:
            logged = {k: v[:200] for k, v in params.items() if k != "api_password"}
            sim.requests.append((method, logged))
        fired = sim.faults.draw(method)
        kinds = {fault.kind for fault in fired}
        sim.pause(sim.latency)
        if "slow" in kinds:
            sim.pause(sim.slow_seconds)
        replacing = [f for f in fired if f.kind not in ("slow", "truncate", "corrupt_base64")]
        before = [f for f in replacing if not f.after]
        if before:
            self._fault(before[0].kind)
            return
        try:
            status, body = sim.handle(params, self.client_address[0])
        except Exception:
            log.exception("sim.voipms_method_failed", method=method)
            status, body = 500, b"Internal Server Error"
        if replacing:
            self._fault(replacing[0].kind)
            return
        if "corrupt_base64" in kinds:
            body = _corrupt(body)
        self._write(status, body, truncate="truncate" in kinds)

    def _fault(self, kind: str) -> None:
        if kind == "reset":
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
                self.connection.close()
            return
        status, body = self.server.sim.fault_body(kind)
        self._write(status, body)

    def _write(self, status: int, body: bytes, *, truncate: bool = False) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json" if status == 200 else "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2] if truncate else body)
            if truncate:
                self.close_connection = True
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True


# ---------------------------------------------------------------- command line


VoipmsSimulator.handler_class = _Handler


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m faxd.sim --provider voipms",
        description="Serve a simulated VoIP.ms account over HTTP (for tests and demos).",
    )
    # Accepted so the dispatcher may pass its whole command line through.
    parser.add_argument("--provider", choices=["voipms"], default="voipms", help=argparse.SUPPRESS)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8026, help="port (0 picks a free one)")
    parser.add_argument("--seed", type=int, default=0, help="random seed for fault rates")
    parser.add_argument("--username", default="demo@example.com")
    parser.add_argument("--password", default="demo-api-password")
    parser.add_argument("--faxes", type=int, default=3, help="received faxes to seed")
    parser.add_argument("--settle-seconds", type=float, default=5.0)
    parser.add_argument("--timezone", default="America/New_York")
    parser.add_argument(
        "--push-url", default=None, help="post a url_callback here for every new fax"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until SIGINT/SIGTERM; prints the base URL and username (never the password)."""
    from faxd.logs import configure_logging

    args = build_parser().parse_args(argv)
    configure_logging(level="info")
    if args.faxes < 0:
        print("--faxes must be 0 or more", file=sys.stderr)
        return 2
    sim = VoipmsSimulator(
        args.username,
        args.password,
        host=args.host,
        port=args.port,
        seed=args.seed,
        settle_seconds=args.settle_seconds,
        timezone=args.timezone,
    )
    sim.push_url = args.push_url
    return serve_until_signalled(
        sim,
        label="VoIP.ms",
        banner=lambda: (
            f"VoIP.ms simulator listening on {sim.base_url} (username {args.username!r}); "
            f"base_url for faxd: {sim.base_url}"
        ),
        prepare=lambda: sim.seed_inbound(args.faxes),
    )


if __name__ == "__main__":
    sys.exit(main())
