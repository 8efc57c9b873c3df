"""HTTP to faxnummer.de: SendFax and GetSentFaxStatus, with the retry rule around them.

Every call is a multipart POST to the one webrequests URL carrying
``sProductLogin``, ``sProductCode`` and ``sCommand``.  ``requests`` errors and
HTTP statuses become :mod:`faxd.errors` classes in one place
(:func:`_map_errors`); what the answer *says* is read by the pure
:mod:`faxd.providers.faxnummer.wire`.

The retry rule (DESIGN invariant 5): GetSentFaxStatus is a read and is
retried on any transient fault.  SendFax is posted again only when the POST
certainly never left (the connection was never opened) or faxnummer.de
answered that it failed (``WR_Status=failed``: no job was made); a POST
broken after it was sent, a 5xx or an unreadable answer becomes
:class:`~faxd.errors.OutcomeUnknownError`.  faxnummer.de has no call to list
sent jobs, so such a job cannot be reconciled: the caller must not resend it
blindly.

Each thread has its own pooled ``requests.Session``, closed when the thread
ends.  The product code is registered with :mod:`faxd.redact`, so it cannot
reach an exception or a log line, and is in no ``repr``.
"""

from __future__ import annotations

import contextlib
import random
import re
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import requests
import structlog
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.exceptions import MaxRetryError, NewConnectionError

from faxd.config.model import FaxnummerSettings
from faxd.errors import (
    ConfigError,
    OutcomeUnknownError,
    PermanentError,
    ProviderError,
    TransientError,
)
from faxd.providers.base import JobStatus
from faxd.providers.faxnummer import wire
from faxd.providers.faxnummer.multipart import MultipartBody
from faxd.providers.faxnummer.notices import Notices
from faxd.redact import register_secret, summarize_body

__all__ = ["FaxnummerClient", "check_sender", "dial_form"]

log = structlog.get_logger(__name__)

USER_AGENT = "faxd/0.1 (+https://github.com/faxd)"
#: Answers are a few hundred bytes; more than this is not read.
MAX_ANSWER = wire.MAX_ANSWER
_T = TypeVar("_T")
_jitter = random.Random()  # noqa: S311 - backoff jitter, not a secret
_SENDER = re.compile(r"[ -~]{0,20}")


def check_sender(sender: str) -> str:
    """``sender`` if faxnummer.de takes it as sSender, else a ConfigError saying why."""
    if not _SENDER.fullmatch(sender):
        what = (
            f"is {len(sender)} characters long"
            if len(sender) > 20
            else "has characters other than printable ASCII"
        )
        raise ConfigError(
            f"sender {sender!r} in [faxnummer] {what}; faxnummer.de takes at most 20 "
            "printable ASCII characters and spaces (sSender), e.g. 'Acme GmbH'"
        )
    return sender


def dial_form(number: str, what: str) -> str:
    """``+49 30 1234567`` or ``0049-30-...`` as faxnummer.de wants it: ``0049301234567``."""
    compact = re.sub(r"[\s\-./()]", "", number)
    if compact.startswith("+"):
        compact = "00" + compact[1:]
    if not compact.isdigit() or not 3 <= len(compact) <= 20:
        raise PermanentError(
            f"{what} {number!r} is not a phone number faxnummer.de can dial; write it "
            "internationally, e.g. +49 30 1234567",
            operation=wire.SEND,
        )
    return compact


