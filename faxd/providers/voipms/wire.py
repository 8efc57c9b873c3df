"""VoIP.ms answers as data: the JSON envelope, fax records, statuses as faxd errors.

Pure functions, no I/O, so every rule is tested on the documented examples and
on the odd answers the wire notes warn of
(``/work/shared/reference/providers-wire-notes.md``, "VoIP.ms"):

- every answer is a JSON object whose ``status`` is ``"success"`` or an error
  word; some methods answer with an empty body on success [1];
- numbers may come as strings or as numbers [1];
- the ``no_*`` statuses (``no_message``, ``no_folder``...) mean "an empty
  list", not a failure [1];
- ``callerid`` may read ``NAME <4164442828>`` [1];
- dates are ``YYYY-MM-DD HH:MM:SS`` with no zone, in the API's zone [G].

Whatever these parsers meet but do not refuse (a new field, a status word
they do not know) comes back as data, for :mod:`faxd.providers.voipms.notices`
to log once.  The base64 PDF of ``getFaxMessagePDF`` is decoded as it streams
in by :class:`Base64FieldDecoder`, so a fax never sits whole in memory.
"""

from __future__ import annotations

import binascii
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from faxd.errors import (
    AuthError,
    DownloadError,
    NotFoundError,
    PermanentError,
    ProviderError,
    TransientError,
)
from faxd.providers.base import JobOutcome, JobStatus, RemoteFax, Unreadable
from faxd.redact import summarize_body
from faxd.web.hooks import Hint, HintKind

__all__ = [
    "FAX_FIELDS",
    "Base64FieldDecoder",
    "Envelope",
    "FaxList",
    "JobList",
    "error_for",
    "format_day",
    "parse_date",
    "parse_envelope",
    "parse_faxes",
    "parse_folders",
    "parse_sent",
    "pick_callback",
]

OK = "success"
#: How VoIP.ms writes a time (naive, in the API's zone).
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
#: The longest ``from``..``to`` range getFaxMessages accepts (``invalid_daterange``).
MAX_WINDOW_DAYS = 92
#: Seconds to wait after ``api_limit_exceeded`` (a per-minute limit).
RATE_LIMIT_BACKOFF = 60.0

#: The fields of a getFaxMessages record, as documented.
FAX_FIELDS = frozenset(
    {"id", "folder", "date", "callerid", "stationid", "destination", "description"}
    | {"pages", "duration", "status", "rate", "total", "msg"}
)

_PORTAL = "in the VoIP.ms portal (Main Menu > SOAP and REST/JSON API)"
#: Statuses that say the login or the API access is wrong, and what to do about each.
AUTH_HINTS: Mapping[str, str] = {
    "invalid_credentials": "the API username or password is wrong; username is the account "
    "e-mail and the password is the separate API password set " + _PORTAL,
    "missing_credentials": "the API username or password is empty; set username and the API "
    "password in [voipms]",
    "api_not_enabled": "the API is not enabled for this account; enable it " + _PORTAL,
    "ip_not_enabled": "this machine's IP address is not on the API allow-list; add its public "
    "IP address " + _PORTAL,
    "tls_error": "VoIP.ms refused the connection's TLS; use https with TLS 1.2 or newer in "
    "base_url",
}
#: Statuses after which the same request may work later.
TRANSIENT_HINTS: Mapping[str, str] = {
    "api_limit_exceeded": "the per-minute API limit was reached; faxd waits a minute before "
    "trying again (poll less often if this repeats)",
    "method_maintenance": "the method is under maintenance at VoIP.ms; faxd retries later",
    "provider_outofservice": "VoIP.ms says its provider is out of service; faxd retries later",
    "unavailable_info": "VoIP.ms could not give the information now; faxd retries later",
}
NOT_FOUND = frozenset({"invalid_fax_id"})


def error_for(status: str, operation: str) -> ProviderError:
    """The faxd error for a VoIP.ms status word (never ``success`` or ``no_*``)."""
    word = status.strip()[:60] or "(empty status)"
    if word in AUTH_HINTS:
        return AuthError(f"VoIP.ms said {word}: {AUTH_HINTS[word]}", operation=operation, code=word)
    if word in TRANSIENT_HINTS:
        return TransientError(
            f"VoIP.ms said {word}: {TRANSIENT_HINTS[word]}", operation=operation, code=word
        )
    if word in NOT_FOUND:
        return NotFoundError(
            f"VoIP.ms said {word}: the fax is not (or no longer) on the account",
            operation=operation,
            code=word,
        )
    return PermanentError(
        f"VoIP.ms refused the request with status {word!r}; see the VoIP.ms API status list",
        operation=operation,
        code=word,
    )


@dataclass(frozen=True)
class Envelope:
    """A successful answer: its fields, and whether a ``no_*`` status said "nothing"."""

    data: Mapping[str, Any]
    empty: bool = False
    status: str = OK


