"""sendfax, status, clear, stopfax, dlstatus and dltrans, and the job lifecycle."""

from __future__ import annotations

import base64
import re
import time

import pytest
import requests
from simapi import Api, ManualClock

from faxd.sim import FaxageSimulator, SimJob
from faxd.sim.documents import make_pdf

PDF = make_pdf("outgoing", 2)
B64 = base64.b64encode(PDF).decode()


def send(api: Api, faxno: str = "3035550199", *files: tuple[str, str], **fields: str) -> str:
    extra = files or (("faxfilenames[]", "letter.pdf"), ("faxfiledata[]", B64))
    recipname = fields.pop("recipname", "Bob")
    return api.text("sendfax", *extra, faxno=faxno, recipname=recipname, **fields)


def jobid_of(answer: str) -> int:
    match = re.fullmatch(r"JOBID: (\d+)", answer)
    assert match, answer
    return int(match.group(1))


def test_sendfax_records_job(sim: FaxageSimulator, api: Api) -> None:
    """A good sendfax answers 'JOBID: n' and records the decoded files and options."""
    answer = send(api, tagname="Acme", tagnumber="1.303.555.0100", priority="low")
    job = sim.jobs[jobid_of(answer)]
    assert job.files == [("letter.pdf", PDF)]
    assert (job.faxno, job.recipname, job.pagecount) == ("3035550199", "Bob", 2)
    assert (job.tagname, job.tagnumber, job.priority) == ("Acme", "1.303.555.0100", "low")
    assert sim.sendfax_posts == 1


def test_sendfax_indexed_arrays(sim: FaxageSimulator, api: Api) -> None:
    """faxfilenames[0]/[1] index forms are read like repeated name[] fields, in index order."""
    files = (
        ("faxfilenames[1]", "b.txt"),
        ("faxfiledata[1]", base64.b64encode(b"second").decode()),
        ("faxfilenames[0]", "a.txt"),
        ("faxfiledata[0]", base64.b64encode(b"first").decode()),
    )
    job = sim.jobs[jobid_of(send(api, "3035550199", *files))]
    assert job.files == [("a.txt", b"first"), ("b.txt", b"second")]


def test_sendfax_repeated_arrays_multiple_files(sim: FaxageSimulator, api: Api) -> None:
    """Repeated name[] fields carry several files in order."""
    files = (
        ("faxfilenames[]", "cover.html"),
        ("faxfilenames[]", "body.pdf"),
        ("faxfiledata[]", base64.b64encode(b"<p>hi</p>").decode()),
        ("faxfiledata[]", B64),
    )
    job = sim.jobs[jobid_of(send(api, "3035550199", *files))]
    assert [name for name, _ in job.files] == ["cover.html", "body.pdf"]
    assert job.pagecount == 3


@pytest.mark.parametrize("faxno", ["303555019", "30355501999", "303-555-0199", ""])
def test_sendfax_bad_number_is_err04(sim: FaxageSimulator, api: Api, faxno: str) -> None:
    """faxno must be exactly 10 digits, else ERR04 naming it."""
    assert send(api, faxno) == f"ERR04: Fax number {faxno} appears to be invalid"
    assert sim.jobs == {}


@pytest.mark.parametrize("faxno", ["9115550199", "0305550199", "3030550199", "9005550199"])
def test_sendfax_blocked_number_is_err05(sim: FaxageSimulator, api: Api, faxno: str) -> None:
    """Invalid or blocked destinations (N11, bad area code or exchange, premium) get ERR05."""
    answer = send(api, faxno)
    assert answer.startswith("ERR05: ") and faxno in answer
    assert sim.jobs == {}


@pytest.mark.parametrize("name", ["chart.png", "deck.ppt", "deck.pptx", "memo.wps", "memo.wpd"])
def test_sendfax_accepts_2014_era_types(sim: FaxageSimulator, api: Api, name: str) -> None:
    """The 2014-era types png, ppt, pptx, wps and wpd are faxed like the older ones."""
    data = base64.b64encode(b"not really " + name.encode()).decode()
    answer = send(api, "3035550199", ("faxfilenames[]", name), ("faxfiledata[]", data))
    assert sim.jobs[jobid_of(answer)].files == [(name, b"not really " + name.encode())]


def test_sendfax_blocked_numbers_set(sim: FaxageSimulator, api: Api) -> None:
    """A number in blocked_numbers is refused with ERR05."""
    sim.blocked_numbers.add("3035550177")
    assert send(api, "3035550177") == "ERR05: Fax number 3035550177 is blocked"


