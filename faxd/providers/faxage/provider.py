"""FAXAGE behind the provider interface (:mod:`faxd.providers.base`).

Why an adapter: the pipeline is written once for every provider and sees
remote ids as strings, listings as :class:`~faxd.providers.base.ListingBatch`
and downloads as :class:`~faxd.providers.base.Downloaded`.  FAXAGE's own
shapes (int recvids, ``listfax`` with its ``idgt`` cursor, ``getfax``,
``delfax``) stay in :mod:`faxd.providers.faxage.client`; this module only
translates, so everything FAXAGE did before keeps working:

- the cursor is the highest recvid recorded, as text, and moves with each
  batch of a ``listfax`` answer (a sweep, ``list_all``, never moves it);
- a line that does not parse becomes an :class:`~faxd.providers.base.Unreadable`;
- release is ``delfax``, or nothing with ``[inbound] delete_after_delivery =
  false`` (:attr:`Release.KEEP`);
- ``recvdate`` is FAXAGE's wall clock in ``[faxage] server_zone``
  (``wall_clock_zone``, which the worker reads for routing by hours).

The registry (:mod:`faxd.providers.registry`) calls the module functions at
the bottom.  The outbound half lives in its own functions, apart from these.

Why an adapter: the outbound core speaks of string job ids, E.164 numbers and
:class:`~faxd.providers.base.JobStatus`; FAXAGE speaks of integer JOBIDs,
10-digit NANP numbers and ``status`` lines.  This module translates, and
keeps everything FAXAGE does: reconcile by number and sendtime (``status``
lists every job), ``stopfax`` to cancel, ``clear`` of finished records when
``[outbound] clear_after_status`` is on, and ``url_notify`` on every send.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from faxd.errors import AuthError, PermanentError
from faxd.phone import digits
from faxd.providers.base import (
    Capabilities,
    Downloaded,
    JobOutcome,
    JobStatus,
    ListingBatch,
    OnlineCheck,
    Release,
    RemoteFax,
    SendRequest,
    StatusAnswer,
    Unreadable,
)
from faxd.providers.faxage.records import DownloadResult, ListfaxResult

if TYPE_CHECKING:
    from faxd.config import Config, OutboundSettings
    from faxd.providers.faxage.client import FaxageClient
    from faxd.providers.faxage.records import StatusRecord, StatusResult

NAME = "faxage"


class ListfaxClient(Protocol):
    """The three FAXAGE calls inbound uses (:class:`FaxageClient` has them).

    With ``[inbound] concurrency`` above 1 they are called from several
    threads at once (FaxageClient keeps one HTTP session per thread).
    """

    def listfax_batches(
        self, *, idgt: int | None = None, idasc: bool = True
    ) -> Iterator[ListfaxResult]: ...

    def getfax(
        self, recvid: int, dest: Path, *, max_bytes: int | None = None
    ) -> DownloadResult: ...

    def delfax(self, recvid: int) -> None: ...


class FaxageInbound:
    """The inbound half of one FAXAGE account: listfax, getfax, delfax."""

    name = NAME

    def __init__(
        self,
        client: ListfaxClient,
        account: str,
        *,
        delete_after_delivery: bool = True,
        server_zone: tzinfo | None = None,
        login: str = "",
    ) -> None:
        self.client = client
        self.account = account
        #: How a refused login names the login to fix ("user acme company 12345").
        self.login = login or f"account {account}"
        self.capabilities = Capabilities(
            receive=True,
            send=True,
            release=Release.DELETE if delete_after_delivery else Release.KEEP,
            cursor_listing=True,
        )
        #: The zone of FAXAGE's naive ``recvdate`` (``None``: this machine's).
        self.wall_clock_zone = server_zone

    def list_new(self, cursor: str | None, *, now: datetime) -> Iterator[ListingBatch]:
        """``listfax`` after recvid ``cursor``, ascending; each batch carries the new cursor."""
        del now  # FAXAGE keeps the cursor: no date window
        highest = _recvid(cursor) if cursor is not None else 0
        with self._login_named():
            for batch in self.client.listfax_batches(idgt=highest or None, idasc=True):
                if batch.records:
                    highest = max(highest, max(r.recvid for r in batch.records))
                yield _batch(batch, str(highest) if highest else None)

    def list_all(self, *, now: datetime) -> Iterator[ListingBatch]:
        """The whole ``listfax`` (the sweep); the cursor is left as it is."""
        del now
        with self._login_named():
            for batch in self.client.listfax_batches(idgt=None, idasc=True):
                yield _batch(batch, None)

    def download(self, remote_id: str, dest: Path, *, max_bytes: int | None) -> Downloaded:
        """``getfax`` into ``dest``, checked by the client (ERR body, length, magic, sha256)."""
        with self._login_named():
            result = self.client.getfax(_recvid(remote_id), dest, max_bytes=max_bytes)
        return Downloaded(
            result.path, result.size, result.sha256, result.kind, result.server_filename
        )

    def release(self, remote_id: str) -> None:
        """``delfax`` (raises NotFoundError when FAXAGE no longer has it)."""
        if self.capabilities.release is Release.KEEP:
            return
        with self._login_named():
            self.client.delfax(_recvid(remote_id))

    @contextmanager
    def _login_named(self) -> Iterator[None]:
        """ERR02 says only "login incorrect": say which login, and what to check."""
        try:
            yield
        except AuthError as exc:
            raise AuthError(
                f"FAXAGE refused the login for {self.login} ({exc.message}): "
                "check username, company and password in [faxage]",
                operation=exc.operation,
                code=exc.code,
            ) from exc


def _recvid(remote_id: str) -> int:
    """A FAXAGE recvid from its remote id; anything else is refused, never sent."""
    if not remote_id.isascii() or not remote_id.isdigit():
        raise PermanentError(f"{remote_id!r} is no FAXAGE recvid (digits only)", operation=NAME)
    return int(remote_id)


def _batch(batch: ListfaxResult, cursor: str | None) -> ListingBatch:
    return ListingBatch(
        faxes=tuple(
            RemoteFax(
                remote_id=str(r.recvid),
                received_at=r.recvdate,
                caller_id=r.cid,
                dnis=r.dnis,
                pages=r.pagecount,
                filename=r.filename,
            )
            for r in batch.records
        ),
        unreadable=tuple(Unreadable(m.lineno, m.text, m.reason) for m in batch.malformed),
        cursor=cursor,
    )


# ---------------------------------------------------------------- registry: inbound


def configured(config: Config) -> bool:
    """Whether the config has a ``[faxage]`` section."""
    return getattr(config, "faxage", None) is not None


def make_inbound(
    config: Config, *, client: ListfaxClient | None = None, **kw: Any
) -> FaxageInbound:
    """The inbound half for ``[faxage]``; ``client`` shares the daemon's FaxageClient."""
    del kw  # shared parts other providers take (clock=); FAXAGE's client has its own
    settings = config.faxage
    if settings is None:
        raise ValueError("FAXAGE is not configured: the config has no [faxage] section")
    if client is None:
        from faxd.app import make_client

        client = make_client(settings)
    return FaxageInbound(
        client,
        settings.account,
        delete_after_delivery=config.inbound.delete_after_delivery,
        server_zone=settings.server_zone,
        login=f"user {settings.username} company {settings.company}",
    )


