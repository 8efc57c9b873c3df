"""Two faxd instances on one PostgreSQL database and one hot folder: each drop is one fax.

Issue 14: two servers share the outbox on a network share (polling mode) and
the database.  Here two :class:`Outbound` services with different instance
names run in one process the way two servers would: one PostgreSQL database,
one FAXAGE simulator, one hot folder, sent and spool folder, each with its own
client and its own :class:`Claims`.  A server that died is one whose instance
row is no longer renewed; the other sees its lease lapse by running on a clock
moved past it.  Everything else is real: files, folders, the database, HTTP.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pg_helper import ON_BOTH
from sqlalchemy import update
from test_hot_folder import drop, wait_for

from faxd.clock import Clock, system_clock
from faxd.config import OutboundSettings
from faxd.outbound.claimfolder import CLAIMS_DIR
from faxd.outbound.service import Outbound, list_jobs
from faxd.providers.faxage.client import FaxageClient
from faxd.providers.faxage.provider import FaxageOutbound
from faxd.store.claims import Claims, Instance, follow_role
from faxd.store.db import Database
from faxd.store.models import OutboundJob
from faxd.store.states import JobState

LEASE = timedelta(seconds=60)


class ShiftedClock:
    """The real time moved by ``offset``: a server that sees another's lease lapse."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


def document(n: int) -> bytes:
    return b"%PDF-1.4 shared outbox document " + str(n).encode() + b"\n"


class Servers:
    """Builds instances: claims, a client to the one simulator, an Outbound service."""

    def __init__(self, db: Database, sim: Any, settings: OutboundSettings) -> None:
        self.db = db
        self.sim = sim
        self.settings = settings
        self.clients: list[FaxageClient] = []
        self.services: list[Outbound] = []

    def claims(self, name: str, clock: Clock = system_clock) -> Claims:
        claims = Claims(self.db, Instance(name, LEASE), clock=clock)
        claims.register()
        return claims

    def outbound(self, claims: Claims, clock: Clock = system_clock) -> Outbound:
        client = FaxageClient(
            self.sim.username, self.sim.company, self.sim.password, base_url=self.sim.base_url,
            timeout=10.0,
            retries=3, backoff=0.0, sleep=lambda _s: None,
        )  # fmt: skip
        self.clients.append(client)
        service = Outbound(
            self.settings, self.db, FaxageOutbound(client, self.settings), clock=clock,
            claims=claims,
        )  # fmt: skip
        self.services.append(service)
        return service

    def close(self) -> None:
        for service in self.services:
            service.stop()
        for client in self.clients:
            client.close()


@pytest.fixture
def servers(make_settings: Callable[..., OutboundSettings], sim: Any, db: Any) -> Iterator[Servers]:
    settings = make_settings(poll_seconds=0.2, settle_seconds=0.3, clear_after_status=False)
    built = Servers(db, sim, settings)
    try:
        yield built
    finally:
        built.close()


@pytest.fixture
def shared(
    make_settings: Callable[..., OutboundSettings], sim: Any, pg_db: Database
) -> Iterator[Servers]:
    settings = make_settings(poll_seconds=0.2, settle_seconds=0.3, clear_after_status=False)
    built = Servers(pg_db, sim, settings)
    try:
        yield built
    finally:
        built.close()


def posts_per_drop(sim: Any, drops: dict[str, bytes]) -> Counter[str]:
    """How often the simulator received each drop's bytes, by the drop's file name."""
    counts = Counter(job.files[0][1] for job in sim.jobs.values())
    return Counter({name: counts[data] for name, data in drops.items()})


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def keep_passing(service: Outbound, stop: threading.Event, errors: list[BaseException]) -> None:
    """What the daemon's scheduler does for one instance: submit and follow-up passes."""
    while not stop.is_set():
        try:
            service.submit_pending()
            service.follow_up()
        except BaseException as exc:  # the test reports it
            errors.append(exc)
            return
        time.sleep(0.05)


