"""The simulated FAXAGE account: its inbox, its jobs, its numbers and its CDRs.

The HTTP layer (:mod:`faxd.sim.server`) and the operation handlers
(:mod:`faxd.sim.receiving`, :mod:`faxd.sim.sending`, :mod:`faxd.sim.numbers`)
read and change this state only while holding ``self.lock``, so any number of
handler threads and the test thread can use one simulator at once.

Time comes from an injected clock.  Jobs have no timer threads: a pending job
is settled (success or failure) the first time anyone looks at it after
``job_seconds`` have passed on that clock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from pathlib import Path

from faxd.clock import Clock, system_clock
from faxd.phone import UNKNOWN_CALLER_IDS, digits, nanp_number
from faxd.sim.documents import make_document
from faxd.sim.models import SimCdr, SimFax, SimJob, SimRequest
from faxd.sim.push import fax_fields, post_later

DEFAULT_LINES = ("3035550101", "3035550102", "3035550103")
#: Caller ids seed_inbound cycles through.
SEED_CALLER_IDS = ("(303)555-0100", "(720)555-0142", "Unavailable", "(415)555-0199")
#: Numbers provision.php offers: npanxx -> (rate center, state).
DEFAULT_NPANXX = {
    "202555": ("Washington", "DC"),
    "303991": ("Denver", "CO"),
    "720446": ("Denver", "CO"),
    "415800": ("San Francisco", "CA"),
    "888555": ("Toll-Free", "Toll-Free"),
}
FIRST_RECVID = 104729
FIRST_JOBID = 5271001
FIRST_NUID = 880001
#: The station ids (CSIDs) remote fax machines answer with, in turn by job: letters,
#: digits only, and none at all, the three shapes a status line must survive.
REMOTE_CSIDS = ("ACME FAX {n:02d}", "{faxno}", "")


def display_number(text: str) -> str:
    """A number as listfax shows it: ``(303)555-0101``, ``Unavailable``, or as given."""
    if text.strip().lower() in UNKNOWN_CALLER_IDS:
        return "Unavailable"
    try:
        number = nanp_number(text)
    except ValueError:
        return text
    return f"({number[:3]}){number[3:6]}-{number[6:]}"


def cdr_number(text: str) -> str:
    """A number as a CDR shows it: plain digits, empty when unknown."""
    if text.strip().lower() in UNKNOWN_CALLER_IDS:
        return ""
    try:
        return nanp_number(text)
    except ValueError:
        return digits(text)


class SimState:
    """Everything the simulated account holds, behind one re-entrant lock."""

    def __init__(
        self,
        username: str = "demo",
        company: str = "12345",
        password: str = "demo-password",  # noqa: S107 - the simulator's documented demo login
        *,
        clock: Clock = system_clock,
        job_seconds: float = 1.0,
        lines: Iterable[str] = DEFAULT_LINES,
    ) -> None:
        self.username = username
        self.company = company
        self.password = password
        self.clock = clock
        self.lock = threading.RLock()
        #: Seconds a job stays pending before it succeeds or fails.
        self.job_seconds = job_seconds
        self.faxes: dict[int, SimFax] = {}
        self.jobs: dict[int, SimJob] = {}
        self.cdrs: list[SimCdr] = []
        #: Every request received, in order, without its password.
        self.requests: list[SimRequest] = []
        #: Messages returned by ``delete_check`` (or its exceptions).
        self.violations: list[str] = []
        #: How many sendfax POSTs arrived (whatever their answer).
        self.sendfax_posts = 0
        #: Destinations whose jobs fail, with ``fail_reason`` as longstatus.
        self.fail_numbers: set[str] = set()
        self.fail_reason = "No answer from remote fax"
        #: Destinations sendfax refuses with ERR05.
        self.blocked_numbers: set[str] = set()
        #: The CSID a destination's machine answers with; others take REMOTE_CSIDS in turn.
        self.remote_csids: dict[str, str] = {}
        #: status's optional columns: "2014" (the documents' order) or "2009" (pagecount last).
        self.status_order = "2014"
        #: Columns appended to every listfax and status line, as FAXAGE adds fields.
        self.extra_columns = 0
        #: Shown as every status line's sendtime instead of the real one (None: the real
        #: time), e.g. "garbled" or "0000-00-00 00:00:00", as a broken FAXAGE answer might.
        self.sendtime_text: str | None = None
        #: Lines added as they are to every status answer that lists a job (garbled ones).
        self.status_extra_lines: list[str] = []
        #: The DIDs on the account (listlines), and those busied out.
        self.lines: list[str] = [nanp_number(n) for n in lines]
        self.disabled_lines: set[str] = set()
        self.npanxx: dict[str, tuple[str, str]] = dict(DEFAULT_NPANXX)
        self.available_dids: set[str] = {
            f"{prefix}{suffix:04d}" for prefix in self.npanxx for suffix in (1000, 1234, 4321, 7000)
        }
        #: Called at delfax with the fax; a returned string is a violation.
        self.delete_check: Callable[[SimFax], str | None] | None = None
        #: Called after a sendfax job is recorded, before its answer is written.
        self.on_sendfax: Callable[[SimJob], None] | None = None
        #: Where a new fax is announced (FAXAGE's inbound push); ``None``: nowhere.
        self.push_url: str | None = None
        #: Callback posts made (url, fields), and those that failed.
        self.push_posts: list[tuple[str, dict[str, str]]] = []
        self.push_failures = 0
        self._next_recvid = FIRST_RECVID
        self._next_jobid = FIRST_JOBID
        self._next_nuid = FIRST_NUID

    # ------------------------------------------------------------------ time

    def now(self) -> datetime:
        """Now on the simulator's clock, as FAXAGE shows it: naive local time."""
        return self.clock().astimezone().replace(tzinfo=None, microsecond=0)

    # ------------------------------------------------------------------ inbox

    def add_fax(
        self,
        dnis: str,
        cid: str = "(303)555-0100",
        *,
        data: bytes | None = None,
        pagecount: int = 1,
        recvdate: datetime | None = None,
        starttime: datetime | None = None,
        filename: str | None = None,
        kind: str = "pdf",
        size: int | None = None,
        data_path: Path | None = None,
    ) -> SimFax:
        """Receive a fax on ``dnis`` and return it (with its new recvid).

        Without ``data`` or ``data_path`` a unique document is generated
        (``kind`` ``"pdf"`` or ``"tiff"``, ``pagecount`` pages, about ``size``
        bytes).  ``data_path`` serves a file from disk in chunks, never loaded
        into memory; ``filename`` overrides the ``fax<recvid>.pdf`` name (tests
        of hostile names).  ``dnis`` becomes one of the account's lines.
        """
        if data is not None and data_path is not None:
            raise ValueError("give add_fax either data or data_path, not both")
        if pagecount < 1:
            raise ValueError(f"pagecount must be at least 1, not {pagecount}")
        number = nanp_number(dnis)
        with self.lock:
            recvid = self._next_recvid
            self._next_recvid += 1
            received = recvdate or self.now()
            started = starttime or received - timedelta(seconds=25 + 20 * pagecount)
            if data is None and data_path is None:
                data = make_document(kind, f"Fax {recvid}", pagecount, size=size)
            ext = "tif" if kind == "tiff" else "pdf"
            fax = SimFax(
                recvid=recvid,
                recvdate=received,
                starttime=started,
                cid=cid,
                dnis=number,
                filename=filename if filename is not None else f"fax{recvid}.{ext}",
                pagecount=pagecount,
                data=data or b"",
                data_path=data_path,
            )
            self.faxes[recvid] = fax
            if number not in self.lines:
                self.lines.append(number)
            duration = max(0, int((received - started).total_seconds()))
            self.add_cdr(started, "IN", cdr_number(cid), number, duration)
            if self.push_url:
                post_later(self, self.push_url, fax_fields(fax))
            return fax

    def seed_inbound(
        self,
        count: int,
        dnis: Iterable[str] = DEFAULT_LINES,
        *,
        kind: str = "pdf",
        size: int | None = None,
    ) -> list[SimFax]:
        """Receive ``count`` faxes spread round-robin over ``dnis``.

        Each is a valid document saying ``Fax <recvid>`` on each of its 1-3
        pages, received a minute apart ending now, from a rotating caller id.
        """
        numbers = list(dnis)
        if not numbers:
            raise ValueError("seed_inbound needs at least one DNIS")
        base = self.now()
        added: list[SimFax] = []
        for i in range(count):
            added.append(
                self.add_fax(
                    numbers[i % len(numbers)],
                    SEED_CALLER_IDS[i % len(SEED_CALLER_IDS)],
                    pagecount=1 + i % 3,
                    recvdate=base - timedelta(minutes=count - 1 - i),
                    kind=kind,
                    size=size,
                )
            )
        return added

    def live_fax(self, recvid: int) -> SimFax | None:
        """The fax with this recvid unless it is unknown or deleted."""
        with self.lock:
            fax = self.faxes.get(recvid)
            return None if fax is None or fax.deleted else fax

    # ------------------------------------------------------------------ jobs

    def new_job_ids(self) -> tuple[int, int]:
        """A fresh (jobid, commid) pair."""
        with self.lock:
            jobid = self._next_jobid
            self._next_jobid += 1
            return jobid, 9_000_000 + (jobid * 7) % 1_000_000

    def settle(self, job: SimJob) -> None:
        """Finish a pending job whose time has come (caller holds the lock)."""
        if not job.pending or job.stopped:
            return
        if self.clock() < job.settle_at:
            return
        done = job.settle_at.astimezone().replace(tzinfo=None, microsecond=0)
        job.completetime = max(done, job.sendtime)
        if job.faxno in self.fail_numbers:
            job.shortstatus = "failure"
            job.longstatus = self.fail_reason
            job.xmitpages = 0
            job.xmitseconds = 0
        else:
            job.shortstatus = "success"
            job.longstatus = "Success"
            job.xmitpages = job.pagecount
            job.xmitseconds = 20 + 25 * job.pagecount
            job.csid = self.remote_csid(job)
        src = self.lines[0] if self.lines else ""
        self.add_cdr(job.sendtime, "OUT", src, job.faxno, job.xmitseconds)

    def remote_csid(self, job: SimJob) -> str:
        """The station id the job's destination answered with."""
        if job.faxno in self.remote_csids:
            return self.remote_csids[job.faxno]
        n = job.jobid - FIRST_JOBID
        return REMOTE_CSIDS[n % len(REMOTE_CSIDS)].format(n=n % 100, faxno=job.faxno)

    def settle_all(self) -> None:
        """Settle every pending job whose time has come."""
        with self.lock:
            for job in self.jobs.values():
                self.settle(job)

    # ------------------------------------------------------------------ records

    def add_cdr(
        self, calldate: datetime, direction: str, src: str, dst: str, duration: int
    ) -> None:
        """Record one call detail record with the next nuid."""
        with self.lock:
            self.cdrs.append(SimCdr(self._next_nuid, calldate, direction, src, dst, duration))
            self._next_nuid += 1

    def log_request(self, request: SimRequest) -> None:
        """Append to ``requests`` (and count sendfax POSTs)."""
        with self.lock:
            self.requests.append(request)
            if request.operation == "sendfax" and request.path == "/httpsfax.php":
                self.sendfax_posts += 1

    def credentials_ok(self, username: str, company: str, password: str) -> bool:
        """Whether a POST's login matches the account."""
        return (username, company, password) == (self.username, self.company, self.password)
