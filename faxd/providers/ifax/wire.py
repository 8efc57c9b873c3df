"""iFax's JSON answers turned into faxd's records and error tree; no I/O.

Every iFax call is a JSON POST with an ``accessToken`` header and answers an
envelope ``{"status": 1, "message": ..., "data": ...}``; ``status`` 0 or
negative is an error with a ``message`` and often a numeric ``code`` (see
``reference/ifax-api.txt``, whose code table repeats some codes).  What the
public clients show beyond the document (paths, MM/DD/YYYY windows paged with
``lastFaxId``, base64 downloads, the JSON webhook) is in
``reference/providers-wire-notes.md``; several points there rest on one source,
so the parsers here accept what they can, say what they could not read
(:class:`~faxd.providers.base.Unreadable`) and report what they saw but did not
expect as :class:`Notice` for the client to log once.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from faxd.errors import AuthError, NotFoundError, PermanentError, ProviderError, TransientError
from faxd.providers.base import JobOutcome, JobStatus, RemoteFax, Unreadable
from faxd.providers.faxage.files import safe_filename
from faxd.redact import summarize_body

__all__ = [
    "DOWNLOAD_PATH",
    "LIST_ALL_PATH",
    "LIST_SENT_PATH",
    "SEND_PATH",
    "STATUS_PATH",
    "FaxPage",
    "Notice",
    "StatusPage",
    "envelope_data",
    "error_for",
    "format_date",
    "list_all_body",
    "parse_envelope",
    "parse_fax_page",
    "parse_status",
    "parse_status_page",
    "pick_callback",
    "send_body_parts",
]

SEND_PATH = "customer/fax-send"
STATUS_PATH = "customer/fax-status"
LIST_SENT_PATH = "customer/fax-lists"
LIST_ALL_PATH = "customer/inbound/fax-list-all"
DOWNLOAD_PATH = "customer/inbound/fax-download"

#: Codes iFax gives for a token it does not accept (12001 USER_BLOCKED is what
#: an invalid key returns, per the Nango check; the rest are login failures).
AUTH_CODES = frozenset({12001, -2014, -310, 12015, 12016, 12033, 12035, 12088, 12089, 12120})
#: Codes that say "try later": service down, internal errors, processing errors.
TRANSIENT_CODES = frozenset({-2036, -150, 256, 11013, 205001, 206001, 9036, 12014})
#: Codes that say the fax, job or record is not there.
NOT_FOUND_CODES = frozenset(
    {-3003, -1011, -1005, -311, 12006, 12021, 12091, 12092, 12093, 12097, 12098, 12130}
)
_AUTH_WORDS = ("accesstoken", "access token", "unauthori", "api key", "invalid token")
_RATE_WORDS = ("too many requests", "rate limit", "throttl")

#: iFax's ``faxStatus`` words, in faxd's terms.  ``received`` is an inbound fax.
STATUS_WORDS: Mapping[str, JobOutcome] = {
    "sending": JobOutcome.PENDING,
    "queued": JobOutcome.PENDING,
    "processing": JobOutcome.PENDING,
    "pending": JobOutcome.PENDING,
    "scheduled": JobOutcome.PENDING,
    "delivered": JobOutcome.SENT,
    "sent": JobOutcome.SENT,
    "success": JobOutcome.SENT,
    "failed": JobOutcome.FAILED,
    "canceled": JobOutcome.FAILED,
    "cancelled": JobOutcome.FAILED,
}

#: Fields of an inbound record faxd reads; any other is reported once.
INBOUND_FIELDS = frozenset(
    {"jobId", "transactionId", "receivedTime", "faxCallStart", "fromNumber", "toNumber"}
    | {"faxTotalPages", "faxReceivedPages", "fileName", "faxId", "id", "faxStatus", "direction"}
)
#: Fields of a status record faxd reads.
STATUS_FIELDS = frozenset(
    {"jobId", "faxStatus", "message", "code", "toNumber", "fromNumber", "faxCallStart"}
    | {"faxCallEnd", "faxTotalPages", "faxTransferredPages", "faxCallLength", "id"}
)
_TEXT_LIMIT = 200


@dataclass(frozen=True)
class Notice:
    """Something a parser saw and tolerated: logged once per (operation, key) by the client."""

    operation: str
    key: str
    message: str


@dataclass(frozen=True)
class FaxPage:
    """One page of ``inbound/fax-list-all``: the faxes, what was unreadable, how to go on."""

    faxes: tuple[RemoteFax, ...]
    unreadable: tuple[Unreadable, ...]
    notices: tuple[Notice, ...]
    #: ``lastFaxId`` for the next page; ``None`` when no record carried an id (the end).
    last_fax_id: str | None
    records: int


@dataclass(frozen=True)
class StatusPage:
    """Status records read from ``fax-status`` or ``fax-lists``."""

    jobs: tuple[JobStatus, ...]
    unreadable: tuple[Unreadable, ...]
    notices: tuple[Notice, ...]


# ---------------------------------------------------------------- requests


def format_date(day: date) -> str:
    """iFax list windows take ``MM/DD/YYYY`` and nothing else."""
    return f"{day.month:02d}/{day.day:02d}/{day.year:04d}"


def list_all_body(start: date, end: date, last_fax_id: str | None) -> dict[str, Any]:
    """The JSON body of one ``inbound/fax-list-all`` page."""
    body: dict[str, Any] = {
        "startDate": format_date(start),
        "endDate": format_date(end),
        "sortBy": "newest",
    }
    if last_fax_id is not None:
        body["lastFaxId"] = last_fax_id
    return body


def send_body_parts(
    number: str, file_name: str, caller_id: str, quality: str
) -> tuple[bytes, bytes]:
    """The JSON of a ``fax-send`` body before and after the file's base64 ``fileData``.

    The file goes between the two parts as it is read, so the body never holds
    it whole; base64 needs no JSON escaping.
    """
    head: dict[str, Any] = {"faxNumber": number}
    if caller_id:
        head["callerId"] = caller_id
    if quality:
        head["faxQuality"] = quality
    prefix = json.dumps(head)[:-1] + ', "faxData": [{"fileName": ' + json.dumps(file_name)
    return (prefix + ', "fileData": "').encode("ascii"), b'"}]}'


# ---------------------------------------------------------------- envelope


def parse_envelope(body: bytes, operation: str) -> dict[str, Any]:
    """The answer as a JSON object; an answer that is not one is a transient fault."""
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise TransientError(
            f"iFax answered with something that is not JSON "
            f"({summarize_body(body[:512], limit=80)!r}); faxd retries later",
            operation=operation,
        ) from None
    if not isinstance(value, dict):
        raise TransientError(
            f"iFax answered with a JSON {type(value).__name__}, not an object; faxd retries later",
            operation=operation,
        )
    return value


def _ok(status: object) -> bool:
    if isinstance(status, bool):
        return status
    if isinstance(status, int | float):
        return status > 0
    if isinstance(status, str):
        text = status.strip().lower()
        return text in ("success", "ok", "true") or (text.isdigit() and int(text) > 0)
    return False


def _code(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None


def error_for(envelope: Mapping[str, Any], operation: str) -> ProviderError | None:
    """The faxd error an envelope stands for, or ``None`` when it says success."""
    if _ok(envelope.get("status")):
        return None
    message = summarize_body(str(envelope.get("message") or envelope.get("error") or ""), 160)
    code = _code(envelope.get("code"))
    if code is None and isinstance(envelope.get("data"), Mapping):
        code = _code(envelope["data"].get("code"))
    said = f"iFax said {message!r}" + (f" (code {code})" if code is not None else "")
    lowered = message.lower()
    code_text = None if code is None else str(code)
    if code in AUTH_CODES or any(word in lowered for word in _AUTH_WORDS):
        return AuthError(
            f"{said}: the access token was refused; copy the API key from the Settings "
            "page of the iFax dashboard into access_token_file of [ifax] (a Live key, "
            "not a revoked or test one)",
            operation=operation,
            code=code_text,
        )
    if code in TRANSIENT_CODES or any(word in lowered for word in _RATE_WORDS):
        return TransientError(f"{said}; faxd retries later", operation=operation, code=code_text)
    if code in NOT_FOUND_CODES or "not found" in lowered or "does not exist" in lowered:
        return NotFoundError(f"{said}: it is not on iFax", operation=operation, code=code_text)
    return PermanentError(
        f"{said}; retrying the same request cannot help: check the request in the iFax dashboard",
        operation=operation,
        code=code_text,
    )


def envelope_data(body: bytes, operation: str) -> Any:
    """The ``data`` of a successful answer; an error answer raises its faxd error."""
    envelope = parse_envelope(body, operation)
    error = error_for(envelope, operation)
    if error is not None:
        raise error
    return envelope.get("data")


# ---------------------------------------------------------------- values


def _id_text(value: object) -> str | None:
    """An iFax id (an integer on the wire, sometimes a string) as a string, or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and value >= 0:
        return str(value)
    if isinstance(value, str):
        text = value.strip()
        if text and len(text) <= 40 and text.isascii() and text.isalnum():
            return text
    return None