class FaxnummerClient:
    """One faxnummer.de product login; thread-safe."""

    def __init__(
        self,
        settings: FaxnummerSettings,
        *,
        retries: int = 3,
        backoff: float = 1.0,
        connect_timeout: float = 10.0,
        pool_size: int = 4,
        sleep: Callable[[float], None] = time.sleep,
        notices: Notices | None = None,
    ) -> None:
        if not settings.product_login or not settings.product_code:
            raise ConfigError(
                "[faxnummer] needs product_login (sProductLogin, accXXXXX or sipXXXXX) and "
                "product_code (or product_code_file)"
            )
        if not settings.status_email:
            raise ConfigError(
                "status_email in [faxnummer] is empty; faxnummer.de requires an address for "
                "its status mails (sEmail)"
            )
        register_secret(settings.product_code)
        self.settings = settings
        self.sender = check_sender(settings.sender)
        self.source = dial_form(settings.source, "source in [faxnummer]") if settings.source else ""
        self.url = settings.base_url
        self.retries = retries
        self.backoff = backoff
        self.timeout = (min(connect_timeout, settings.timeout), settings.timeout)
        self.pool_size = pool_size
        self._sleep = sleep
        self.notices = notices or Notices()
        self._local = threading.local()
        self._closers: list[weakref.finalize[[], _ThreadSession]] = []
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"FaxnummerClient({self.url!r}, product_login={self.settings.product_login!r})"

    # ------------------------------------------------------------------ calls

    def send_fax(
        self, path: Path, *, destination: str, size: int, sha256: str, reference: str = ""
    ) -> str:
        """Upload the PDF at ``path`` (which must have ``size``/``sha256``) to ``destination``.

        Returns the ``WR_Request_UUID``.  See the module docstring for when it
        is posted again and when it raises OutcomeUnknownError.
        """
        fields = [
            ("sDestination", dial_form(destination, "fax number")),
            ("sEmail", self.settings.status_email),
            ("mimeType", "application/pdf"),
        ]
        if self.source:
            fields.append(("sSource", self.source))
        if self.sender:
            fields.append(("sSender", self.sender))
        if reference:
            fields.append(("sFaxFileName", "".join(c for c in reference if c.isprintable())[:100]))
        attempt = 0
        while True:
            try:
                # A fresh body per attempt: the file is checked again each time.
                with MultipartBody(
                    self._form(wire.SEND) + fields,
                    file_field="sFax",
                    path=path,
                    filename="fax.pdf",
                    mime_type="application/pdf",
                    size=size,
                    sha256=sha256,
                ) as body:
                    raw = self._post(body, wire.SEND)
                uuid, answer = wire.parse_send(raw)
            except ProviderError as exc:
                # code set: faxnummer.de answered "failed", so no job exists and a resend is safe.
                unsent = exc.transient and (not _was_sent(exc) or exc.code is not None)
                if unsent and attempt < self.retries:
                    self._wait(wire.SEND, attempt, exc)
                    attempt += 1
                    continue
                if exc.transient and exc.code is None and _was_sent(exc):
                    raise OutcomeUnknownError(
                        f"{exc.message}; the fax may or may not have been queued, and "
                        "faxnummer.de has no list of sent jobs to check: look in the "
                        "faxnummer.de customer centre before sending it again",
                        operation=wire.SEND,
                    ) from exc
                raise
            self.notices.format_seen(wire.SEND, answer, raw)
            log.info("faxnummer.sent", uuid=uuid, destination=fields[0][1])
            return uuid

    def status(self, uuid: str) -> JobStatus:
        """The status of job ``uuid`` (GetSentFaxStatus), retrying transient faults."""

        def call() -> JobStatus:
            form = [*self._form(wire.STATUS), ("sJobUUID", uuid)]
            raw = self._post_fields(form, wire.STATUS)
            result = wire.parse_status(raw, uuid)
            self.notices.format_seen(wire.STATUS, result.answer, raw)
            self.notices.unknown_words(wire.STATUS, result.unknown_words)
            return result.job

        return self._retrying(wire.STATUS, call)

    def close(self) -> None:
        """Close every live thread's session and its pooled connections."""
        with self._lock:
            closers, self._closers = self._closers, []
        for closer in closers:
            closer()
        self._local = threading.local()

    # ------------------------------------------------------------------ internals

    def _form(self, command: str) -> list[tuple[str, str]]:
        return [
            ("sProductLogin", self.settings.product_login),
            ("sProductCode", self.settings.product_code),
            ("sCommand", command),
        ]

    def _post_fields(self, form: list[tuple[str, str]], operation: str) -> bytes:
        """POST ``form`` as multipart/form-data (the only encoding the notes show)."""
        files = [(name, (None, value)) for name, value in form]
        with _map_errors(operation):
            response = self._session().post(
                self.url, files=files, timeout=self.timeout, allow_redirects=False, stream=True
            )
            return self._read(response, operation)

    def _post(self, body: MultipartBody, operation: str) -> bytes:
        with _map_errors(operation):
            response = self._session().post(
                self.url,
                data=body,
                headers={"Content-Type": body.content_type},
                timeout=self.timeout,
                allow_redirects=False,
                stream=True,
            )
            return self._read(response, operation)

    @staticmethod
    def _read(response: requests.Response, operation: str) -> bytes:
        """The answer body (bounded); a non-200 status raises through _map_errors."""
        with response:
            raw = response.raw.read(MAX_ANSWER + 1, decode_content=True)
            if response.status_code != 200:
                response._content = raw[:2048]
                raise requests.HTTPError(response=response)
            declared = response.headers.get("Content-Length", "").strip()
            if declared.isdigit() and int(declared) > len(raw) and len(raw) <= MAX_ANSWER:
                raise TransientError(
                    f"the answer broke off after {len(raw)} of {declared} bytes",
                    operation=operation,
                )
            return bytes(raw)

    def _retrying(self, operation: str, call: Callable[[], _T]) -> _T:
        attempt = 0
        while True:
            try:
                return call()
            except ProviderError as exc:
                if not exc.transient or attempt >= self.retries:
                    raise
                self._wait(operation, attempt, exc)
                attempt += 1

    def _wait(self, operation: str, attempt: int, exc: ProviderError) -> None:
        delay = float(self.backoff * 2.0**attempt * (0.5 + _jitter.random()))
        log.warning(
            "faxnummer.retry",
            operation=operation,
            attempt=attempt + 1,
            detail=exc.message,
            delay=round(delay, 2),
        )
        self._sleep(delay)

    def _session(self) -> requests.Session:
        """This thread's session, made on first use and closed when the thread ends."""
        holder: _ThreadSession | None = getattr(self._local, "holder", None)
        if holder is None:
            session = requests.Session()
            adapter = HTTPAdapter(pool_connections=1, pool_maxsize=self.pool_size, max_retries=0)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            session.headers["User-Agent"] = USER_AGENT
            # No ~/.netrc: the login goes in the form; proxies and CA bundle still apply.
            session.trust_env = False
            session.proxies.update(requests.utils.get_environ_proxies(self.url))
            holder = _ThreadSession(session)
            closer = weakref.finalize(holder, session.close)
            with self._lock:
                self._closers = [c for c in self._closers if c.alive]
                self._closers.append(closer)
            self._local.holder = holder
        return holder.session


