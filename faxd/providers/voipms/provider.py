"""VoIP.ms behind :mod:`faxd.providers.base`: date-window listing, download, release, send.

VoIP.ms has no "new since" cursor: ``getFaxMessages`` lists a folder between
two dates (``from``/``to``, whole days in the API's zone, at most 92 days
apart).  So the inbound cursor is a time, not an id: the last successful poll
minus :data:`SAFETY_MARGIN`, written as an ISO date-time on the last batch of a
listing that was read to its end.  Each poll lists from that day to today in
the API's zone (``[voipms] timezone``), in windows of at most
:data:`WINDOW_DAYS` days when the daemon was off for longer; the ledger
dedupes by fax id, so the overlap costs nothing and a fax VoIP.ms files late
is still taken.  A fresh install looks back :data:`FRESH_DAYS` days (a fax
still in the folder was never processed), or to ``since``.

After delivery a fax is deleted, moved to ``archive_folder`` (created on first
use), or kept, as ``after_delivery`` says.  ``sendFaxMessage`` returns no id:
:class:`VoipmsOutbound` says so in its capabilities, and the outbound core
finds each job in the SENT folder through :meth:`VoipmsOutbound.recent_jobs`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import structlog

from faxd.clock import Clock, system_clock
from faxd.errors import ConfigError, PermanentError
from faxd.providers.base import (
    Capabilities,
    Downloaded,
    JobStatus,
    ListingBatch,
    Release,
    SendRequest,
    StatusAnswer,
    Unreadable,
)
from faxd.providers.voipms.client import VoipmsClient

if TYPE_CHECKING:
    from faxd.config import Config
    from faxd.config.model import VoipmsSettings

__all__ = [
    "VoipmsChecker",
    "VoipmsInbound",
    "VoipmsOutbound",
    "configured",
    "make_checker",
    "make_inbound",
    "make_outbound",
]

log = structlog.get_logger(__name__)

NAME = "voipms"
#: Days one getFaxMessages request spans at most, both ends included
#: (VoIP.ms refuses ranges over 92 days with ``invalid_daterange``).
WINDOW_DAYS = 92
#: How far back a fresh install looks (everything still in the folder).
FRESH_DAYS = 90
#: How far before the last successful poll the next window starts.
SAFETY_MARGIN = timedelta(days=1)
#: How far back statuses() looks for a job in the SENT folder.
STATUS_DAYS = 30
#: File types sendFaxMessage takes as they are (the documents).
SEND_TYPES = frozenset({"pdf", "txt", "jpg", "gif", "png", "tif"})
#: Leeway between faxd's clock and VoIP.ms's when matching send times.
CLOCK_SLACK = timedelta(minutes=5)


def configured(config: Config) -> bool:
    """Whether the config has a ``[voipms]`` section."""
    return config.voipms is not None


def _settings(config: Config) -> VoipmsSettings:
    settings = config.voipms
    if settings is None:
        raise ConfigError("no [voipms] section in the config; add one to use VoIP.ms")
    return settings


def _zone(settings: VoipmsSettings) -> ZoneInfo:
    try:
        return ZoneInfo(settings.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"[voipms] timezone {settings.timezone!r} is not a known time zone; "
            "use a name like America/New_York"
        ) from None


def _release(settings: VoipmsSettings) -> Release:
    try:
        release = Release(settings.after_delivery)
    except ValueError:
        raise ConfigError(
            f"[voipms] after_delivery {settings.after_delivery!r} is not one of delete, move, keep"
        ) from None
    if release is Release.MOVE and settings.archive_folder.strip().upper() in (
        settings.folder.strip().upper(),
        "",
    ):
        raise ConfigError(
            f"[voipms] archive_folder {settings.archive_folder!r} must name another folder than "
            f"folder {settings.folder!r}, or delivered faxes would be listed again"
        )
    return release


def capabilities(settings: VoipmsSettings) -> Capabilities:
    """What this VoIP.ms account can do as configured."""
    return Capabilities(
        receive=True,
        send=bool(settings.from_number),
        release=_release(settings),
        cursor_listing=False,
        send_types=SEND_TYPES,
        send_returns_id=False,
        reconcile=True,
        cancel=False,
    )


def _client(settings: VoipmsSettings, kw: dict[str, Any]) -> VoipmsClient:
    client = kw.get("client")
    if isinstance(client, VoipmsClient):
        return client
    return VoipmsClient(
        settings.username,
        settings.password,
        base_url=settings.base_url,
        timeout=settings.timeout,
        clock=kw.get("clock", system_clock),
    )


def windows(start: date, end: date) -> list[tuple[date, date]]:
    """``start``..``end`` cut into spans of at most :data:`WINDOW_DAYS` days, oldest first."""
    spans: list[tuple[date, date]] = []
    while True:
        last = min(end, start + timedelta(days=WINDOW_DAYS - 1))
        spans.append((start, last))
        if last >= end:
            return spans
        start = last + timedelta(days=1)


class _Api:
    """What both halves share: the client, the zone and how to read the clock there."""

    name = NAME

    def __init__(self, settings: VoipmsSettings, client: VoipmsClient, clock: Clock) -> None:
        self.settings = settings
        self.client = client
        self.account = settings.account
        self.capabilities = capabilities(settings)
        self.zone = _zone(settings)
        #: The zone of the API's naive dates: routing by hours and matching sends read it.
        self.wall_clock_zone = self.zone
        self._clock = clock

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.account!r})"

    def local(self, when: datetime) -> datetime:
        """An aware time as the API's naive wall clock."""
        return when.astimezone(self.zone).replace(tzinfo=None)

    def today(self, now: datetime) -> date:
        return self.local(now).date()


