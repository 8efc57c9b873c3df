"""FAXAGE's wire format: form fields out, answer text in. Pure, no I/O.

FAXAGE answers every request with HTTP 200 and a short text body: a record per
line with tab- (or comma-) separated fields, a one-word success (``Deleted``,
``Enabled``), or an error of the form ``ERRnn: reason``.  This module is the
only place in faxd that reads that text, so that the quirks (columns that
shift with the flags sent, empty fields that are real fields, ``ERR11`` that
means "nothing", ``ERR08`` that echoes the password back) are handled once and
tested against the documents' own examples without a server.

Errors: :func:`raise_for_error` (from :mod:`faxd.providers.faxage.codes`, re-exported
here) turns an ``ERRnn:`` answer into the class from :mod:`faxd.errors` that
:data:`ERROR_KINDS` (and, where one endpoint gives a code another meaning,
:data:`OPERATION_ERROR_KINDS`) names for it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import TypeVar

from faxd.errors import OutcomeUnknownError, TransientError
from faxd.phone import nanp_caller_id, nanp_number
from faxd.providers.faxage.codes import (
    ERROR_KINDS,
    OPERATION_ERROR_KINDS,
    error_code,
    is_empty_answer,
    raise_for_error,
)
from faxd.providers.faxage.fields import (
    MAX_PAGES,
    columns,
    int_field,
    malformed_line,
    numbered_lines,
    optional_int_field,
    tab_records,
    timestamp_field,
)
from faxd.providers.faxage.files import (
    SEND_EXTENSIONS,
    filename_from_content_disposition,
    safe_filename,
    sniff_kind,
)
from faxd.providers.faxage.records import (
    CdrRecord,
    LineWarning,
    ListAnswer,
    ListfaxRecord,
    ListfaxResult,
    MalformedLine,
    NewShape,
    NpaNxx,
    StatusRecord,
    StatusResult,
)
from faxd.redact import summarize_body

__all__ = [
    "ERROR_KINDS",
    "OPERATION_ERROR_KINDS",
    "SEND_EXTENSIONS",
    "CdrRecord",
    "LineWarning",
    "ListAnswer",
    "ListfaxRecord",
    "ListfaxResult",
    "MalformedLine",
    "NewShape",
    "NpaNxx",
    "StatusRecord",
    "StatusResult",
    "build_form",
    "error_code",
    "filename_from_content_disposition",
    "format_timestamp",
    "parse_cdr",
    "parse_cleared",
    "parse_deleted",
    "parse_deprovisioned",
    "parse_disabled",
    "parse_enabled",
    "parse_jobid",
    "parse_listac",
    "parse_listfax",
    "parse_listnpanxx",
    "parse_number_list",
    "parse_portable",
    "parse_provisioned",
    "parse_status",
    "parse_status_result",
    "parse_stopped",
    "raise_for_error",
    "safe_filename",
    "sniff_kind",
    "status_columns",
]

# --------------------------------------------------------------------------- form

FormValue = str | int | bool | datetime | date | Sequence[str | int] | None


def format_timestamp(value: datetime | date | str) -> str:
    """``YYYY-MM-DD HH:MM:SS`` as FAXAGE wants it (a string passes through)."""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.strftime("%Y-%m-%d 00:00:00")
    return value


def build_form(
    fields: Mapping[str, FormValue] | Iterable[tuple[str, FormValue]],
) -> list[tuple[str, str]]:
    """POST fields as ordered pairs for ``requests``' ``data=``.

    ``None`` and ``False`` are dropped (FAXAGE flags mean "set" by being
    present), ``True`` becomes ``"1"``, a list becomes ``name[]`` repeated,
    timestamps are formatted.  ``requests`` form-encodes the pairs, so a
    base64 ``+`` arrives as ``+``.
    """
    items = fields.items() if isinstance(fields, Mapping) else fields
    form: list[tuple[str, str]] = []
    for name, value in items:
        if value is None or value is False:
            continue
        if value is True:
            form.append((name, "1"))
        elif isinstance(value, datetime | date):
            form.append((name, format_timestamp(value)))
        elif isinstance(value, str | int):
            form.append((name, str(value)))
        else:
            key = name if name.endswith("[]") else f"{name}[]"
            form.extend((key, str(item)) for item in value)
    return form


# --------------------------------------------------------------------------- listfax


def parse_listfax(text: str, *, starttime: bool, filename: bool, pagecount: bool) -> ListfaxResult:
    """Parse a listfax answer; ``ERR11`` is empty and a bad line is reported, not fatal.

    Layout (2009 document, pagecount from 2014):
    ``<recvid><tab><recvdate>(<tab><starttime>)<tab><CID><tab><DNIS>(<tab><filename>)(<tab><pagecount>)``
    Columns after those are ignored (``shapes`` says how many there were).
    """
    raise_for_error(text, "listfax")
    if is_empty_answer(text, "listfax"):
        return ListfaxResult(records=(), malformed=())
    found = tab_records(
        text,
        4 + starttime + filename + pagecount,
        lambda fields, _notes: _listfax_record(fields, starttime, filename, pagecount),
        operation="listfax",
    )
    return ListfaxResult(records=found.records, malformed=found.malformed, shapes=found.shapes)


def _listfax_record(
    fields: list[str], starttime: bool, filename: bool, pagecount: bool
) -> ListfaxRecord:
    values = iter(fields)
    recvid = int_field(next(values), "recvid")
    recvdate = timestamp_field(next(values), "recvdate")
    if recvdate is None:
        raise ValueError("recvdate is empty")
    start = timestamp_field(next(values), "starttime") if starttime else None
    cid = nanp_caller_id(next(values))
    dnis = nanp_caller_id(next(values))
    name = safe_filename(next(values)) if filename else None
    pages = optional_int_field(next(values), "pagecount", maximum=MAX_PAGES) if pagecount else None
    return ListfaxRecord(recvid, recvdate, start, cid, dnis, name, pages)


# --------------------------------------------------------------------------- status

#: The columns every status line has, up to and including xmittime.
STATUS_FIXED_COLUMNS = (
    "jobid",
    "commid",
    "destname",
    "destnum",
    "shortstatus",
    "longstatus",
    "sendtime",
    "completetime",
    "xmittime",
)
STATUS_FIXED = len(STATUS_FIXED_COLUMNS)
#: A status line needs jobid and shortstatus (the fifth column) to be a record.
STATUS_LEAST = STATUS_FIXED_COLUMNS.index("shortstatus") + 1


def status_columns(*, csid: bool, showlogin: bool, xmitpages: bool, pagecount: bool) -> list[str]:
    """The optional status columns the flags ask for, in the 2014 document's order."""
    sent = {"pagecount": pagecount, "csid": csid, "login": showlogin, "xmitpages": xmitpages}
    return [name for name, flag in sent.items() if flag]


