"""Parallel inbound work: ``[inbound] concurrency`` faxes at once, every invariant kept.

The dispatcher is tested on its own (bounds, claims, order of results); the
pipeline with a fake inbox where exact control is needed (ERR02, stop, two
passes at once, database contention), and against the simulator with real
folder actions for the whole story.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import structlog
from inbound_helpers import (
    MAIN,
    SALES,
    SUPPORT,
    ActionBook,
    FakeInbox,
    FixedRandom,
    ManualClock,
    events,
    expected_path,
    faxage_inbound,
    make_config,
    office_routes,
    recorder_route,
    require_delivered,
    sim_settings,
)

from faxd.config import Config
from faxd.errors import AuthError
from faxd.inbound.dispatch import Dispatcher
from faxd.inbound.pipeline import InboundPipeline
from faxd.providers.base import RemoteFax
from faxd.providers.faxage.provider import ListfaxClient as InboundClient
from faxd.providers.faxage.records import DownloadResult, ListfaxResult
from faxd.store.models import Delivery, InboundFax

ROUTES = (recorder_route("support", "support-a", "support-b", dnis=(SUPPORT,)),)


class Gauge:
    """Wraps an inbound client and measures calls in flight: the peak, and any overlap per fax."""

    def __init__(self, inner: InboundClient, *, hold: float = 0.0) -> None:
        self.inner = inner
        self.hold = hold
        self.peak = 0
        self.overlaps: list[int] = []
        self._active: Counter[int] = Counter()
        self._lock = threading.Lock()

    @contextmanager
    def _track(self, recvid: int) -> Iterator[None]:
        with self._lock:
            self._active[recvid] += 1
            if self._active[recvid] > 1:
                self.overlaps.append(recvid)
            self.peak = max(self.peak, sum(self._active.values()))
        try:
            time.sleep(self.hold)
            yield
        finally:
            with self._lock:
                self._active[recvid] -= 1

    def listfax_batches(
        self, *, idgt: int | None = None, idasc: bool = True
    ) -> Iterator[ListfaxResult]:
        return self.inner.listfax_batches(idgt=idgt, idasc=idasc)

    def getfax(self, recvid: int, dest: Path, *, max_bytes: int | None = None) -> DownloadResult:
        with self._track(recvid):
            return self.inner.getfax(recvid, dest, max_bytes=max_bytes)

    def delfax(self, recvid: int) -> None:
        with self._track(recvid):
            self.inner.delfax(recvid)


def parallel(config: Config, concurrency: int) -> Config:
    return replace(config, inbound=replace(config.inbound, concurrency=concurrency))


def make_pipeline(
    client: InboundClient, db: Any, config: Config, book: ActionBook, clock: ManualClock
) -> InboundPipeline:
    return InboundPipeline(
        faxage_inbound(client, config),
        db,
        config,
        actions_for=book,
        clock=clock,
        rng=FixedRandom(0.0),
    )


def states(db: Any) -> Counter[str]:
    with db.session() as session:
        return Counter(f.state for f in session.query(InboundFax))


# ---------------------------------------------------------------- the dispatcher


def test_dispatcher_runs_at_most_n_at_once_and_each_fax_once() -> None:
    """20 faxes over 3 threads: never more than 3 in flight, each fax yielded exactly once."""
    running, peak, lock = 0, 0, threading.Lock()

    def work(recvid: int) -> int:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.01)
        with lock:
            running -= 1
        return recvid * 10

    results = list(Dispatcher(3).run(range(20), work, halt=lambda: False))
    assert sorted(r.key for r in results) == list(range(20))
    assert all(r.value == r.key * 10 and r.error is None for r in results)
    assert 1 < peak <= 3
    assert Dispatcher(3).busy() == set()


def test_dispatcher_skips_a_claimed_fax_and_reports_errors() -> None:
    """A fax another worker holds is not handed out; a worker's exception comes back as a result."""
    dispatcher = Dispatcher(2)
    assert dispatcher.claim(5)

    def work(recvid: int) -> int:
        if recvid == 6:
            raise ValueError("broken fax")
        return recvid

    results = {r.key: r for r in dispatcher.run([4, 5, 6], work, halt=lambda: False)}
    assert set(results) == {4, 6}
    assert isinstance(results[6].error, ValueError)
    assert dispatcher.busy() == {5}  # still the other holder's, untouched
    dispatcher.release(5)
    assert dispatcher.claim(5)


