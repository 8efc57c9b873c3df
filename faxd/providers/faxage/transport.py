"""HTTP to FAXAGE and nothing else: POST a form, get text or a verified file.

This is the only module that sees ``requests``: its exceptions and HTTP status
codes become :mod:`faxd.errors` classes in one function,
:func:`map_request_errors`, so retry logic elsewhere reads types, not messages.
Downloads stream to disk in chunks and are checked (no ``ERRnn:`` body, length
equal to Content-Length, PDF/TIFF magic, sha256, fsync) before anyone trusts
them; a download that fails any check leaves no file behind, and one that
passes its byte limit is cut off there (:class:`~faxd.errors.TooLargeError`),
never written past it.  The file's data
is fsync'd, not its directory: the caller gives the file its final name and
fsyncs the directory once, after that rename (the inbound spool does), since a
sync of the temporary name would be undone by the rename anyway.

Each thread gets its own pooled ``requests.Session`` (sessions are not
documented as thread-safe); it is closed when its thread ends, and
:meth:`RequestsTransport.close` closes those still open.  A session reads the
environment once, when it is made (:func:`_environment_settings`), instead of
on every request as ``requests`` does by default: every request goes to the
same host, and the per-request lookup cost more CPU than the rest of
``requests`` together.

A text answer that can be long (``listfax``) is read as it arrives and handed
on in batches of whole lines (:meth:`RequestsTransport.post_lines`, cut by the
pure :func:`~faxd.providers.faxage.lines.split_batches`), so neither the answer nor the
work done on it has to fit in memory at once, and a line without an end is cut at a fixed length
instead of growing without bound.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import ssl
import threading
import time
import weakref
from collections.abc import Callable, Collection, Generator, Iterator
from pathlib import Path
from typing import Protocol

import requests
import structlog
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.exceptions import MaxRetryError, NewConnectionError
from urllib3.util.ssl_match_hostname import CertificateError

from faxd.errors import (
    DownloadError,
    PermanentError,
    ProviderError,
    TooLargeError,
    TransientError,
)
from faxd.providers.faxage import wire
from faxd.providers.faxage.formbody import CONTENT_TYPE, FormBody
from faxd.providers.faxage.lines import BATCH_BYTES, BATCH_LINES, MAX_LINE, TextBatch, split_batches
from faxd.providers.faxage.records import DownloadResult
from faxd.redact import summarize_body

__all__ = [
    "BATCH_BYTES",
    "BATCH_LINES",
    "MAX_LINE",
    "DownloadResult",
    "RequestsTransport",
    "TextBatch",
    "Transport",
    "map_request_errors",
    "mark_unsent",
    "split_batches",
    "was_sent",
]

log = structlog.get_logger(__name__)

Form = list[tuple[str, str]]

_CHUNK = 64 * 1024
_ERROR_PEEK = 64 * 1024  # how much of an ERR body a download reads to report it
USER_AGENT = "faxd/0.1 (+https://github.com/faxd)"


class Transport(Protocol):
    """What :class:`~faxd.providers.faxage.client.FaxageClient` needs from HTTP (tests: fakes)."""

    def post_text(self, path: str, form: Form | FormBody, *, operation: str) -> str: ...

    def post_lines(
        self, path: str, form: Form, *, operation: str, batch_lines: int = BATCH_LINES
    ) -> Generator[TextBatch, None, None]: ...

    def download(
        self,
        path: str,
        form: Form,
        dest: Path,
        *,
        operation: str,
        expect: Collection[str] = ("pdf", "tiff"),
        max_bytes: int | None = None,
    ) -> DownloadResult: ...

    def close(self) -> None: ...


def mark_unsent(exc: TransientError) -> TransientError:
    """Mark ``exc`` as raised before any byte of the request left this machine."""
    exc.sent = False
    return exc


def was_sent(exc: BaseException) -> bool:
    """Whether the request behind ``exc`` may have reached the server (default: yes)."""
    return not isinstance(exc, TransientError) or exc.sent


def _never_connected(exc: requests.ConnectionError) -> bool:
    """True when urllib3 failed to open the connection, so nothing was sent."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = exc.args[0] if exc.args else None
    if isinstance(reason, MaxRetryError):
        reason = reason.reason
    return isinstance(reason, NewConnectionError)