def parse_status_result(
    text: str, *, csid: bool, showlogin: bool, xmitpages: bool, pagecount: bool
) -> StatusResult:
    """Parse a status answer keeping the lines that could not be read.

    Layout (2014 document): ``<jobid><tab><commid><tab><destname><tab><destnum>
    <tab><shortstatus><tab><longstatus><tab><sendtime><tab><completetime><tab>
    <xmittime>`` then, each only when its flag was sent, pagecount, csid, login,
    xmitpages.  Columns after those are ignored.  ``ERR06`` (no jobs) is empty.

    Only jobid and shortstatus decide whether a line is a record, so that every
    job FAXAGE reports can be finished: any other value that cannot be read
    becomes unknown (``None``) and the line is named once in ``warnings``.
    """
    raise_for_error(text, "status")
    if is_empty_answer(text, "status"):
        return StatusResult(records=(), malformed=())
    optional = status_columns(
        csid=csid, showlogin=showlogin, xmitpages=xmitpages, pagecount=pagecount
    )
    found = tab_records(
        text,
        STATUS_FIXED + len(optional),
        lambda fields, notes: _status_record(fields, optional, notes),
        operation="status",
        minimum=STATUS_LEAST,
    )
    return StatusResult(
        records=found.records,
        malformed=found.malformed,
        shapes=found.shapes,
        warnings=found.warnings,
    )


def parse_status(
    text: str, *, csid: bool, showlogin: bool, xmitpages: bool, pagecount: bool
) -> list[StatusRecord]:
    """The status records of an answer (unreadable lines are left out; ``ERR06`` is ``[]``).

    Part of the documented parsing contract; the client itself calls
    :func:`parse_status_result`, which keeps the unreadable lines to report.
    """
    result = parse_status_result(
        text, csid=csid, showlogin=showlogin, xmitpages=xmitpages, pagecount=pagecount
    )
    return list(result.records)