def _text(value: object) -> str:
    if value is None or isinstance(value, dict | list):
        return ""
    return summarize_body(str(value), _TEXT_LIMIT)


def _count(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and value >= 0:
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


_TIME_FORMATS = (
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y %I:%M:%S %p",
    "%m/%d/%Y %I:%M %p",
    "%Y-%m-%d",
    "%m/%d/%Y",
)


def parse_time(value: object) -> datetime | None:
    """A time as iFax writes it: Unix seconds (UTC) or a date text; naive; None if neither."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float) or (isinstance(value, str) and value.strip().isdigit()):
        try:
            seconds = float(value)
            if seconds > 1e11:  # milliseconds
                seconds /= 1000
            return datetime.fromtimestamp(seconds, UTC).replace(tzinfo=None)
        except (OverflowError, OSError, ValueError):
            return None
    if not isinstance(value, str):
        return None
    text = value.strip()[:40]
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        parsed = None
    if parsed is not None:
        return parsed.astimezone(UTC).replace(tzinfo=None) if parsed.tzinfo else parsed
    for fmt in _TIME_FORMATS:
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            continue
    return None


def _unreadable(index: int, record: object, reason: str) -> Unreadable:
    return Unreadable(index, summarize_body(json.dumps(record, default=str)[:1024], 160), reason)


def _unknown_fields(
    operation: str, record: Mapping[str, Any], known: frozenset[str]
) -> list[Notice]:
    extra = sorted(str(k) for k in record if k not in known)
    if not extra:
        return []
    key = ",".join(extra)[:200]
    return [Notice(operation, key, f"iFax sent fields faxd does not read: {key}")]


def _records(data: object, operation: str) -> list[object]:
    """The list of records in ``data`` (a list, or an object holding one)."""
    if data is None:
        return []
    if isinstance(data, list):
        return data
    if isinstance(data, Mapping):
        for key in ("data", "faxes", "list", "records", "items"):
            if isinstance(data.get(key), list):
                return list(data[key])
        return [data]
    raise TransientError(
        f"iFax's {operation} data is a {type(data).__name__}, not a list; faxd retries later",
        operation=operation,
    )


# ---------------------------------------------------------------- inbound listing


def parse_fax_page(data: object, operation: str = "fax-list-all") -> FaxPage:
    """One page of received faxes; ``remote_id`` is ``jobId:transactionId``."""
    faxes: list[RemoteFax] = []
    unreadable: list[Unreadable] = []
    notices: list[Notice] = []
    last: str | None = None
    records = _records(data, operation)
    for index, record in enumerate(records, start=1):
        if not isinstance(record, Mapping):
            unreadable.append(_unreadable(index, record, "a record that is not a JSON object"))
            continue
        page_id = _id_text(record.get("faxId", record.get("id", record.get("jobId"))))
        last = page_id or last
        job = _id_text(record.get("jobId"))
        transaction = _id_text(record.get("transactionId"))
        if job is None or transaction is None:
            unreadable.append(
                _unreadable(index, record, "no usable jobId and transactionId (both are needed)")
            )
            continue
        received = parse_time(record.get("receivedTime", record.get("faxCallStart")))
        if received is None:
            unreadable.append(_unreadable(index, record, "no readable receivedTime"))
            continue
        notices += _unknown_fields(operation, record, INBOUND_FIELDS)
        pages = _count(record.get("faxTotalPages", record.get("faxReceivedPages")))
        faxes.append(
            RemoteFax(
                remote_id=f"{job}:{transaction}",
                received_at=received,
                caller_id=_text(record.get("fromNumber")),
                dnis=_text(record.get("toNumber")),
                pages=pages,
                filename=safe_filename(_text(record.get("fileName")) or None),
            )
        )
    return FaxPage(
        tuple(faxes), tuple(unreadable), tuple(dict.fromkeys(notices)), last, len(records)
    )


def split_remote_id(remote_id: str) -> tuple[str, str]:
    """``jobId:transactionId`` back into its parts; a malformed id is a permanent error."""
    job, sep, transaction = remote_id.partition(":")
    if not sep or _id_text(job) is None or _id_text(transaction) is None:
        raise PermanentError(
            f"{remote_id!r} is not an iFax fax id (jobId:transactionId)",
            operation="fax-download",
        )
    return job, transaction


# ---------------------------------------------------------------- outbound


def parse_job_id(data: object) -> str:
    """The ``jobId`` of a ``fax-send`` answer."""
    value = data.get("jobId", data.get("id")) if isinstance(data, Mapping) else data
    job = _id_text(value)
    if job is None:
        # Accepted (status 1) but unreadable: it may be queued, so never resend blindly.
        raise TransientError(
            f"iFax accepted the fax but its answer has no readable jobId "
            f"({summarize_body(json.dumps(data, default=str)[:256], 80)!r})",
            operation="fax-send",
        )
    return job


def parse_status(record: Mapping[str, Any], operation: str) -> tuple[JobStatus, list[Notice]]:
    """One fax object as a :class:`JobStatus`; an unknown ``faxStatus`` is pending."""
    job = _id_text(record.get("jobId", record.get("id")))
    if job is None:
        raise ValueError("no usable jobId")
    word = _text(record.get("faxStatus")).strip().lower()
    notices = _unknown_fields(operation, record, STATUS_FIELDS)
    outcome = STATUS_WORDS.get(word)
    if outcome is None:
        notices.append(
            Notice(
                operation,
                f"status:{word}",
                f"iFax faxStatus {word!r} is not one faxd knows; the job is kept pending",
            )
        )
        outcome = JobOutcome.PENDING
    message = _text(record.get("message"))
    code = _code(record.get("code"))
    reason = ""
    if outcome is JobOutcome.FAILED:
        what = "canceled on iFax" if word.startswith("cancel") else "iFax could not send it"
        detail = f": {message}" if message else ""
        reason = f"{what}{detail}" + (f" (code {code})" if code is not None else "")
    extra = {"code": str(code)} if code is not None else {}
    return (
        JobStatus(
            remote_id=job,
            outcome=outcome,
            status=word or "unknown",
            reason=reason,
            number=_text(record.get("toNumber")),
            sent_at=parse_time(record.get("faxCallStart")),
            completed_at=parse_time(record.get("faxCallEnd")),
            pages=_count(record.get("faxTotalPages")),
            pages_sent=_count(record.get("faxTransferredPages")),
            extra=extra,
        ),
        notices,
    )


def parse_status_page(data: object, operation: str) -> StatusPage:
    """``fax-status`` (one object) or ``fax-lists`` (a list) as status records."""
    jobs: list[JobStatus] = []
    unreadable: list[Unreadable] = []
    notices: list[Notice] = []
    for index, record in enumerate(_records(data, operation), start=1):
        if not isinstance(record, Mapping):
            unreadable.append(_unreadable(index, record, "a record that is not a JSON object"))
            continue
        try:
            job, seen = parse_status(record, operation)
        except ValueError as exc:
            unreadable.append(_unreadable(index, record, str(exc)))
            continue
        jobs.append(job)
        notices += seen
    return StatusPage(tuple(jobs), tuple(unreadable), tuple(dict.fromkeys(notices)))


def is_outbound(record: Mapping[str, Any]) -> bool:
    """Whether a ``fax-lists`` record is a sent fax (records without a direction count)."""
    direction = _text(record.get("direction", record.get("faxType", ""))).lower()
    return direction in ("", "ob", "outbound", "out", "sent")


def outbound_records(data: object, operation: str) -> list[object]:
    """The sent-fax records of a ``fax-lists`` answer."""
    return [r for r in _records(data, operation) if not isinstance(r, Mapping) or is_outbound(r)]


def ids_in(values: Sequence[str]) -> list[str]:
    """Only the ids that look like iFax ids (others cannot be asked about)."""
    return [v for v in values if _id_text(v) is not None]


# ---------------------------------------------------------------- callbacks

#: How much of a callback body is read as JSON at most.
MAX_CALLBACK = 64 * 1024


def pick_callback(body: bytes, content_type: str) -> tuple[str, int | None]:
    """``("outbound", jobId)`` for a sent fax's webhook, else ``("inbound", jobId)``.

    The current webhooks post JSON without the file (``direction``,
    ``jobId``, ``faxStatus``...); the legacy receive callback is a multipart
    form with the PDF, which faxd does not read: it only polls.  Anything that
    is not clearly about a sent fax asks for a poll, which costs one listing.
    """
    if "json" not in content_type.lower() and not body.lstrip().startswith(b"{"):
        return "inbound", None
    try:
        value = json.loads(body[:MAX_CALLBACK])
    except (ValueError, UnicodeDecodeError):
        return "inbound", None
    if not isinstance(value, Mapping):
        return "inbound", None
    job = _id_text(value.get("jobId"))
    ref = int(job) if job is not None and job.isdigit() and len(job) <= 18 else None
    direction = _text(value.get("direction")).lower()
    word = _text(value.get("faxStatus")).lower()
    if direction in ("outbound", "ob") or (direction == "" and word in STATUS_WORDS):
        return "outbound", ref
    return "inbound", ref
