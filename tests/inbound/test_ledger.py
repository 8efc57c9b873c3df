"""Tests of faxd.inbound.ledger against a real migrated SQLite database (those marked
ON_BOTH also against PostgreSQL)."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from inbound_helpers import FixedRandom, ManualClock, commit_levels
from pg_helper import ON_BOTH

from faxd.inbound.backoff import RetryPolicy
from faxd.inbound.ledger import Ledger
from faxd.providers.base import Downloaded as DownloadResult
from faxd.providers.base import RemoteFax
from faxd.store.models import InboundFax, PollCursor
from faxd.store.states import FaxState, IllegalTransition

POLICY = RetryPolicy(base=10, cap=300, max_attempts=3)


def record(recvid: int, dnis: str = "3035550101") -> RemoteFax:
    return RemoteFax(
        remote_id=str(recvid),
        received_at=datetime(2024, 3, 4, 9, 0),
        caller_id="3035550100",
        dnis=dnis,
        filename=f"fax{recvid}.pdf",
        pages=2,
    )


@pytest.fixture
def ledger(db: Any, clock: ManualClock) -> Ledger:
    return Ledger(db, "faxage", "acme@12345", clock=clock)


def downloaded(ledger: Ledger, tmp_path: Path, recvid: int) -> None:
    path = tmp_path / f"{recvid}.pdf"
    path.write_bytes(b"%PDF-x")
    digest = hashlib.sha256(b"%PDF-x").hexdigest()
    ledger.mark_downloaded(str(recvid), path, DownloadResult(path, 6, digest, "pdf", "a.pdf"))


@ON_BOTH
def test_listing_inserts_new_rows_and_moves_the_cursor_together(ledger: Ledger) -> None:
    """New remote ids become listed rows; known ones are skipped; the cursor is the adapter's."""
    assert ledger.cursor().cursor is None
    assert ledger.record_listing([record(3), record(5)], "5") == ["3", "5"]
    assert ledger.cursor().cursor == "5"
    assert ledger.record_listing([record(3), record(5), record(9)], "9") == ["9"]
    assert ledger.cursor().cursor == "9"
    assert ledger.record_listing([record(4)]) == ["4"]  # a sweep finding an older fax
    assert ledger.cursor().cursor == "9"  # no cursor given: left as it was
    row = ledger.get("4")
    assert row is not None and row.state is FaxState.LISTED and row.pagecount == 2


def test_a_failed_insert_leaves_the_cursor_where_it_was(ledger: Ledger, db: Any) -> None:
    """If the rows cannot be committed, the cursor does not move either (one transaction)."""
    with db.engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TRIGGER refuse_7 BEFORE INSERT ON inbound_faxes WHEN NEW.remote_id = '7' "
            "BEGIN SELECT RAISE(ABORT, 'disk says no'); END"
        )
    ledger.record_listing([record(2)], "2")
    with pytest.raises(Exception, match="disk says no"):
        ledger.record_listing([record(6), record(7), record(8)], "8")
    assert ledger.cursor().cursor == "2"
    assert ledger.known(["6", "7", "8"]) == {}


@ON_BOTH
def test_due_lists_active_faxes_whose_backoff_elapsed_oldest_first(
    ledger: Ledger, clock: ManualClock
) -> None:
    """Backed-off faxes wait; held, failed and done faxes are never due."""
    ledger.record_listing([record(n) for n in (4, 2, 3, 1)])
    ledger.record_failure("3", "boom", policy=POLICY, rng=FixedRandom(0.0))  # due in 5 s
    ledger.record_failure("4", "boom", policy=POLICY, rng=FixedRandom(0.0), permanent=True)
    assert ledger.due(clock()) == ["1", "2"]
    clock.advance(5)
    assert ledger.due(clock()) == ["1", "2", "3"]


