"""One method per FAXAGE operation, with the retry policy around them.

The rest of faxd talks to FAXAGE only through :class:`FaxageClient`.  Each
method builds the documented POST fields (:func:`faxd.providers.faxage.wire.build_form`),
sends them through a transport (:mod:`faxd.providers.faxage.transport`) and parses the
answer into records (:mod:`faxd.providers.faxage.wire`).  Transient faults are retried
with exponential backoff and jitter; permanent ones are raised at once.  What a
sendfax carries (:class:`~faxd.providers.faxage.sending.FaxFile`, the checked options) is
laid out in :mod:`faxd.providers.faxage.sending`.

``sendfax`` is the exception to the retry rule (DESIGN invariant 5): it is
posted again only when the previous POST certainly never left this machine.
Any other doubt becomes :class:`~faxd.errors.OutcomeUnknownError`, and the
caller reconciles with ``status`` instead of risking a second fax.

``listfax`` can be long (every fax waiting on the account), so
:meth:`FaxageClient.listfax_batches` parses it a batch of lines at a time as
it arrives; only the request itself is retried, never a half-read answer,
since the caller may already have acted on the batches before the fault.
"""

from __future__ import annotations

import contextlib
import dataclasses
import random
import time
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Protocol, TypeVar

import structlog

from faxd.clock import Clock, system_clock
from faxd.errors import OutcomeUnknownError, ProviderError, TransientError
from faxd.providers.faxage import wire
from faxd.providers.faxage.account import (
    CDR_PATH,
    FAX_PATH,
    AccountOperations,
    Timestamp,
    normalize_did,
)
from faxd.providers.faxage.fields import malformed_line
from faxd.providers.faxage.formbody import FormBody
from faxd.providers.faxage.notices import Notices
from faxd.providers.faxage.records import (
    DownloadResult,
    ListfaxResult,
    MalformedLine,
    NewShape,
    StatusRecord,
    StatusResult,
)
from faxd.providers.faxage.sending import (
    FaxFile,
    file_fields,
    file_tokens,
    send_options,
    url_fields,
)
from faxd.providers.faxage.transport import (
    BATCH_LINES,
    MAX_LINE,
    Form,
    RequestsTransport,
    TextBatch,
    Transport,
    was_sent,
)
from faxd.redact import register_secret

__all__ = ["FaxFile", "FaxageClient"]

log = structlog.get_logger(__name__)

_T = TypeVar("_T")

#: Operations whose effect a second POST would report as an error (provdid:
#: ERR05 "not available", deprovdid: ERR05, stopfax: ERR19/ERR20), so that a
#: retry after a POST that may have arrived would call a success a failure.
#: Like sendfax, they are retried only when the POST certainly never arrived.
_ONCE_ONLY = frozenset({"provdid", "deprovdid", "stopfax"})
_jitter_source = random.SystemRandom()


class RequestObserver(Protocol):
    """Told of each request attempt (``/metrics``: durations, provider errors by kind)."""

    def request_done(self, operation: str, seconds: float) -> None: ...

    def request_failed(self, operation: str, error: ProviderError) -> None: ...


