"""Claims on faxes, jobs and roles (faxd/store/claims.py), on SQLite and on PostgreSQL.

Several instances share one database here the way two servers would: two
:class:`Claims` with different names on the same database, each with its own
clock so a test can let one instance's lease lapse.
"""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pg_helper import ON_BOTH

from faxd.errors import ConfigError
from faxd.store.claims import Claims, Instance, list_role
from faxd.store.db import Database
from faxd.store.models import InboundFax, InstanceRow, OutboundJob

LEASE = timedelta(seconds=60)
START = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


def claims(db: Database, name: str, clock: Clock | None = None) -> Claims:
    return Claims(db, Instance(name, LEASE), clock=clock or Clock())


def add_faxes(db: Database, count: int) -> list[int]:
    with db.session() as session:
        rows = [
            InboundFax(
                provider="faxage", account="acct", remote_id=str(n), recvdate=datetime(2026, 1, 1)
            )
            for n in range(count)
        ]
        session.add_all(rows)
        session.flush()
        return [row.id for row in rows]


def add_job(db: Database) -> int:
    with db.session() as session:
        job = OutboundJob(faxno="+13035550101", source_name="a.pdf", spool_path="/x")
        session.add(job)
        session.flush()
        return job.id


def fax_row(db: Database, fax_id: int) -> Any:
    with db.session() as session:
        return session.get(InboundFax, fax_id)


@ON_BOTH
def test_a_claimed_fax_is_skipped_by_the_other_instance_until_given_back(db: Database) -> None:
    [fax] = add_faxes(db, 1)
    a, b = claims(db, "fax1"), claims(db, "fax2")
    assert a.faxes.take(fax)
    assert not b.faxes.take(fax)
    assert a.faxes.take(fax)  # again: already mine
    assert a.faxes.holder(fax) == "fax1"
    a.faxes.give_back(fax)
    row = fax_row(db, fax)
    assert (row.instance, row.lease_until) == ("fax1", None)  # who last worked on it stays
    assert b.faxes.take(fax)
    assert not a.faxes.keep(fax)  # a lost it: no side effect may follow
    assert b.faxes.keep(fax)


@ON_BOTH
def test_a_lapsed_claim_is_taken_over_and_the_old_holder_learns_it_lost(db: Database) -> None:
    [job] = [add_job(db)]
    clock_a, clock_b = Clock(), Clock()
    a, b = claims(db, "fax1", clock_a), claims(db, "fax2", clock_b)
    assert a.jobs.take(job)
    clock_b.now = START + LEASE - timedelta(seconds=1)
    assert not b.jobs.take(job)
    clock_b.now = START + LEASE + timedelta(seconds=1)
    assert b.jobs.take(job)
    assert not a.jobs.keep(job)


@ON_BOTH
def test_heartbeat_renews_every_claim_and_role_of_its_instance_only(db: Database) -> None:
    faxes = add_faxes(db, 3)
    job = add_job(db)
    clock_a, clock_b = Clock(), Clock()
    a, b = claims(db, "fax1", clock_a), claims(db, "fax2", clock_b)
    a.register()
    assert a.faxes.take(faxes[0]) and a.jobs.take(job) and a.hold("list:faxage:acct")
    assert b.faxes.take(faxes[1])
    clock_a.now = START + timedelta(seconds=50)
    a.heartbeat()
    clock_b.now = START + timedelta(seconds=80)  # past the first lease, inside the renewed one
    assert not b.faxes.take(faxes[0])
    assert not b.jobs.take(job)
    assert not b.hold("list:faxage:acct")
    assert b.faxes.take(faxes[1])
    assert b.faxes.take(faxes[2])
    clock_b.now = START + timedelta(seconds=111)  # a stopped beating at 50 s
    assert b.faxes.take(faxes[0])
    assert b.hold("list:faxage:acct")


@ON_BOTH
def test_available_selects_free_lapsed_and_own_rows(db: Database) -> None:
    faxes = add_faxes(db, 4)
    clock = Clock()
    a, b = claims(db, "fax1", clock), claims(db, "fax2", clock)
    a.faxes.take(faxes[0])
    b.faxes.take(faxes[1])
    b.faxes.take(faxes[2])
    b.faxes.give_back(faxes[2])
    from sqlalchemy import select

    def visible_to_a() -> list[int]:
        with db.session() as session:
            query = select(InboundFax.id).where(a.faxes.available(clock())).order_by(InboundFax.id)
            return list(session.scalars(query))

    assert visible_to_a() == [faxes[0], faxes[2], faxes[3]]
    clock.now = START + LEASE + timedelta(seconds=1)
    assert visible_to_a() == faxes


@ON_BOTH
def test_one_instance_plays_a_role_and_another_takes_it_when_it_lapses(db: Database) -> None:
    role = list_role("faxage", "acct")
    clock_a, clock_b = Clock(), Clock()
    a, b = claims(db, "fax1", clock_a), claims(db, "fax2", clock_b)
    assert a.hold(role)
    assert not b.hold(role)
    assert b.holder(role) == "fax1"
    clock_a.now = clock_b.now = START + timedelta(seconds=30)
    assert a.hold(role)  # renewed to 90 s
    clock_b.now = START + timedelta(seconds=89)
    assert not b.hold(role)
    clock_b.now = START + timedelta(seconds=91)
    assert b.holder(role) is None
    assert b.hold(role)
    assert not a.hold(role)
    b.let_go(role)
    assert a.hold(role)
    assert [(r.role, r.holder) for r in a.roles()] == [(role, "fax1")]


