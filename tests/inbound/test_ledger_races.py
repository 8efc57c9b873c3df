"""Two instances changing the same ledger rows at once lose no update (ON_BOTH).

On SQLite ``BEGIN IMMEDIATE`` queues whole transactions; on PostgreSQL (READ
COMMITTED) only the row locks the ledger takes do.  Each test lets the first
writer read its row, then holds it there (up to half a second) while the
second writer runs the same method: without the lock the second commits in
between and the first writes back what it read before, losing the second's
change (or both insert the same new row and one fails on the unique key).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from inbound_helpers import FixedRandom, ManualClock
from pg_helper import ON_BOTH
from sqlalchemy import event, select

from faxd.config import NotifySettings
from faxd.inbound.backoff import RetryPolicy
from faxd.inbound.ledger import Ledger
from faxd.providers.base import Downloaded, RemoteFax, Unreadable
from faxd.store.models import AdminCondition, AdminEvent, Delivery, ListingProblem

POLICY = RetryPolicy(base=10, cap=300, max_attempts=100)


def remote(recvid: int) -> RemoteFax:
    return RemoteFax(
        remote_id=str(recvid), received_at=datetime(2024, 3, 4, 9, 0),
        caller_id="3035550100", dnis="3035550101",
    )  # fmt: skip


@pytest.fixture
def ledger(db: Any, clock: ManualClock) -> Ledger:
    notify = NotifySettings(email=("admin@example.com",))
    return Ledger(db, "faxage", "acme@12345", clock=clock, notify=notify)


class Race:
    """Runs two writers at once, the second while the first holds what it read.

    The first writer's first SELECT from ``table`` is followed by a wait until
    the second writer has finished, or half a second (it waits for a lock the
    first holds): the moment a lost update needs.
    """

    def __init__(self, db: Any, table: str) -> None:
        self.db = db
        self.marker = f"FROM {table.upper()}"
        self.first: int | None = None  # the first writer's thread
        self.has_read = threading.Event()
        self.second_done = threading.Event()
        self.errors: list[BaseException] = []

    def _after(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        text = statement.lstrip().upper()
        if threading.get_ident() != self.first or self.has_read.is_set():
            return
        if text.startswith("SELECT") and self.marker in text:
            self.has_read.set()
            self.second_done.wait(0.5)

    def _guarded(self, work: Callable[[], object]) -> None:
        try:
            work()
        except BaseException as exc:
            self.errors.append(exc)

    def run(self, one: Callable[[], object], two: Callable[[], object]) -> None:
        def run_one() -> None:
            self.first = threading.get_ident()
            self._guarded(one)
            self.has_read.set()  # (if it never read: let the second go anyway)

        def run_two() -> None:
            self.has_read.wait(10)
            try:
                self._guarded(two)
            finally:
                self.second_done.set()

        event.listen(self.db.engine, "after_cursor_execute", self._after)
        try:
            threads = [threading.Thread(target=run_one), threading.Thread(target=run_two)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=60)
        finally:
            event.remove(self.db.engine, "after_cursor_execute", self._after)
        assert not any(t.is_alive() for t in threads)
        assert self.errors == []


def race(db: Any, table: str, one: Callable[[], object], two: Callable[[], object]) -> None:
    """Run ``one`` and ``two`` at once, ``two`` while ``one`` has read ``table``."""
    Race(db, table).run(one, two)


@ON_BOTH
def test_two_failures_recorded_at_once_both_count(ledger: Ledger, db: Any, tmp_path: Any) -> None:
    """record_failure loads the fax and adds one: neither attempt (nor a delivery's) is lost."""
    ledger.record_listing([remote(1)])
    path = tmp_path / "1.pdf"
    path.write_bytes(b"%PDF-x")
    ledger.mark_downloaded("1", path, Downloaded(path, 6, "0" * 64, "pdf", None))
    plan = ledger.plan_deliveries("1", "main", [("folder", "/srv/fax")])
    delivery = plan.deliveries[0].id

    def fail() -> None:
        ledger.record_failure(
            "1", "folder: disk on fire", policy=POLICY, rng=FixedRandom(0.0),
            deliveries={delivery: "disk on fire"},
        )  # fmt: skip

    race(db, "inbound_faxes", fail, fail)
    row = ledger.get("1")
    assert row is not None and row.attempts == 2
    with db.session() as session:
        assert session.get_one(Delivery, delivery).attempts == 2


@ON_BOTH
def test_two_listings_of_the_same_new_faxes_at_once_add_each_once(ledger: Ledger, db: Any) -> None:
    """A pushed poll listing beside the lister: no duplicate key, each fax recorded once."""
    ledger.record_listing([remote(4)], "4")
    new: list[list[str]] = []

    def listing() -> None:
        new.append(ledger.record_listing([remote(n) for n in (5, 6, 7)], "7"))

    race(db, "inbound_faxes", listing, listing)
    assert sorted(new) == [[], ["5", "6", "7"]]
    assert sorted(ledger.known(["5", "6", "7"])) == ["5", "6", "7"]
    assert ledger.cursor().cursor == "7"


@ON_BOTH
def test_one_unreadable_line_seen_by_two_instances_at_once_counts_twice(
    ledger: Ledger, db: Any
) -> None:
    """record_problems: the first sighting is inserted once, and the count is not lost."""
    ledger.record_poll("0 new")  # a polled account: its cursor row is the lock
    line = Unreadable(lineno=3, text="3 | garbage", reason="recvid is not a number")

    def report() -> None:
        ledger.record_problems([line])

    race(db, "listing_problems", report, report)
    with db.session() as session:
        rows = list(session.scalars(select(ListingProblem)))
        assert [r.count for r in rows] == [2]


@ON_BOTH
def test_a_low_disk_seen_by_two_instances_at_once_is_raised_once(ledger: Ledger, db: Any) -> None:
    """set_disk_low: one disk_low condition and one event, not a duplicate key."""
    ledger.record_poll("0 new")

    def low() -> None:
        ledger.set_disk_low("spool has 3 MB free", folder="/var/lib/faxd/spool")

    race(db, "admin_conditions", low, low)
    with db.session() as session:
        assert [c.kind for c in session.scalars(select(AdminCondition))] == ["disk_low"]
        assert [e.kind for e in session.scalars(select(AdminEvent))] == ["disk_low"]


@ON_BOTH
def test_a_refused_login_seen_by_two_instances_at_once_is_raised_once(
    ledger: Ledger, db: Any
) -> None:
    """set_paused on a new database: the cursor row and the condition are made once."""

    def pause() -> None:
        ledger.set_paused("FAXAGE refused the login")

    race(db, "poll_cursor", pause, pause)
    with db.session() as session:
        assert [c.kind for c in session.scalars(select(AdminCondition))] == ["auth_failed"]
        assert [e.kind for e in session.scalars(select(AdminEvent))] == ["auth_failed"]