class FaxageClient(AccountOperations):
    """A FAXAGE account: ``username`` at ``company``, reached at ``base_url``."""

    def __init__(
        self,
        username: str,
        company: str,
        password: str,
        *,
        base_url: str = "https://api.faxage.com",
        timeout: float = 60.0,
        transport: Transport | None = None,
        retries: int = 3,
        backoff: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Clock = system_clock,
    ) -> None:
        register_secret(password)
        self.username = username
        self.company = company
        self.base_url = base_url
        self.retries = max(0, retries)
        self.backoff = backoff
        self._password = password
        self._sleep = sleep
        #: Logs each new answer shape and unknown value once for this client's life,
        #: and each unreadable status line once a day by ``clock``.
        self.notices = Notices(clock=clock)
        self.transport: Transport = transport or RequestsTransport(base_url, timeout=timeout)
        #: Set by the daemon when ``[http]`` serves ``/metrics``.
        self.observer: RequestObserver | None = None

    @property
    def account(self) -> str:
        """``username@company``: how faxd's database names this FAXAGE account."""
        return f"{self.username}@{self.company}"

    def __repr__(self) -> str:
        return f"FaxageClient({self.username!r}, {self.company!r}, base_url={self.base_url!r})"

    def close(self) -> None:
        """Release the HTTP connections."""
        self.transport.close()

    def __enter__(self) -> FaxageClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ------------------------------------------------------------------ plumbing

    def _form(self, operation: str | None, fields: dict[str, wire.FormValue]) -> Form:
        base: dict[str, wire.FormValue] = {
            "username": self.username,
            "company": self.company,
            "password": self._password,
        }
        if operation is not None:
            base["operation"] = operation
        return wire.build_form({**base, **fields})

    def _delay(self, attempt: int) -> float:
        """Exponential backoff with full-range jitter: base * 2^attempt * [0.5, 1.5)."""
        return float(self.backoff * 2.0**attempt * (0.5 + _jitter_source.random()))

    def _retrying(self, operation: str, call: Callable[[], _T]) -> _T:
        attempt = 0
        while True:
            started = time.monotonic()
            try:
                result = call()
            except ProviderError as exc:
                if self.observer is not None:
                    self.observer.request_failed(operation, exc)
                if not exc.transient or attempt >= self.retries:
                    raise
                if operation in _ONCE_ONLY and was_sent(exc) and exc.code is None:
                    raise TransientError(
                        f"{exc.message}; the {operation} may have taken effect, so faxd did "
                        "not repeat it: check the account before trying again",
                        operation=operation,
                    ) from exc
                delay = self._delay(attempt)
                log.warning(
                    "faxage.retry",
                    operation=operation,
                    attempt=attempt + 1,
                    error=type(exc).__name__,
                    code=exc.code,
                    detail=exc.message,
                    delay=round(delay, 2),
                )
                self._sleep(delay)
                attempt += 1
            else:
                if self.observer is not None:
                    self.observer.request_done(operation, time.monotonic() - started)
                return result

    def _text(
        self, operation: str, fields: dict[str, wire.FormValue], *, path: str = FAX_PATH
    ) -> str:
        """POST ``fields`` with the credentials, retrying transient faults; the answer."""
        form = self._form(None if path == CDR_PATH else operation, fields)
        return self._retrying(
            operation, lambda: self.transport.post_text(path, form, operation=operation)
        )

    def _download(
        self,
        operation: str,
        fields: dict[str, wire.FormValue],
        dest: Path,
        expect: tuple[str, ...],
        max_bytes: int | None = None,
    ) -> DownloadResult:
        form = self._form(operation, fields)
        result = self._retrying(
            operation,
            lambda: self.transport.download(
                FAX_PATH, form, dest, operation=operation, expect=expect, max_bytes=max_bytes
            ),
        )
        log.info(
            "faxage.downloaded",
            operation=operation,
            size=result.size,
            kind=result.kind,
            sha256=result.sha256,
        )
        return result

    # ------------------------------------------------------------------ sending

    def sendfax(
        self,
        faxno: str,
        recipname: str,
        files: Sequence[FaxFile],
        *,
        tagname: str | None = None,
        tagnumber: str | None = None,
        em_notify: bool = False,
        url_notify: str | None = None,
        resolution: int | None = None,
        contrastalgo: int | None = None,
        priority: str | None = None,
    ) -> int:
        """Send ``files`` (standard mode, base64) to ``faxno``; return the job id.

        The files are streamed from disk into each POST (never whole in memory)
        and checked against their ``size`` / ``sha256`` before every one; a
        mismatch raises :class:`~faxd.errors.FileChangedError` unsent.
        """
        fields = file_fields(faxno, recipname, files)
        fields.update(
            send_options(
                tagname, tagnumber, em_notify, url_notify, resolution, contrastalgo, priority
            )
        )
        return self._post_sendfax(fields, file_tokens(files))

    def sendfax_urls(
        self,
        faxno: str,
        recipname: str,
        urls: Sequence[str],
        *,
        url_types: Sequence[str] | None = None,
        async_: bool = False,
        tagname: str | None = None,
        tagnumber: str | None = None,
        em_notify: bool = False,
        url_notify: str | None = None,
        resolution: int | None = None,
        contrastalgo: int | None = None,
        priority: str | None = None,
    ) -> int:
        """Have FAXAGE fetch ``urls`` and fax them (URL mode); return the job id.

        One URL is sent as ``faxurl``, several as ``faxurls[]`` (with
        ``faxurltypes[]`` when given, one extension per URL).
        """
        fields = url_fields(faxno, recipname, urls, url_types, async_)
        fields.update(
            send_options(
                tagname, tagnumber, em_notify, url_notify, resolution, contrastalgo, priority
            )
        )
        return self._post_sendfax(fields)

    def _post_sendfax(
        self, fields: dict[str, wire.FormValue], files: Mapping[str, FaxFile] | None = None
    ) -> int:
        """POST once; again only if the POST certainly never left (or FAXAGE said ERR01)."""
        form = self._form("sendfax", fields)
        attempt = 0
        while True:
            try:
                if files:
                    # A fresh body per attempt: the files are checked again each time.
                    with FormBody(form, files) as body:
                        text = self.transport.post_text(FAX_PATH, body, operation="sendfax")
                else:
                    text = self.transport.post_text(FAX_PATH, form, operation="sendfax")
                jobid = wire.parse_jobid(text)
            except ProviderError as exc:
                unsent = exc.transient and (not was_sent(exc) or exc.code == "ERR01")
                if unsent and attempt < self.retries:
                    delay = self._delay(attempt)
                    log.warning(
                        "faxage.sendfax_retry",
                        attempt=attempt + 1,
                        detail=exc.message,
                        delay=round(delay, 2),
                    )
                    self._sleep(delay)
                    attempt += 1
                    continue
                if exc.transient and exc.code is None and was_sent(exc):
                    raise OutcomeUnknownError(
                        f"{exc.message}; the fax may or may not have been queued, "
                        "faxd reconciles with status before sending again",
                        operation="sendfax",
                    ) from exc
                raise
            # faxno (E.164) comes from the job's log context; this is what FAXAGE got
            log.info("faxage.sent", faxage_jobid=jobid, sent_to=fields.get("faxno"))
            return jobid

    def status(
        self,
        jobids: Sequence[int] | None = None,
        *,
        pagecount: bool = True,
        csid: bool = True,
        xmitpages: bool = True,
        showlogin: bool = False,
        useronly: bool = False,
        extqueue: bool = False,
        begin: Timestamp = None,
        end: Timestamp = None,
    ) -> list[StatusRecord]:
        """Status of the given jobs (all jobs when ``None``); ``[]`` when there are none."""
        return list(
            self.status_result(
                jobids,
                pagecount=pagecount,
                csid=csid,
                xmitpages=xmitpages,
                showlogin=showlogin,
                useronly=useronly,
                extqueue=extqueue,
                begin=begin,
                end=end,
            ).records
        )

    def status_result(
        self,
        jobids: Sequence[int] | None = None,
        *,
        pagecount: bool = True,
        csid: bool = True,
        xmitpages: bool = True,
        showlogin: bool = False,
        useronly: bool = False,
        extqueue: bool = False,
        begin: Timestamp = None,
        end: Timestamp = None,
    ) -> StatusResult:
        """Like :meth:`status`, with the lines that could not be read (for the caller to keep).

        Those lines are logged here at most once a day each (:class:`Notices`).
        """
        if jobids is not None and len(jobids) == 0:
            return StatusResult(records=())
        fields: dict[str, wire.FormValue] = {}
        if jobids is not None and len(jobids) == 1:
            fields["jobid"] = int(jobids[0])
        elif jobids is not None:
            fields["jobids"] = [int(j) for j in jobids]
        fields.update(
            pagecount=pagecount,
            useronly=useronly,
            extqueue=extqueue,
            csid=csid,
            showlogin=showlogin,
            xmitpages=xmitpages,
            begin=begin,
            end=end,
        )
        text = self._text("status", fields)
        result = wire.parse_status_result(
            text, csid=csid, showlogin=showlogin, xmitpages=xmitpages, pagecount=pagecount
        )
        self.notices.report_unreadable("status", result.malformed)
        self.notices.report_shapes(result.shapes)
        self.notices.report_warnings("status", result.warnings)
        return result

    def dlstatus(self, jobid: int, dest: Path, *, viewtype: str = "pdf") -> DownloadResult:
        """Download the image of a sent fax as ``viewtype`` (``pdf`` or ``tiff``)."""
        kind = "tiff" if viewtype in ("tif", "tiff") else "pdf"
        return self._download("dlstatus", {"jobid": jobid, "viewtype": kind}, dest, (kind,))

    def dltrans(self, jobid: int, dest: Path) -> DownloadResult:
        """Download the transmittal page (always a PDF) of a sent fax."""
        return self._download("dltrans", {"jobid": jobid}, dest, ("pdf",))

    def clear(self, jobid: int) -> None:
        """Delete the status record of a finished job."""
        wire.parse_cleared(self._text("clear", {"jobid": jobid}), jobid)

    def stopfax(self, jobid: int) -> None:
        """Cancel a job that is still queued."""
        wire.parse_stopped(self._text("stopfax", {"jobid": jobid}), jobid)

    # ------------------------------------------------------------------ receiving

    def listfax(
        self,
        *,
        idgt: int | None = None,
        idasc: bool = True,
        begin: Timestamp = None,
        useronly: bool = False,
        didnumber: str | None = None,
        batch_lines: int = BATCH_LINES,
    ) -> ListfaxResult:
        """Faxes waiting on FAXAGE (with the fixed column set starttime, filename, pagecount).

        The whole answer at once, for tools and tests that want it whole (each
        new shape once); the daemon reads it with :meth:`listfax_batches`, so
        that a long answer never sits in memory.
        """
        records: list[wire.ListfaxRecord] = []
        malformed: list[MalformedLine] = []
        shapes: dict[tuple[int, int], NewShape] = {}
        for batch in self.listfax_batches(
            idgt=idgt,
            idasc=idasc,
            begin=begin,
            useronly=useronly,
            didnumber=didnumber,
            batch_lines=batch_lines,
        ):
            records.extend(batch.records)
            malformed.extend(batch.malformed)
            for shape in batch.shapes:
                shapes.setdefault((shape.fields, shape.expected), shape)
        return ListfaxResult(tuple(records), tuple(malformed), tuple(shapes.values()))

    def listfax_batches(
        self,
        *,
        idgt: int | None = None,
        idasc: bool = True,
        begin: Timestamp = None,
        useronly: bool = False,
        didnumber: str | None = None,
        batch_lines: int = BATCH_LINES,
    ) -> Iterator[ListfaxResult]:
        """The listfax answer parsed a batch of about ``batch_lines`` lines at a time.

        The request is made (and an error answer raised) before this returns.
        Line numbers in ``malformed`` count from the start of the whole
        answer.  The request is retried like any other; a fault while the
        answer streams in is raised from the iteration, after the batches
        before it (which the caller may have committed).
        """
        fields: dict[str, wire.FormValue] = {
            "useronly": useronly,
            "idasc": idasc,
            "filename": True,
            "starttime": True,
            "begin": begin,
            "idgt": idgt,
            "pagecount": True,
            "didnumber": normalize_did(didnumber, "listfax") if didnumber else None,
        }
        form = self._form("listfax", fields)
        batches = self._retrying(
            "listfax",
            lambda: self.transport.post_lines(
                FAX_PATH, form, operation="listfax", batch_lines=batch_lines
            ),
        )
        return self._parsed_batches(batches)

    def _parsed_batches(
        self, batches: Generator[TextBatch, None, None]
    ) -> Iterator[ListfaxResult]:
        with contextlib.closing(batches):
            for batch in batches:
                result = _listfax_batch(batch)
                self.notices.report_shapes(result.shapes)
                yield result

    def getfax(self, recvid: int, dest: Path, *, max_bytes: int | None = None) -> DownloadResult:
        """Download received fax ``recvid`` to ``dest`` (verified, fsync'd).

        A fax larger than ``max_bytes`` raises :class:`~faxd.errors.TooLargeError`
        and leaves no file.
        """
        return self._download("getfax", {"faxid": recvid}, dest, ("pdf", "tiff"), max_bytes)

    def delfax(self, recvid: int) -> None:
        """Delete received fax ``recvid`` on FAXAGE."""
        wire.parse_deleted(self._text("delfax", {"faxid": recvid}), recvid)


def _listfax_batch(batch: TextBatch) -> ListfaxResult:
    """Parse one batch, numbering its malformed lines from the start of the answer."""
    parsed = wire.parse_listfax(batch.text, starttime=True, filename=True, pagecount=True)
    shift = batch.first - 1
    malformed = [dataclasses.replace(m, lineno=m.lineno + shift) for m in parsed.malformed]
    malformed += [
        malformed_line(lineno, start, f"line is longer than {MAX_LINE} bytes")
        for lineno, start in batch.too_long
    ]
    malformed.sort(key=lambda m: m.lineno)
    return dataclasses.replace(parsed, malformed=tuple(malformed))
