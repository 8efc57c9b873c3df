"""The FAXAGE outbound adapter: E.164 in, NANP out; status records as JobStatus; the simulator.

The adapter is what the outbound core sees of FAXAGE, so everything FAXAGE
did before the provider interface (stopfax, clear after status, url_notify,
numbers as FAXAGE dials them) is checked here through it.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from faxd.config import OutboundSettings
from faxd.errors import PermanentError
from faxd.providers.base import JobOutcome, SendRequest
from faxd.providers.faxage.provider import FaxageOutbound, nanp_number
from faxd.providers.faxage.records import StatusRecord
from faxd.sim.documents import make_pdf


@pytest.mark.parametrize(
    ("number", "dialled"),
    [
        ("+13035551212", "3035551212"),
        ("+1 303 555 1212", "3035551212"),
        ("+493012345678", "011493012345678"),
        ("+442071234567", "011442071234567"),
        ("3035551212", "3035551212"),  # stored before E.164
    ],
)
def test_numbers_are_dialled_the_way_faxage_wants_them(number: str, dialled: str) -> None:
    assert nanp_number(number) == dialled


def _record(**overrides: Any) -> StatusRecord:
    values: dict[str, Any] = {
        "jobid": 5271001,
        "commid": "88",
        "destname": "Bob",
        "destnum": "(303)555-1212",
        "shortstatus": "failure",
        "longstatus": "Busy signal",
        "sendtime": datetime(2026, 3, 2, 8, 0, 30),
        "completetime": datetime(2026, 3, 2, 8, 2, 0),
        "xmittime": "00:01:30",
        "csid": "REMOTE CSID",
        "xmitpages": 1,
        "pagecount": 2,
    }
    values.update(overrides)
    return StatusRecord(**values)


def test_a_status_record_becomes_a_job_status_with_faxages_details() -> None:
    adapter = FaxageOutbound(client=Any, zone=ZoneInfo("America/Denver"))  # type: ignore[arg-type]
    status = adapter.job_status(_record())
    assert (status.remote_id, status.outcome, status.status, status.reason) == (
        "5271001",
        JobOutcome.FAILED,
        "failure",
        "Busy signal",
    )
    assert (status.number, status.pages, status.pages_sent) == ("+13035551212", 2, 1)
    assert status.sent_at == datetime(2026, 3, 2, 8, 0, 30, tzinfo=ZoneInfo("America/Denver"))
    assert status.extra == {
        "longstatus": "Busy signal",
        "csid": "REMOTE CSID",
        "commid": "88",
        "xmittime": "00:01:30",
    }
    sent = adapter.job_status(_record(shortstatus="success", longstatus="Success"))
    pending = adapter.job_status(_record(shortstatus="pending", longstatus="In Queue"))
    assert (sent.outcome, sent.reason) == (JobOutcome.SENT, "")
    assert (pending.outcome, pending.reason) == (JobOutcome.PENDING, "")
    assert adapter.job_status(_record(sendtime=None)).sent_at is None


def _settings(tmp_path: Path, **overrides: Any) -> OutboundSettings:
    values: dict[str, Any] = {
        "enabled": True,
        "hot_folder": tmp_path / "outbox",
        "sent_folder": tmp_path / "sent",
        "failed_folder": tmp_path / "failed",
        "spool_dir": tmp_path / "spool",
        "clear_after_status": False,
        "tagname": "Acme",
        "priority": "high",
    }
    values.update(overrides)
    return OutboundSettings(**values)


def _request(tmp_path: Path, number: str = "+13035551212") -> SendRequest:
    doc = tmp_path / "7-letter.pdf"
    doc.write_bytes(make_pdf("letter", 1))
    return SendRequest(
        job_id=7,
        number=number,
        recipient="Bob",
        path=doc,
        filename="letter.pdf",
        size=doc.stat().st_size,
        sha256="",
        url_notify="https://fax.example.com/hook/t0k/faxage",
    )


def test_send_status_cancel_and_forget_against_the_simulator(
    tmp_path: Path, client: Any, sim: Any
) -> None:
    """sendfax with the options and url_notify; status by id; stopfax; clear only when asked."""
    sim.job_seconds = 3600.0
    adapter = FaxageOutbound(client, _settings(tmp_path))
    remote = adapter.send(_request(tmp_path))
    (job,) = sim.jobs.values()
    assert remote == str(job.jobid)
    assert (job.faxno, job.recipname, job.tagname, job.priority, job.url_notify) == (
        "3035551212",
        "Bob",
        "Acme",
        "high",
        "https://fax.example.com/hook/t0k/faxage",
    )
    (status,) = adapter.statuses([remote, "not-a-faxage-id"]).jobs
    assert (status.remote_id, status.outcome) == (remote, JobOutcome.PENDING)
    assert [s.remote_id for s in adapter.recent_jobs(datetime.now().astimezone()).jobs] == [
        remote
    ]
    adapter.cancel(remote)
    assert job.stopped
    adapter.forget(remote)
    assert not job.cleared  # clear_after_status is off
    FaxageOutbound(client, _settings(tmp_path, clear_after_status=True)).forget(remote)
    assert job.cleared


def test_an_international_number_reaches_faxage_with_011(
    tmp_path: Path, client: Any, sim: Any
) -> None:
    """FAXAGE refuses what it cannot dial; the adapter hands it 011 + the digits."""
    adapter = FaxageOutbound(client, _settings(tmp_path))
    try:
        adapter.send(_request(tmp_path, "+493012345678"))
    except PermanentError as exc:  # the client's own number check (not this adapter's)
        assert "011493012345678" in exc.message
    else:
        (job,) = sim.jobs.values()
        assert job.faxno == "011493012345678"
