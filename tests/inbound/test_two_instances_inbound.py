"""Two faxd instances on one database and one FAXAGE account: the work divided, none doubled.

Each "instance" here is an :class:`InboundPipeline` with claims of its own
name (and its own spool folder and FAXAGE client, as on its own machine);
both share the database, the simulator and the delivery folders (the
share).  They run in threads of one test process: the multi-process tests
with SIGKILL live elsewhere.  Every test runs on SQLite and on PostgreSQL
(ON_BOTH), the one that matters for several servers.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, MutableMapping
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from inbound_helpers import (
    MAIN,
    SALES,
    SUPPORT,
    ActionBook,
    ManualClock,
    delivered_files,
    events,
    expected_path,
    faxage_inbound,
    make_config,
    office_routes,
    recorder_route,
    require_delivered,
    sim_settings,
    wanted_files,
)
from pg_helper import ON_BOTH
from sqlalchemy import select

from faxd.clock import Clock, system_clock
from faxd.config import Config
from faxd.inbound.diskguard import FreeBytes
from faxd.inbound.pipeline import InboundPipeline
from faxd.providers.faxage.client import FaxageClient
from faxd.providers.faxage.records import DownloadResult, ListfaxResult
from faxd.sim import SimFax
from faxd.store.claims import FAXES, Claims, Instance, RowClaims
from faxd.store.db import Database
from faxd.store.models import Delivery, InboundFax
from faxd.store.states import FaxState

LEASE = timedelta(seconds=60)


class Counted:
    """One instance's FAXAGE client, counting its listfax calls."""

    def __init__(self, inner: FaxageClient) -> None:
        self.inner = inner
        self.listfax = 0

    def listfax_batches(
        self, *, idgt: int | None = None, idasc: bool = True
    ) -> Iterator[ListfaxResult]:
        self.listfax += 1
        return self.inner.listfax_batches(idgt=idgt, idasc=idasc)

    def getfax(self, recvid: int, dest: Path, *, max_bytes: int | None = None) -> DownloadResult:
        return self.inner.getfax(recvid, dest, max_bytes=max_bytes)

    def delfax(self, recvid: int) -> None:
        self.inner.delfax(recvid)


class Server:
    """One faxd instance: its name, clock, spool, database engine, FAXAGE client, pipeline."""

    def __init__(
        self,
        name: str,
        sim: Any,
        db: Any,
        config: Config,
        *,
        clock: Clock = system_clock,
        actions: ActionBook | None = None,
        spool_dir: Path | None = None,
        free_bytes: FreeBytes | None = None,
    ) -> None:
        self.name = name
        spool = spool_dir or config.path.parent / name / "spool"  # its own machine's, by default
        self.config = replace(config, inbound=replace(config.inbound, spool_dir=spool))
        self.client = FaxageClient(
            sim.username, sim.company, sim.password, base_url=sim.base_url, timeout=5.0,
            retries=3, backoff=0.0, sleep=lambda _s: None,
        )  # fmt: skip
        self.counted = Counted(self.client)
        # Its own engine and connection pool on the shared database, as on its own machine.
        self.db = Database(db.url.render_as_string(hide_password=False))
        db = self.db
        self.claims = Claims(db, Instance(name, LEASE), clock=clock)
        extra: dict[str, Any] = {} if actions is None else {"actions_for": actions}
        if free_bytes is not None:
            extra["free_bytes"] = free_bytes
        self.pipe = InboundPipeline(
            faxage_inbound(self.counted, self.config), db, self.config, clock=clock,
            claims=self.claims, **extra,
        )  # fmt: skip

    def close(self) -> None:
        self.client.close()
        self.db.dispose()


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    made: list[Server] = []
    yield made
    for server in made:
        server.close()


def office(tmp_path: Path, sim: Any) -> Config:
    """The office's routes, delivering into the shared folder ``tmp_path / "share"``."""
    return make_config(tmp_path, office_routes(tmp_path / "share"), faxage=sim_settings(sim))


