"""faxnummer.de answers, parsed without I/O, whatever format they come in.

The faxnummer.de document names the fields of each answer (``WR_Status``,
``WR_Comment``, ``WR_Request_UUID``, ``WR_DataList_<n>_Status``...) but not how
the body is written, and no public client shows it.  So every answer is read
defensively: JSON (nested objects and lists are flattened into those names),
XML (elements and attributes, likewise) or ``KEY=VALUE`` lines (or one
``a=1&b=2`` line).  Keys are compared without regard to case, since the
document itself writes ``ok`` and ``OK``.  :class:`Answer` says which format was
seen, so the client can log it once (:mod:`faxd.providers.faxnummer.notices`)
and an operator can confirm it against a real account.

What the answer means is decided here too: :func:`parse_send` returns the job's
``WR_Request_UUID``, :func:`parse_status` a :class:`~faxd.providers.base.JobStatus`,
and a ``failed`` answer becomes the right class of the :mod:`faxd.errors` tree
(:func:`raise_for_status`).
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from urllib.parse import parse_qsl

from faxd.errors import (
    AuthError,
    NotFoundError,
    PermanentError,
    ProviderError,
    TransientError,
)
from faxd.providers.base import JobOutcome, JobStatus
from faxd.providers.faxnummer.q850 import describe
from faxd.redact import summarize_body

__all__ = [
    "FORMATS",
    "SEND",
    "STATUS",
    "Answer",
    "Format",
    "parse_answer",
    "parse_send",
    "parse_status",
    "raise_for_status",
]

SEND = "SendFax"
STATUS = "GetSentFaxStatus"

Format = Literal["json", "xml", "kv"]
FORMATS: tuple[Format, ...] = ("json", "xml", "kv")

#: Status words that mean "not finished yet" (RETRY: a try failed, another will follow).
PENDING_WORDS = frozenset({"NEW", "RUNNING", "RETRY"})
#: Answers longer than this are not faxnummer.de answers (they are a few hundred bytes).
MAX_ANSWER = 1024 * 1024

_DATE = "%Y-%m-%d %H:%M:%S"
_ITEM = re.compile(r"^wr_datalist_(\d+)_(.+)$")


@dataclass(frozen=True)
class Answer:
    """One answer: its fields with case-folded keys, and the format it came in."""

    format: Format
    fields: Mapping[str, str]

    def get(self, key: str, default: str = "") -> str:
        """The value of ``key`` in any case, stripped; ``default`` when absent."""
        return self.fields.get(key.casefold(), default).strip()


# ------------------------------------------------------------------ formats


def parse_answer(body: bytes | str, operation: str) -> Answer:
    """Read ``body`` as JSON, XML or ``KEY=VALUE`` lines (chosen by its first character).

    An answer that is none of them, or is one of them but broken, raises
    :class:`TransientError` with a redacted excerpt: a proxy's error page or a
    cut-off body is a fault of the moment, not of the request.
    """
    if len(body) > MAX_ANSWER:
        raise TransientError(
            f"answer of {len(body)} bytes is far longer than any faxnummer.de answer; "
            "check base_url in [faxnummer]",
            operation=operation,
        )
    text = _decode(body) if isinstance(body, bytes) else body
    text = text.lstrip("\ufeff").strip()
    if not text:
        raise TransientError(
            "empty answer from faxnummer.de; faxd retries later", operation=operation
        )
    try:
        if text[0] in "{[":
            return Answer("json", _flat_json(json.loads(text)))
        if text[0] == "<":
            return Answer("xml", _parse_xml(text))
        fields = _parse_kv(text)
    except (ValueError, ET.ParseError) as exc:
        raise _unreadable(text, operation, f"{type(exc).__name__}: {exc}") from None
    if not fields:
        raise _unreadable(text, operation, "no KEY=VALUE line")
    return Answer("kv", fields)


def _decode(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return body.decode("latin-1")


def _unreadable(text: str, operation: str, why: str) -> TransientError:
    return TransientError(
        f"cannot read the answer as JSON, XML or KEY=VALUE lines ({why[:120]}): "
        f"{summarize_body(text, limit=160)!r}; faxd retries later",
        operation=operation,
    )


def _flat_json(value: Any) -> dict[str, str]:
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if not isinstance(value, dict):
        raise ValueError("the JSON answer is not an object")
    return dict(_flatten("", value))


def _flatten(prefix: str, value: Any) -> Iterator[tuple[str, str]]:
    """``{"a": {"b": 1}, "l": [{"c": 2}]}`` -> ``a_b=1``, ``l_1_c=2`` (keys case-folded)."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _flatten(_join(prefix, str(key)), item)
    elif isinstance(value, list):
        for index, item in enumerate(value, start=1):
            yield from _flatten(_join(prefix, str(index)), item)
    elif value is None:
        yield prefix, ""
    elif isinstance(value, bool):
        yield prefix, "true" if value else "false"
    else:
        yield prefix, str(value)