@ON_BOTH
def test_failures_back_off_then_fail_after_max_attempts(ledger: Ledger, clock: ManualClock) -> None:
    """Each failure counts and pushes the next try out; the third gives up."""
    ledger.record_listing([record(1)])
    first = ledger.record_failure("1", "getfax: ERR13", policy=POLICY, rng=FixedRandom(0.0))
    assert first.state is FaxState.LISTED and first.attempts == 1
    assert first.next_attempt_at == clock() + timedelta(seconds=5)
    second = ledger.record_failure("1", "again", policy=POLICY, rng=FixedRandom(0.0))
    assert second.next_attempt_at == clock() + timedelta(seconds=10)
    third = ledger.record_failure("1", "and again", policy=POLICY, rng=FixedRandom(0.0))
    assert third.state is FaxState.FAILED and third.last_error == "and again"
    assert third.next_attempt_at is None


@ON_BOTH
def test_deliveries_are_planned_once_and_done_one_by_one(
    ledger: Ledger, tmp_path: Path, clock: ManualClock
) -> None:
    """Planning twice keeps the first route; each success is recorded on its own."""
    ledger.record_listing([record(1)])
    downloaded(ledger, tmp_path, 1)
    plan = ledger.plan_deliveries("1", "sales", [("folder", "/a"), ("email", "x@y")])
    rows = plan.deliveries
    assert plan.route == "sales" and [r.action_type for r in rows] == ["folder", "email"]
    again = ledger.plan_deliveries("1", "default", [("folder", "/b")])
    assert again.route == "sales" and [r.id for r in again.deliveries] == [r.id for r in rows]
    assert ledger.delivery_done(rows[0].id, "/a/1.pdf").state is FaxState.DOWNLOADED
    with pytest.raises(RuntimeError):
        ledger.mark_delivered("1")  # the email is still pending
    # The last success makes the fax delivered in the same commit.
    assert ledger.delivery_done(rows[1].id, "250 queued").state is FaxState.DELIVERED
    assert [d.done for d in ledger.deliveries("1")] == [True, True]
    assert ledger.mark_delivered("1").state is FaxState.DELIVERED  # already: unchanged
    done = ledger.mark_done("1", deleted=True)
    assert done.state is FaxState.DONE and done.deleted_at == clock()
    assert done.spool_path is None


def test_a_fax_without_deliveries_can_never_be_marked_delivered(
    ledger: Ledger, tmp_path: Path
) -> None:
    """No route recorded, no delivery rows: delivered (and so delfax) is refused."""
    ledger.record_listing([record(1)])
    downloaded(ledger, tmp_path, 1)
    with pytest.raises(RuntimeError):
        ledger.mark_delivered("1")


@ON_BOTH
def test_revive_resets_attempts_and_can_forget_a_vanished_route(
    ledger: Ledger, tmp_path: Path, db: Any
) -> None:
    """faxd retry: attempts reset; with reroute the unfinished rows of the old route go."""
    ledger.record_listing([record(1)])
    downloaded(ledger, tmp_path, 1)
    rows = ledger.plan_deliveries("1", "old", [("folder", "/a"), ("print", "lp")]).deliveries
    ledger.delivery_done(rows[0].id, "/a/1.pdf")
    ledger.record_failure("1", "lp broke", policy=POLICY, rng=FixedRandom(), permanent=True)
    revived = ledger.revive("1", FaxState.DOWNLOADED, reroute=True)
    assert revived.state is FaxState.DOWNLOADED and revived.attempts == 0
    assert revived.route is None and revived.last_error is None
    with db.session() as session:
        fax = session.query(InboundFax).one()
        assert [(d.route, d.state) for d in fax.deliveries] == [("old", "done")]
    with pytest.raises(ValueError, match="not failed or held"):
        ledger.revive("1", FaxState.LISTED)


def test_pause_and_poll_records_live_on_the_cursor_row(
    ledger: Ledger, db: Any, clock: ManualClock
) -> None:
    """paused_reason, last_poll_at/outcome and last_sweep_at are stored per account."""
    ledger.set_paused("FAXAGE refused the login")
    ledger.record_poll("paused")
    ledger.record_sweep()
    cursor = ledger.cursor()
    assert cursor.paused_reason == "FAXAGE refused the login"
    assert cursor.last_poll_at == clock() and cursor.last_sweep_at == clock()
    ledger.set_paused(None)
    with db.session() as session:
        row = session.get(PollCursor, ("faxage", "acme@12345"))
        assert row is not None and row.paused_reason is None and row.last_poll_outcome == "paused"