def pair(
    servers: list[Server], sim: Any, db: Any, config: Config, clock_a: Clock, clock_b: Clock
) -> tuple[Server, Server]:
    """Alpha and beta on ``config``, each on its own clock."""
    started = (
        Server("alpha", sim, db, config, clock=clock_a),
        Server("beta", sim, db, config, clock=clock_b),
    )
    servers += started
    return started


def fax_rows(db: Any) -> dict[str, InboundFax]:
    with db.session() as session:
        return {f.remote_id: f for f in session.scalars(select(InboundFax))}


def operations(sim: Any, operation: str) -> Counter[str]:
    """How often each fax id was named in ``operation`` requests."""
    return Counter(str(r.fields.get("faxid")) for r in sim.requests if r.operation == operation)


def one_each(faxes: list[SimFax]) -> Counter[str]:
    return Counter({str(f.recvid): 1 for f in faxes})


# ---------------------------------------------------------------- sharing the drain


@ON_BOTH
def test_two_instances_drain_sixty_faxes_each_once_listed_by_one(
    sim: Any, db: Any, tmp_path: Path, servers: list[Server]
) -> None:
    """Both poll and work at once: each fax fetched, delivered and deleted once, after delivery.

    Only the holder of the listing role calls listfax, and the downloads are
    shared: both instances finish some of the faxes.
    """
    root = tmp_path / "share"
    config = make_config(
        tmp_path, office_routes(root), faxage=sim_settings(sim), concurrency=4,
        sweep_interval=3600.0,
    )  # fmt: skip
    sim.latency = 0.02
    faxes = sim.seed_inbound(60, dnis=(SALES, SUPPORT, MAIN))
    sim.delete_check = require_delivered(root)
    servers += [Server("alpha", sim, db, config), Server("beta", sim, db, config)]
    drained = threading.Event()
    errors: list[BaseException] = []

    def run(server: Server) -> None:
        try:
            rounds, give_up = 0, time.monotonic() + 120  # (a bound on a broken run, no timing)
            while not drained.is_set() and time.monotonic() < give_up:
                rounds += 1
                server.pipe.poll()
                if rounds % 5 == 0:
                    server.pipe.sweep()
                if all(f.deleted for f in faxes):
                    drained.set()
                time.sleep(0.01)
        except BaseException as exc:
            errors.append(exc)
            drained.set()

    threads = [threading.Thread(target=run, args=(s,)) for s in servers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not any(t.is_alive() for t in threads) and errors == []

    assert sim.violations == []
    assert all(f.deleted for f in faxes)
    assert operations(sim, "getfax") == one_each(faxes)
    assert operations(sim, "delfax") == one_each(faxes)
    assert delivered_files(root) == wanted_files(faxes)
    for fax in faxes:
        assert expected_path(root, fax).read_bytes() == fax.data
    rows = fax_rows(db)
    assert {r.state for r in rows.values()} == {FaxState.DONE.value}
    with db.session() as session:
        assert {d.attempts for d in session.scalars(select(Delivery))} == {1}
    # Listed by one instance only; worked on by both.
    listers = sorted(s.name for s in servers if s.counted.listfax)
    assert len(listers) == 1
    assert {r.instance for r in rows.values()} == {"alpha", "beta"}
    assert all(r.lease_until is None for r in rows.values())  # every claim given back


# ---------------------------------------------------------------- a claim taken over


@ON_BOTH
@pytest.mark.parametrize(
    ("actions", "lost_before"),
    [(("first", "second"), "command recorder second"), (("first",), "delivered")],
)
def test_a_fax_held_by_a_stalled_instance_is_taken_over_and_finished_once(
    sim: Any, db: Any, tmp_path: Path, servers: list[Server],
    logs: list[MutableMapping[str, Any]], actions: tuple[str, ...], lost_before: str,
) -> None:  # fmt: skip
    """Alpha stalls in the first action; beta waits out the lease, then finishes the fax.

    Alpha's spool copy is on alpha's machine, not beta's: beta downloads the
    fax again.  When alpha wakes, its claim is gone: it runs no further action,
    records no failure and does not release the fax; beta released it once.
    """
    config = make_config(tmp_path, (recorder_route("main", *actions),), faxage=sim_settings(sim))
    last = actions[-1]
    (fax,) = sim.seed_inbound(1)
    remote_id = str(fax.recvid)
    clock_a, clock_b = ManualClock(), ManualClock()
    book_a, book_b = ActionBook(), ActionBook()
    sim.delete_check = lambda f: (
        None if [r for r, _ in book_b[last].delivered] == [f.remote_id] else "not delivered"
    )
    alpha = Server("alpha", sim, db, config, clock=clock_a, actions=book_a)
    beta = Server("beta", sim, db, config, clock=clock_b, actions=book_b)
    servers += [alpha, beta]

    in_action, wake = threading.Event(), threading.Event()

    def stall(_item: Any) -> None:
        in_action.set()
        wake.wait(60)

    book_a["first"].before = stall
    stalled = threading.Thread(target=alpha.pipe.poll)
    stalled.start()
    try:  # then alpha wakes inside its first action: that one ends, nothing after it runs
        assert in_action.wait(30)
        beta_takes_over(sim, db, tmp_path, fax, alpha, beta, clock_b, book_b)
        wake.set()
    finally:
        wake.set()
        stalled.join(timeout=60)
    assert not stalled.is_alive()
    assert set(book_b.actions) == set(actions)  # beta ran each action once
    assert book_a["second"].delivered == []
    assert operations(sim, "delfax") == {remote_id: 1}
    assert sim.violations == []
    assert [e["before"] for e in events(logs, "inbound.claim_lost")] == [lost_before]
    row = fax_rows(db)[remote_id]
    assert (row.state, row.instance, row.lease_until) == (FaxState.DONE.value, "beta", None)
    assert (row.attempts, row.last_error) == (0, None)


def beta_takes_over(
    sim: Any, db: Any, tmp_path: Path, fax: SimFax, alpha: Server, beta: Server,
    clock_b: ManualClock, book_b: ActionBook,
) -> None:  # fmt: skip
    """Beta's side of the takeover test, while alpha stalls in its first action."""
    remote_id = fax.remote_id

    # The lease is live: beta leaves the fax alone, whichever way it is asked.
    assert beta.pipe.ledger.due(clock_b()) == []
    assert beta.pipe.process(remote_id) is FaxState.DOWNLOADED
    beta.pipe.poll()
    assert book_b.actions == {} and operations(sim, "getfax") == {remote_id: 1}
    assert alpha.claims.faxes.holder(fax_rows(db)[remote_id].id) == "alpha"

    # Alpha renews nothing; on beta's clock its lease lapses.  Its spool copy is
    # on its own machine: hidden from beta while beta works.
    spooled = fax_rows(db)[remote_id].spool_path
    assert spooled is not None
    hidden = Path(spooled).rename(tmp_path / "alpha-machine-only")
    clock_b.advance(LEASE.total_seconds() + 1)
    assert beta.pipe.ledger.due(clock_b()) == [remote_id]
    beta.pipe.poll()
    row = fax_rows(db)[remote_id]
    assert (row.state, row.instance, row.lease_until) == (FaxState.DONE.value, "beta", None)
    assert fax.deleted and operations(sim, "delfax") == {remote_id: 1}
    assert operations(sim, "getfax") == {remote_id: 2}  # downloaded again on beta
    assert {name: [r for r, _ in a.delivered] for name, a in book_b.actions.items()} == {
        name: [remote_id] for name in book_b.actions
    }

    hidden.rename(spooled)  # alpha wakes on its own machine, with its own copy


@ON_BOTH
def test_an_instance_whose_claim_was_taken_while_it_delivered_does_not_release_the_fax(
    sim: Any, db: Any, tmp_path: Path, servers: list[Server]
) -> None:
    """Alpha's last action ends after beta took the fax over: alpha records it, releases nothing."""
    config = make_config(tmp_path, (recorder_route("main", "only"),), faxage=sim_settings(sim))
    (fax,) = sim.seed_inbound(1)
    clock_a = ManualClock()
    book_a = ActionBook()
    alpha = Server("alpha", sim, db, config, clock=clock_a, actions=book_a)
    beta = Server("beta", sim, db, config, clock=ManualClock(clock_a() + LEASE * 2))
    servers += [alpha, beta]

    def taken_over(_item: Any) -> None:
        assert beta.claims.faxes.take(fax_rows(db)[fax.remote_id].id)  # alpha's lease lapsed

    book_a["only"].before = taken_over
    assert alpha.pipe.poll().done == 0
    row = fax_rows(db)[fax.remote_id]
    assert (row.state, row.instance) == (FaxState.DELIVERED.value, "beta")
    assert operations(sim, "delfax") == {} and not fax.deleted


@ON_BOTH
def test_an_instance_whose_claim_was_taken_before_its_download_does_not_download(
    sim: Any, db: Any, tmp_path: Path, servers: list[Server],
    logs: list[MutableMapping[str, Any]],
) -> None:  # fmt: skip
    """Alpha stalls between its claim and the download (measuring the disk): beta takes over."""
    config = office(tmp_path, sim)
    (fax,) = sim.seed_inbound(1)
    clock_a = ManualClock()
    beta = Server("beta", sim, db, config, clock=ManualClock(clock_a() + LEASE * 2))

    def measured_while_beta_takes_over(_folder: Path) -> int:
        row = fax_rows(db).get(fax.remote_id)
        if row is not None and row.instance == "alpha" and row.lease_until is not None:
            assert beta.claims.faxes.take(row.id)
        return 1 << 40

    alpha = Server(
        "alpha", sim, db, config, clock=clock_a, free_bytes=measured_while_beta_takes_over
    )
    servers += [alpha, beta]
    assert alpha.pipe.poll().new == 1
    assert operations(sim, "getfax") == {}
    assert [e["before"] for e in events(logs, "inbound.claim_lost")] == ["download"]
    assert fax_rows(db)[fax.remote_id].instance == "beta"


class TakenLate(RowClaims):
    """Fax claims that let something happen between the worker's first read and its take."""

    def __init__(self, claims: Claims, meanwhile: Callable[[], object]) -> None:
        super().__init__(claims.db, FAXES, claims.instance, claims.clock)
        self.meanwhile = meanwhile

    def take(self, row_id: int) -> bool:
        self.meanwhile()
        return super().take(row_id)


@ON_BOTH
def test_a_fax_finished_elsewhere_between_read_and_claim_is_not_worked_on_again(
    sim: Any, db: Any, tmp_path: Path, servers: list[Server]
) -> None:
    """Beta read the fax as listed; alpha finished it before beta's claim: beta reads again."""
    (fax,) = sim.seed_inbound(1)
    clock = ManualClock()
    alpha, beta = pair(servers, sim, db, office(tmp_path, sim), clock, clock)
    assert alpha.pipe.list_new().new == 1
    beta.pipe.worker.claims = TakenLate(beta.claims, lambda: alpha.pipe.process(fax.remote_id))

    assert beta.pipe.process(fax.remote_id) is FaxState.DONE
    assert operations(sim, "getfax") == {fax.remote_id: 1}
    assert operations(sim, "delfax") == {fax.remote_id: 1}
    row = fax_rows(db)[fax.remote_id]
    assert (row.state, row.attempts, row.last_error, row.lease_until) == ("done", 0, None, None)


# ---------------------------------------------------------------- the listing role


@ON_BOTH
def test_only_the_role_holder_lists_and_a_stopped_holder_is_replaced(
    sim: Any, db: Any, tmp_path: Path, servers: list[Server]
) -> None:
    """Beta neither lists nor sweeps while alpha holds the role; once it lapses, beta does."""
    root = tmp_path / "share"
    clock_b = ManualClock()
    alpha, beta = pair(servers, sim, db, office(tmp_path, sim), ManualClock(), clock_b)
    first = sim.seed_inbound(2)

    assert alpha.pipe.poll().done == 2
    beta.pipe.poll()
    beta.pipe.sweep()
    alpha.pipe.sweep()
    assert (alpha.counted.listfax, beta.counted.listfax) == (2, 0)
    assert alpha.claims.holder(alpha.pipe.role) == "alpha"

    # Alpha stops for good.  Within the lease beta still only works on what is due.
    later = sim.seed_inbound(2)
    beta.pipe.poll()
    assert beta.counted.listfax == 0 and not any(f.deleted for f in later)
    clock_b.advance(LEASE.total_seconds() - 1)
    beta.pipe.poll()
    assert beta.counted.listfax == 0

    clock_b.advance(2)  # past alpha's lease: the next poll takes the role over
    outcome = beta.pipe.poll()
    assert (outcome.new, outcome.done) == (2, 2)
    assert beta.counted.listfax == 1 and beta.claims.holder(beta.pipe.role) == "beta"
    assert all(f.deleted for f in first + later)
    assert delivered_files(root) == wanted_files(first + later)

    # Alpha comes back on its own clock: beta's lease is live, alpha does not list.
    alpha.pipe.poll()
    alpha.pipe.sweep()
    assert alpha.counted.listfax == 2


@ON_BOTH
def test_a_poll_pushed_by_a_callback_lists_without_the_role_and_doubles_nothing(
    sim: Any, db: Any, tmp_path: Path, servers: list[Server]
) -> None:
    """The callback reached beta: it lists at once instead of waiting for alpha's next poll."""
    root = tmp_path / "share"
    clock = ManualClock()
    alpha, beta = pair(servers, sim, db, office(tmp_path, sim), clock, clock)
    alpha.pipe.poll()  # alpha holds the role (nothing to list yet)
    faxes = sim.seed_inbound(3)

    outcome = beta.pipe.poll(pushed=True)
    assert (outcome.new, outcome.done) == (3, 3)
    assert beta.counted.listfax == 1
    assert alpha.claims.holder(alpha.pipe.role) == "alpha"  # the role stays where it was
    alpha.pipe.poll()
    assert alpha.pipe.poll().new == 0
    assert operations(sim, "getfax") == one_each(faxes)
    assert delivered_files(root) == wanted_files(faxes)


# ---------------------------------------------------------------- the shared spool


@ON_BOTH
def test_start_up_cleanup_leaves_the_files_of_faxes_another_instance_holds(
    sim: Any, db: Any, tmp_path: Path, servers: list[Server]
) -> None:
    """A spool folder on the share: beta starting does not remove alpha's download in progress."""
    config = office(tmp_path, sim)
    shared = tmp_path / "share-spool"
    clock = ManualClock()
    alpha = Server("alpha", sim, db, config, clock=clock, spool_dir=shared)
    servers.append(alpha)
    sim.seed_inbound(1)
    (batch,) = list(alpha.pipe.provider.list_all(now=clock()))
    (remote_id,) = alpha.pipe.ledger.record_listing(batch.faxes)
    row = alpha.pipe.ledger.get(remote_id)
    assert row is not None and alpha.claims.faxes.take(row.id)  # alpha is downloading it
    alpha.pipe.spool.ensure()
    part = alpha.pipe.spool.new_part(remote_id)
    part.write_bytes(b"%PDF-1.4 half of it")
    leftover = shared / "faxage-999.part"  # nobody's: a crashed download
    leftover.write_bytes(b"%PDF")

    def start(name: str, now: ManualClock) -> None:
        started = Server(name, sim, db, config, clock=now, spool_dir=shared)
        servers.append(started)
        started.pipe._recover()  # what its first pass does first, on its own

    start("beta", clock)
    assert part.exists() and not leftover.exists()
    start("gamma", ManualClock(clock() + LEASE + timedelta(seconds=1)))
    assert not part.exists()  # alpha's claim has lapsed: its partial file is stale now