def _join(prefix: str, key: str) -> str:
    key = key.strip().casefold()
    return f"{prefix}_{key}" if prefix else key


def _parse_xml(text: str) -> dict[str, str]:
    """Elements and attributes under the root, flattened like JSON.

    Repeated sibling tags are a list: they are numbered under their parent's
    name, so ``<WR_DataList><item><Status>`` reads as ``wr_datalist_1_status``.
    """
    if re.search(r"<!(DOCTYPE|ENTITY)", text, re.IGNORECASE):
        # A DTD can define entities that expand without bound; no answer needs one.
        raise ValueError("the XML answer declares a DTD or entities")
    root = ET.fromstring(text)  # noqa: S314 - DTDs refused above, so no entity expansion
    fields: dict[str, str] = {}
    _xml_into(root, "", fields)
    return fields


def _xml_into(element: ET.Element, prefix: str, fields: dict[str, str]) -> None:
    for name, value in element.attrib.items():
        fields[_join(prefix, _local(name))] = value
    children = list(element)
    if not children:
        if prefix:
            fields[prefix] = (element.text or "").strip()
        return
    counts: dict[str, int] = {}
    for child in children:
        counts[_local(child.tag)] = counts.get(_local(child.tag), 0) + 1
    seen: dict[str, int] = {}
    for child in children:
        tag = _local(child.tag)
        seen[tag] = seen.get(tag, 0) + 1
        if counts[tag] == 1:
            _xml_into(child, _join(prefix, tag), fields)
        else:  # a list, e.g. <WR_DataList><item>..</item><item>..</item>: number the items
            _xml_into(child, _join(prefix or tag, str(seen[tag])), fields)


def _local(tag: str) -> str:
    """A tag or attribute name without its ``{namespace}``."""
    return tag.rsplit("}", 1)[-1]