def _certificate_rejected(exc: BaseException) -> bool:
    """True when TLS failed verifying FAXAGE's certificate, i.e. during the handshake.

    Only then is it certain that no byte of the request was sent; requests
    wraps the ``ssl`` error in urllib3 errors, so follow the chain down.
    """
    seen: list[BaseException] = []
    todo: list[object] = [exc]
    while todo and len(seen) < 16:
        item = todo.pop()
        if not isinstance(item, BaseException) or any(item is s for s in seen):
            continue
        if isinstance(item, ssl.SSLCertVerificationError | CertificateError):
            return True
        seen.append(item)
        todo.extend([*item.args[:1], getattr(item, "reason", None), item.__cause__])
        todo.append(item.__context__)
    return False


def _status_error(response: requests.Response, operation: str) -> ProviderError:
    status = response.status_code
    body = summarize_body(response.content[:2048], limit=120)
    detail = f"HTTP {status} from {response.url}" + (f": {body!r}" if body else "")
    if status >= 500 or status in (408, 425, 429):
        return TransientError(
            f"{detail}; FAXAGE is having trouble, faxd retries later", operation=operation
        )
    if 300 <= status < 400:
        where = response.headers.get("Location", "?")
        return PermanentError(
            f"{detail} redirects to {where}; set base_url in [faxage] to the final address",
            operation=operation,
        )
    return PermanentError(
        f"{detail}; check base_url in [faxage] (FAXAGE answers every request with 200)",
        operation=operation,
    )


@contextlib.contextmanager
def map_request_errors(operation: str) -> Iterator[None]:
    """Turn ``requests`` exceptions and non-200 statuses into :mod:`faxd.errors`.

    The one place that knows ``requests``.  Inside the block, a non-200 answer
    is signalled by raising ``requests.HTTPError`` with the response attached.
    A connection that was never opened (refused, connect timeout, DNS) becomes
    a :class:`TransientError` marked unsent (see :func:`was_sent`), which is
    the only fault after which a sendfax may be posted again.
    """
    try:
        yield
    except requests.HTTPError as exc:
        if exc.response is None:
            raise TransientError(f"HTTP error: {exc}", operation=operation) from None
        raise _status_error(exc.response, operation) from None
    except (
        requests.exceptions.InvalidURL,
        requests.exceptions.MissingSchema,
        requests.exceptions.InvalidSchema,
    ) as exc:
        raise PermanentError(
            f"bad FAXAGE address ({exc}); fix base_url in [faxage]", operation=operation
        ) from None
    except requests.exceptions.SSLError as exc:
        if _certificate_rejected(exc):
            raise mark_unsent(
                TransientError(
                    "FAXAGE's TLS certificate could not be verified; check the system clock "
                    "and CA certificates",
                    operation=operation,
                )
            ) from None
        # Any other TLS fault may come after the request went out (a corrupt
        # record while reading the answer on a connection that was already
        # open): not certainly unsent, so sendfax must not be posted again.
        raise TransientError(
            f"TLS error talking to FAXAGE ({type(exc).__name__}); faxd retries later",
            operation=operation,
        ) from None
    except requests.ConnectionError as exc:
        if _never_connected(exc):
            raise mark_unsent(
                TransientError(
                    f"could not connect to FAXAGE ({type(exc).__name__}); check the network, "
                    "faxd retries later",
                    operation=operation,
                )
            ) from None
        raise TransientError(
            f"connection to FAXAGE broke after the request was sent ({type(exc).__name__})",
            operation=operation,
        ) from None
    except requests.Timeout as exc:
        raise TransientError(
            f"FAXAGE did not answer in time ({type(exc).__name__})", operation=operation
        ) from None
    except requests.RequestException as exc:
        raise TransientError(
            f"talking to FAXAGE failed ({type(exc).__name__})", operation=operation
        ) from None


