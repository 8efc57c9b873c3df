"""The sending operations of httpsfax.php: sendfax, status, clear, stopfax, dlstatus, dltrans.

sendfax validates like the documents say (10-digit ``faxno`` or ``ERR04``,
blocked destinations ``ERR05``, files with a supported extension and base64
data or ``ERR03``), records a :class:`~faxd.sim.models.SimJob` and answers
``JOBID: n``.  status writes the documented record with its optional columns
in the 2014 document's order (pagecount, csid, login, xmitpages), or in the
older reading (csid, login, xmitpages, pagecount last) when the simulator's
``status_order`` is ``"2009"``, so tests can show faxd loses no job either way.
``extra_columns`` appends that many columns to every status line, as FAXAGE
does when it adds a field; ``sendtime_text`` stands in for every sendtime (an
unreadable or all-zero one), so reconciling a lost answer can be tested
against a record whose time cannot be told; ``status_extra_lines`` are added
to every status answer as they are, as a garbled line would be.
"""

from __future__ import annotations

import base64
import binascii
from datetime import timedelta

from faxd.sim.documents import count_pages, make_pdf, make_tiff
from faxd.sim.forms import Form
from faxd.sim.models import (
    Answer,
    FileAnswer,
    SimJob,
    TextAnswer,
    extra_values,
    format_time,
)
from faxd.sim.push import notify_when_done
from faxd.sim.receiving import parse_int, parse_time
from faxd.sim.state import SimState

#: Extensions the documents list under "Supported File Types" (png, ppt, pptx,
#: wps and wpd from the 2014-era documents).
SUPPORTED_EXTENSIONS = frozenset(
    {"jpg", "jpeg", "pdf", "ps", "tif", "tiff", "doc", "dot", "docx", "odt", "rtf"}
    | {"xls", "xlsx", "ods", "csv", "htm", "html", "bmp", "gif", "pcl", "txt"}
    | {"png", "ppt", "pptx", "wps", "wpd"}
)
#: The optional status columns, by flag, in each reading of the documents.
STATUS_ORDERS = {
    "2014": ("pagecount", "csid", "showlogin", "xmitpages"),
    "2009": ("csid", "showlogin", "xmitpages", "pagecount"),
}
ERR06 = "ERR06: No jobs to display or job id specified not found"


def blocked_reason(state: SimState, faxno: str) -> str | None:
    """Why FAXAGE would refuse to dial ``faxno`` (ERR05), or ``None``."""
    area, exchange = faxno[:3], faxno[3:6]
    if area[0] in "01" or exchange[0] in "01":
        return f"Fax number {faxno} is not a valid North American number"
    if area[1:] == "11" or exchange[1:] == "11":
        return f"Fax number {faxno} is a blocked service number"
    if area in ("900", "976"):
        return f"Fax number {faxno} is a blocked premium-rate number"
    if faxno in state.blocked_numbers:
        return f"Fax number {faxno} is blocked"
    return None


def _decode_files(form: Form) -> list[tuple[str, bytes]] | None:
    names, blobs = form.array("faxfilenames"), form.array("faxfiledata")
    if not names or len(names) != len(blobs):
        return None
    files: list[tuple[str, bytes]] = []
    for name, blob in zip(names, blobs, strict=True):
        ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
        if ext not in SUPPORTED_EXTENSIONS:
            return None
        try:
            data = base64.b64decode("".join(blob.split()), validate=True)
        except (binascii.Error, ValueError):
            return None
        if not data:
            return None
        files.append((name, data))
    return files


def _clean(text: str, limit: int) -> str:
    return " ".join(text.replace("\t", " ").splitlines())[:limit]


def sendfax(state: SimState, form: Form) -> Answer:
    """Queue a job (standard or URL mode) and answer ``JOBID: n``."""
    faxno = form.text("faxno")
    if not (len(faxno) == 10 and faxno.isdigit()):
        return TextAnswer(f"ERR04: Fax number {faxno} appears to be invalid")
    reason = blocked_reason(state, faxno)
    if reason is not None:
        return TextAnswer(f"ERR05: {reason}")
    urls = ([form.text("faxurl")] if form.text("faxurl") else []) + form.array("faxurls")
    files: list[tuple[str, bytes]] = []
    if urls:
        if not all(url.startswith(("http://", "https://")) for url in urls):
            return TextAnswer("ERR03: No files to fax")
        pages = len(urls)
    else:
        decoded = _decode_files(form)
        if decoded is None:
            return TextAnswer("ERR03: No files to fax")
        files = decoded
        pages = sum(count_pages(name, data) for name, data in files)
    jobid, commid = state.new_job_ids()
    sent_at = state.clock()
    job = SimJob(
        jobid=jobid,
        commid=commid,
        faxno=faxno,
        recipname=_clean(form.text("recipname"), 32),
        files=files,
        urls=urls,
        url_types=form.array("faxurltypes"),
        login=form.text("username"),
        sendtime=state.now(),
        settle_at=sent_at + timedelta(seconds=state.job_seconds),
        pagecount=pages,
        tagname=form.get("tagname"),
        tagnumber=form.get("tagnumber"),
        em_notify=form.flag("em_notify"),
        url_notify=form.get("url_notify"),
        resolution=form.get("resolution"),
        contrastalgo=form.get("contrastalgo"),
        priority=form.get("priority"),
        async_=form.flag("async"),
    )
    with state.lock:
        state.jobs[jobid] = job
        hook = state.on_sendfax
    if hook is not None:
        hook(job)
    notify_when_done(state, job)
    return TextAnswer(f"JOBID: {jobid}")