def _parse_kv(text: str) -> dict[str, str]:
    """``KEY=VALUE`` per line, or a single ``a=1&b=2`` line; other lines are skipped."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) == 1 and "&" in lines[0]:
        pairs = parse_qsl(lines[0], keep_blank_values=True)
        return {key.strip().casefold(): value for key, value in pairs if key.strip()}
    fields: dict[str, str] = {}
    for line in lines:
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        fields[key.strip().casefold()] = value
    return fields


# ------------------------------------------------------------------ meaning


def raise_for_status(answer: Answer, operation: str) -> None:
    """Raise the error a ``WR_Status`` other than ``ok`` stands for; return when ``ok``."""
    status = answer.get("WR_Status").casefold()
    if status == "ok":
        return
    comment = answer.get("WR_Comment")
    if not status:
        raise TransientError(
            f"the {answer.format} answer has no WR_Status field (keys: "
            f"{', '.join(sorted(answer.fields))[:160]}); faxd retries later",
            operation=operation,
        )
    raise _failure(status, comment, operation)


def _failure(status: str, comment: str, operation: str) -> ProviderError:
    """The error for ``WR_Status`` = ``status`` with ``WR_Comment`` = ``comment``."""
    said = f"faxnummer.de answered {status!r}: {comment or '(no comment)'}"[:300]
    lowered = comment.casefold()
    if "productcode" in lowered or "product code" in lowered:
        return AuthError(
            f"{said}. The product code is wrong: set product_code in [faxnummer] to the "
            "password of the fax account (sProductCode, the one of the accXXXXX/sipXXXXX "
            "product login), not the password of the customer centre (Kundencenter)",
            operation=operation,
            code=status,
        )
    if "webrequest" in lowered or "not available for this account" in lowered:
        return AuthError(
            f"{said}. The login is wrong or the tariff has no API access: set product_login "
            "in [faxnummer] to the product login (sProductLogin, accXXXXX or sipXXXXX), "
            "not the customer-centre (Kundencenter) login, and check that the tariff "
            "includes webrequests",
            operation=operation,
            code=status,
        )
    if "fax wrong format" in lowered:
        return PermanentError(
            f"{said}. The file is not a PDF faxnummer.de can read; export it again as PDF",
            operation=operation,
            code=status,
        )
    if "destination wrong format" in lowered:
        return PermanentError(
            f"{said}. Check the fax number (international form, e.g. 0049 30 1234567)",
            operation=operation,
            code=status,
        )
    if "email wrong format" in lowered:
        return PermanentError(
            f"{said}. Set status_email in [faxnummer] to a valid e-mail address",
            operation=operation,
            code=status,
        )
    if any(word in lowered for word in ("credit", "guthaben", "balance", "funds")):
        return PermanentError(
            f"{said}. Top up the prepaid balance in the faxnummer.de customer centre",
            operation=operation,
            code=status,
        )
    if "failed to send" in lowered or "internal" in lowered:
        return TransientError(f"{said}; faxd tries again later", operation=operation, code=status)
    if operation == STATUS and any(w in lowered for w in ("not found", "unknown", "no job")):
        return NotFoundError(
            f"{said}; faxnummer.de has no such job", operation=operation, code=status
        )
    return PermanentError(
        f"{said}. faxd does not know this answer; check the account in the faxnummer.de "
        "customer centre",
        operation=operation,
        code=status,
    )


def parse_send(body: bytes | str) -> tuple[str, Answer]:
    """The ``WR_Request_UUID`` of a SendFax answer (and the answer, to log its format)."""
    answer = parse_answer(body, SEND)
    raise_for_status(answer, SEND)
    uuid = answer.get("WR_Request_UUID") or answer.get("JobUUID")
    if not uuid:
        raise TransientError(
            f"SendFax answered ok without a WR_Request_UUID ({answer.format}: "
            f"{summarize_body(_render(answer), limit=160)!r})",
            operation=SEND,
        )
    if len(uuid) > 200 or not uuid.isprintable():
        raise TransientError(
            "SendFax answered a WR_Request_UUID faxd cannot use: "
            f"{summarize_body(uuid, limit=60)!r}",
            operation=SEND,
        )
    return uuid, answer


def _render(answer: Answer) -> str:
    return " ".join(f"{key}={value}" for key, value in answer.fields.items())


@dataclass(frozen=True)
class StatusResult:
    """A GetSentFaxStatus answer read: the job's status and words it did not know."""

    job: JobStatus
    answer: Answer
    unknown_words: tuple[str, ...] = ()