def parse_envelope(body: bytes | str, operation: str) -> Envelope:
    """Read an answer body; an error status raises, ``no_*`` is an empty success."""
    text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
    if not text.strip():
        return Envelope({})
    try:
        data = json.loads(text)
    except ValueError:
        raise TransientError(
            f"answer is not JSON ({summarize_body(text[:400], limit=120)!r}); "
            "faxd retries later, check base_url in [voipms] if this repeats",
            operation=operation,
        ) from None
    if not isinstance(data, dict):
        raise TransientError(
            f"answer is JSON but not an object ({type(data).__name__}); faxd retries later",
            operation=operation,
        )
    status = data.get("status")
    if not isinstance(status, str):
        raise TransientError(
            f"answer has no status word ({summarize_body(text[:400], limit=120)!r}); "
            "faxd retries later",
            operation=operation,
        )
    status = status.strip()
    if status.lower() == OK:
        return Envelope(data)
    if status.startswith("no_"):
        return Envelope(data, empty=True, status=status)
    raise error_for(status, operation)


def format_day(day: date) -> str:
    """A ``from`` / ``to`` parameter of getFaxMessages."""
    return day.strftime("%Y-%m-%d")


def parse_date(value: object) -> datetime | None:
    """``YYYY-MM-DD HH:MM:SS`` (or ISO ``T``) as a naive datetime; ``None`` if unreadable."""
    if not isinstance(value, str):
        return None
    text = value.strip().replace("T", " ")
    for fmt in (TIME_FORMAT, "%Y-%m-%d %H:%M", "%Y-%m-%d"):
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            continue
    return None


def _scalar(value: object) -> str:
    """A string or number field as text ("" for anything else)."""
    if isinstance(value, bool) or value is None:
        return ""
    if isinstance(value, str | int | float):
        return str(value).strip()
    return ""


def _fax_id(value: object) -> str | None:
    text = _scalar(value)
    if text.endswith(".0"):  # a number sent as a float
        text = text[:-2]
    return text if text.isascii() and text.isdigit() and len(text) <= 20 else None


def _int(value: object) -> int | None:
    text = _scalar(value)
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 9 else None


_ANGLED = re.compile(r"<\s*([^<>]*?)\s*>\s*$")


def caller_number(value: object) -> str:
    """The number of a ``callerid``: ``NAME <4164442828>`` gives ``4164442828``."""
    text = _scalar(value)
    match = _ANGLED.search(text)
    return match.group(1) if match else text


def _record_text(record: object) -> str:
    try:
        text = json.dumps(record, ensure_ascii=False, default=str)
    except ValueError:
        text = repr(record)
    return summarize_body(text[:1000], limit=200)


def _records(envelope: Envelope, key: str) -> tuple[list[object], Unreadable | None]:
    """The list under ``key``; a missing or odd list is one unreadable entry."""
    if envelope.empty:
        return [], None
    value = envelope.data.get(key)
    if value is None:
        return [], None
    if isinstance(value, dict):  # PHP arrays with gaps arrive as objects
        return list(value.values()), None
    if isinstance(value, list):
        return value, None
    return [], Unreadable(0, _record_text(value), f"'{key}' is not a list")


def _fax_records(
    envelope: Envelope, unreadable: list[Unreadable], unknown: set[str]
) -> Iterator[tuple[int, dict[str, Any], str]]:
    """Each ``faxes`` record with a readable id, as (position, record, id).

    The rest go to ``unreadable``, and field names no document mentions to ``unknown``.
    """
    items, problem = _records(envelope, "faxes")
    if problem:
        unreadable.append(problem)
    for index, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            unreadable.append(Unreadable(index, _record_text(item), "record is not an object"))
            continue
        unknown.update(str(k)[:40] for k in item if k not in FAX_FIELDS)
        remote_id = _fax_id(item.get("id"))
        if remote_id is None:
            unreadable.append(Unreadable(index, _record_text(item), "no readable id"))
            continue
        yield index, item, remote_id


@dataclass(frozen=True)
class FaxList:
    """The received faxes of one getFaxMessages answer."""

    faxes: tuple[RemoteFax, ...]
    unreadable: tuple[Unreadable, ...] = ()
    #: Field names no document mentions (logged once by the caller).
    unknown_fields: frozenset[str] = frozenset()


def parse_faxes(envelope: Envelope) -> FaxList:
    """The ``faxes`` of a getFaxMessages answer as :class:`RemoteFax` records."""
    faxes: list[RemoteFax] = []
    unreadable: list[Unreadable] = []
    unknown: set[str] = set()
    for index, item, remote_id in _fax_records(envelope, unreadable, unknown):
        received = parse_date(item.get("date"))
        if received is None:
            unreadable.append(Unreadable(index, _record_text(item), "no readable date"))
            continue
        faxes.append(
            RemoteFax(
                remote_id=remote_id,
                received_at=received,
                caller_id=caller_number(item.get("callerid")),
                dnis=_scalar(item.get("destination")),
                pages=_int(item.get("pages")),
            )
        )
    return FaxList(tuple(faxes), tuple(unreadable), frozenset(unknown))