def test_two_instances_on_one_hot_folder_post_each_of_60_drops_once(
    shared: Servers, folders: Any, sim: Any
) -> None:
    """30 drops waiting at start-up (both instances see them at once), 30 more while running.

    Every drop is posted once, lands in sent/ once, and is one job: no
    instance ever created a job for a file the other took (the ids have no gaps).
    """
    db = shared.db
    drops: dict[str, bytes] = {}
    for n in range(60):
        number = f"30355{n:05d}"
        # Every third in a folder named with the number, as offices set them up.
        relpath = f"{number}/page {n}.pdf" if n % 3 == 0 else f"{number} - Doc {n}.pdf"
        drops[relpath] = document(n)
    early = dict(list(drops.items())[:30])
    late = dict(list(drops.items())[30:])
    for relpath, data in early.items():
        drop(folders.hot, relpath, data)
    one = shared.outbound(shared.claims("fax1"))
    two = shared.outbound(shared.claims("fax2"))
    one.start()
    two.start()
    stop = threading.Event()
    errors: list[BaseException] = []
    passes = [
        threading.Thread(target=keep_passing, args=(service, stop, errors), daemon=True)
        for service in (one, two)
    ]
    for thread in passes:
        thread.start()
    try:
        for relpath, data in late.items():
            drop(folders.hot, relpath, data)
            time.sleep(0.02)
        names = {Path(relpath).name for relpath in drops}
        assert wait_for(lambda: {p.name for p in folders.sent.iterdir()} >= names, timeout=180), (
            sorted(names - {p.name for p in folders.sent.iterdir()}),
            [(j.id, j.state, j.last_error) for j in list_jobs(db) if j.state != "sent"],
        )
    finally:
        stop.set()
        for thread in passes:
            thread.join(timeout=60)
    assert errors == []
    assert sim.sendfax_posts == 60
    assert posts_per_drop(sim, {Path(r).name: d for r, d in drops.items()}) == Counter(
        {Path(relpath).name: 1 for relpath in drops}
    )
    assert sorted(p.name for p in folders.sent.iterdir()) == sorted(names)
    for relpath, data in drops.items():
        assert (folders.sent / Path(relpath).name).read_bytes() == data
    jobs = list_jobs(db)
    assert [job.id for job in jobs] == list(range(1, 61)), "a job was made for a taken file"
    assert {job.state for job in jobs} == {JobState.SENT.value}
    by_name = {job.source_name: job for job in jobs}
    for relpath in drops:
        assert by_name[Path(relpath).name].faxno == "+1" + relpath[:10]
    assert files_under(folders.hot) == []  # nothing left over, claim folders included
    assert list(folders.failed.iterdir()) == []
    assert one.claims.holder(follow_role("faxage")) in ("fax1", "fax2")


def test_files_a_dead_instance_had_claimed_are_adopted_and_sent_once(
    shared: Servers, folders: Any, sim: Any
) -> None:
    """A server died with files in its claim folder; the other adopts them after the lease.

    One was claimed and nothing more; one was already a job whose copy into the
    spool the crash cut off.  Neither is touched while the dead server's lease
    runs; then each is sent once, and the number from a folder name still holds.
    """
    db = shared.db
    dead = shared.claims("fax1")  # registered, then never heartbeats again
    theirs = folders.hot / CLAIMS_DIR / "fax1"
    plain, in_folder, cut_off = "3035550111 - Plain.pdf", "3035550122/report.pdf", "3035550133.pdf"
    drops = {plain: document(1), in_folder: document(2), cut_off: document(3)}
    for relpath, data in drops.items():
        drop(theirs, relpath, data)
    # The cut-off copy: fax1 had committed the job (born claimed by it), then died.
    job_id = dead_job(db, dead, cut_off, drops[cut_off], folders.spool)

    clock = ShiftedClock()
    survivor = shared.outbound(shared.claims("fax2", clock), clock=clock)
    survivor.start()
    assert survivor.intake.recover() == 0  # fax1 still counts as alive
    survivor.submit_pending()
    assert files_under(theirs) == sorted(theirs / relpath for relpath in drops)
    assert sim.sendfax_posts == 0

    clock.offset = LEASE + timedelta(seconds=5)  # no rescan asked: the worker looks itself

    def all_sent() -> bool:
        survivor.submit_pending()
        survivor.follow_up()
        return len(list(folders.sent.iterdir())) == len(drops)

    assert wait_for(all_sent, timeout=60), [(j.id, j.state, j.last_error) for j in list_jobs(db)]
    assert posts_per_drop(sim, {Path(r).name: d for r, d in drops.items()}) == Counter(
        {Path(relpath).name: 1 for relpath in drops}
    )
    jobs = {job.source_name: job for job in list_jobs(db)}
    assert len(jobs) == 3 and jobs[cut_off].id == job_id  # resumed, not taken as a new job
    assert jobs["report.pdf"].faxno == "+13035550122"
    assert files_under(folders.hot) == []


