"""One method per iFax call faxd makes, with the retry policy around them.

Every call is a JSON POST to ``base_url/<path>`` with the ``accessToken``
header (``reference/providers-wire-notes.md``).  Transient faults (a
connection that broke, HTTP 5xx or 429, iFax's own "service unavailable"
codes) are retried with exponential backoff and jitter; anything else is
raised at once.  ``fax-send`` is the exception (DESIGN invariant 5): it is
posted again only when the POST certainly never left this machine or iFax
answered with an explicit error; any other doubt becomes
:class:`~faxd.errors.OutcomeUnknownError` and the caller reconciles through
``fax-lists``.

Downloads arrive as base64 inside JSON; they are decoded as they stream in
(:class:`~faxd.providers.ifax.b64json.DataScanner`), written to disk, cut off
at ``max_bytes`` and checked like FAXAGE downloads (magic, size, sha256,
fsync) before anyone trusts them.  Each thread has its own pooled
``requests.Session``.  The token is registered with :mod:`faxd.redact` and
never appears in a repr, a log line or an exception.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

import requests
import structlog
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.exceptions import MaxRetryError, NewConnectionError

from faxd.errors import (
    AuthError,
    DownloadError,
    OutcomeUnknownError,
    PermanentError,
    ProviderError,
    TooLargeError,
    TransientError,
)
from faxd.providers.base import Downloaded
from faxd.providers.faxage.files import sniff_kind
from faxd.providers.ifax import wire
from faxd.providers.ifax.b64json import CorruptData, DataScanner
from faxd.providers.ifax.sendbody import JsonFileBody
from faxd.redact import register_secret, summarize_body

__all__ = ["IfaxClient"]

log = structlog.get_logger(__name__)

_T = TypeVar("_T")
_CHUNK = 64 * 1024
#: Pages of one listing at most: a loop guard should iFax ignore ``lastFaxId``.
MAX_PAGES = 10_000
USER_AGENT = "faxd/0.1 (+https://github.com/faxd)"
_jitter_source = random.SystemRandom()


class _Holder:
    """One thread's session; collected (and the session closed) when the thread ends."""

    __slots__ = ("__weakref__", "session")

    def __init__(self, session: requests.Session) -> None:
        self.session = session


def _never_connected(exc: requests.ConnectionError) -> bool:
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = exc.args[0] if exc.args else None
    if isinstance(reason, MaxRetryError):
        reason = reason.reason
    return isinstance(reason, NewConnectionError)


@contextlib.contextmanager
def _mapped(operation: str) -> Iterator[None]:
    """``requests`` exceptions as :mod:`faxd.errors`; ``sent=False`` only when never connected."""
    try:
        yield
    except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema) as exc:
        raise PermanentError(
            f"bad iFax address ({type(exc).__name__}); fix base_url in [ifax]", operation=operation
        ) from None
    except requests.ConnectionError as exc:
        error = TransientError(
            f"could not connect to iFax ({type(exc).__name__}); check the network, faxd "
            "retries later"
            if _never_connected(exc)
            else f"connection to iFax broke after the request was sent ({type(exc).__name__})",
            operation=operation,
        )
        error.sent = not _never_connected(exc)
        raise error from None
    except requests.RequestException as exc:
        raise TransientError(
            f"talking to iFax failed ({type(exc).__name__}); faxd retries later",
            operation=operation,
        ) from None


