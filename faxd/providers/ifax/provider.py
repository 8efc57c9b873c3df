"""iFax behind the provider interface (:mod:`faxd.providers.base`).

Inbound is a date window, not a cursor the provider keeps: iFax deletes
nothing (no delete call is documented), so every listing shows every fax of
its days again and the ledger dedupes by ``jobId:transactionId``.  What must
hold is that the window never skips a fax:

- the first poll of a fresh install starts the day before it (or at
  ``since``), per DESIGN "Providers";
- every later poll starts at the last *completed* poll minus
  :data:`SAFETY_MARGIN`: the cursor (an ISO date) is set only on the last
  batch of a listing read to its end, so a listing cut short by a fault leaves
  the old start in place;
- the window ends tomorrow, so a fax stamped in a zone ahead of UTC is in it;
- pages go newest first and on with ``lastFaxId`` until an empty page; a fax
  that arrives while the pages are read lands before the first page, and the
  next poll (whose window still holds its day) takes it.

``release`` does nothing (:attr:`Release.KEEP`).  Outbound sends with
``fax-send`` (the answer carries the jobId), follows with ``fax-status`` and
reconciles a lost answer through ``fax-lists``.  Cancelling is not offered:
no public client shows iFax's cancel call, and guessing an endpoint that may
do something else is worse than telling the user to cancel in the dashboard.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from faxd.clock import Clock, system_clock
from faxd.errors import ConfigError, NotFoundError, PermanentError
from faxd.providers.base import (
    Capabilities,
    Downloaded,
    JobStatus,
    ListingBatch,
    Release,
    RemoteFax,
    SendRequest,
    StatusAnswer,
    Unreadable,
)
from faxd.providers.ifax import wire
from faxd.providers.ifax.client import IfaxClient

if TYPE_CHECKING:
    from faxd.config import Config
    from faxd.config.model import IfaxSettings

__all__ = [
    "CAPABILITIES",
    "IfaxChecker",
    "IfaxInbound",
    "IfaxOutbound",
    "configured",
    "make_checker",
    "make_inbound",
    "make_outbound",
]

log = structlog.get_logger(__name__)

#: How far before the last completed poll the next window starts.
SAFETY_MARGIN = timedelta(days=1)
#: How far back the sweep (``list_all``) looks without ``since``.
SWEEP_DAYS = 90
#: Slack around ``since`` when matching sent jobs (the provider's clock may differ).
CLOCK_SLACK = timedelta(minutes=10)

CAPABILITIES = Capabilities(
    receive=True,
    send=True,
    release=Release.KEEP,
    cursor_listing=False,
    # The document: "Allow pdf & image attachment only".
    send_types=frozenset({"pdf", "png", "jpg", "jpeg", "tif", "tiff"}),
    send_returns_id=True,
    reconcile=True,
    cancel=False,
)


def configured(config: Config) -> bool:
    """Whether the config has an ``[ifax]`` section."""
    return config.ifax is not None


def _settings(config: Config) -> IfaxSettings:
    if config.ifax is None:
        raise ConfigError(f"{config.path}: there is no [ifax] section; add one to use iFax")
    return config.ifax


def _client(settings: IfaxSettings, client: IfaxClient | None) -> IfaxClient:
    if client is not None:
        return client
    return IfaxClient(settings.access_token, base_url=settings.base_url, timeout=settings.timeout)


def _utc_date(now: datetime) -> date:
    return (now.astimezone(UTC) if now.tzinfo else now).date()


class IfaxInbound:
    """List over a date window, download by ``jobId:transactionId``, keep on the server."""

    name = "ifax"
    capabilities = CAPABILITIES

    def __init__(self, settings: IfaxSettings, client: IfaxClient) -> None:
        self.account = settings.account
        self.since = settings.since
        self.client = client

    def __repr__(self) -> str:
        return f"IfaxInbound(account={self.account!r})"

    def window_start(self, cursor: str | None, now: datetime) -> date:
        """Where a poll's window starts: the cursor, or the fresh-install rule."""
        today = _utc_date(now)
        if cursor is None:
            return self.since or today - timedelta(days=1)
        try:
            return date.fromisoformat(cursor)
        except ValueError:
            start = self.since or today - timedelta(days=SWEEP_DAYS)
            log.warning(
                "ifax.cursor_unreadable",
                cursor=cursor[:40],
                start=start.isoformat(),
                hint="the stored window start is not an ISO date; faxd lists from the "
                "sweep's start instead (the ledger skips faxes already taken)",
            )
            return start

    def list_new(self, cursor: str | None, *, now: datetime) -> Iterator[ListingBatch]:
        """Faxes of the window from ``cursor`` to tomorrow; the last batch moves the cursor."""
        start = self.window_start(cursor, now)
        following = (_utc_date(now) - SAFETY_MARGIN).isoformat()
        return self._batches(start, _utc_date(now) + timedelta(days=1), following)

    def list_all(self, *, now: datetime) -> Iterator[ListingBatch]:
        """Every fax since ``since`` (or the last 90 days); the cursor is left alone."""
        start = self.since or _utc_date(now) - timedelta(days=SWEEP_DAYS)
        return self._batches(start, _utc_date(now) + timedelta(days=1), None)

    def _batches(self, start: date, end: date, cursor: str | None) -> Iterator[ListingBatch]:
        """One batch per page; ``cursor`` goes on the last, once the listing ended."""
        seen: set[str] = set()
        offset = 0
        held: ListingBatch | None = None
        for page in self.client.inbound_pages(start, end):
            if held is not None and page.records == 0:
                continue  # the empty page that ends a listing: the cursor goes on ``held``
            if held is not None:
                yield held
            faxes: list[RemoteFax] = []
            for fax in page.faxes:
                if fax.remote_id not in seen:
                    seen.add(fax.remote_id)
                    faxes.append(fax)
            unreadable = tuple(
                dataclasses.replace(u, lineno=u.lineno + offset) for u in page.unreadable
            )
            offset += page.records
            held = ListingBatch(tuple(faxes), unreadable)
        yield dataclasses.replace(held or ListingBatch(()), cursor=cursor)

    def download(self, remote_id: str, dest: Path, *, max_bytes: int | None) -> Downloaded:
        """Fetch and verify one fax (both of its ids are in ``remote_id``)."""
        job, transaction = wire.split_remote_id(remote_id)
        return self.client.download(job, transaction, dest, max_bytes=max_bytes)

    def release(self, remote_id: str) -> None:
        """Nothing: iFax documents no delete, the fax stays and the ledger remembers it."""
        del remote_id