def _status_record(fields: list[str], optional: list[str], notes: list[str]) -> StatusRecord:
    names = [*STATUS_FIXED_COLUMNS, *optional]
    extra = dict(zip(optional, fields[STATUS_FIXED:], strict=False))
    if len(fields) < len(names):
        # Which optional value is missing cannot be told, so none is trusted.
        unknown = names[len(fields) :] if len(fields) < STATUS_FIXED else optional
        notes.append(
            f"expected {len(names)} tab-separated fields, got {len(fields)}: "
            f"{', '.join(unknown)} unknown"
        )
        extra = {}
        fields = fields[:STATUS_FIXED] + [""] * (STATUS_FIXED - len(fields))
    jobid, commid, destname, destnum, short, long_, sent, done, xmittime = fields[:STATUS_FIXED]
    shortstatus = short.strip().lower()
    if not shortstatus:
        raise ValueError("shortstatus is empty")
    return StatusRecord(
        jobid=int_field(jobid, "jobid"),
        commid=commid.strip(),
        destname=destname,
        destnum=nanp_caller_id(destnum),
        shortstatus=shortstatus,
        longstatus=long_,
        sendtime=_or_unknown(lambda: timestamp_field(sent, "sendtime"), notes),
        completetime=_or_unknown(lambda: timestamp_field(done, "completetime"), notes),
        xmittime=xmittime.strip(),
        pagecount=_count(extra.get("pagecount"), "pagecount", notes),
        csid=extra.get("csid"),
        login=extra.get("login"),
        xmitpages=_count(extra.get("xmitpages"), "xmitpages", notes),
    )


_V = TypeVar("_V")


def _or_unknown(read: Callable[[], _V | None], notes: list[str]) -> _V | None:
    """``read()``, or ``None`` with the reason noted when the value cannot be read."""
    try:
        return read()
    except ValueError as exc:
        notes.append(f"{exc}: taken as unknown")
        return None


def _count(value: str | None, name: str, notes: list[str]) -> int | None:
    """A page count column: ``None`` when not asked for, empty, or unreadable (noted)."""
    if value is None:
        return None
    return _or_unknown(lambda: optional_int_field(value, name, maximum=MAX_PAGES), notes)


# --------------------------------------------------------------------------- one-liners


def _one_line(text: str, operation: str) -> str:
    raise_for_error(text, operation)
    return text.strip()


def _unexpected(text: str, operation: str, wanted: str) -> TransientError:
    return TransientError(
        f"unexpected answer {summarize_body(text, limit=120)!r} (wanted {wanted}); "
        "faxd retries later — if this persists the FAXAGE API may have changed",
        operation=operation,
    )


def parse_jobid(text: str) -> int:
    """The job id of a sendfax answer ``JOBID: n``.

    Anything else that is not an ``ERRnn`` answer leaves the outcome unknown:
    the job may exist, so the caller must reconcile rather than resend.
    """
    line = _one_line(text, "sendfax")
    match = re.fullmatch(r"JOBID:\s*(\d+)", line)
    if not match:
        raise OutcomeUnknownError(
            f"answer without a JOBID: {summarize_body(text, limit=120)!r}; "
            "the fax may or may not have been queued, faxd reconciles with status",
            operation="sendfax",
        )
    return int(match.group(1))


def _parse_ack(text: str, operation: str, word: str, ident: int | str | None) -> None:
    """Accept ``<word>``, ``<id> <word>`` or ``<word> <id>`` (2009 and 2014 forms)."""
    line = _one_line(text, operation)
    match = re.fullmatch(
        rf"(?:(?P<before>\S+)\s+)?{word}(?:\s+(?P<after>\S+))?", line, flags=re.IGNORECASE
    )
    if not match:
        raise _unexpected(text, operation, f"'{word}'")
    echoed = match.group("before") or match.group("after")
    if ident is not None and echoed is not None and echoed != str(ident):
        raise _unexpected(text, operation, f"'{word}' for {ident}")


def parse_deleted(text: str, faxid: int | None = None) -> None:
    """Check a delfax answer: ``<faxid> Deleted`` (or just ``Deleted``)."""
    _parse_ack(text, "delfax", "Deleted", faxid)


def parse_cleared(text: str, jobid: int | None = None) -> None:
    """Check a clear answer: ``<jobid> cleared``."""
    _parse_ack(text, "clear", "cleared", jobid)


def parse_stopped(text: str, jobid: int | None = None) -> None:
    """Check a stopfax answer: ``<jobid> stopped``."""
    _parse_ack(text, "stopfax", "stopped", jobid)