def _status_error(response: requests.Response, body: bytes, operation: str) -> ProviderError:
    """A non-200 answer as a faxd error (the envelope's words when it has one)."""
    status = response.status_code
    said = summarize_body(body[:2048], limit=120)
    detail = f"HTTP {status} from iFax" + (f": {said!r}" if said else "")
    if status in (401, 403):
        return AuthError(
            f"{detail}: the access token was refused; copy the API key from the Settings "
            "page of the iFax dashboard into access_token_file of [ifax]",
            operation=operation,
            code=str(status),
        )
    if status == 429:
        return TransientError(
            f"{detail}: too many requests, faxd waits and retries",
            operation=operation,
            code="429",
        )
    if status >= 500 or status == 408:
        return TransientError(
            f"{detail}; iFax is having trouble, faxd retries later", operation=operation
        )
    if status == 404:
        return PermanentError(
            f"{detail}: no such API path; check base_url in [ifax] (https://api.ifaxapp.com/v1)",
            operation=operation,
        )
    with contextlib.suppress(TransientError):
        error = wire.error_for(wire.parse_envelope(body, operation), operation)
        if error is not None:
            return error
    return PermanentError(f"{detail}; check base_url in [ifax]", operation=operation)


class IfaxClient:
    """An iFax account reached at ``base_url`` with an access token."""

    def __init__(
        self,
        token: str,
        *,
        base_url: str = "https://api.ifaxapp.com/v1",
        timeout: float = 60.0,
        retries: int = 3,
        backoff: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
        download_deadline: float = 900.0,
        pool_size: int = 4,
    ) -> None:
        register_secret(token)
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.retries = max(0, retries)
        self.backoff = backoff
        self.download_deadline = download_deadline
        self.pool_size = pool_size
        self._token = token
        self._sleep = sleep
        self._local = threading.local()
        self._closers: list[weakref.finalize[[], _Holder]] = []
        self._lock = threading.Lock()
        self._noticed: set[tuple[str, str]] = set()

    def __repr__(self) -> str:
        return f"IfaxClient(base_url={self.base_url!r}, token='********')"

    # ------------------------------------------------------------------ plumbing

    def _session(self) -> requests.Session:
        holder: _Holder | None = getattr(self._local, "holder", None)
        if holder is None:
            session = requests.Session()
            adapter = HTTPAdapter(pool_connections=1, pool_maxsize=self.pool_size, max_retries=0)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            session.trust_env = False
            session.proxies.update(requests.utils.get_environ_proxies(self.base_url))
            bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
            if bundle:
                session.verify = bundle
            session.headers.update(
                {
                    "User-Agent": USER_AGENT,
                    "Content-Type": "application/json",
                    "Accept": "application/json",
                }
            )
            holder = _Holder(session)
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

    def _post(
        self, path: str, body: Mapping[str, Any] | JsonFileBody, operation: str, *, stream: bool
    ) -> requests.Response:
        """POST ``body`` (a dict as JSON, or a streamed body) with the token header."""
        kwargs: dict[str, Any] = {"json": body} if isinstance(body, Mapping) else {"data": body}
        with _mapped(operation):
            response = self._session().post(
                f"{self.base_url}/{path}",
                headers={"accessToken": self._token},
                timeout=(min(10.0, self.timeout), self.timeout),
                allow_redirects=False,
                stream=stream,
                **kwargs,
            )
        if response.status_code != 200:
            try:
                with _mapped(operation):
                    excerpt = response.raw.read(2048) if stream else response.content[:2048]
            finally:
                response.close()
            raise _status_error(response, excerpt, operation)
        return response

    def _once(self, path: str, body: Mapping[str, Any], operation: str) -> Any:
        response = self._post(path, body, operation, stream=False)
        with _mapped(operation):
            content = response.content
        return wire.envelope_data(content, operation)

    def _delay(self, attempt: int) -> float:
        """Exponential backoff with jitter: base * 2^attempt * [0.5, 1.5); longer for 429."""
        return float(self.backoff * 2.0**attempt * (0.5 + _jitter_source.random()))

    def _retrying(self, operation: str, call: Callable[[], _T]) -> _T:
        attempt = 0
        while True:
            try:
                return call()
            except ProviderError as exc:
                if not exc.transient or attempt >= self.retries:
                    raise
                delay = self._delay(attempt + (2 if exc.code == "429" else 0))
                log.warning(
                    "ifax.retry",
                    operation=operation,
                    attempt=attempt + 1,
                    error=type(exc).__name__,
                    detail=exc.message,
                    delay=round(delay, 2),
                )
                self._sleep(delay)
                attempt += 1

    def _call(self, path: str, body: Mapping[str, Any], operation: str) -> Any:
        return self._retrying(operation, lambda: self._once(path, body, operation))

    def notice(self, notices: Iterator[wire.Notice] | tuple[wire.Notice, ...]) -> None:
        """Log each tolerated surprise once for this client's life."""
        for item in notices:
            key = (item.operation, item.key)
            with self._lock:
                if key in self._noticed:
                    continue
                if len(self._noticed) > 4096:
                    self._noticed.clear()
                self._noticed.add(key)
            log.warning("ifax.answer_unexpected", operation=item.operation, message=item.message)

    # ------------------------------------------------------------------ sending

    def send(
        self,
        number: str,
        path: Path,
        *,
        file_name: str,
        size: int,
        sha256: str,
        caller_id: str = "",
        quality: str = "",
    ) -> str:
        """``fax-send`` one file to ``number`` (E.164); the jobId.

        The file is streamed from disk and checked before each POST.
        """
        prefix, suffix = wire.send_body_parts(number, file_name, caller_id, quality)
        attempt = 0
        while True:
            try:
                with JsonFileBody(prefix, path, suffix, size=size, sha256=sha256) as body:
                    response = self._post(wire.SEND_PATH, body, "fax-send", stream=False)
                with _mapped("fax-send"):
                    content = response.content
                job = wire.parse_job_id(wire.envelope_data(content, "fax-send"))
            except ProviderError as exc:
                sent = not isinstance(exc, TransientError) or exc.sent
                definite = exc.code is not None  # iFax said no: nothing was queued
                if exc.transient and (not sent or definite) and attempt < self.retries:
                    delay = self._delay(attempt)
                    log.warning("ifax.send_retry", attempt=attempt + 1, detail=exc.message)
                    self._sleep(delay)
                    attempt += 1
                    continue
                if exc.transient and sent and not definite:
                    raise OutcomeUnknownError(
                        f"{exc.message}; the fax may or may not have been queued, faxd "
                        "reconciles with fax-lists before sending again",
                        operation="fax-send",
                    ) from exc
                raise
            log.info("ifax.sent", ifax_job=job)
            return job

    def status(self, job_id: str) -> wire.StatusPage:
        """``fax-status`` of one job."""
        data = self._call(wire.STATUS_PATH, {"jobId": _number(job_id)}, "fax-status")
        page = wire.parse_status_page(data, "fax-status")
        self.notice(page.notices)
        return page

    def sent_list(self, start: date, end: date) -> wire.StatusPage:
        """``fax-lists`` of sent faxes between two days (inclusive)."""
        body = {
            "startDate": wire.format_date(start),
            "endDate": wire.format_date(end),
            "direction": "OB",
        }
        data = self._call(wire.LIST_SENT_PATH, body, "fax-lists")
        page = wire.parse_status_page(wire.outbound_records(data, "fax-lists"), "fax-lists")
        self.notice(page.notices)
        return page

    # ------------------------------------------------------------------ receiving

    def inbound_pages(self, start: date, end: date) -> Iterator[wire.FaxPage]:
        """``inbound/fax-list-all`` between two days, page after page to the end.

        Each page is requested (and retried) on its own; the iteration ends
        after a page with no records, or one whose last id was seen before.
        """
        last: str | None = None
        seen: set[str] = set()
        for _ in range(MAX_PAGES):
            body = wire.list_all_body(start, end, last)
            data = self._call(wire.LIST_ALL_PATH, body, "fax-list-all")
            page = wire.parse_fax_page(data)
            self.notice(page.notices)
            yield page
            if page.records == 0 or page.last_fax_id is None or page.last_fax_id in seen:
                return
            seen.add(page.last_fax_id)
            last = page.last_fax_id
        raise TransientError(
            f"iFax's inbound listing went on for more than {MAX_PAGES} pages; faxd stops "
            "reading it and tries again later",
            operation="fax-list-all",
        )

    def download(
        self, job_id: str, transaction_id: str, dest: Path, *, max_bytes: int | None = None
    ) -> Downloaded:
        """``inbound/fax-download`` to ``dest``: decoded, verified, fsync'd; no file on failure."""
        body = {"jobId": job_id, "transactionId": transaction_id}
        result = self._retrying("fax-download", lambda: self._download_once(body, dest, max_bytes))
        log.info("ifax.downloaded", size=result.size, kind=result.kind, sha256=result.sha256)
        return result

    def _download_once(
        self, body: Mapping[str, Any], dest: Path, max_bytes: int | None
    ) -> Downloaded:
        operation = "fax-download"
        try:
            response = self._post(wire.DOWNLOAD_PATH, body, operation, stream=True)
            try:
                return self._receive(response, dest, max_bytes)
            finally:
                response.close()
        except BaseException:
            dest.unlink(missing_ok=True)
            raise

    def _receive(
        self, response: requests.Response, dest: Path, max_bytes: int | None
    ) -> Downloaded:
        operation = "fax-download"
        deadline = time.monotonic() + self.download_deadline
        digest = hashlib.sha256()
        state = {"size": 0}
        head = bytearray()

        with open(dest, "wb") as out:

            def sink(data: bytes) -> None:
                if max_bytes is not None and state["size"] + len(data) > max_bytes:
                    raise TooLargeError(
                        f"the fax is larger than the limit of {max_bytes} bytes; cut off there",
                        limit=max_bytes,
                        operation=operation,
                    )
                if len(head) < 8:
                    head.extend(data[: 8 - len(head)])
                out.write(data)
                digest.update(data)
                state["size"] += len(data)

            scanner = DataScanner(sink)
            try:
                with _mapped(operation):
                    while chunk := response.raw.read1(_CHUNK, decode_content=True):
                        if time.monotonic() > deadline:
                            raise DownloadError(
                                f"download took longer than {self.download_deadline:.0f} s; "
                                "faxd retries later",
                                operation=operation,
                            )
                        scanner.feed(chunk)
                rest = scanner.finish()
                wire.envelope_data(rest, operation)  # an error answer raises here
                scanner.flush()
            except CorruptData as exc:
                raise DownloadError(
                    f"iFax's answer is unusable ({exc}); faxd retries later", operation=operation
                ) from None
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                raise DownloadError(
                    f"the download broke off or could not be written ({type(exc).__name__}); "
                    "faxd retries later",
                    operation=operation,
                ) from None
            if not scanner.found or state["size"] == 0:
                raise DownloadError(
                    "iFax's answer has no file in its data; faxd retries later",
                    operation=operation,
                )
            kind = sniff_kind(bytes(head))
            if kind is None:
                raise DownloadError(
                    f"the file iFax sent is not a PDF or TIFF (starts "
                    f"{summarize_body(bytes(head), limit=40)!r}); faxd retries later",
                    operation=operation,
                )
            out.flush()
            os.fsync(out.fileno())
        return Downloaded(path=dest, size=state["size"], sha256=digest.hexdigest(), kind=kind)

    # ------------------------------------------------------------------ checking

    def check_login(self, today: date) -> str:
        """A harmless authenticated read: the sent faxes of the last day."""
        page = self.sent_list(date.fromordinal(today.toordinal() - 1), today)
        return f"token accepted ({len(page.jobs)} sent faxes since yesterday)"


def _number(job_id: str) -> int | str:
    """iFax documents ids as integers; send digits as one."""
    return int(job_id) if job_id.isdigit() and len(job_id) <= 18 else job_id