@pytest.mark.parametrize(
    "files",
    [
        (("faxfilenames[]", "virus.exe"), ("faxfiledata[]", B64)),
        (("faxfilenames[]", "noext"), ("faxfiledata[]", B64)),
        (("faxfilenames[]", "a.pdf"), ("faxfiledata[]", "!!!not base64!!!")),
        (("faxfilenames[]", "a.pdf"), ("faxfiledata[]", "")),
        (("faxfilenames[]", "a.pdf"),),
        (("recipname", "only"),),
    ],
)
def test_sendfax_bad_files_is_err03(
    sim: FaxageSimulator, api: Api, files: tuple[tuple[str, str], ...]
) -> None:
    """Unsupported extensions, bad base64, mismatched or missing arrays answer ERR03."""
    assert send(api, "3035550199", *files) == "ERR03: No files to fax"
    assert sim.jobs == {} and sim.sendfax_posts == 1


def test_sendfax_extension_case_insensitive(sim: FaxageSimulator, api: Api) -> None:
    """Upper-case extensions from the documents' table (PDF, TIFF) are accepted."""
    answer = send(api, "3035550199", ("faxfilenames[]", "SCAN.PDF"), ("faxfiledata[]", B64))
    assert answer.startswith("JOBID: ")


def test_sendfax_url_mode(sim: FaxageSimulator, api: Api) -> None:
    """URL mode (faxurl or faxurls[]) is accepted without fetching anything."""
    single = sim.jobs[jobid_of(send(api, "3035550199", ("faxurl", "https://example.com/a")))]
    assert single.urls == ["https://example.com/a"] and single.files == []
    many = send(
        api,
        "3035550199",
        ("faxurls[]", "http://example.com/a.asp"),
        ("faxurls[]", "http://example.com/b"),
        ("faxurltypes[]", "doc"),
        ("async", "1"),
    )
    job = sim.jobs[jobid_of(many)]
    assert job.urls == ["http://example.com/a.asp", "http://example.com/b"]
    assert job.url_types == ["doc"] and job.async_
    assert send(api, "3035550199", ("faxurl", "ftp://example.com/a")) == "ERR03: No files to fax"


def test_recipname_cut_to_32_characters(sim: FaxageSimulator, api: Api) -> None:
    """recipname is 32 characters at most; tabs and newlines cannot break status records."""
    job = sim.jobs[jobid_of(send(api, recipname="A\tB\nC" + "x" * 40))]
    assert job.recipname == ("A B C" + "x" * 40)[:32]


def test_job_lifecycle_success(timed: tuple[FaxageSimulator, Api, ManualClock]) -> None:
    """A job is pending with an all-zero completetime, then succeeds after job_seconds."""
    sim, api, clock = timed
    jobid = jobid_of(send(api))
    (pending,) = api.text("status", jobid=str(jobid)).splitlines()
    fields = pending.split("\t")
    assert fields[0] == str(jobid) and fields[2:5] == ["Bob", "3035550199", "pending"]
    assert fields[7] == "0000-00-00 00:00:00" and fields[8] == "00:00:00"
    assert len(fields) == 9
    clock.advance(61)
    done = api.text("status", jobid=str(jobid)).splitlines()[0].split("\t")
    assert done[4:6] == ["success", "Success"]
    assert done[7] != "0000-00-00 00:00:00" and done[8] != "00:00:00"
    assert sim.jobs[jobid].completetime is not None


def test_job_lifecycle_failure(timed: tuple[FaxageSimulator, Api, ManualClock]) -> None:
    """A number in fail_numbers ends in failure with a realistic longstatus."""
    sim, api, clock = timed
    sim.fail_numbers.add("3035550123")
    jobid = jobid_of(send(api, "3035550123"))
    clock.advance(61)
    fields = api.text("status", jobid=str(jobid), xmitpages="1").splitlines()[0].split("\t")
    assert fields[4:6] == ["failure", "No answer from remote fax"]
    assert fields[-1] == "0"


def test_job_lifecycle_real_clock() -> None:
    """With the system clock a short job_seconds settles the job on its own."""
    with FaxageSimulator(job_seconds=0.05) as sim, requests.Session() as session:
        api = Api(sim, session)
        jobid = jobid_of(send(api))
        time.sleep(0.1)
        assert "\tsuccess\t" in api.text("status", jobid=str(jobid))