#: The fax ``status`` words of the SENT folder.  Only ``SUCCESS`` is documented
#: (on a received fax); the rest are the words fax services commonly use [G],
#: so an unknown word is read as still pending and logged once.
SENT_STATUSES: Mapping[str, JobOutcome] = {
    "SUCCESS": JobOutcome.SENT,
    "SENT": JobOutcome.SENT,
    "DELIVERED": JobOutcome.SENT,
    "OK": JobOutcome.SENT,
    "COMPLETED": JobOutcome.SENT,
    "FAILED": JobOutcome.FAILED,
    "FAILURE": JobOutcome.FAILED,
    "FAIL": JobOutcome.FAILED,
    "ERROR": JobOutcome.FAILED,
    "BUSY": JobOutcome.FAILED,
    "NO ANSWER": JobOutcome.FAILED,
    "CANCELLED": JobOutcome.FAILED,
    "CANCELED": JobOutcome.FAILED,
    "PENDING": JobOutcome.PENDING,
    "QUEUED": JobOutcome.PENDING,
    "SENDING": JobOutcome.PENDING,
    "PROCESSING": JobOutcome.PENDING,
    "IN PROGRESS": JobOutcome.PENDING,
    "RETRYING": JobOutcome.PENDING,
}


@dataclass(frozen=True)
class JobList:
    """The sent faxes of one getFaxMessages ``folder=SENT`` answer."""

    jobs: tuple[JobStatus, ...]
    unreadable: tuple[Unreadable, ...] = ()
    unknown_fields: frozenset[str] = frozenset()
    #: Status words not in :data:`SENT_STATUSES` (read as pending).
    unknown_statuses: frozenset[str] = frozenset()


def sent_outcome(word: str) -> JobOutcome | None:
    """The outcome of a SENT folder status word; ``None`` if the word is unknown."""
    return SENT_STATUSES.get(" ".join(word.replace("_", " ").split()).upper())


def parse_sent(envelope: Envelope) -> JobList:
    """The ``faxes`` of a ``folder=SENT`` answer as :class:`JobStatus` records."""
    jobs: list[JobStatus] = []
    unreadable: list[Unreadable] = []
    unknown: set[str] = set()
    words: set[str] = set()
    for _, item, remote_id in _fax_records(envelope, unreadable, unknown):
        word = _scalar(item.get("status"))[:40]
        outcome = sent_outcome(word)
        if outcome is None:
            words.add(word)
            outcome = JobOutcome.PENDING
        message = _scalar(item.get("msg"))[:200]
        extra = {"duration": _scalar(item.get("duration"))[:20]} if item.get("duration") else {}
        jobs.append(
            JobStatus(
                remote_id=remote_id,
                outcome=outcome,
                status=word or "?",
                reason=(message or f"VoIP.ms reports {word}")
                if outcome is JobOutcome.FAILED
                else "",
                number=_scalar(item.get("destination"))[:40],
                sent_at=parse_date(item.get("date")),
                pages=_int(item.get("pages")),
                extra=extra,
            )
        )
    return JobList(tuple(jobs), tuple(unreadable), frozenset(unknown), frozenset(words))


def parse_folders(envelope: Envelope) -> dict[str, str]:
    """getFaxFolders as ``{name: id}`` (names as given; unreadable entries skipped)."""
    items, _ = _records(envelope, "folders")
    folders: dict[str, str] = {}
    for item in items:
        if isinstance(item, dict):
            folder_id = _fax_id(item.get("id"))
            name = _scalar(item.get("name"))
            if folder_id is not None and name:
                folders[name] = folder_id
    return folders


# ---------------------------------------------------------------- streamed base64

#: The JSON key holding the fax (getFaxMessagePDF).
BASE64_KEY = b'"message_base64"'
#: Bytes of the answer outside the base64 value kept to read its status (and report it).
MAX_ENVELOPE = 64 * 1024
_VALUE_START = re.compile(rb'\s*:\s*"')
#: The end of the value, or a backslash that does not start "\/" (at a chunk's end too).
_VALUE_STOP = re.compile(rb'"|\\(?!/)')
_ESCAPES = {b"/": b"/", b"\\": b"\\", b"n": b"", b"r": b"", b"t": b""}


