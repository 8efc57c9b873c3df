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
ends: that part, the chunked reader and the length check are the FAXAGE
transport's (:class:`~faxd.providers.faxage.transport.RequestsTransport`).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import requests

from faxd.errors import DownloadError, PermanentError, TooLargeError, TransientError
from faxd.providers.base import Downloaded
from faxd.providers.faxage.files import sniff_kind
from faxd.providers.faxage.transport import (
    RequestsTransport,
    _certificate_rejected,
    _never_connected,
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


class VoipmsTransport(RequestsTransport):
    """Requests to one ``rest.php`` URL.

    Built on the FAXAGE transport for what does not depend on the provider:
    the per-thread session pool, the chunked body reader with its deadline,
    and the Content-Length check.  Its FAXAGE form methods are not used here.
    """

    def __repr__(self) -> str:
        return f"VoipmsTransport({self.base_url!r})"

    # ------------------------------------------------------------------ requests

    def _open(self, verb: str, operation: str, **kw: Any) -> requests.Response:
        """Send one request; the answer's body is left to be read as it arrives."""
        with map_request_errors(operation):
            return self._session().request(
                verb,
                self.base_url,
                timeout=(self.connect_timeout, self.timeout),
                allow_redirects=False,
                stream=True,
                **kw,
            )

    def get(self, params: Params, *, operation: str) -> wire.Envelope:
        """GET ``rest.php?params`` and read the JSON answer (error statuses raise)."""
        response = self._open("GET", operation, params=dict(params))
        return wire.parse_envelope(self._read_all(response, operation), operation)

    def post(self, body: SendBody, *, operation: str) -> wire.Envelope:
        """POST a streamed form body (sendFaxMessage) and read the JSON answer."""
        response = self._open("POST", operation, data=body, headers={"Content-Type": CONTENT_TYPE})
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

    def download_fax(
        self, params: Params, dest: Path, *, operation: str, max_bytes: int | None = None
    ) -> Downloaded:
        """Stream the base64 fax of a JSON answer to ``dest``, decoded and verified."""
        try:
            response = self._open(
                "GET", operation, params=dict(params), headers={"Accept-Encoding": "identity"}
            )
            try:
                return self._receive_fax(response, dest, operation, max_bytes)
            finally:
                response.close()
        except BaseException:
            dest.unlink(missing_ok=True)
            raise

    def _receive_fax(
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

    @staticmethod
    def _check_status(response: requests.Response, operation: str) -> None:
        with map_request_errors(operation):
            if response.status_code != 200:
                response._content = response.raw.read(2048, decode_content=True)
                raise requests.HTTPError(response=response)


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
