"""Every FAXAGE operation of FaxageClient against the simulator, and its fault handling."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from faxd.errors import (
    AuthError,
    NotFoundError,
    OutcomeUnknownError,
    PermanentError,
    TransientError,
)
from faxd.providers.faxage import FaxageClient, FaxFile
from faxd.providers.faxage.records import NewShape

DNIS = "4158006052"


def ops(sim: Any, operation: str) -> int:
    """How many requests for ``operation`` the simulator received."""
    return sum(1 for r in sim.requests if r.operation == operation)


def pdf(text: str) -> bytes:
    return b"%PDF-1.4\n% " + text.encode() + b"\n%%EOF\n"


# ------------------------------------------------------------------ receiving


def test_new_columns_are_logged_once_per_client(sim: Any, client: FaxageClient) -> None:
    """A column FAXAGE added is read past and logged once, however often it is answered."""
    sim.extra_columns = 1
    fax = sim.add_fax(DNIS, pagecount=2)
    send(client)
    with capture_logs() as logs:
        for _ in range(3):
            (record,) = client.listfax().records
            assert (record.recvid, record.pagecount) == (fax.recvid, 2)
            (job,) = client.status()
            assert job.pagecount == 1
    notices = [entry for entry in logs if entry["event"] == "faxage.new_columns"]
    assert [entry["message"] for entry in notices] == [
        "FAXAGE added a column to listfax: 8 fields, expected 7; extra ignored",
        "FAXAGE added a column to status: 13 fields, expected 12; extra ignored",
    ]


def test_whole_listfax_carries_each_new_shape_once(sim: Any, client: FaxageClient) -> None:
    """listfax() (the whole answer) reports a new column once, across all its batches."""
    sim.extra_columns = 1
    sim.seed_inbound(3, dnis=(DNIS,))
    whole = client.listfax(batch_lines=1)  # three batches, each with the new shape
    assert len(whole.records) == 3
    assert whole.shapes == (NewShape("listfax", 8, 7),)


def test_unknown_status_value_is_logged_once_per_line(sim: Any, client: FaxageClient) -> None:
    """Read the 2009 way, a CSID lands in pagecount: the job is kept and its line warned once."""
    sim.status_order = "2009"
    sim.job_seconds = 0
    sim.remote_csids[DNIS] = "ACME FAX 01"
    jobid = send(client, DNIS)
    with capture_logs() as logs:
        for _ in range(3):
            (record,) = client.status([jobid])
            assert (record.jobid, record.shortstatus, record.pagecount) == (jobid, "success", None)
    (warning,) = [entry for entry in logs if entry["event"] == "faxage.value_unknown"]
    assert "pagecount 'ACME FAX 01' is not a number" in warning["reason"]
    assert "ACME FAX 01" in warning["line"]


def test_listfax_lists_what_arrived(sim: Any, client: FaxageClient) -> None:
    """listfax returns every fax on the account with normalised numbers, oldest first."""
    faxes = sim.seed_inbound(3, dnis=(DNIS, "(303)555-0199"))
    result = client.listfax()
    assert result.malformed == ()
    assert [r.recvid for r in result.records] == [f.recvid for f in faxes]
    first = result.records[0]
    assert first.dnis == DNIS
    assert first.pagecount == faxes[0].pagecount
    assert first.filename == faxes[0].filename
    assert first.starttime is not None and first.starttime <= first.recvdate


def test_listfax_idgt_and_empty(sim: Any, client: FaxageClient) -> None:
    """idgt lists only newer faxes; an empty inbox (ERR11) is an empty result."""
    assert client.listfax().records == ()
    faxes = sim.seed_inbound(3, dnis=(DNIS,))
    newer = client.listfax(idgt=faxes[0].recvid)
    assert [r.recvid for r in newer.records] == [f.recvid for f in faxes[1:]]


def test_listfax_unavailable_and_hostile_fields(sim: Any, client: FaxageClient) -> None:
    """'Unavailable' caller id becomes '', a 300-char CID is cut, a hostile filename is cleaned."""
    sim.add_fax(DNIS, "Unavailable")
    sim.add_fax(DNIS, "1" * 300, filename="../../etc/passwd")
    first, second = client.listfax().records
    assert first.cid == ""
    assert second.cid == "1" * 32
    assert second.filename == "passwd"


def test_getfax_then_delfax(sim: Any, client: FaxageClient, tmp_path: Path) -> None:
    """getfax writes the exact bytes and sha256; delfax deletes; deleting again is NotFound."""
    fax = sim.add_fax(DNIS, data=pdf("hello"))
    dest = tmp_path / "in.pdf"
    result = client.getfax(fax.recvid, dest)
    assert dest.read_bytes() == fax.data
    assert (result.size, result.kind) == (len(fax.data), "pdf")
    assert result.sha256 == hashlib.sha256(fax.data).hexdigest()
    client.delfax(fax.recvid)
    assert sim.faxes[fax.recvid].deleted
    with pytest.raises(NotFoundError):
        client.delfax(fax.recvid)


def test_getfax_tiff_and_unknown(sim: Any, client: FaxageClient, tmp_path: Path) -> None:
    """A TIFF fax downloads as tiff; an unknown recvid is NotFound and leaves no file."""
    fax = sim.add_fax(DNIS, kind="tiff")
    assert client.getfax(fax.recvid, tmp_path / "t.tif").kind == "tiff"
    with pytest.raises(NotFoundError):
        client.getfax(999_999, tmp_path / "none.pdf")
    assert not (tmp_path / "none.pdf").exists()


# ------------------------------------------------------------------ sending


def test_sendfax_records_a_job_with_every_field(
    sim: Any, client: FaxageClient, tmp_path: Path
) -> None:
    """sendfax creates one job holding the decoded files and every optional field."""
    doc = tmp_path / "a.pdf"
    doc.write_bytes(pdf("page one +/="))
    jobid = client.sendfax(
        "(303)555-0101",
        "Bob",
        [FaxFile("a.pdf", doc), FaxFile.from_bytes("b.txt", b"plain + text")],
        tagname="Acme",
        tagnumber="1.303.555.0100",
        em_notify=True,
        url_notify="https://example.com/cb",
        resolution=2,
        contrastalgo=1,
        priority="low",
    )
    job = sim.jobs[jobid]
    assert (job.faxno, job.recipname) == ("3035550101", "Bob")
    assert job.files == [("a.pdf", doc.read_bytes()), ("b.txt", b"plain + text")]
    assert (job.tagname, job.tagnumber, job.em_notify) == ("Acme", "1.303.555.0100", True)
    assert (job.url_notify, str(job.resolution), str(job.contrastalgo), job.priority) == (
        "https://example.com/cb",
        "2",
        "1",
        "low",
    )
    assert sim.sendfax_posts == 1


def test_sendfax_urls(sim: Any, client: FaxageClient) -> None:
    """URL mode creates a job with the URLs and their types."""
    jobid = client.sendfax_urls(
        "3035550101",
        "Bob",
        ["https://example.com/a", "https://example.com/b.asp"],
        url_types=["html", "doc"],
        async_=True,
    )
    job = sim.jobs[jobid]
    assert job.urls == ["https://example.com/a", "https://example.com/b.asp"]
    assert job.url_types == ["html", "doc"]


def test_sendfax_blocked_number_is_permanent(sim: Any, client: FaxageClient) -> None:
    """A destination FAXAGE blocks (ERR05) raises PermanentError and creates no job."""
    sim.blocked_numbers.add("3035550111")
    with pytest.raises(PermanentError):
        client.sendfax("3035550111", "x", [FaxFile.from_bytes("a.pdf", pdf("x"))])
    assert sim.jobs == {}


def send(client: FaxageClient, number: str = "3035550101") -> int:
    return client.sendfax(number, "Bob", [FaxFile.from_bytes("a.pdf", pdf("x"))])


def test_status_follows_a_job_to_success(sim: Any, client: FaxageClient) -> None:
    """status shows a finished job with its pages, csid and times."""
    sim.job_seconds = 0
    jobid = send(client)
    (record,) = client.status([jobid])
    assert (record.jobid, record.destnum, record.shortstatus) == (jobid, "3035550101", "success")
    assert record.completetime is not None and record.sendtime is not None
    assert record.pagecount == sim.jobs[jobid].pagecount
    assert record.xmitpages == record.pagecount
    assert record.csid == sim.jobs[jobid].csid == "ACME FAX 00"


def test_status_failure_several_jobs_and_none(sim: Any, client: FaxageClient) -> None:
    """status reports failures, several jobs at once via jobids[], and [] for unknown jobs."""
    sim.job_seconds = 0
    sim.fail_numbers.add("3035550102")
    good, bad = send(client), send(client, "3035550102")
    records = {r.jobid: r for r in client.status([good, bad], showlogin=True)}
    assert records[good].shortstatus == "success"
    assert records[bad].shortstatus == "failure"
    assert records[bad].login == "acme"
    assert client.status([987_654]) == []


def test_status_pending_then_stopfax(sim: Any, client: FaxageClient) -> None:
    """A pending job shows no completetime and can be stopped."""
    sim.job_seconds = 3600
    jobid = send(client)
    (record,) = client.status([jobid], extqueue=True)
    assert record.shortstatus == "pending" and record.completetime is None
    client.stopfax(jobid)
    assert sim.jobs[jobid].stopped
    with pytest.raises(NotFoundError):
        client.stopfax(123_456)


def test_clear_only_finished_jobs(sim: Any, client: FaxageClient) -> None:
    """clear removes a finished job's record; a pending job cannot be cleared (ERR07)."""
    sim.job_seconds = 3600
    pending = send(client)
    with pytest.raises(NotFoundError):
        client.clear(pending)
    sim.job_seconds = 0
    done = send(client)
    client.status([done])
    client.clear(done)
    assert sim.jobs[done].cleared