class Base64FieldDecoder:
    """Decode the ``message_base64`` string of a JSON answer as the answer streams in.

    :meth:`feed` takes the body in chunks of any size and returns the bytes
    decoded so far; :meth:`finish` checks that the value ended, decodes the
    rest and returns the envelope without the value (``status`` etc.), read by
    :func:`parse_envelope` so an error status still raises.  JSON escapes
    PHP adds (``\\/``) are undone; a character outside the base64 alphabet is
    a :class:`DownloadError`, because a corrupt fax must not be delivered.
    """

    def __init__(self, operation: str = "getFaxMessagePDF") -> None:
        self.operation = operation
        self._state = "before"  # before -> value -> after
        self._outside = bytearray()  # the answer without the value, bounded
        self._pending = b""  # base64 characters not yet a multiple of 4
        self._escape = False
        self._padded = False

    def feed(self, chunk: bytes) -> bytes:
        """The bytes decoded from ``chunk`` (and what earlier chunks left over)."""
        out = bytearray()
        while chunk:
            chunk = self._value(chunk, out) if self._state == "value" else self._envelope(chunk)
        return bytes(out)

    def _envelope(self, chunk: bytes) -> bytes:
        room = MAX_ENVELOPE - len(self._outside)
        if room <= 0:
            raise DownloadError(
                f"answer has more than {MAX_ENVELOPE} bytes around the fax; faxd retries later",
                operation=self.operation,
            )
        if self._state == "after":
            self._outside += chunk[:room]
            return chunk[room:] if len(chunk) > room else b""
        self._outside += chunk[:room]
        rest = chunk[room:]
        start = self._outside.find(BASE64_KEY)
        if start < 0:
            return rest
        match = _VALUE_START.match(self._outside, start + len(BASE64_KEY))
        if match is None:
            # Not (yet) a string: wait for more; finish() reads whatever it is.
            return rest
        tail = bytes(self._outside[match.end() :]) + rest
        del self._outside[match.end() :]
        self._state = "value"
        return tail

    def _value(self, chunk: bytes, out: bytearray) -> bytes:
        text = bytearray()
        index = 0
        end = -1
        while index < len(chunk):
            if self._escape:
                replaced = _ESCAPES.get(chunk[index : index + 1])
                if replaced is None:
                    raise self._corrupt("an unexpected escape in the base64 text")
                text += replaced
                self._escape = False
                index += 1
                continue
            # Up to the closing quote or an escape other than PHP's "\/" (one
            # per 64 base64 characters): those are undone in one go.
            found = _VALUE_STOP.search(chunk, index)
            stop = found.start() if found else len(chunk)
            text += chunk[index:stop].replace(b"\\/", b"/")
            if stop == len(chunk):
                break
            if chunk[stop : stop + 1] == b"\\":
                self._escape = True
                index = stop + 1
                continue
            end = stop
            break
        self._decode(bytes(text), out, final=end >= 0)
        if end < 0:
            return b""
        self._state = "after"
        self._outside += b'"'
        return chunk[end + 1 :]

    def _decode(self, text: bytes, out: bytearray, *, final: bool) -> None:
        data = self._pending + text
        if self._padded and data:
            raise self._corrupt("base64 text goes on after its padding")
        usable = len(data) if final else len(data) - len(data) % 4
        if final and usable % 4:
            raise self._corrupt("base64 text whose length is not a multiple of 4")
        try:
            out += binascii.a2b_base64(data[:usable], strict_mode=True)
        except binascii.Error as exc:
            raise self._corrupt(f"undecodable base64 ({exc})") from None
        self._padded = b"=" in data[:usable]
        self._pending = data[usable:]

    def _corrupt(self, what: str) -> DownloadError:
        return DownloadError(
            f"the fax's base64 is corrupt ({what}); faxd retries later", operation=self.operation
        )

    def finish(self) -> Envelope:
        """The answer around the value; raises for an error status or a missing/unended value."""
        outside = bytes(self._outside)
        if self._state == "value":
            raise DownloadError(
                "answer ended inside message_base64 (cut off); faxd retries later",
                operation=self.operation,
            )
        envelope = parse_envelope(outside, self.operation)
        if self._state == "before":
            if envelope.empty:
                raise NotFoundError(
                    f"VoIP.ms said {envelope.status}: the fax is not on the account",
                    operation=self.operation,
                    code=envelope.status,
                )
            raise DownloadError(
                "answer says success but carries no message_base64; faxd retries later",
                operation=self.operation,
            )
        return envelope


# ---------------------------------------------------------------- callbacks


def pick_callback(body: bytes, content_type: str) -> Hint:
    """A VoIP.ms ``url_callback`` POST always means "a fax arrived: poll now".

    The post is multipart with the file part ``pdf`` and the fields ``from``
    and ``to`` [1].  None of it is read: it carries no fax id, and the fax
    faxd delivers is the one it downloads and verifies through the API, never
    a file someone could post to the listener.
    """
    del body, content_type
    return Hint(HintKind.INBOUND)