def dead_job(db: Database, dead: Claims, relpath: str, data: bytes, spool: Path) -> int:
    """The row an instance commits before copying a claimed file into the spool."""
    import hashlib

    now = dead.clock()
    with db.session() as session:
        job = OutboundJob(
            state=JobState.QUEUED.value, faxno="+1" + relpath[:10], recipname="",
            source_name=Path(relpath).name, source_relpath=relpath, spool_path="",
            size=len(data), sha256=hashlib.sha256(data).hexdigest(), created_at=now,
            updated_at=now, instance=dead.name, lease_until=now + LEASE,
        )  # fmt: skip
        session.add(job)
        session.flush()
        job.spool_path = str(spool / f"{job.id}-{job.source_name}")
        return int(job.id)


@ON_BOTH
def test_a_job_another_instance_is_posting_is_neither_reconciled_nor_posted_again(
    servers: Servers, folders: Any, sim: Any
) -> None:
    """While fax1's sendfax is under way the job is ``submitting``: fax2 leaves it alone."""
    db = servers.db
    one = servers.outbound(servers.claims("fax1"))
    two = servers.outbound(servers.claims("fax2"))
    job_id = taken(one, folders.hot, "3035550144.pdf", 4)
    sim.slow_seconds = 8.0  # far longer than fax2's pass below
    sim.inject("slow", operation="sendfax", times=1)  # the POST is in flight meanwhile
    errors: list[BaseException] = []

    def post() -> None:
        try:
            one.submit_pending()
        except BaseException as exc:
            errors.append(exc)

    posting = threading.Thread(target=post, daemon=True)
    posting.start()
    assert wait_for(lambda: any(r.operation == "sendfax" for r in sim.requests), timeout=30)
    assert job_row(db, job_id).state == JobState.SUBMITTING.value
    two.submit_pending()  # reconciles submitting jobs, then posts queued ones
    row = job_row(db, job_id)
    assert (row.state, row.resends, row.instance) == (JobState.SUBMITTING.value, 0, "fax1")
    posting.join(timeout=60)
    assert errors == []
    two.submit_pending()
    one.submit_pending()
    assert sim.sendfax_posts == 1
    assert job_row(db, job_id).state == JobState.SUBMITTED.value


@ON_BOTH
def test_a_job_a_dead_instance_left_submitting_is_reconciled_after_its_lease(
    servers: Servers, folders: Any, sim: Any
) -> None:
    """fax1 claimed the job and marked it ``submitting``, then died before its POST."""
    db = servers.db
    one = servers.outbound(servers.claims("fax1"))
    clock = ShiftedClock()
    two = servers.outbound(servers.claims("fax2", clock), clock=clock)
    job_id = taken(one, folders.hot, "3035550155.pdf", 5)
    assert one.intake.jobs.take(job_id)
    # What fax1's claim committed just before its POST:
    set_job(db, job_id, state=JobState.SUBMITTING.value, attempts=1, submitted_at=clock())
    two.submit_pending()
    assert job_row(db, job_id).state == JobState.SUBMITTING.value
    assert sim.sendfax_posts == 0
    clock.offset = LEASE + timedelta(seconds=5)
    two.submit_pending()  # nothing listed matches: resent once, by fax2
    row = job_row(db, job_id)
    assert (row.state, row.resends, row.instance) == (JobState.SUBMITTED.value, 1, "fax2")
    assert sim.sendfax_posts == 1