def test_download_and_its_plan_are_committed_together_or_not_at_all(
    ledger: Ledger, tmp_path: Path, db: Any
) -> None:
    """mark_downloaded with a route records the rows in its commit; a failed insert undoes both."""
    ledger.record_listing([record(1), record(2)])
    path = tmp_path / "1.pdf"
    path.write_bytes(b"%PDF-x")
    result = DownloadResult(path, 6, hashlib.sha256(b"%PDF-x").hexdigest(), "pdf", None)
    row, plan = ledger.mark_downloaded("1", path, result, route="sales", actions=[("folder", "/a")])
    assert row.state is FaxState.DOWNLOADED and row.route == "sales"
    assert plan is not None and plan.route == "sales"
    assert ledger.deliveries("1") == list(plan.deliveries)
    assert [d.done for d in plan.deliveries] == [False]

    with db.engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TRIGGER refuse BEFORE INSERT ON deliveries "
            "BEGIN SELECT RAISE(ABORT, 'disk full'); END"
        )
    with pytest.raises(Exception, match="disk full"):
        ledger.mark_downloaded("2", path, result, route="sales", actions=[("folder", "/a")])
    untouched = ledger.get("2")
    assert untouched is not None and untouched.state is FaxState.LISTED
    assert untouched.route is None and untouched.spool_path is None


FULL, NORMAL = 2, 1


def test_only_the_commits_that_decide_deletion_or_repetition_are_fsynced(
    ledger: Ledger, tmp_path: Path, db: Any
) -> None:
    """Action done and delivered commit at FULL; downloaded and done at NORMAL; the rest FULL."""
    levels = commit_levels(db)

    def level_of(step: Any) -> list[int]:
        del levels[:]
        step()
        return list(levels)

    path = tmp_path / "1.pdf"
    path.write_bytes(b"%PDF-x")
    result = DownloadResult(path, 6, hashlib.sha256(b"%PDF-x").hexdigest(), "pdf", None)
    plan: list[Any] = []
    assert level_of(lambda: ledger.record_listing([record(1), record(2)])) == [FULL]
    assert level_of(lambda: ledger.get("1")) == [FULL]  # reads only: nothing to sync anyway
    assert level_of(
        lambda: plan.append(
            ledger.mark_downloaded("1", path, result, route="r", actions=[("print", "lp")])
        )
    ) == [NORMAL]
    delivery = plan[0][1].deliveries[0]
    assert level_of(lambda: ledger.delivery_done(delivery.id, "job 7")) == [FULL]  # + delivered
    assert level_of(lambda: ledger.mark_done("1", deleted=True)) == [NORMAL]
    # A fax whose actions were all recorded before: delivered on its own commit.
    ledger.mark_downloaded("2", path, result, route="r", actions=[])
    assert level_of(lambda: ledger.mark_delivered("2")) == [FULL]
    assert level_of(
        lambda: ledger.record_failure("2", "boom", policy=POLICY, rng=FixedRandom(0.0))
    ) == [FULL]
    assert level_of(lambda: ledger.plan_deliveries("2", "r", [])) == [FULL]


def test_the_core_steps_still_refuse_illegal_state_changes(ledger: Ledger, tmp_path: Path) -> None:
    """done before delivered is refused (states.advance) and the row is left as it was."""
    ledger.record_listing([record(1)])
    downloaded(ledger, tmp_path, 1)
    with pytest.raises(IllegalTransition):
        ledger.mark_done("1", deleted=True)
    row = ledger.get("1")
    assert row is not None and row.state is FaxState.DOWNLOADED and row.deleted_at is None
    with pytest.raises(LookupError, match="no inbound fax 99"):
        ledger.mark_done("99", deleted=True)
