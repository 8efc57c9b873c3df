"""What each provider's callback looks like: the answer it waits for and the id it carries.

The listener (:mod:`faxd.web.app`) is the same for every provider; what differs
is here, one :class:`ProviderHooks` per provider in :data:`PROVIDERS`.  A
callback is a hint, never the truth (DESIGN "HTTP listener"): :func:`pick`
only decides whether the body speaks of a sent job (a status follow-up now) or
of a received fax (a poll now), and reads the id for the log.  Nothing else in
the body is used, and no value from it becomes a path or a fax.

FAXAGE (``DESIGN`` "FAXAGE wire notes"): ``url_notify`` posts the fields of
the job's status record as a form (``jobid``, ``commid``, ``shortstatus``...);
the undocumented inbound push posts ``recvid``, ``recvdate``, ``starttime``,
``cid``, ``dnis``, ``pagecount`` and ``tsid``.  It waits for ``200`` and
reads nothing else.  VoIP.ms posts its ``url_callback`` as multipart (the fax
as part ``pdf``, fields ``from`` and ``to``) and retries until the answer is
``ok``; its body is never read, as it names no id.  iFax's webhooks post JSON
(``direction``, ``jobId``, ``faxStatus``...): an outbound one asks for a
status follow-up, anything else for a poll.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import parse_qs

from faxd.providers.faxage.fields import MAX_ID
from faxd.providers.ifax.wire import pick_callback as ifax_pick


class HintKind(StrEnum):
    OUTBOUND = "outbound"  # a sent job changed: ask for its status now
    INBOUND = "inbound"  # a fax arrived: poll now


@dataclass(frozen=True)
class Hint:
    """What a callback asks faxd to do, and the provider's id it named (for the log)."""

    kind: HintKind
    ref: int | None = None


@dataclass(frozen=True)
class Reply:
    """The HTTP answer a provider waits for."""

    status: str = "200 OK"
    content_type: str = "text/plain; charset=utf-8"
    body: bytes = b"OK"


#: Largest callback body read; a status record or an iFax webhook is a few hundred bytes.
MAX_BODY = 64 * 1024
#: A VoIP.ms callback carries the whole fax as its ``pdf`` part: it is taken in (so
#: VoIP.ms hears ``ok`` and stops retrying) but never read.
VOIPMS_MAX_BODY = 20 * 1024 * 1024


@dataclass(frozen=True)
class ProviderHooks:
    """One provider's callbacks: how to answer, how to read a body into a hint."""

    name: str
    reply: Reply
    pick: Callable[[bytes, str], Hint]
    #: Bodies declared longer are refused (413) before a byte is read.
    max_body: int = MAX_BODY
    #: Whether :attr:`pick` looks at the body at all (else it is not read into memory).
    reads_body: bool = True
    #: Where the hook URL goes in the provider's portal (``faxd check-config`` says so).
    portal: str = ""


#: Form fields read at most (a status record has about a dozen).
MAX_FIELDS = 64


def _faxage_pick(body: bytes, content_type: str) -> Hint:
    """``jobid`` -> follow-up; ``recvid`` (or anything else) -> poll."""
    del content_type  # FAXAGE posts application/x-www-form-urlencoded, but it is not relied on
    try:
        fields = parse_qs(body.decode("latin-1"), max_num_fields=MAX_FIELDS)
    except ValueError:  # more fields than any real callback
        return Hint(HintKind.INBOUND)
    if "jobid" in fields:
        return Hint(HintKind.OUTBOUND, _id(fields["jobid"]))
    return Hint(HintKind.INBOUND, _id(fields.get("recvid", [])))


def _id(values: list[str]) -> int | None:
    """The first value as a provider id, or ``None`` when it is not one."""
    text = values[0].strip() if values else ""
    if not text.isascii() or not text.isdigit() or len(text) > 19:
        return None
    number = int(text)
    return number if number <= MAX_ID else None


FAXAGE = ProviderHooks(
    "faxage", Reply(), _faxage_pick, portal="the inbound push FAXAGE support sets up"
)


def _ifax_pick(body: bytes, content_type: str) -> Hint:
    """iFax's JSON webhook (or its legacy multipart callback): see the ifax wire module."""
    kind, ref = ifax_pick(body, content_type)
    return Hint(HintKind(kind), ref)


IFAX = ProviderHooks(
    "ifax", Reply(), _ifax_pick, portal="Webhooks: inbound fax events and sent fax status"
)


def _voipms_pick(body: bytes, content_type: str) -> Hint:
    # Imported here: the VoIP.ms wire module imports Hint from this module.
    from faxd.providers.voipms.wire import pick_callback

    return pick_callback(body, content_type)


#: VoIP.ms retries its url_callback until the answer is "ok".
VOIPMS = ProviderHooks(
    "voipms",
    Reply(body=b"ok"),
    _voipms_pick,
    max_body=VOIPMS_MAX_BODY,
    reads_body=False,
    portal="URL Callback of each fax number (with retry)",
)

#: Every provider that can call back, by the name in the callback path.
PROVIDERS: dict[str, ProviderHooks] = {
    hooks.name: hooks for hooks in (FAXAGE, VOIPMS, IFAX)
}