def test_status_optional_columns_order(timed: tuple[FaxageSimulator, Api, ManualClock]) -> None:
    """pagecount, csid, login, xmitpages follow xmittime in that order (the 2014 document)."""
    sim, api, clock = timed
    jobid = jobid_of(send(api))
    clock.advance(61)
    flags = {"csid": "1", "showlogin": "1", "xmitpages": "1", "pagecount": "1"}
    fields = api.text("status", jobid=str(jobid), **flags).splitlines()[0].split("\t")
    assert fields[9:] == ["2", "ACME FAX 00", sim.username, "2"]
    only_pages = api.text("status", jobid=str(jobid), pagecount="1").splitlines()[0].split("\t")
    assert len(only_pages) == 10 and only_pages[-1] == "2"
    only_login = api.text("status", jobid=str(jobid), showlogin="1").splitlines()[0].split("\t")
    assert only_login[9:] == [sim.username]


def test_status_2009_order_on_request(timed: tuple[FaxageSimulator, Api, ManualClock]) -> None:
    """With status_order "2009" the columns are csid, login, xmitpages, and pagecount last."""
    sim, api, clock = timed
    sim.status_order = "2009"
    sim.remote_csids["3035550199"] = "3035550199"
    jobid = jobid_of(send(api))
    clock.advance(61)
    flags = {"csid": "1", "showlogin": "1", "xmitpages": "1", "pagecount": "1"}
    fields = api.text("status", jobid=str(jobid), **flags).splitlines()[0].split("\t")
    assert fields[9:] == ["3035550199", sim.username, "2", "2"]


def test_remote_csids_take_turns_letters_digits_none(
    timed: tuple[FaxageSimulator, Api, ManualClock],
) -> None:
    """Successive jobs answer with a CSID of letters, of digits, and none; failures have none."""
    sim, api, clock = timed
    sim.fail_numbers.add("3035550123")
    ids = [jobid_of(send(api, number)) for number in ("3035550101", "3035550102", "3035550103")]
    failed = jobid_of(send(api, "3035550123"))
    clock.advance(61)
    lines = api.text("status", csid="1").splitlines()
    csids = {int(line.split("\t")[0]): line.split("\t")[9] for line in lines}
    assert [csids[i] for i in ids] == ["ACME FAX 00", "3035550102", ""]
    assert csids[failed] == ""


def test_extra_columns_end_every_status_line(
    timed: tuple[FaxageSimulator, Api, ManualClock],
) -> None:
    """extra_columns appends that many columns after the flagged ones."""
    sim, api, _clock = timed
    sim.extra_columns = 2
    jobid_of(send(api))
    fields = api.text("status", pagecount="1").splitlines()[0].split("\t")
    assert len(fields) == 12 and fields[9:] == ["2", "extra1", "extra2"]


def test_sendtime_text_stands_in_for_every_sendtime(
    timed: tuple[FaxageSimulator, Api, ManualClock],
) -> None:
    """sendtime_text replaces the sendtime column, and only that column, of every line."""
    sim, api, _clock = timed
    jobid_of(send(api))
    real = api.text("status").splitlines()[0].split("\t")
    sim.sendtime_text = "0000-00-00 00:00:00"
    zero = api.text("status").splitlines()[0].split("\t")
    assert zero[6] == "0000-00-00 00:00:00" != real[6]
    assert zero[:6] + zero[7:] == real[:6] + real[7:]


def test_status_extra_lines_follow_the_records(
    timed: tuple[FaxageSimulator, Api, ManualClock],
) -> None:
    """status_extra_lines are added as they are after the job records, not to ERR06."""
    sim, api, _clock = timed
    sim.status_extra_lines = ["garbled\tline"]
    assert api.text("status").startswith("ERR06")
    jobid = jobid_of(send(api))
    lines = api.text("status", jobid=str(jobid)).splitlines()
    assert [line.split("\t")[0] for line in lines] == [str(jobid), "garbled"]
    assert lines[1] == "garbled\tline"


def test_status_jobids_array_and_all(sim: FaxageSimulator, api: Api) -> None:
    """jobids[] picks several jobs; no filter lists every job; unknown ids are ERR06."""
    ids = [jobid_of(send(api)) for _ in range(3)]
    picked = api.text("status", ("jobids[]", str(ids[0])), ("jobids[]", str(ids[2])))
    assert [int(line.split("\t")[0]) for line in picked.splitlines()] == [ids[0], ids[2]]
    assert len(api.text("status").splitlines()) == 3
    expected = "ERR06: No jobs to display or job id specified not found"
    assert api.text("status", jobid="1") == expected


def test_status_nothing_is_err06(api: Api) -> None:
    """No jobs at all answers ERR06."""
    assert api.text("status") == "ERR06: No jobs to display or job id specified not found"