def parse_status(body: bytes | str, uuid: str) -> StatusResult:
    """The status of job ``uuid``: every recipient entry folded into one outcome.

    faxd sends one recipient per job, but the answer is a list
    (``WR_DataList_<n>_...``); with several entries the job is pending while any
    is, failed if any failed, and sent when all were.  An ``ok`` answer with no
    entries is pending: the job exists (SendFax gave its id) but has not been
    queued yet.  A status word faxd does not know is pending too, and returned
    in ``unknown_words`` so the client can log it once: calling an unknown word
    a failure could make a delivered fax look lost.
    """
    answer = parse_answer(body, STATUS)
    raise_for_status(answer, STATUS)
    entries = _entries(answer)
    if not entries:
        return StatusResult(JobStatus(uuid, JobOutcome.PENDING, "NEW"), answer)
    unknown: list[str] = []
    outcomes: list[tuple[JobOutcome, str, Mapping[str, str]]] = []
    for entry in entries:
        word = entry.get("status", "").strip().upper()
        outcome = _outcome(word)
        if outcome is None:
            unknown.append(word or "(empty)")
            outcome = JobOutcome.PENDING
        outcomes.append((outcome, word, entry))
    chosen = _fold(outcomes)
    return StatusResult(_job(uuid, *chosen, count=len(entries)), answer, tuple(unknown))


def _outcome(word: str) -> JobOutcome | None:
    compact = re.sub(r"[^A-Z]", "", word)
    if compact in PENDING_WORDS:
        return JobOutcome.PENDING
    if compact == "DONEOK":
        return JobOutcome.SENT
    if compact == "DONEERROR":
        return JobOutcome.FAILED
    return None


def _fold(
    outcomes: list[tuple[JobOutcome, str, Mapping[str, str]]],
) -> tuple[JobOutcome, str, Mapping[str, str]]:
    for wanted in (JobOutcome.PENDING, JobOutcome.FAILED):
        for item in outcomes:
            if item[0] is wanted:
                return item
    return outcomes[0]


def _entries(answer: Answer) -> list[dict[str, str]]:
    """``WR_DataList_<n>_<field>`` grouped by ``n`` (in order); the count field is a hint only."""
    grouped: dict[int, dict[str, str]] = {}
    for key, value in answer.fields.items():
        match = _ITEM.match(key)
        if match:
            grouped.setdefault(int(match.group(1)), {})[match.group(2)] = value.strip()
    return [grouped[n] for n in sorted(grouped)]


def _job(
    uuid: str, outcome: JobOutcome, word: str, entry: Mapping[str, str], *, count: int
) -> JobStatus:
    cause = entry.get("statusq850cause", "")
    reason = ""
    if outcome is JobOutcome.FAILED:
        reason = f"faxnummer.de could not deliver the fax: {describe(cause)}"
    elif word.startswith("RETRY"):
        left = entry.get("sendtriesremaining", "")
        reason = f"last try failed ({describe(cause)}); " + (
            f"{left} tries left" if left else "faxnummer.de tries again"
        )
    extra = {
        name: entry[key]
        for name, key in (
            ("q850", "statusq850cause"),
            ("remote_tsi", "remotetsi"),
            ("duration", "connectionduration"),
            ("tries_left", "sendtriesremaining"),
            ("from", "fromnumber"),
            ("reference", "faxfilename"),
        )
        if entry.get(key)
    }
    if count > 1:
        extra["recipients"] = str(count)
    return JobStatus(
        remote_id=uuid,
        outcome=outcome,
        status=word or "?",
        reason=reason,
        number=_international(entry.get("destinationnumber", "")),
        sent_at=_date(entry.get("createdatetime", "")),
        completed_at=_date(entry.get("lastchangedatetime", ""))
        if outcome is not JobOutcome.PENDING
        else None,
        pages_sent=_int(entry.get("pagessent", "")),
        extra=extra,
    )


def _international(number: str) -> str:
    """``0049301234567`` (faxnummer.de's form) as ``+49301234567``; anything else as given."""
    number = number.strip()
    return "+" + number[2:] if number.startswith("00") and number.isdigit() else number


def _date(text: str) -> datetime | None:
    try:
        return datetime.strptime(text.strip(), _DATE)
    except ValueError:
        return None


def _int(text: str) -> int | None:
    text = text.strip()
    return int(text) if text.isdigit() else None
