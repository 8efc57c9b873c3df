"""HTTP to VoIP.ms and nothing else: GET a method, POST a form, stream a fax to disk.

The only VoIP.ms module that sees ``requests``.  Its exceptions and HTTP
statuses become :mod:`faxd.errors` classes in :func:`map_request_errors`, with
the same rule as FAXAGE's transport: a connection that was never opened is a
:class:`~faxd.errors.TransientError` marked unsent (the one case in which a
``sendFaxMessage`` may be posted again), anything later may have reached
VoIP.ms.  Error texts name exception types, never a URL: a GET carries the API
password in its query string.

``getFaxMessagePDF`` answers JSON with the whole fax base64-encoded in it.
:meth:`VoipmsTransport.download` reads that answer as it arrives, decodes the
base64 as it goes (:class:`~faxd.providers.voipms.wire.Base64FieldDecoder`) and
writes the fax to disk, so it is never whole in memory, and checks it like a
FAXAGE download: PDF magic, the byte limit, the answer's Content-Length, the
size and sha256 of what was written, fsync.  A download that fails any check
leaves no file.

Each thread has its own pooled ``requests.Session``, closed when the thread
ends (the FAXAGE transport's holder is reused for that).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import requests
import urllib3
from requests.adapters import HTTPAdapter

from faxd.errors import DownloadError, PermanentError, TooLargeError, TransientError
from faxd.providers.base import Downloaded
from faxd.providers.faxage.files import sniff_kind
from faxd.providers.faxage.transport import (
    USER_AGENT,
    _certificate_rejected,
    _environment_settings,
    _never_connected,
    _ThreadSession,
    mark_unsent,
)
from faxd.providers.voipms import wire
from faxd.providers.voipms.sendbody import CONTENT_TYPE, SendBody
from faxd.redact import summarize_body

__all__ = ["VoipmsTransport", "map_request_errors"]

Params = Mapping[str, str]

_CHUNK = 64 * 1024
#: Largest JSON answer read whole (listings); getFaxMessagePDF is streamed.
MAX_ANSWER = 32 * 1024 * 1024


@contextlib.contextmanager
def map_request_errors(operation: str) -> Iterator[None]:
    """Turn ``requests`` exceptions and non-200 answers into :mod:`faxd.errors`."""
    try:
        yield
    except requests.HTTPError as exc:
        response = exc.response
        status = response.status_code if response is not None else 0
        body = summarize_body(response.content[:2048], limit=120) if response is not None else ""
        detail = f"HTTP {status} from VoIP.ms" + (f": {body!r}" if body else "")
        if status >= 500 or status in (0, 408, 425, 429):
            raise TransientError(f"{detail}; faxd retries later", operation=operation) from None
        raise PermanentError(
            f"{detail}; check base_url in [voipms] (https://voip.ms/api/v1/rest.php)",
            operation=operation,
        ) from None
    except (
        requests.exceptions.InvalidURL,
        requests.exceptions.MissingSchema,
        requests.exceptions.InvalidSchema,
    ) as exc:
        raise PermanentError(
            f"bad VoIP.ms address ({type(exc).__name__}); fix base_url in [voipms]",
            operation=operation,
        ) from None
    except requests.exceptions.SSLError as exc:
        if _certificate_rejected(exc):
            raise mark_unsent(
                TransientError(
                    "VoIP.ms's TLS certificate could not be verified; check the system clock "
                    "and CA certificates",
                    operation=operation,
                )
            ) from None
        raise TransientError(
            f"TLS error talking to VoIP.ms ({type(exc).__name__}); faxd retries later",
            operation=operation,
        ) from None
    except requests.ConnectionError as exc:
        if _never_connected(exc):
            raise mark_unsent(
                TransientError(
                    f"could not connect to VoIP.ms ({type(exc).__name__}); check the network, "
                    "faxd retries later",
                    operation=operation,
                )
            ) from None
        raise TransientError(
            f"connection to VoIP.ms broke after the request was sent ({type(exc).__name__})",
            operation=operation,
        ) from None
    except requests.Timeout as exc:
        raise TransientError(
            f"VoIP.ms did not answer in time ({type(exc).__name__})", operation=operation
        ) from None
    except requests.RequestException as exc:
        raise TransientError(
            f"talking to VoIP.ms failed ({type(exc).__name__})", operation=operation
        ) from None


class VoipmsTransport:
    """Requests to one ``rest.php`` URL, one pooled session per thread."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 60.0,
        connect_timeout: float = 10.0,
        download_deadline: float = 900.0,
        pool_size: int = 4,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.base_url = base_url
        self.timeout = timeout
        self.connect_timeout = min(connect_timeout, timeout)
        self.download_deadline = download_deadline
        self.pool_size = pool_size
        self._monotonic = monotonic
        self._local = threading.local()
        self._closers: list[weakref.finalize[[], _ThreadSession]] = []
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"VoipmsTransport({self.base_url!r})"

    def _session(self) -> requests.Session:
        holder: _ThreadSession | None = getattr(self._local, "holder", None)
        if holder is None:
            session = requests.Session()
            adapter = HTTPAdapter(pool_connections=1, pool_maxsize=self.pool_size, max_retries=0)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            session.headers["User-Agent"] = USER_AGENT
            _environment_settings(session, self.base_url)
            holder = _ThreadSession(session)
            closer = weakref.finalize(holder, session.close)
            with self._lock:
                self._closers = [c for c in self._closers if c.alive]
                self._closers.append(closer)
            self._local.holder = holder
        return holder.session

    def close(self) -> None:
        """Close every live thread's session and its pooled connections."""
        with self._lock:
            closers, self._closers = self._closers, []
        for closer in closers:
            closer()
        self._local = threading.local()

    # ------------------------------------------------------------------ requests

    def get(self, params: Params, *, operation: str) -> wire.Envelope:
        """GET ``rest.php?params`` and read the JSON answer (error statuses raise)."""
        with map_request_errors(operation):
            response = self._session().get(
                self.base_url,
                params=dict(params),
                timeout=(self.connect_timeout, self.timeout),
                allow_redirects=False,
                stream=True,
            )
        return wire.parse_envelope(self._read_all(response, operation), operation)

    def post(self, body: SendBody, *, operation: str) -> wire.Envelope:
        """POST a streamed form body (sendFaxMessage) and read the JSON answer."""
        with map_request_errors(operation):
            response = self._session().post(
                self.base_url,
                data=body,
                headers={"Content-Type": CONTENT_TYPE},
                timeout=(self.connect_timeout, self.timeout),
                allow_redirects=False,
                stream=True,
            )
        return wire.parse_envelope(self._read_all(response, operation), operation)

    def _read_all(self, response: requests.Response, operation: str) -> bytes:
        try:
            self._check_status(response, operation)
            deadline = self._monotonic() + self.download_deadline
            data = bytearray()
            for chunk in self._chunks(response, operation, deadline):
                data += chunk
                if len(data) > MAX_ANSWER:
                    raise TransientError(
                        f"answer is longer than {MAX_ANSWER} bytes; narrow the date window",
                        operation=operation,
                    )
            self._check_length(response, len(data), operation)
            return bytes(data)
        finally:
            response.close()

    def download(
        self, params: Params, dest: Path, *, operation: str, max_bytes: int | None = None
    ) -> Downloaded:
        """Stream the base64 fax of a JSON answer to ``dest``, decoded and verified."""
        try:
            with map_request_errors(operation):
                response = self._session().get(
                    self.base_url,
                    params=dict(params),
                    timeout=(self.connect_timeout, self.timeout),
                    allow_redirects=False,
                    stream=True,
                    headers={"Accept-Encoding": "identity"},
                )
            try:
                return self._receive(response, dest, operation, max_bytes)
            finally:
                response.close()
        except BaseException:
            dest.unlink(missing_ok=True)
            raise

    def _receive(
        self, response: requests.Response, dest: Path, operation: str, max_bytes: int | None
    ) -> Downloaded:
        self._check_status(response, operation)
        declared = response.headers.get("Content-Length", "").strip()
        # base64 is 4 characters for 3 bytes; allow a little room for the envelope.
        room = None if max_bytes is None else (max_bytes + 2) // 3 * 4 + wire.MAX_ENVELOPE
        if (
            room is not None
            and max_bytes is not None
            and declared.isdigit()
            and int(declared) > room
        ):
            raise _too_large(max_bytes, operation, f"the answer has {int(declared)} bytes")
        decoder = wire.Base64FieldDecoder(operation)
        deadline = self._monotonic() + self.download_deadline
        digest = hashlib.sha256()
        size = 0
        received = 0
        head = b""
        kind: str | None = None
        try:
            with open(dest, "wb") as out:
                for chunk in self._chunks(response, operation, deadline):
                    received += len(chunk)
                    data = decoder.feed(chunk)
                    if not data:
                        continue
                    if kind is None:
                        head += data[:8]
                        if len(head) >= 5:
                            kind = _check_magic(head, operation)
                    if max_bytes is not None and size + len(data) > max_bytes:
                        raise _too_large(max_bytes, operation, "the fax goes on past it")
                    out.write(data)
                    digest.update(data)
                    size += len(data)
                self._check_length(response, received, operation)
                decoder.finish()
                if kind is None:
                    kind = _check_magic(head, operation)
                out.flush()
                os.fsync(out.fileno())
        except OSError as exc:
            raise DownloadError(
                f"could not write {dest} ({exc.strerror or exc}); check the spool directory",
                operation=operation,
            ) from None
        return Downloaded(path=dest, size=size, sha256=digest.hexdigest(), kind=kind)

    def _chunks(
        self, response: requests.Response, operation: str, deadline: float
    ) -> Iterator[bytes]:
        """The body as it arrives; a broken stream or the deadline is a DownloadError."""
        try:
            while True:
                if self._monotonic() > deadline:
                    raise DownloadError(
                        f"answer took longer than {self.download_deadline:.0f} s; "
                        "faxd retries later",
                        operation=operation,
                    )
                chunk = response.raw.read1(_CHUNK, decode_content=True)
                if not chunk:
                    return
                yield chunk
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise DownloadError(
                f"answer broke off ({type(exc).__name__}); faxd retries later", operation=operation
            ) from None

    @staticmethod
    def _check_status(response: requests.Response, operation: str) -> None:
        with map_request_errors(operation):
            if response.status_code != 200:
                response._content = response.raw.read(2048, decode_content=True)
                raise requests.HTTPError(response=response)

    @staticmethod
    def _check_length(response: requests.Response, size: int, operation: str) -> None:
        declared = response.headers.get("Content-Length")
        if declared is None:
            return
        encoding = response.headers.get("Content-Encoding", "identity").lower()
        received = size if encoding in ("", "identity") else int(response.raw.tell())
        if not declared.strip().isdigit() or int(declared) != received:
            raise DownloadError(
                f"received {received} bytes but Content-Length said {declared[:20]}; "
                "faxd retries later",
                operation=operation,
            )


def _check_magic(head: bytes, operation: str) -> str:
    kind = sniff_kind(head)
    if kind is None:
        raise DownloadError(
            f"the decoded fax is not a PDF or TIFF file (starts "
            f"{summarize_body(head[:16], limit=40)!r}); faxd retries later",
            operation=operation,
        )
    return kind


def _too_large(limit: int, operation: str, why: str) -> TooLargeError:
    return TooLargeError(
        f"fax is larger than the limit of {limit} bytes ({why}); cut off there",
        limit=limit,
        operation=operation,
    )