def test_dispatcher_halt_takes_no_new_fax_but_awaits_those_in_flight() -> None:
    """Once halt says yes, only the faxes already in hand finish; none is abandoned."""
    started: list[int] = []
    halted = threading.Event()

    def work(recvid: int) -> int:
        started.append(recvid)
        halted.set()
        time.sleep(0.05)
        return recvid

    results = list(Dispatcher(2).run(range(10), work, halt=halted.is_set))
    assert sorted(r.key for r in results) == sorted(started)
    assert 1 <= len(started) <= 2


# ---------------------------------------------------------------- the pipeline, fake inbox


def test_err02_with_four_at_a_time_pauses_and_takes_no_new_fax(
    inbox: FakeInbox, db: Any, tmp_path: Path, book: ActionBook, clock: ManualClock, logs: Any
) -> None:
    """ERR02 on one of four parallel downloads: one log line, no fax failed, no fifth getfax."""
    config = parallel(make_config(tmp_path, ROUTES), 4)
    faxes = [inbox.add(SUPPORT) for _ in range(10)]
    inbox.fail["getfax"] = [AuthError("ERR02: Login incorrect", operation="getfax", code="ERR02")]
    outcome = make_pipeline(Gauge(inbox, hold=0.02), db, config, book, clock).poll()
    assert outcome.paused
    assert inbox.count("getfax") == 4  # the four in hand; nothing after the refusal
    assert len(events(logs, "inbound.login_refused")) == 1
    assert states(db) == {"done": 3, "listed": 7}
    assert sum(f.deleted for f in faxes) == 3


def test_stop_lets_every_fax_in_hand_finish_and_starts_no_other(
    inbox: FakeInbox, db: Any, tmp_path: Path, book: ActionBook, clock: ManualClock
) -> None:
    """stop() while two faxes are being delivered at once: both finish, the rest wait."""
    config = parallel(make_config(tmp_path, ROUTES), 2)
    faxes = [inbox.add(SUPPORT) for _ in range(5)]
    pipe = make_pipeline(inbox, db, config, book, clock)
    both_delivering = threading.Barrier(2, timeout=5)

    def stop_once_both_are_in_hand(_item: Any) -> None:
        both_delivering.wait()  # proves the two really run at the same time
        pipe.stop()

    book["support-a"].before = stop_once_both_are_in_hand
    outcome = pipe.poll()
    assert outcome.done == 2
    assert [f.deleted for f in faxes] == [True, True, False, False, False]
    assert inbox.count("getfax") == 2
    assert states(db) == {"done": 2, "listed": 3}


def test_two_passes_at_once_never_work_on_the_same_fax(
    inbox: FakeInbox, db: Any, tmp_path: Path, book: ActionBook, clock: ManualClock
) -> None:
    """Two process_due passes racing over the same due faxes: each fax downloaded once."""
    config = parallel(make_config(tmp_path, ROUTES), 3)
    for _ in range(12):
        inbox.add(SUPPORT)
    gauge = Gauge(inbox, hold=0.01)
    pipe = make_pipeline(gauge, db, config, book, clock)
    pipe.ledger.record_listing(
        [
            RemoteFax(str(r.recvid), r.recvdate, r.cid, r.dnis, r.pagecount, r.filename)
            for r in inbox.listfax().records
        ]
    )
    passes = [threading.Thread(target=pipe.process_due) for _ in range(2)]
    for thread in passes:
        thread.start()
    for thread in passes:
        thread.join(timeout=30)
    assert gauge.overlaps == []
    assert sorted(r for op, r in inbox.calls if op == "getfax") == sorted(inbox.faxes)
    assert Counter(int(r) for r, _ in book["support-a"].delivered) == Counter(set(inbox.faxes))
    assert states(db) == {"done": 12}