def test_status_extqueue_and_begin_end(timed: tuple[FaxageSimulator, Api, ManualClock]) -> None:
    """extqueue adds retry details to pending jobs; begin/end filter by sendtime."""
    sim, api, _clock = timed
    jobid = jobid_of(send(api))
    longstatus = api.text("status", jobid=str(jobid), extqueue="1").split("\t")[5]
    assert longstatus.startswith("In Queue Tries: ")
    sent = sim.jobs[jobid].sendtime
    after = (sent.replace(year=sent.year + 1)).strftime("%Y-%m-%d %H:%M:%S")
    assert api.text("status", begin=after).startswith("ERR06")
    assert api.text("status", end=after, useronly="1").startswith(str(jobid))


def test_clear_finished_only(timed: tuple[FaxageSimulator, Api, ManualClock]) -> None:
    """clear refuses pending jobs (ERR07), clears finished ones, which then leave status."""
    sim, api, clock = timed
    jobid = jobid_of(send(api))
    refused = (
        f"ERR07: Job ID: {jobid} not found, does not belong to you "
        "or is pending and cannot be cleared yet"
    )
    assert api.text("clear", jobid=str(jobid)) == refused
    clock.advance(61)
    assert api.text("clear", jobid=str(jobid)) == f"{jobid} cleared"
    assert sim.jobs[jobid].cleared
    assert api.text("status", jobid=str(jobid)).startswith("ERR06")
    assert api.text("clear", jobid=str(jobid)).startswith(f"ERR07: Job ID: {jobid} ")
    assert api.text("clear", jobid="42").startswith("ERR07: Job ID: 42 ")


def test_stopfax(timed: tuple[FaxageSimulator, Api, ManualClock]) -> None:
    """stopfax stops a pending job; finished, unknown or missing ids get ERR20/19/18."""
    sim, api, clock = timed
    jobid = jobid_of(send(api))
    assert api.text("stopfax", jobid=str(jobid)) == f"{jobid} stopped"
    job = sim.jobs[jobid]
    assert job.stopped and job.shortstatus == "failure"
    clock.advance(61)
    assert sim.jobs[jobid].shortstatus == "failure"
    assert api.text("stopfax", jobid=str(jobid)) == f"ERR20: Job ID - {jobid} - is not In Queue"
    assert api.text("stopfax", jobid="7") == "ERR19: JOB ID 7 not found or does not belong to you"
    assert api.text("stopfax") == "ERR18: No jobid specified"
    assert api.text("clear", jobid=str(jobid)) == f"{jobid} cleared"


def test_dlstatus_and_dltrans(sim: FaxageSimulator, api: Api) -> None:
    """dlstatus answers a PDF (viewtype=pdf) or TIFF image; dltrans a PDF; unknown is ERR06."""
    jobid = jobid_of(send(api))
    pdf = api.call("dlstatus", jobid=str(jobid), viewtype="pdf")
    assert pdf.content.startswith(b"%PDF-")
    assert pdf.headers["Content-Type"] == "application/octet-stream"
    assert pdf.headers["Content-Length"] == str(len(pdf.content))
    assert api.call("dlstatus", jobid=str(jobid)).content.startswith(b"II*\x00")
    trans = api.call("dltrans", jobid=str(jobid))
    assert trans.content.startswith(b"%PDF-") and b"Transmittal" in trans.content
    expected = "ERR06: No jobs to display or job id specified not found"
    assert api.text("dlstatus", jobid="9") == expected
    assert api.text("dltrans", jobid="9") == expected


def test_on_sendfax_runs_after_recording(sim: FaxageSimulator, api: Api) -> None:
    """on_sendfax sees the job already recorded, before the answer is written."""
    seen: list[tuple[int, bool]] = []

    def hook(job: SimJob) -> None:
        seen.append((job.jobid, job.jobid in sim.jobs))

    sim.on_sendfax = hook
    jobid = jobid_of(send(api))
    assert seen == [(jobid, True)]


def test_on_sendfax_exception_is_http_500(sim: FaxageSimulator, api: Api) -> None:
    """A hook that raises makes the answer an HTTP 500; the job stays recorded."""

    def hook(job: SimJob) -> None:
        raise RuntimeError("daemon killed here")

    sim.on_sendfax = hook
    response = api.call(
        "sendfax",
        ("faxfilenames[]", "a.pdf"),
        ("faxfiledata[]", B64),
        faxno="3035550199",
        recipname="Bob",
    )
    assert response.status_code == 500
    assert len(sim.jobs) == 1


def test_sendfax_posts_counts_every_post(sim: FaxageSimulator, api: Api) -> None:
    """sendfax_posts counts refused, failed and successful sendfax POSTs alike."""
    send(api, "123")
    send(api)
    sim.inject("http500", operation="sendfax", times=1)
    send_response = api.call("sendfax", faxno="3035550199")
    assert send_response.status_code == 500
    api.text("listfax")
    assert sim.sendfax_posts == 3
