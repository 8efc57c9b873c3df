"""One method per VoIP.ms API method faxd uses, with the retry policy around them.

The provider adapter (:mod:`faxd.providers.voipms.provider`) talks to VoIP.ms
only through :class:`VoipmsClient`.  Reads are GETs with the credentials and
``method`` in the query string, as every public client does; the send is a
form POST, because a base64 PDF does not fit in a URL.  Transient faults are
retried with exponential backoff and jitter, at least a minute after
``api_limit_exceeded`` (a per-minute limit); the rest are raised at once.

``sendFaxMessage`` is posted again only when the previous POST certainly never
left this machine, or VoIP.ms answered it with a status (then it was refused,
not queued).  Any other doubt is :class:`~faxd.errors.OutcomeUnknownError`:
the caller looks in the SENT folder before anything is sent again
(DESIGN invariant 5).  ``deleteFaxMessage`` is retried like a read: a second
delete of a fax the first one removed answers ``invalid_fax_id``
(:class:`~faxd.errors.NotFoundError`, "already gone").
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import TypeVar

import structlog

from faxd.clock import Clock, system_clock
from faxd.errors import OutcomeUnknownError, ProviderError, TransientError
from faxd.providers.base import Downloaded
from faxd.providers.faxage.transport import was_sent
from faxd.providers.voipms import wire
from faxd.providers.voipms.notices import Notices
from faxd.providers.voipms.sendbody import SendBody
from faxd.providers.voipms.transport import Params, VoipmsTransport
from faxd.redact import register_secret

__all__ = ["VoipmsClient"]

log = structlog.get_logger(__name__)

_T = TypeVar("_T")
_jitter = random.SystemRandom()


class VoipmsClient:
    """A VoIP.ms account: ``username`` (the account e-mail) and its API password."""

    def __init__(
        self,
        username: str,
        password: str,
        *,
        base_url: str = "https://voip.ms/api/v1/rest.php",
        timeout: float = 60.0,
        transport: VoipmsTransport | None = None,
        retries: int = 3,
        backoff: float = 1.0,
        rate_limit_backoff: float = wire.RATE_LIMIT_BACKOFF,
        sleep: Callable[[float], None] = time.sleep,
        clock: Clock = system_clock,
    ) -> None:
        register_secret(password)
        self.username = username
        self.base_url = base_url
        self.retries = max(0, retries)
        self.backoff = backoff
        self.rate_limit_backoff = rate_limit_backoff
        self._password = password
        self._sleep = sleep
        self.notices = Notices(clock=clock)
        self.transport = transport or VoipmsTransport(base_url, timeout=timeout)

    def __repr__(self) -> str:
        return f"VoipmsClient({self.username!r}, base_url={self.base_url!r})"

    def close(self) -> None:
        """Release the HTTP connections."""
        self.transport.close()

    # ------------------------------------------------------------------ plumbing

    def _params(self, method: str, fields: dict[str, str | None]) -> Params:
        params = {"api_username": self.username, "api_password": self._password, "method": method}
        params.update({k: v for k, v in fields.items() if v is not None})
        return params

    def _delay(self, attempt: int, exc: ProviderError) -> float:
        delay = float(self.backoff * 2.0**attempt * (0.5 + _jitter.random()))
        if exc.code == "api_limit_exceeded":
            delay = max(delay, self.rate_limit_backoff)
        return delay

    def _retrying(self, operation: str, call: Callable[[], _T]) -> _T:
        attempt = 0
        while True:
            try:
                return call()
            except ProviderError as exc:
                if not exc.transient or attempt >= self.retries:
                    raise
                delay = self._delay(attempt, exc)
                log.warning(
                    "voipms.retry",
                    operation=operation,
                    attempt=attempt + 1,
                    error=type(exc).__name__,
                    code=exc.code,
                    detail=exc.message,
                    delay=round(delay, 2),
                )
                self._sleep(delay)
                attempt += 1

    def _get(self, method: str, **fields: str | None) -> wire.Envelope:
        params = self._params(method, fields)
        return self._retrying(method, lambda: self.transport.get(params, operation=method))

    # ------------------------------------------------------------------ reading

    def fax_messages(
        self, start: date, end: date, *, folder: str | None = None, fax_id: str | None = None
    ) -> wire.Envelope:
        """getFaxMessages for ``start``..``end`` (dates in the API's zone)."""
        return self._get(
            "getFaxMessages",
            **{
                "from": wire.format_day(start),
                "to": wire.format_day(end),
                "folder": folder,
                "id": fax_id,
            },
        )

    def received(self, start: date, end: date, folder: str) -> wire.FaxList:
        """The faxes in ``folder`` dated ``start``..``end``; surprises are logged once."""
        listing = wire.parse_faxes(self.fax_messages(start, end, folder=folder))
        self.notices.unknown_fields("getFaxMessages", listing.unknown_fields)
        self.notices.unreadable("getFaxMessages", listing.unreadable)
        return listing

    def sent(self, start: date, end: date) -> wire.JobList:
        """The faxes of the SENT folder dated ``start``..``end``, as job statuses."""
        listing = wire.parse_sent(self.fax_messages(start, end, folder="SENT"))
        self.notices.unknown_fields("getFaxMessages", listing.unknown_fields)
        self.notices.unknown_statuses("getFaxMessages", listing.unknown_statuses)
        self.notices.unreadable("getFaxMessages", listing.unreadable)
        return listing

    def folders(self) -> dict[str, str]:
        """getFaxFolders as ``{name: id}``."""
        return wire.parse_folders(self._get("getFaxFolders"))

    def download(self, fax_id: str, dest: Path, *, max_bytes: int | None = None) -> Downloaded:
        """getFaxMessagePDF to ``dest``: decoded as it streams, verified, fsync'd."""
        params = self._params("getFaxMessagePDF", {"id": fax_id})
        result = self._retrying(
            "getFaxMessagePDF",
            lambda: self.transport.download_fax(
                params, dest, operation="getFaxMessagePDF", max_bytes=max_bytes
            ),
        )
        log.info("voipms.downloaded", fax_id=fax_id, size=result.size, sha256=result.sha256)
        return result

    # ------------------------------------------------------------------ changing

    def delete(self, fax_id: str) -> None:
        """deleteFaxMessage."""
        self._get("deleteFaxMessage", id=fax_id)

    def move(self, fax_id: str, folder_id: str) -> None:
        """moveFaxMessage to the folder with id ``folder_id``."""
        self._get("moveFaxMessage", fax_id=fax_id, folder_id=folder_id)

    def create_folder(self, name: str) -> None:
        """setFaxFolder: create a folder called ``name``."""
        self._get("setFaxFolder", name=name)

    def send(
        self,
        path: Path,
        *,
        size: int,
        sha256: str,
        to_number: str,
        from_name: str,
        from_number: str,
        station_id: str | None = None,
    ) -> None:
        """sendFaxMessage; VoIP.ms gives no id back (find the fax in the SENT folder)."""
        pairs = [
            ("api_username", self.username),
            ("api_password", self._password),
            ("method", "sendFaxMessage"),
            ("to_number", to_number),
            ("from_name", from_name),
            ("from_number", from_number),
        ]
        if station_id:
            pairs.append(("station_id", station_id))
        attempt = 0
        while True:
            try:
                # A fresh body per attempt: the file is checked again each time.
                with SendBody(pairs, path, size=size, sha256=sha256) as body:
                    self.transport.post(body, operation="sendFaxMessage")
            except ProviderError as exc:
                refused = exc.code is not None  # VoIP.ms answered: nothing was queued
                if exc.transient and (refused or not was_sent(exc)) and attempt < self.retries:
                    delay = self._delay(attempt, exc)
                    log.warning(
                        "voipms.send_retry", attempt=attempt + 1, detail=exc.message, delay=delay
                    )
                    self._sleep(delay)
                    attempt += 1
                    continue
                if isinstance(exc, TransientError) and not refused and was_sent(exc):
                    raise OutcomeUnknownError(
                        f"{exc.message}; the fax may or may not have been queued, faxd looks "
                        "for it in the SENT folder before sending again",
                        operation="sendFaxMessage",
                    ) from exc
                raise
            log.info("voipms.sent", to_number=to_number)
            return