@ON_BOTH
def test_concurrent_takers_get_each_fax_exactly_once(db: Database) -> None:
    faxes = add_faxes(db, 40)
    takers = [claims(db, f"fax{n}") for n in range(4)]
    won: Counter[int] = Counter()
    lock = threading.Lock()
    barrier = threading.Barrier(len(takers))
    errors: list[BaseException] = []

    def race(mine: Claims) -> None:
        try:
            barrier.wait()
            for fax in faxes:
                if mine.faxes.take(fax):
                    with lock:
                        won[fax] += 1
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=race, args=(t,)) for t in takers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert won == Counter(dict.fromkeys(faxes, 1))


@ON_BOTH
def test_concurrent_role_takers_leave_exactly_one_holder(db: Database) -> None:
    takers = [claims(db, f"fax{n}") for n in range(4)]
    held: list[str] = []
    barrier = threading.Barrier(len(takers))

    def race(mine: Claims) -> None:
        barrier.wait()
        if mine.hold("follow:faxage"):
            held.append(mine.name)

    threads = [threading.Thread(target=race, args=(t,)) for t in takers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(held) == 1
    assert takers[0].holder("follow:faxage") == held[0]


@ON_BOTH
def test_a_name_a_live_server_elsewhere_uses_is_refused(db: Database) -> None:
    clock = Clock()
    with db.session() as session:
        session.add(
            InstanceRow(
                name="fax1", machine="another-machine", pid=1, started_at=START, seen_at=START
            )
        )
    with pytest.raises(ConfigError, match=r"fax1.*another machine.*\[database\] instance"):
        claims(db, "fax1", clock).register()
    clock.now = START + LEASE + timedelta(seconds=1)  # that server is gone: the name is free
    claims(db, "fax1", clock).register()
    [seen] = claims(db, "fax2", clock).instances()
    assert seen.name == "fax1" and seen.alive


@ON_BOTH
def test_retire_frees_everything_and_marks_the_instance_stopped(db: Database) -> None:
    [fax] = add_faxes(db, 1)
    job = add_job(db)
    a, b = claims(db, "fax1"), claims(db, "fax2")
    a.register()
    a.faxes.take(fax)
    a.jobs.take(job)
    a.hold("retention")
    a.retire()
    assert b.faxes.take(fax) and b.jobs.take(job) and b.hold("retention")
    assert b.dead_instances() == ["fax1"]


@ON_BOTH
def test_renewal_keeps_claims_alive_while_work_runs_and_stops_when_told(db: Database) -> None:
    import time

    from faxd.store.claims import Renewal

    [fax] = add_faxes(db, 1)
    mine = Claims(db, Instance("fax1", timedelta(seconds=3)))
    mine.register()
    assert mine.faxes.take(fax)
    first = fax_row(db, fax).lease_until
    renewal = Renewal(mine).start()
    try:
        deadline = time.monotonic() + 30
        while fax_row(db, fax).lease_until <= first and time.monotonic() < deadline:
            time.sleep(0.1)
        assert fax_row(db, fax).lease_until > first
    finally:
        renewal.stop()
    stopped = fax_row(db, fax).lease_until
    time.sleep(1.5)  # longer than one beat (1 s): nothing renews any more
    assert fax_row(db, fax).lease_until == stopped


@ON_BOTH
def test_keep_reads_while_the_lease_is_fresh_and_renews_it_near_its_end(db: Database) -> None:
    [fax] = add_faxes(db, 1)
    clock = Clock()
    mine = claims(db, "fax1", clock)
    assert mine.faxes.take(fax)
    clock.now = START + timedelta(seconds=20)  # 40 s of 60 left: nothing to renew
    assert mine.faxes.keep(fax)
    assert fax_row(db, fax).lease_until == START + LEASE
    clock.now = START + timedelta(seconds=40)  # 20 s left: renewed
    assert mine.faxes.keep(fax)
    assert fax_row(db, fax).lease_until == clock.now + LEASE


@ON_BOTH
def test_a_restarted_instance_gives_back_what_its_killed_predecessor_held(db: Database) -> None:
    """Its heartbeat would renew them for ever: a submitted job only the other server
    follows must not stay held by a process that never works on it again."""
    [fax] = add_faxes(db, 1)
    job = add_job(db)
    clock = Clock()
    before = claims(db, "fax1", clock)
    before.register()
    assert before.faxes.take(fax) and before.jobs.take(job)
    # SIGKILL: nothing given back.  The same server starts again a moment later.
    clock.now = START + timedelta(seconds=5)
    claims(db, "fax1", clock).register()
    other = claims(db, "fax2", clock)
    assert other.faxes.take(fax) and other.jobs.take(job)