def test_dlstatus_and_dltrans(sim: Any, client: FaxageClient, tmp_path: Path) -> None:
    """The sent image downloads as PDF or TIFF, the transmittal page as PDF."""
    sim.job_seconds = 0
    jobid = send(client)
    client.status([jobid])
    assert client.dlstatus(jobid, tmp_path / "s.pdf").kind == "pdf"
    assert client.dlstatus(jobid, tmp_path / "s.tif", viewtype="tiff").kind == "tiff"
    assert client.dltrans(jobid, tmp_path / "t.pdf").kind == "pdf"
    with pytest.raises(NotFoundError):
        client.dltrans(999_999, tmp_path / "x.pdf")


# ------------------------------------------------------------------ account


def test_lines_enable_disable_portable(sim: Any, client: FaxageClient) -> None:
    """listlines lists the DIDs; disabledid/enabledid toggle one; portable answers a bool."""
    sim.add_fax(DNIS)
    assert DNIS in client.listlines().items
    client.disabledid(DNIS)
    assert DNIS in sim.disabled_lines
    client.enabledid(DNIS)
    assert DNIS not in sim.disabled_lines
    assert isinstance(client.portable("3035551212"), bool)
    with pytest.raises(NotFoundError):
        client.disabledid("9995550000")


def test_getcdr(sim: Any, client: FaxageClient) -> None:
    """getcdr returns call records after nuidgt, with nuids when asked."""
    sim.add_fax(DNIS, "(303)555-0100")
    records = client.getcdr(nuidgt=0, nuidshow=True).items
    assert records and records[-1].direction == "IN"
    assert records[-1].src == "3035550100" and records[-1].dst == DNIS
    assert all(r.nuid is not None for r in records)
    later = client.getcdr(nuidgt=records[-1].nuid)
    assert (later.items, later.malformed) == ((), ())