def test_eight_threads_hammering_sqlite_never_hit_database_is_locked(
    inbox: FakeInbox, db: Any, tmp_path: Path, book: ActionBook, clock: ManualClock, logs: Any
) -> None:
    """80 faxes, 8 at a time, no network wait: hundreds of short writes, not one failure."""
    config = parallel(make_config(tmp_path, ROUTES), 8)
    for _ in range(80):
        inbox.add(SUPPORT)
    outcome = make_pipeline(inbox, db, config, book, clock).poll()
    assert (outcome.new, outcome.done, outcome.failed, outcome.errors) == (80, 80, 0, 0)
    failures = [e for e in logs if e["log_level"] in ("warning", "error")]
    assert failures == []
    with db.session() as session:
        assert session.query(Delivery).filter(Delivery.state == "done").count() == 160


def test_each_worker_logs_with_its_own_fax_and_the_callers_context(
    inbox: FakeInbox, db: Any, tmp_path: Path, book: ActionBook, clock: ManualClock
) -> None:
    """Log context is per fax in every thread, and context bound around the pass is kept."""
    config = parallel(make_config(tmp_path, ROUTES), 4)
    for _ in range(8):
        inbox.add(SUPPORT)
    seen: list[tuple[int, dict[str, Any]]] = []
    lock = threading.Lock()

    def remember(item: Any) -> None:
        with lock:
            seen.append((item.facts.recvid, structlog.contextvars.get_contextvars()))

    book["support-a"].before = remember
    with structlog.contextvars.bound_contextvars(pass_id=7):
        make_pipeline(inbox, db, config, book, clock).poll()
    assert sorted(int(r) for r, _ in seen) == sorted(inbox.faxes)
    for recvid, context in seen:
        assert context == {
            "pass_id": 7, "provider": "faxage", "remote_id": recvid, "dnis": SUPPORT,
            "route": "support",
        }  # fmt: skip
    assert structlog.contextvars.get_contextvars() == {}


# ---------------------------------------------------------------- against the simulator


@pytest.mark.parametrize("concurrency", [1, 4])
def test_forty_faxes_against_the_simulator_each_once_deleted_after_delivery(
    sim: Any, client: Any, db: Any, tmp_path: Path, concurrency: int
) -> None:
    """Real HTTP with latency, real folders: every fax in place before delfax, none twice."""
    root = tmp_path / "fax"
    config = parallel(
        make_config(tmp_path, office_routes(root), faxage=sim_settings(sim)), concurrency
    )
    sim.latency = 0.01
    faxes = sim.seed_inbound(40, dnis=(SALES, SUPPORT, MAIN))
    sim.delete_check = require_delivered(root)
    gauge = Gauge(client)
    outcome = InboundPipeline(faxage_inbound(gauge, config), db, config).poll()

    assert (outcome.new, outcome.done, outcome.failed, outcome.errors) == (40, 40, 0, 0)
    assert sim.violations == [] and gauge.overlaps == []
    assert 1 < gauge.peak <= 4 if concurrency == 4 else gauge.peak == 1
    assert all(f.deleted for f in faxes)
    for fax in faxes:
        assert expected_path(root, fax).read_bytes() == fax.data
    operations = Counter((r.operation, r.fields.get("faxid")) for r in sim.requests)
    for operation in ("getfax", "delfax"):
        assert {faxid: n for (op, faxid), n in operations.items() if op == operation} == {
            str(f.recvid): 1 for f in faxes
        }
    assert states(db) == {"done": 40}
