"""FAXAGE behind the provider interface (:mod:`faxd.providers.base`).

Why an adapter: the outbound core speaks of string job ids, E.164 numbers and
:class:`~faxd.providers.base.JobStatus`; FAXAGE speaks of integer JOBIDs,
10-digit NANP numbers and ``status`` lines.  This module translates, and
keeps everything FAXAGE does: reconcile by number and sendtime (``status``
lists every job), ``stopfax`` to cancel, ``clear`` of finished records when
``[outbound] clear_after_status`` is on, and ``url_notify`` on every send.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, Any

from faxd.phone import digits
from faxd.providers.base import (
    Capabilities,
    JobOutcome,
    JobStatus,
    SendRequest,
    StatusAnswer,
    Unreadable,
)

if TYPE_CHECKING:
    from faxd.config import Config, OutboundSettings
    from faxd.providers.faxage.client import FaxageClient
    from faxd.providers.faxage.records import StatusRecord, StatusResult

_OUTCOMES = {"success": JobOutcome.SENT, "failure": JobOutcome.FAILED}


def make_outbound(
    config: Config, *, client: FaxageClient | None = None, **kw: Any
) -> FaxageOutbound:
    """The sending half for ``[faxage]``; ``client`` shares the daemon's (and its metrics)."""
    del kw  # shared parts other providers take (clock=...); FAXAGE's client has its own
    if client is None:
        from faxd.app import make_client

        client = make_client(config.faxage)
    return FaxageOutbound(client, config.outbound, zone=config.faxage.server_zone)


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