# ---------------------------------------------------------------- registry: online check


def make_checker(config: Config) -> OnlineCheck:
    """What ``check-config --online`` calls for FAXAGE (:mod:`faxd.providers.faxage.check`)."""
    # Imported by name: the check module comes with `check-config --online`.
    check = importlib.import_module("faxd.providers.faxage.check")
    checker: OnlineCheck = check.make_checker(config)
    return checker


_OUTCOMES = {"success": JobOutcome.SENT, "failure": JobOutcome.FAILED}


def make_outbound(
    config: Config, *, client: FaxageClient | None = None, **kw: Any
) -> FaxageOutbound:
    """The sending half for ``[faxage]``; ``client`` shares the daemon's (and its metrics)."""
    del kw  # shared parts other providers take (clock=...); FAXAGE's client has its own
    settings = config.require_faxage("sending through FAXAGE")
    if client is None:
        from faxd.app import make_client

        client = make_client(settings)
    return FaxageOutbound(client, config.outbound, zone=settings.server_zone)


class FaxageOutbound:
    """``sendfax`` / ``status`` / ``stopfax`` / ``clear`` as an OutboundProvider."""

    name = "faxage"

    def __init__(
        self,
        client: FaxageClient,
        settings: OutboundSettings | None = None,
        *,
        zone: tzinfo | None = None,
    ) -> None:
        from faxd.providers.faxage.files import SEND_EXTENSIONS

        self.client = client
        #: ``[outbound]``: sendfax options and clear_after_status; ``None`` for the CLI's cancel.
        self.settings = settings
        #: The zone of FAXAGE's naive times; ``None`` leaves them naive (this machine's).
        self.zone = zone
        self.capabilities = Capabilities(
            receive=True, send=True, send_types=SEND_EXTENSIONS, cancel=True
        )

    @property
    def account(self) -> str:
        return self.client.account

    def send(self, request: SendRequest) -> str:
        from faxd.providers.faxage.client import FaxFile

        jobid = self.client.sendfax(
            nanp_number(request.number),
            request.recipient,
            [
                FaxFile(
                    name=request.filename,
                    path=request.path,
                    # 0 / "" = not recorded (rows older than hashing at intake)
                    size=request.size or None,
                    sha256=request.sha256 or None,
                )
            ],
            url_notify=request.url_notify,
            **self._options(),
        )
        return str(jobid)

    def _options(self) -> dict[str, Any]:
        """``[outbound]`` tagname, tagnumber, resolution and priority (none without settings)."""
        if self.settings is None:
            return {}
        return {
            "tagname": self.settings.tagname,
            "tagnumber": self.settings.tagnumber,
            "resolution": self.settings.resolution,
            "priority": self.settings.priority,
        }

    def statuses(self, remote_ids: Sequence[str]) -> StatusAnswer:
        jobids = sorted({int(i) for i in remote_ids if i.isascii() and i.isdigit()})
        if not jobids:
            return StatusAnswer(jobs=())
        return self._answer(
            self.client.status_result(jobids, pagecount=True, csid=True, xmitpages=True)
        )

    def recent_jobs(self, since: datetime) -> StatusAnswer:
        # Every record FAXAGE keeps: its sendtime zone is not documented, so the
        # window is applied by the caller, with its clock-skew margin.
        del since
        return self._answer(self.client.status_result(pagecount=True, csid=True, xmitpages=True))

    def cancel(self, remote_id: str) -> None:
        self.client.stopfax(int(remote_id))

    def forget(self, remote_id: str) -> None:
        if self.settings is not None and self.settings.clear_after_status:
            self.client.clear(int(remote_id))

    def _answer(self, result: StatusResult) -> StatusAnswer:
        return StatusAnswer(
            jobs=tuple(self.job_status(record) for record in result.records),
            unreadable=tuple(
                Unreadable(bad.lineno, bad.text, bad.reason) for bad in result.malformed
            ),
        )

    def job_status(self, record: StatusRecord) -> JobStatus:
        outcome = _OUTCOMES.get(record.shortstatus, JobOutcome.PENDING)
        found = digits(record.destnum)
        extra = {"longstatus": record.longstatus}
        extra.update(
            (key, value)
            for key, value in (
                ("csid", record.csid),
                ("commid", record.commid),
                ("xmittime", record.xmittime),
            )
            if value
        )
        return JobStatus(
            remote_id=str(record.jobid),
            outcome=outcome,
            status=record.shortstatus,
            reason=record.longstatus if outcome is JobOutcome.FAILED else "",
            number=f"+1{found}" if len(found) == 10 else record.destnum,
            sent_at=self._zoned(record.sendtime),
            completed_at=self._zoned(record.completetime),
            pages=record.pagecount,
            pages_sent=record.xmitpages,
            extra=extra,
        )

    def _zoned(self, naive: datetime | None) -> datetime | None:
        if naive is None or self.zone is None:
            return naive
        return naive.replace(tzinfo=self.zone)


def nanp_number(number: str) -> str:
    """An E.164 number as FAXAGE dials it: ``+1`` and 10 digits -> the 10; others 011 + digits.

    A number stored before E.164 (10 bare digits) is passed as it is.
    """
    found = digits(number)
    if not number.strip().startswith("+"):
        return found
    if found.startswith("1") and len(found) == 11:
        return found[1:]
    return f"011{found}"