def test_provisioning_flow(sim: Any, client: FaxageClient) -> None:
    """listac -> listnpanxx -> listdids -> provdid -> deprovdid, as the document's workflow."""
    ac = client.listac().items[0]
    npanxx = client.listnpanxx(ac).items[0]
    assert npanxx.npanxx.startswith(ac) and npanxx.rcname
    did = client.listdids(npanxx=npanxx.npanxx).items[0]
    client.provdid(did)
    assert did in client.listlines().items
    with pytest.raises(PermanentError):
        client.provdid(did)
    client.deprovdid(did)
    with pytest.raises(NotFoundError):
        client.deprovdid(did)


# ------------------------------------------------------------------ faults


@pytest.mark.parametrize("kind", ["http500", "err01", "reset"])
def test_transient_fault_is_retried(sim: Any, client: FaxageClient, kind: str) -> None:
    """One transient fault costs one retry and the call succeeds."""
    sim.seed_inbound(2, dnis=(DNIS,))
    sim.inject(kind, operation="listfax", times=1)
    assert len(client.listfax().records) == 2
    assert ops(sim, "listfax") == 2


def test_slow_answer_is_retried(sim: Any) -> None:
    """An answer slower than the read timeout is retried.

    The slow answer is held back for 10 minutes (cut short when the simulator
    stops), far beyond the 5 s read timeout, and the normal answer has those 5 s
    between bytes: a loaded machine cannot make either land on the wrong side.
    """
    sim.slow_seconds = 600.0
    sim.inject("slow", operation="listlines", times=1)
    with FaxageClient(
        sim.username,
        sim.company,
        sim.password,
        base_url=sim.base_url,
        timeout=5.0,
        backoff=0.0,
        sleep=lambda _s: None,
    ) as quick:
        assert list(quick.listlines().items) == sim.lines
    assert ops(sim, "listlines") == 2