class VoipmsInbound(_Api):
    """List the configured folder over a date window, download, release."""

    def __init__(self, settings: VoipmsSettings, client: VoipmsClient, clock: Clock) -> None:
        super().__init__(settings, client, clock)
        self._folder_lock = threading.Lock()
        self._archive_id: str | None = None

    def first_day(self, cursor: str | None, now: datetime) -> date:
        """The first day the next listing covers."""
        today = self.today(now)
        if cursor is None:
            since = self.settings.since
            return since if since is not None else today - timedelta(days=FRESH_DAYS)
        try:
            start = datetime.fromisoformat(cursor)
        except ValueError:
            log.warning(
                "voipms.cursor_unreadable",
                cursor=cursor[:40],
                hint=f"faxd lists the last {FRESH_DAYS} days instead",
            )
            return today - timedelta(days=FRESH_DAYS)
        if start.tzinfo is None:
            start = start.replace(tzinfo=UTC)
        return min(self.local(start).date(), today)

    def list_new(self, cursor: str | None, *, now: datetime) -> Iterator[ListingBatch]:
        """Faxes dated from the cursor's day to today; the next cursor on the last batch."""
        next_cursor = (now - SAFETY_MARGIN).astimezone(UTC).isoformat(timespec="seconds")
        spans = windows(self.first_day(cursor, now), self.today(now))
        for index, (start, end) in enumerate(spans):
            listing = self.client.received(start, end, self.settings.folder)
            last = index == len(spans) - 1
            yield ListingBatch(listing.faxes, listing.unreadable, next_cursor if last else None)

    def list_all(self, *, now: datetime) -> Iterator[ListingBatch]:
        """Everything in the folder from the last :data:`FRESH_DAYS` days (or ``since``)."""
        today = self.today(now)
        start = today - timedelta(days=FRESH_DAYS)
        since = self.settings.since
        if since is not None and since < start:
            start = since
        for first, last in windows(start, today):
            listing = self.client.received(first, last, self.settings.folder)
            yield ListingBatch(listing.faxes, listing.unreadable)

    def download(self, remote_id: str, dest: Path, *, max_bytes: int | None) -> Downloaded:
        return self.client.download(remote_id, dest, max_bytes=max_bytes)

    def release(self, remote_id: str) -> None:
        """Delete, move to the archive folder, or keep, as ``after_delivery`` says."""
        release = self.capabilities.release
        if release is Release.DELETE:
            self.client.delete(remote_id)
        elif release is Release.MOVE:
            self.client.move(remote_id, self.archive_id())

    def archive_id(self) -> str:
        """The id of ``archive_folder``, creating the folder the first time it is missing."""
        with self._folder_lock:
            if self._archive_id is None:
                name = self.settings.archive_folder
                folder_id = _find(self.client.folders(), name)
                if folder_id is None:
                    log.info("voipms.archive_folder_created", folder=name)
                    self.client.create_folder(name)
                    folder_id = _find(self.client.folders(), name)
                if folder_id is None:
                    raise PermanentError(
                        f"the fax folder {name!r} was created but getFaxFolders does not list "
                        "it; create it in the VoIP.ms portal or set archive_folder in [voipms]",
                        operation="setFaxFolder",
                    )
                self._archive_id = folder_id
            return self._archive_id