def _requested_ids(form: Form) -> set[int] | None:
    """The jobs a status call names (jobid and/or jobids[]), ``None`` for all."""
    texts = ([form.text("jobid")] if form.get("jobid") is not None else []) + form.array("jobids")
    if not texts:
        return None
    return {n for n in (parse_int(t) for t in texts) if n is not None}


def status(state: SimState, form: Form) -> Answer:
    """Status records for the account's (or the named) jobs; ``ERR06`` when none."""
    wanted = _requested_ids(form)
    begin, end = parse_time(form.text("begin")), parse_time(form.text("end"))
    with state.lock:
        state.settle_all()
        jobs = sorted((j for j in state.jobs.values() if not j.cleared), key=lambda j: j.jobid)
        if wanted is not None:
            jobs = [job for job in jobs if job.jobid in wanted]
        if form.flag("useronly"):
            jobs = [job for job in jobs if job.login == form.text("username")]
        if begin is not None:
            jobs = [job for job in jobs if job.sendtime >= begin]
        if end is not None:
            jobs = [job for job in jobs if job.sendtime <= end]
        if not jobs:
            return TextAnswer(ERR06)
        order, extra = STATUS_ORDERS[state.status_order], state.extra_columns
        lines = [_status_record(job, form, order, extra, state.sendtime_text) for job in jobs]
        lines += state.status_extra_lines
    return TextAnswer("".join(line + "\n" for line in lines))


def _status_record(
    job: SimJob, form: Form, order: tuple[str, ...], extra: int, sendtime: str | None
) -> str:
    hours, rest = divmod(job.xmitseconds, 3600)
    longstatus = job.longstatus
    if form.flag("extqueue") and job.pending:
        longstatus += " Tries: 0 Status: Waiting for a free line"
    fields = [
        str(job.jobid),
        str(job.commid),
        job.recipname,
        job.faxno,
        job.shortstatus,
        longstatus,
        format_time(job.sendtime) if sendtime is None else sendtime,
        format_time(job.completetime),
        f"{hours:02d}:{rest // 60:02d}:{rest % 60:02d}",
    ]
    optional = {
        "pagecount": str(job.pagecount),
        "csid": job.csid,
        "showlogin": job.login,
        "xmitpages": str(job.xmitpages),
    }
    fields += [optional[flag] for flag in order if form.flag(flag)]
    fields += extra_values(extra)
    return "\t".join(fields)



def _find_job(state: SimState, jobid_text: str) -> SimJob | None:
    jobid = parse_int(jobid_text)
    with state.lock:
        job = state.jobs.get(jobid) if jobid is not None else None
        if job is None or job.cleared:
            return None
        state.settle(job)
        return job


def clear(state: SimState, form: Form) -> Answer:
    """Forget a finished job (``<jobid> cleared``); pending or unknown is ``ERR07``."""
    jobid = form.text("jobid")
    with state.lock:
        job = _find_job(state, jobid)
        if job is None or job.pending:
            return TextAnswer(
                f"ERR07: Job ID: {jobid} not found, does not belong to you "
                "or is pending and cannot be cleared yet"
            )
        job.cleared = True
    return TextAnswer(f"{job.jobid} cleared")


def stopfax(state: SimState, form: Form) -> Answer:
    """Stop a pending job (``<jobid> stopped``); it then reads as a failure."""
    jobid = form.text("jobid")
    if parse_int(jobid) is None:
        return TextAnswer("ERR18: No jobid specified")
    with state.lock:
        job = _find_job(state, jobid)
        if job is None:
            return TextAnswer(f"ERR19: JOB ID {jobid} not found or does not belong to you")
        if not job.pending:
            return TextAnswer(f"ERR20: Job ID - {jobid} - is not In Queue")
        job.stopped = True
        job.shortstatus = "failure"
        job.longstatus = "Stopped by user"
        job.completetime = state.now()
    return TextAnswer(f"{job.jobid} stopped")


def dlstatus(state: SimState, form: Form) -> Answer:
    """The sent fax as imaged: a TIFF, or a PDF with ``viewtype=pdf``."""
    job = _find_job(state, form.text("jobid"))
    if job is None:
        return TextAnswer(ERR06)
    title = f"Job {job.jobid} to {job.faxno}"
    if form.text("viewtype").lower() == "pdf":
        return FileAnswer(f"{job.jobid}.pdf", make_pdf(title, job.pagecount))
    return FileAnswer(f"{job.jobid}.tif", make_tiff(title, job.pagecount))


def dltrans(state: SimState, form: Form) -> Answer:
    """The one-page transmittal PDF of a job."""
    job = _find_job(state, form.text("jobid"))
    if job is None:
        return TextAnswer(ERR06)
    title = f"Transmittal: job {job.jobid} to {job.faxno}, {job.shortstatus}"
    return FileAnswer(f"trans{job.jobid}.pdf", make_pdf(title, 1))