@pytest.mark.parametrize("kind", ["truncate", "err13", "http500"])
def test_download_faults_are_retried(
    sim: Any, client: FaxageClient, tmp_path: Path, kind: str
) -> None:
    """A truncated or failed getfax is retried and the final file is complete."""
    fax = sim.add_fax(DNIS, size=200_000)
    sim.inject(kind, operation="getfax", times=1)
    result = client.getfax(fax.recvid, tmp_path / "f.pdf")
    assert result.size == len(fax.data) and (tmp_path / "f.pdf").read_bytes() == fax.data
    assert ops(sim, "getfax") == 2


def test_auth_error_is_not_retried(sim: Any, client: FaxageClient) -> None:
    """ERR02 raises AuthError after one request."""
    sim.inject("err02", times=1)
    with pytest.raises(AuthError):
        client.listfax()
    assert ops(sim, "listfax") == 1


def test_not_found_is_not_retried(sim: Any, client: FaxageClient) -> None:
    """A permanent answer (ERR14 for an unknown fax) is not retried."""
    with pytest.raises(NotFoundError):
        client.delfax(424_242)
    assert ops(sim, "delfax") == 1


@pytest.mark.parametrize("kind", ["http500", "reset"])
def test_sendfax_not_retried_after_ambiguous_failure(
    sim: Any, client: FaxageClient, kind: str
) -> None:
    """A sendfax whose answer was lost raises OutcomeUnknownError and is posted only once."""
    sim.inject(kind, operation="sendfax", times=1)
    with pytest.raises(OutcomeUnknownError):
        send(client)
    assert sim.sendfax_posts == 1


def test_sendfax_retried_after_err01(sim: Any, client: FaxageClient) -> None:
    """ERR01 on sendfax means nothing was queued: one retry, exactly one job."""
    sim.inject("err01", operation="sendfax", times=1)
    jobid = send(client)
    assert sim.sendfax_posts == 2 and list(sim.jobs) == [jobid]


def test_sendfax_retried_when_server_was_unreachable(dead_url: str) -> None:
    """With nothing listening, sendfax retries (never sent) and ends transient, not unknown."""
    down = FaxageClient("a", "1", "pw-xyz", base_url=dead_url, retries=2, sleep=lambda _s: None)
    with down, pytest.raises(TransientError) as caught:
        send(down)
    assert not isinstance(caught.value, OutcomeUnknownError)