def _find(folders: dict[str, str], name: str) -> str | None:
    wanted = name.strip().upper()
    return next((fid for fname, fid in folders.items() if fname.strip().upper() == wanted), None)


def to_number(number: str) -> str:
    """An E.164 number as sendFaxMessage takes it: 10 digits for NANP, else 011 + digits [G]."""
    digits = "".join(ch for ch in number if ch.isdigit())
    if number.startswith("+1") and len(digits) == 11:
        return digits[1:]
    if number.startswith("+"):
        return "011" + digits
    return digits


class VoipmsOutbound(_Api):
    """Send with sendFaxMessage; follow and reconcile through the SENT folder."""

    def send(self, request: SendRequest) -> str | None:
        """POST the fax; VoIP.ms returns no id, so this returns ``None``."""
        if not self.settings.from_number:
            raise PermanentError(
                "[voipms] from_number is not set; set it to one of the account's fax numbers "
                "to send faxes through VoIP.ms",
                operation="sendFaxMessage",
            )
        self.client.send(
            request.path,
            size=request.size,
            sha256=request.sha256,
            to_number=to_number(request.number),
            from_name=self.settings.from_name or self.settings.from_number,
            from_number=self.settings.from_number,
        )
        return None

    def _sent_since(self, first: date, now: datetime) -> StatusAnswer:
        jobs: list[JobStatus] = []
        unreadable: list[Unreadable] = []
        for start, end in windows(first, self.today(now)):
            listing = self.client.sent(start, end)
            jobs.extend(listing.jobs)
            unreadable.extend(listing.unreadable)
        return StatusAnswer(tuple(jobs), tuple(unreadable))

    def statuses(self, remote_ids: Sequence[str]) -> StatusAnswer:
        """The SENT folder's record of each job in ``remote_ids`` (last 30 days)."""
        if not remote_ids:
            return StatusAnswer(())
        now = self._clock()
        answer = self._sent_since(self.today(now) - timedelta(days=STATUS_DAYS), now)
        wanted = set(remote_ids)
        return StatusAnswer(
            tuple(job for job in answer.jobs if job.remote_id in wanted), answer.unreadable
        )

    def recent_jobs(self, since: datetime) -> StatusAnswer:
        """Faxes in the SENT folder sent since ``since`` (give or take :data:`CLOCK_SLACK`)."""
        now = self._clock()
        earliest = self.local(since - CLOCK_SLACK)
        first = max(earliest.date(), self.today(now) - timedelta(days=FRESH_DAYS))
        answer = self._sent_since(first, now)
        jobs = tuple(j for j in answer.jobs if j.sent_at is None or j.sent_at >= earliest)
        return StatusAnswer(jobs, answer.unreadable)

    def cancel(self, remote_id: str) -> None:
        raise PermanentError(
            "VoIP.ms has no API call to cancel a fax being sent; cancel it in the portal",
            operation="cancel",
        )

    def forget(self, remote_id: str) -> None:
        """Nothing to tidy: the SENT folder is the account's record of sent faxes."""


class VoipmsChecker:
    """``check-config --online``: list the fax folders, which changes nothing."""

    def __init__(self, client: VoipmsClient) -> None:
        self.client = client

    def check_login(self) -> str:
        folders = self.client.folders()
        names = ", ".join(sorted(folders)[:5]) or "none"
        return f"logged in as {self.client.username}; {len(folders)} fax folders ({names})"


def make_inbound(config: Config, **kw: Any) -> VoipmsInbound:
    """The inbound half as configured; ``client=`` and ``clock=`` are for tests."""
    settings = _settings(config)
    clock: Clock = kw.get("clock", system_clock)
    return VoipmsInbound(settings, _client(settings, kw), clock)


def make_outbound(config: Config, **kw: Any) -> VoipmsOutbound:
    """The outbound half as configured; ``client=`` and ``clock=`` are for tests."""
    settings = _settings(config)
    clock: Clock = kw.get("clock", system_clock)
    return VoipmsOutbound(settings, _client(settings, kw), clock)


def make_checker(config: Config) -> VoipmsChecker:
    """What ``check-config --online`` calls for VoIP.ms."""
    settings = _settings(config)
    return VoipmsChecker(_client(settings, {"clock": system_clock}))