class RequestsTransport:
    """POSTs to ``base_url/<path>`` with one pooled session per thread."""

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
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.connect_timeout = min(connect_timeout, timeout)
        self.download_deadline = download_deadline
        self.pool_size = pool_size
        self._monotonic = monotonic
        self._local = threading.local()
        self._closers: list[weakref.finalize[[], _ThreadSession]] = []
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"RequestsTransport({self.base_url!r})"

    def _session(self) -> requests.Session:
        """This thread's session, made on first use and closed when the thread ends."""
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

    def _url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"

    def post_text(self, path: str, form: Form | FormBody, *, operation: str) -> str:
        """POST ``form`` and return the answer text; ``ERRnn:`` answers raise.

        A :class:`FormBody` is streamed with its ``Content-Length`` (``requests``
        reads its ``len()``), never joined in memory.
        """
        streamed = isinstance(form, FormBody)
        with map_request_errors(operation):
            response = self._session().post(
                self._url(path),
                data=form,
                headers={"Content-Type": CONTENT_TYPE} if streamed else None,
                timeout=(self.connect_timeout, self.timeout),
                allow_redirects=False,
            )
            if response.status_code != 200:
                raise requests.HTTPError(response=response)
            content = response.content
        try:
            text = content.decode("utf-8")
        except UnicodeDecodeError:
            text = content.decode("latin-1")
        wire.raise_for_error(text, operation)
        return text

    def _post_streaming(self, path: str, form: Form, operation: str) -> requests.Response:
        """POST ``form``; the answer's body is left to be read as it arrives."""
        with map_request_errors(operation):
            return self._session().post(
                self._url(path),
                data=form,
                stream=True,
                allow_redirects=False,
                timeout=(self.connect_timeout, self.timeout),
                headers={"Accept-Encoding": "identity"},
            )

    def post_lines(
        self, path: str, form: Form, *, operation: str, batch_lines: int = BATCH_LINES
    ) -> Generator[TextBatch, None, None]:
        """POST ``form`` and hand the answer back in batches of whole lines as it arrives.

        The POST, a non-200 status and an ``ERRnn:`` answer are dealt with
        before this returns, so a caller's retry covers them; an answer that
        says "nothing" (``ERR11`` from listfax) comes back as one batch for the
        parser to read as such.  A fault while the rest streams in is raised
        from the iteration, after the batches before it were handed over.
        """
        deadline = self._monotonic() + self.download_deadline
        response = self._post_streaming(path, form, operation)
        try:
            self._check_status(response, operation)
            chunks = self._chunks(response, operation, deadline)
            head = _read_head(chunks, operation)
        except BaseException:
            response.close()
            raise
        return _closing_batches(
            response, split_batches(_prepend(head, chunks), batch_lines=batch_lines)
        )

    def download(
        self,
        path: str,
        form: Form,
        dest: Path,
        *,
        operation: str,
        expect: Collection[str] = ("pdf", "tiff"),
        max_bytes: int | None = None,
    ) -> DownloadResult:
        """Stream a binary answer to ``dest`` and verify it; no file is left on failure.

        A body longer than ``max_bytes`` raises :class:`TooLargeError` before
        a byte past the limit is written.  The data is fsync'd; making the
        name durable is the caller's (see the module docstring).
        """
        deadline = self._monotonic() + self.download_deadline
        try:
            response = self._post_streaming(path, form, operation)
            try:
                return self._receive(response, dest, operation, expect, deadline, max_bytes)
            finally:
                response.close()
        except BaseException:
            dest.unlink(missing_ok=True)
            raise

    def _receive(
        self,
        response: requests.Response,
        dest: Path,
        operation: str,
        expect: Collection[str],
        deadline: float,
        max_bytes: int | None,
    ) -> DownloadResult:
        self._check_status(response, operation)
        declared = response.headers.get("Content-Length", "").strip()
        if max_bytes is not None and declared.isdigit() and int(declared) > max_bytes:
            raise _too_large(max_bytes, operation, f"Content-Length says {int(declared)} bytes")
        chunks = self._chunks(response, operation, deadline)
        head = _read_head(chunks, operation)
        kind = wire.sniff_kind(head)
        if kind is None or kind not in expect:
            raise DownloadError(
                f"answer is not a {' or '.join(k.upper() for k in sorted(expect))} file "
                f"(starts {summarize_body(head[:16], limit=40)!r}, "
                f"Content-Type {response.headers.get('Content-Type', '?')})",
                operation=operation,
            )
        digest = hashlib.sha256()
        size = 0
        try:
            with open(dest, "wb") as out:
                for chunk in _prepend(head, chunks):
                    if max_bytes is not None and size + len(chunk) > max_bytes:
                        raise _too_large(max_bytes, operation, "the body goes on past it")
                    out.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
                out.flush()
                os.fsync(out.fileno())
        except OSError as exc:
            raise DownloadError(
                f"could not write {dest} ({exc.strerror or exc}); check the spool directory",
                operation=operation,
            ) from None
        self._check_length(response, size, operation)
        return DownloadResult(
            path=dest,
            size=size,
            sha256=digest.hexdigest(),
            kind=kind,
            server_filename=wire.filename_from_content_disposition(
                response.headers.get("Content-Disposition")
            ),
        )

    def _chunks(
        self, response: requests.Response, operation: str, deadline: float
    ) -> Iterator[bytes]:
        """The body in chunks; a broken stream or the overall deadline is a DownloadError.

        Each chunk is one read from the socket (``read1``), so a server that
        trickles a byte at a time cannot hold a chunk, and the download, past
        the deadline: at most one read timeout more.
        """
        try:
            while True:
                if self._monotonic() > deadline:
                    raise DownloadError(
                        f"download took longer than {self.download_deadline:.0f} s; "
                        "faxd retries later",
                        operation=operation,
                    )
                chunk = response.raw.read1(_CHUNK, decode_content=True)
                if not chunk:
                    return
                yield chunk
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise DownloadError(
                f"body broke off ({type(exc).__name__}); faxd retries later", operation=operation
            ) from None

    @staticmethod
    def _check_status(response: requests.Response, operation: str) -> None:
        """A non-200 answer raises (with a bounded excerpt of its body for the message)."""
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

    def close(self) -> None:
        """Close every live thread's session and its pooled connections."""
        with self._lock:
            closers, self._closers = self._closers, []
        for closer in closers:
            closer()
        self._local = threading.local()