def parse_enabled(text: str, did: str | None = None) -> None:
    """Check an enabledid answer: ``Enabled <didnumber>`` (or just ``Enabled``)."""
    _parse_ack(text, "enabledid", "Enabled", did)


def parse_disabled(text: str, did: str | None = None) -> None:
    """Check a disabledid answer: ``Disabled <didnumber>`` (or just ``Disabled``)."""
    _parse_ack(text, "disabledid", "Disabled", did)


def parse_provisioned(text: str, did: str | None = None) -> None:
    """Check a provdid answer: ``<didnumber> provisioned``."""
    _parse_ack(text, "provdid", "provisioned", did)


def parse_deprovisioned(text: str, did: str | None = None) -> None:
    """Check a deprovdid answer: ``<didnumber> deprovisioned``."""
    _parse_ack(text, "deprovdid", "deprovisioned", did)


def parse_portable(text: str) -> bool:
    """A portable answer: ``1`` portable, ``0`` not."""
    line = _one_line(text, "portable")
    if line not in ("0", "1"):
        raise _unexpected(text, "portable", "'0' or '1'")
    return line == "1"


# --------------------------------------------------------------------------- lists


def parse_number_list(text: str, operation: str = "listlines") -> ListAnswer[str]:
    """Newline-separated 10-digit numbers (listlines, listdids), normalised.

    A line that is not a phone number is returned in ``malformed``; the rest
    of the answer is kept.
    """

    def number(fields: list[str]) -> str:
        try:
            return nanp_number(fields[0])
        except ValueError:
            raise ValueError(f"{fields[0].strip()[:40]!r} is not a phone number") from None

    return _list_answer(text, operation, "\t", 1, number)


def parse_listac(text: str) -> ListAnswer[str]:
    """Newline-separated area codes with numbers available; a bad line is ``malformed``."""

    def area_code(fields: list[str]) -> str:
        code = fields[0].strip()
        if not (len(code) == 3 and code.isascii() and code.isdigit()):
            raise ValueError(f"{code[:40]!r} is not an area code")
        return code

    return _list_answer(text, "listac", "\t", 1, area_code)


def parse_listnpanxx(text: str) -> ListAnswer[NpaNxx]:
    """``<npanxx><tab><rcname><tab><rcstate>`` lines; empty when nothing is available."""

    def locality(fields: list[str]) -> NpaNxx:
        npanxx = fields[0]
        if len(fields) != 3 or not (len(npanxx) == 6 and npanxx.isascii() and npanxx.isdigit()):
            raise ValueError("not <npanxx><tab><rcname><tab><rcstate>")
        return NpaNxx(npanxx, fields[1], fields[2])

    return _list_answer(text, "listnpanxx", "\t", 3, locality)


def parse_cdr(text: str, *, nuidshow: bool) -> ListAnswer[CdrRecord]:
    """``[nuid,]calldate,direction,src,dst,duration`` lines from getcdr.php."""
    expected = 5 + nuidshow

    def cdr(fields: list[str]) -> CdrRecord:
        if len(fields) != expected:
            raise ValueError(f"expected {expected} comma-separated fields, got {len(fields)}")
        nuid = int_field(fields.pop(0), "nuid") if nuidshow else None
        calldate, direction, src, dst, duration = fields
        when = timestamp_field(calldate, "calldate")
        if when is None:
            raise ValueError("calldate is empty")
        return CdrRecord(
            calldate=when,
            direction=direction.strip().upper(),
            src=nanp_caller_id(src),
            dst=nanp_caller_id(dst),
            duration=int_field(duration, "duration"),
            nuid=nuid,
        )

    return _list_answer(text, "getcdr", ",", expected, cdr)


def _list_answer(
    text: str, operation: str, separator: str, expected: int, build: Callable[[list[str]], _V]
) -> ListAnswer[_V]:
    """One item per line; a line ``build`` refuses (ValueError) goes into ``malformed``.

    One bad line must not hide the rest of the answer from the operator, so it
    is reported, with its number and text, beside the items that did parse.
    """
    raise_for_error(text, operation)
    shapes: dict[int, NewShape] = {}
    items: list[_V] = []
    malformed: list[MalformedLine] = []
    for lineno, line in numbered_lines(text):
        try:
            items.append(build(columns(line, separator, expected, operation, shapes)))
        except ValueError as exc:
            malformed.append(malformed_line(lineno, line, str(exc)))
    return ListAnswer(tuple(items), tuple(shapes.values()), tuple(malformed))