class _ThreadSession:
    """Holds one thread's session; collected (and its session closed) when the thread ends."""

    __slots__ = ("__weakref__", "session")

    def __init__(self, session: requests.Session) -> None:
        self.session = session


def _was_sent(exc: ProviderError) -> bool:
    return not isinstance(exc, TransientError) or exc.sent


def _never_connected(exc: requests.ConnectionError) -> bool:
    """True when urllib3 failed to open the connection, so nothing was sent."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = exc.args[0] if exc.args else None
    if isinstance(reason, MaxRetryError):
        reason = reason.reason
    return isinstance(reason, NewConnectionError)


@contextlib.contextmanager
def _map_errors(operation: str) -> Iterator[None]:
    """Turn ``requests`` exceptions and non-200 answers into :mod:`faxd.errors`."""
    try:
        yield
    except requests.HTTPError as exc:
        response = exc.response
        if response is None:
            raise TransientError(f"HTTP error: {exc}", operation=operation) from None
        status = response.status_code
        detail = f"HTTP {status} from faxnummer.de: {summarize_body(response.content, limit=120)!r}"
        if status >= 500 or status in (408, 425, 429):
            raise TransientError(f"{detail}; faxd retries later", operation=operation) from None
        raise PermanentError(
            f"{detail}; check base_url in [faxnummer] "
            "(https://wr.ispsuite.portunity.de/webrequests/product-voip/index.php)",
            operation=operation,
        ) from None
    except (
        requests.exceptions.InvalidURL,
        requests.exceptions.MissingSchema,
        requests.exceptions.InvalidSchema,
    ) as exc:
        raise PermanentError(
            f"bad faxnummer.de address ({type(exc).__name__}); fix base_url in [faxnummer]",
            operation=operation,
        ) from None
    except requests.exceptions.SSLError:
        raise TransientError(
            "TLS error talking to faxnummer.de; check the system clock and CA certificates, "
            "faxd retries later",
            operation=operation,
        ) from None
    except requests.ConnectionError as exc:
        if _never_connected(exc):
            error = TransientError(
                f"could not connect to faxnummer.de ({type(exc).__name__}); check the "
                "network, faxd retries later",
                operation=operation,
            )
            error.sent = False
            raise error from None
        raise TransientError(
            f"connection to faxnummer.de broke after the request was sent ({type(exc).__name__})",
            operation=operation,
        ) from None
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
        # Reading the answer (urllib3, sockets) or any other fault after the POST began.
        raise TransientError(
            f"talking to faxnummer.de failed ({type(exc).__name__}); faxd retries later",
            operation=operation,
        ) from None