@ON_BOTH
def test_status_follow_up_runs_on_one_instance_and_moves_to_the_other_when_it_dies(
    servers: Servers, folders: Any, sim: Any
) -> None:
    db = servers.db
    clock = ShiftedClock()
    one = servers.outbound(servers.claims("fax1"))
    two = servers.outbound(servers.claims("fax2", clock), clock=clock)
    for n in (6, 7):
        taken(one, folders.hot, f"303555016{n}.pdf", n)
    one.submit_pending()
    first, second = (job.id for job in list_jobs(db))
    set_job(db, second, provider="elsewhere")  # only the first is followed for now
    assert wait_for(lambda: one.follow_up() == 1, timeout=30)
    assert job_row(db, first).state == JobState.SENT.value
    set_job(db, second, provider="faxage")
    asked = status_calls(sim)
    assert two.follow_up() == 0  # fax1 follows faxage
    assert status_calls(sim) == asked
    assert job_row(db, second).state == JobState.SUBMITTED.value
    clock.offset = LEASE + timedelta(seconds=5)  # fax1 stopped renewing: its role lapsed
    assert wait_for(lambda: two.follow_up() == 1, timeout=30)
    assert two.claims.holder(follow_role("faxage")) == "fax2"
    assert sorted(p.name for p in folders.sent.iterdir()) == ["3035550166.pdf", "3035550167.pdf"]


def taken(service: Outbound, hot: Path, name: str, n: int) -> int:
    """Drop ``document(n)`` as ``name`` and have ``service`` take it at once; the job id."""
    drop(hot, name, document(n))
    job_id = service.intake.take(hot / name)
    assert job_id is not None
    return job_id


def set_job(db: Database, job_id: int, **values: Any) -> None:
    with db.session() as session:
        session.execute(update(OutboundJob).where(OutboundJob.id == job_id).values(**values))


def status_calls(sim: Any) -> int:
    return sum(1 for request in sim.requests if request.operation == "status")


def job_row(db: Database, job_id: int) -> OutboundJob:
    with db.session() as session:
        job = session.get(OutboundJob, job_id)
        assert job is not None
        return job


def test_a_claimed_file_whose_job_is_held_is_left_for_that_job(
    make_settings: Callable[..., OutboundSettings], folders: Any, db: Database
) -> None:
    """A crash cut off a job's copy into the spool; its file waits in the claim folder.

    While another thread holds that job (the submitter resuming it), recovery
    must not take the file as a second job; once free, the job itself gets it.
    """
    from faxd.outbound.intake import Intake

    claims = Claims(db, Instance("fax1", LEASE))
    intake = Intake(make_settings(), db, claims=claims)
    relpath, data = "3035550177.pdf", document(7)
    drop(folders.hot / CLAIMS_DIR / "fax1", relpath, data)
    job_id = dead_job(db, claims, relpath, data, folders.spool)
    claims.jobs.give_back(job_id)
    assert intake.jobs.take(job_id)  # the other thread
    assert intake.recover() == 0
    assert [job.id for job in list_jobs(db)] == [job_id]
    assert files_under(folders.hot) == [folders.hot / CLAIMS_DIR / "fax1" / relpath]
    intake.jobs.give_back(job_id)
    assert intake.recover() == 0  # resumed: the same job, not a new one
    assert [job.id for job in list_jobs(db)] == [job_id]
    assert (folders.spool / f"{job_id}-{relpath}").read_bytes() == data
    assert files_under(folders.hot) == []