class _ThreadSession:
    """Holds one thread's session; only that thread's locals refer to it.

    When the thread ends, Python drops its locals, this holder is collected
    and a finalizer closes the session's pooled connections.  The daemon runs
    every scheduled job in a fresh thread, so without this each finished job
    would leave an open keep-alive socket behind until descriptors ran out.
    """

    __slots__ = ("__weakref__", "session")

    def __init__(self, session: requests.Session) -> None:
        self.session = session


def _environment_settings(session: requests.Session, base_url: str) -> None:
    """Apply the proxy and CA settings of the environment once, for ``base_url``'s host.

    The same as ``requests`` does per request with ``trust_env`` (``HTTPS_PROXY``
    and ``NO_PROXY``, ``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE``), except for
    ``~/.netrc``: FAXAGE takes its login in the form, so no netrc password is
    added to the requests.
    """
    session.trust_env = False
    session.proxies.update(requests.utils.get_environ_proxies(base_url))
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if bundle:
        session.verify = bundle


def _prepend(head: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    if head:
        yield head
    yield from rest


def _read_head(chunks: Iterator[bytes], operation: str) -> bytes:
    """The first bytes of a body (at least 8 unless it is shorter); ``ERRnn:`` raises.

    An error answer is read on up to a bounded excerpt for its message.  An
    ``ERRnn`` that ``operation`` uses to say "nothing" is returned whole.
    """
    head = b""
    for chunk in chunks:
        head += chunk
        if len(head) >= 8:
            break
    if wire.error_code(head) is not None:
        while len(head) < _ERROR_PEEK:
            chunk = next(chunks, b"")
            if not chunk:
                break
            head += chunk
        wire.raise_for_error(head[:_ERROR_PEEK], operation)
    return head


def _too_large(limit: int, operation: str, why: str) -> TooLargeError:
    return TooLargeError(
        f"answer is larger than the limit of {limit} bytes ({why}); cut off there",
        limit=limit,
        operation=operation,
    )


def _closing_batches(
    response: requests.Response, batches: Iterator[TextBatch]
) -> Generator[TextBatch, None, None]:
    """``batches``, closing ``response`` when they end, fail or are abandoned."""
    try:
        yield from batches
    finally:
        response.close()