class IfaxOutbound:
    """``fax-send``, ``fax-status``, ``fax-lists``."""

    name = "ifax"
    capabilities = CAPABILITIES

    def __init__(self, settings: IfaxSettings, client: IfaxClient, *, clock: Clock) -> None:
        self.account = settings.account
        self.caller_id = settings.caller_id
        self.quality = settings.quality
        self.client = client
        self._clock = clock

    def __repr__(self) -> str:
        return f"IfaxOutbound(account={self.account!r})"

    def send(self, request: SendRequest) -> str:
        """POST the file; iFax's jobId."""
        return self.client.send(
            request.number,
            request.path,
            file_name=request.filename,
            size=request.size,
            sha256=request.sha256,
            caller_id=self.caller_id,
            quality=self.quality,
        )

    def statuses(self, remote_ids: Sequence[str]) -> StatusAnswer:
        """One ``fax-status`` per job; a job iFax does not know is left out."""
        jobs: list[JobStatus] = []
        unreadable: list[Unreadable] = []
        for remote_id in wire.ids_in(remote_ids):
            try:
                page = self.client.status(remote_id)
            except NotFoundError:
                continue
            jobs += [job for job in page.jobs if job.remote_id == remote_id]
            unreadable += page.unreadable
        return StatusAnswer(tuple(jobs), tuple(unreadable))

    def recent_jobs(self, since: datetime) -> StatusAnswer:
        """Sent jobs from ``since`` (aware UTC) on, through ``fax-lists``."""
        naive = since.astimezone(UTC).replace(tzinfo=None) - CLOCK_SLACK
        today = _utc_date(self._clock())
        page = self.client.sent_list(naive.date(), today + timedelta(days=1))
        jobs = tuple(j for j in page.jobs if j.sent_at is None or j.sent_at >= naive)
        return StatusAnswer(jobs, page.unreadable)

    def cancel(self, remote_id: str) -> None:
        """Not offered (``capabilities.cancel`` is False): no cancel call is documented."""
        raise PermanentError(
            f"iFax job {remote_id}: faxd cannot cancel iFax faxes (the API documents no "
            "cancel call); cancel it in the iFax dashboard",
            operation="fax-cancel",
        )

    def forget(self, remote_id: str) -> None:
        """Nothing: iFax keeps its own list of sent faxes."""
        del remote_id


class IfaxChecker:
    """``check-config --online``: one ``fax-lists`` read over the last day."""

    def __init__(self, client: IfaxClient, *, clock: Clock = system_clock) -> None:
        self.client = client
        self._clock = clock

    def check_login(self) -> str:
        """``token accepted (...)``; raises the faxd error on failure."""
        return self.client.check_login(_utc_date(self._clock()))


def make_inbound(
    config: Config, *, client: IfaxClient | None = None, **_shared: object
) -> IfaxInbound:
    """The inbound half as configured (``client`` for tests)."""
    settings = _settings(config)
    return IfaxInbound(settings, _client(settings, client))


def make_outbound(
    config: Config,
    *,
    client: IfaxClient | None = None,
    clock: Clock = system_clock,
    **_shared: object,
) -> IfaxOutbound:
    """The outbound half as configured."""
    settings = _settings(config)
    return IfaxOutbound(settings, _client(settings, client), clock=clock)


def make_checker(config: Config, *, clock: Clock = system_clock) -> IfaxChecker:
    """What ``check-config --online`` calls."""
    settings = _settings(config)
    return IfaxChecker(_client(settings, None), clock=clock)
