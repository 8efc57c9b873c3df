"""Unit tests of the inbound pipeline with a fake inbox and recording actions.

The fakes come in through the constructor (client, actions_for, clock, rng);
the database is real SQLite.  Integration against the simulator and real
actions is in the other test files.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import structlog
from inbound_helpers import (
    ActionBook,
    FakeInbox,
    FixedRandom,
    ManualClock,
    events,
    fail_permanent,
    fail_transient,
    faxage_inbound,
    make_config,
    recorder_route,
)

from faxd.actions.base import Deliverable
from faxd.config import Config
from faxd.errors import AuthError, FaxdError, NotFoundError, TransientError
from faxd.hours import Hours
from faxd.inbound.pipeline import InboundPipeline
from faxd.providers.faxage.records import MalformedLine
from faxd.store.models import Delivery, InboundFax
from faxd.store.states import FaxState

SALES, SUPPORT, OTHER = "+13035550101", "+13035550102", "+13035550199"
ROUTES = (
    recorder_route("sales", "sales-a", "sales-b", dnis=(SALES,)),
    recorder_route("support", "support-a", dnis=(SUPPORT,)),
)


def pipeline(
    inbox: FakeInbox,
    db: Any,
    config: Config,
    book: ActionBook,
    clock: ManualClock,
) -> InboundPipeline:
    return InboundPipeline(
        faxage_inbound(inbox, config),
        db,
        config,
        actions_for=book,
        clock=clock,
        rng=FixedRandom(0.0),
    )


def one_at_a_time(config: Config) -> Config:
    """``config`` with ``[inbound] concurrency = 1`` (faxes strictly one after another)."""
    return replace(config, inbound=replace(config.inbound, concurrency=1))


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return make_config(tmp_path, ROUTES)


@pytest.fixture
def pipe(inbox: FakeInbox, db: Any, config: Config, book: ActionBook, clock: ManualClock) -> Any:
    return pipeline(inbox, db, config, book, clock)


def states(db: Any) -> dict[str, str]:
    with db.session() as session:
        return {f.remote_id: f.state for f in session.query(InboundFax)}


def test_poll_delivers_routes_and_deletes(
    pipe: InboundPipeline, inbox: FakeInbox, book: ActionBook, db: Any
) -> None:
    """Each fax goes through its route's actions, then delfax, then done; spool emptied."""
    a, b = inbox.add(SALES), inbox.add(SUPPORT)
    outcome = pipe.poll()
    assert (outcome.new, outcome.done, outcome.failed, outcome.errors) == (2, 2, 0, 0)
    assert book["sales-a"].delivered == [(a.remote_id, a.data)]
    assert book["sales-b"].delivered == [(a.remote_id, a.data)]
    assert book["support-a"].delivered == [(b.remote_id, b.data)]
    assert a.deleted and b.deleted
    assert states(db) == {a.remote_id: "done", b.remote_id: "done"}
    assert pipe.ledger.cursor().cursor == b.remote_id
    assert list(pipe.spool.root.iterdir()) == []
    assert inbox.calls[0] == ("listfax", None)
    pipe.poll()
    assert inbox.calls[-1] == ("listfax", b.recvid)  # idgt = cursor


def test_delivery_rows_exist_before_any_action_runs(
    pipe: InboundPipeline, inbox: FakeInbox, book: ActionBook, db: Any
) -> None:
    """When the first action runs, every delivery row of the route is already committed."""
    seen: list[list[tuple[str, str]]] = []

    def look(_item: Deliverable) -> None:
        with db.session() as session:
            seen.append([(d.action_type, d.state) for d in session.query(Delivery)])

    book["sales-a"].before = look
    inbox.add(SALES)
    pipe.poll()
    assert seen == [[("command", "pending"), ("command", "pending")]]


def test_each_action_success_is_kept_and_not_repeated(
    pipe: InboundPipeline, inbox: FakeInbox, book: ActionBook, clock: ManualClock, db: Any
) -> None:
    """A failing second action backs off; the retry runs only that action; no delfax before."""
    fax = inbox.add(SALES)
    book["sales-b"].failures = [fail_transient("printer on fire")]
    first = pipe.poll()
    assert first.errors == 1 and not fax.deleted
    row = pipe.ledger.get(fax.remote_id)
    assert row is not None and row.state is FaxState.DOWNLOADED and row.attempts == 1
    assert row.last_error is not None and "printer on fire" in row.last_error
    with db.session() as session:
        failed = session.query(Delivery).filter_by(action_index=1).one()
        assert failed.last_error == "printer on fire" and failed.state == "pending"
    assert pipe.poll().done == 0  # backoff has not elapsed (5 s with this rng)
    clock.advance(5)
    assert pipe.poll().done == 1
    assert len(book["sales-a"].delivered) == 1
    assert len(book["sales-b"].delivered) == 1
    assert fax.deleted and inbox.count("getfax") == 1


def test_max_attempts_marks_failed_and_keeps_the_fax_on_faxage(
    pipe: InboundPipeline, inbox: FakeInbox, book: ActionBook, clock: ManualClock, logs: list[Any]
) -> None:
    """After max_attempts failed tries the fax is failed, never deleted, and logged once."""
    fax = inbox.add(SUPPORT)
    book["support-a"].failures = [fail_transient() for _ in range(10)]
    for _ in range(6):
        pipe.poll()
        clock.advance(1000)
    row = pipe.ledger.get(fax.remote_id)
    assert row is not None and row.state is FaxState.FAILED and row.attempts == 4
    assert not fax.deleted and inbox.count("delfax") == 0
    assert len(events(logs, "inbound.fax_failed")) == 1
    assert "faxd retry" in events(logs, "inbound.fax_failed")[0]["hint"]


def test_a_permanent_delivery_error_fails_at_once(
    pipe: InboundPipeline, inbox: FakeInbox, book: ActionBook
) -> None:
    """A non-transient DeliveryError (other bytes at the target) is not retried."""
    fax = inbox.add(SUPPORT)
    book["support-a"].failures = [fail_permanent()]
    assert pipe.poll().failed == 1
    row = pipe.ledger.get(fax.remote_id)
    assert row is not None and row.state is FaxState.FAILED and row.attempts == 1
    assert not fax.deleted


def test_one_failing_fax_never_blocks_the_others(
    inbox: FakeInbox, db: Any, config: Config, book: ActionBook, clock: ManualClock
) -> None:
    """A fax whose download keeps failing does not stop the next faxes."""
    # One at a time, so the first getfax (the one that fails) is surely the first fax's.
    pipe = pipeline(inbox, db, one_at_a_time(config), book, clock)
    stuck, fine = inbox.add(SUPPORT), inbox.add(SUPPORT)
    inbox.fail["getfax"] = [TransientError("HTTP 500", operation="getfax")]
    outcome = pipe.poll()
    assert outcome.done == 1 and outcome.errors == 1
    assert fine.deleted and not stuck.deleted
    assert book["support-a"].delivered == [(fine.remote_id, fine.data)]


def test_an_unexpected_bug_in_an_action_is_contained(
    pipe: InboundPipeline, inbox: FakeInbox, book: ActionBook, logs: list[Any]
) -> None:
    """Even a non-faxd exception becomes a recorded, retried failure of that fax only."""
    bad, good = inbox.add(SUPPORT), inbox.add(SALES)
    book["support-a"].failures = [ZeroDivisionError("oops")]
    pipe.poll()
    assert good.deleted and not bad.deleted
    row = pipe.ledger.get(bad.remote_id)
    assert row is not None and row.last_error is not None and "ZeroDivisionError" in row.last_error
    assert events(logs, "inbound.unexpected_error")


def test_unrouted_fax_is_held_and_retry_delivers_it_after_a_fix(
    inbox: FakeInbox, db: Any, tmp_path: Path, book: ActionBook, clock: ManualClock, logs: list[Any]
) -> None:
    """No route and no default: held, kept on FAXAGE; after adding a default, retry works."""
    config = make_config(tmp_path, ROUTES)
    fax = inbox.add(OTHER)
    first = pipeline(inbox, db, config, book, clock)
    assert first.poll().held == 1
    assert not fax.deleted and events(logs, "inbound.held")
    assert first.poll().held == 0  # held faxes are not retried on their own
    fixed = replace(config, routes=(*ROUTES, recorder_route("default", "inbox")))
    second = pipeline(inbox, db, fixed, book, clock)
    assert second.retry(fax.remote_id) is FaxState.DOWNLOADED
    assert second.poll().done == 1
    assert book["inbox"].delivered == [(fax.remote_id, fax.data)] and fax.deleted


def test_a_route_change_between_attempts_keeps_the_first_route(
    inbox: FakeInbox, db: Any, tmp_path: Path, book: ActionBook, clock: ManualClock
) -> None:
    """After a config reload the fax finishes the route it started; nothing is redone."""
    config = make_config(tmp_path, ROUTES)
    fax = inbox.add(SALES)
    book["sales-b"].failures = [fail_transient()]
    pipeline(inbox, db, config, book, clock).poll()
    reloaded = replace(
        config,
        routes=(recorder_route("new", "new-a", dnis=(SALES,)), *ROUTES),
    )
    clock.advance(3600)
    assert pipeline(inbox, db, reloaded, book, clock).poll().done == 1
    assert book["new-a"].delivered == []
    assert len(book["sales-a"].delivered) == 1 and len(book["sales-b"].delivered) == 1
    row = pipeline(inbox, db, reloaded, book, clock).ledger.get(fax.remote_id)
    assert row is not None and row.route == "sales" and fax.deleted


def test_a_vanished_route_holds_the_fax_until_retried(
    inbox: FakeInbox, db: Any, tmp_path: Path, book: ActionBook, clock: ManualClock
) -> None:
    """If the recorded route is gone from the config, the fax is held, then retry reroutes."""
    config = make_config(tmp_path, ROUTES)
    fax = inbox.add(SALES)
    book["sales-b"].failures = [fail_transient()]
    pipeline(inbox, db, config, book, clock).poll()
    reloaded = replace(config, routes=(recorder_route("only", "only-a"),))
    clock.advance(3600)
    pipe = pipeline(inbox, db, reloaded, book, clock)
    assert pipe.poll().held == 1 and not fax.deleted
    row = pipe.ledger.get(fax.remote_id)
    assert row is not None and row.last_error is not None and "faxd retry" in row.last_error
    pipe.retry(fax.remote_id)
    assert pipe.poll().done == 1
    assert book["only-a"].delivered == [(fax.remote_id, fax.data)]


def test_missing_or_changed_spool_file_is_downloaded_again(
    pipe: InboundPipeline, inbox: FakeInbox, book: ActionBook, clock: ManualClock
) -> None:
    """A downloaded fax whose spool copy changed goes back to listed and is fetched again."""
    fax = inbox.add(SUPPORT)
    book["support-a"].failures = [fail_transient()]
    pipe.poll()
    row = pipe.ledger.get(fax.remote_id)
    assert row is not None and row.spool_path is not None
    row.spool_path.write_bytes(b"%PDF-tampered")
    clock.advance(3600)
    assert pipe.poll().done == 1
    assert inbox.count("getfax") == 2
    assert book["support-a"].delivered == [(fax.remote_id, fax.data)]


def test_keep_on_faxage_when_delete_after_delivery_is_off(
    inbox: FakeInbox, db: Any, tmp_path: Path, book: ActionBook, clock: ManualClock
) -> None:
    """delete_after_delivery = false: done without delfax, and the sweep leaves it alone."""
    config = make_config(tmp_path, ROUTES, delete_after_delivery=False)
    pipe = pipeline(inbox, db, config, book, clock)
    fax = inbox.add(SUPPORT)
    assert pipe.poll().done == 1
    assert inbox.count("delfax") == 0 and not fax.deleted
    pipe.sweep()
    assert inbox.count("delfax") == 0
    assert len(book["support-a"].delivered) == 1


def test_delfax_not_found_counts_as_deleted(pipe: InboundPipeline, inbox: FakeInbox) -> None:
    """ERR14 at delfax (already gone, e.g. an answer lost after deleting) is fine."""
    fax = inbox.add(SUPPORT)
    inbox.fail["delfax"] = [NotFoundError("ERR14: not found", operation="delfax", code="ERR14")]
    assert pipe.poll().done == 1
    row = pipe.ledger.get(fax.remote_id)
    assert row is not None and row.deleted_at is not None


def test_sweep_adopts_unknown_faxes_and_redeletes_leftovers(
    pipe: InboundPipeline, inbox: FakeInbox, book: ActionBook, db: Any, logs: list[Any]
) -> None:
    """The full listing finds faxes below the cursor and deletes a done fax seen again."""
    first = inbox.add(SUPPORT)
    pipe.poll()
    first.deleted = False  # FAXAGE shows it again (a delete that did not stick)
    hidden = inbox.add(SUPPORT)
    with db.engine.begin() as conn:  # as if an old cursor had gone past it
        conn.exec_driver_sql("UPDATE poll_cursor SET cursor = ?", (str(hidden.recvid + 10),))
    assert pipe.poll().new == 0  # idgt is past it: the poll cannot see it
    outcome = pipe.sweep()
    assert outcome.new == 1 and outcome.done == 1
    assert hidden.deleted and first.deleted
    assert len(events(logs, "inbound.deleted_fax_listed_again")) == 1
    assert ("listfax", None) in inbox.calls
    assert pipe.ledger.cursor().last_sweep_at is not None


def test_malformed_listfax_lines_are_logged_and_skipped(
    pipe: InboundPipeline, inbox: FakeInbox, logs: list[Any]
) -> None:
    """One warning per bad line, with its line number; the good faxes are delivered."""
    good = [inbox.add(SUPPORT), inbox.add(SALES)]
    inbox.malformed = [MalformedLine(2, "12x\tgarbage", "recvid is not a number")]
    outcome = pipe.poll()
    assert outcome.done == 2 and outcome.errors == 1
    warnings = events(logs, "inbound.listing_line_skipped")
    assert [(w["lineno"], w["reason"]) for w in warnings] == [(2, "recvid is not a number")]
    assert all(f.deleted for f in good)


def test_login_refused_pauses_with_one_line_per_poll_then_resumes(
    pipe: InboundPipeline, inbox: FakeInbox, config: Config, logs: list[Any]
) -> None:
    """ERR02: one clear error per poll, nothing else tried, no raise; a good login resumes."""
    fax = inbox.add(SUPPORT)
    inbox.fail["listfax"] = [
        AuthError("ERR02: Login incorrect", operation="listfax", code="ERR02") for _ in range(3)
    ]
    for _ in range(3):
        assert pipe.poll().paused
        assert pipe.sweep().paused  # the sweep adds no requests and no lines
    refused = events(logs, "inbound.login_refused")
    assert len(refused) == 3
    message = refused[0]["message"]
    assert "user acme company 12345" in message and str(config.path) in message
    assert "retrying every 60 s" in message and config.faxage.password not in str(logs)
    assert inbox.count("listfax") == 3 and inbox.count("getfax") == 0
    assert pipe.ledger.cursor().paused_reason == message
    outcome = pipe.poll()
    assert not outcome.paused and outcome.done == 1 and fax.deleted
    assert pipe.ledger.cursor().paused_reason is None
    assert events(logs, "inbound.login_accepted")


def test_login_refused_during_getfax_stops_the_pass(
    inbox: FakeInbox, db: Any, config: Config, book: ActionBook, clock: ManualClock, logs: list[Any]
) -> None:
    """ERR02 at getfax pauses too: the remaining faxes are not hammered, none is failed."""
    pipe = pipeline(inbox, db, one_at_a_time(config), book, clock)
    inbox.add(SUPPORT), inbox.add(SUPPORT)
    inbox.fail["getfax"] = [AuthError("ERR02: Login incorrect", operation="getfax", code="ERR02")]
    outcome = pipe.poll()
    assert outcome.paused
    assert inbox.count("getfax") == 1
    assert len(events(logs, "inbound.login_refused")) == 1
    assert all(pipe.ledger.get(r) is not None for r in inbox.faxes)
    assert {row.attempts for row in pipe.ledger.known(inbox.faxes).values()} == {0}


def test_transient_listfax_error_leaves_the_cursor(
    pipe: InboundPipeline, inbox: FakeInbox, logs: list[Any]
) -> None:
    """A listfax that fails is logged and retried next poll with the same idgt."""
    inbox.add(SUPPORT)
    pipe.poll()
    cursor = pipe.ledger.cursor().cursor
    later = inbox.add(SUPPORT)
    inbox.fail["listfax"] = [TransientError("HTTP 500", operation="listfax")]
    assert pipe.poll().errors == 1
    assert pipe.ledger.cursor().cursor == cursor
    assert events(logs, "inbound.listing_failed")
    assert pipe.poll().done == 1 and later.deleted
    assert cursor is not None and inbox.calls[-3] == ("listfax", int(cursor))


def test_cursor_never_moves_past_rows_that_were_not_committed(
    pipe: InboundPipeline, inbox: FakeInbox, db: Any
) -> None:
    """If inserting the listed rows fails, the cursor stays and the faxes come again."""
    faxes = [inbox.add(SUPPORT) for _ in range(3)]
    with db.engine.begin() as conn:
        conn.exec_driver_sql(
            f"CREATE TRIGGER refuse BEFORE INSERT ON inbound_faxes WHEN NEW.remote_id = "
            f"'{faxes[1].recvid}' BEGIN SELECT RAISE(ABORT, 'no space left'); END"
        )
    with pytest.raises(Exception, match="no space left"):
        pipe.poll()
    assert pipe.ledger.cursor().cursor is None
    assert not any(f.deleted for f in faxes)
    with db.engine.begin() as conn:
        conn.exec_driver_sql("DROP TRIGGER refuse")
    assert pipe.poll().done == 3
    assert pipe.ledger.cursor().cursor == faxes[-1].remote_id


def test_retry_refuses_unknown_and_unfinished_faxes(
    pipe: InboundPipeline, inbox: FakeInbox
) -> None:
    """faxd retry names what is wrong for an unknown id or a fax that is not failed/held."""
    with pytest.raises(FaxdError, match="no inbound faxage fax 4242"):
        pipe.retry(4242)
    fax = inbox.add(SUPPORT)
    pipe.poll()
    with pytest.raises(FaxdError, match="is done"):
        pipe.retry(fax.remote_id)


def test_retry_of_a_fax_that_failed_at_delfax_resumes_at_delivered(
    pipe: InboundPipeline, inbox: FakeInbox, book: ActionBook
) -> None:
    """Everything delivered but delfax refused: retry goes to delivered, nothing redelivered."""
    fax = inbox.add(SUPPORT)
    inbox.fail["delfax"] = [FaxdError("refused")]  # not transient: fails at once
    assert pipe.poll().failed == 1
    assert pipe.retry(fax.remote_id) is FaxState.DELIVERED
    assert pipe.poll().done == 1
    assert len(book["support-a"].delivered) == 1 and fax.deleted


def test_restart_cleans_partial_downloads_and_finished_spool_files(
    inbox: FakeInbox, db: Any, config: Config, book: ActionBook, clock: ManualClock
) -> None:
    """At start, .part files and spool files of done faxes are removed; others kept."""
    fax = inbox.add(SUPPORT)
    book["support-a"].failures = [fail_transient()]
    pipeline(inbox, db, config, book, clock).poll()
    spool = config.inbound.spool_dir
    (spool / "faxage-99.part").write_bytes(b"half")
    (spool / "faxage-98.pdf").write_bytes(b"%PDF-old")
    restarted = pipeline(inbox, db, config, book, clock)
    restarted.process_due()
    names = sorted(p.name for p in spool.iterdir())
    assert names == [f"faxage-{fax.recvid}.pdf"]


def test_log_context_names_the_fax_and_route_during_actions(
    pipe: InboundPipeline, inbox: FakeInbox, book: ActionBook
) -> None:
    """provider, remote id, dnis and route are bound while a fax is worked on, and unbound after."""
    seen: list[dict[str, Any]] = []
    book["sales-a"].before = lambda _item: seen.append(structlog.contextvars.get_contextvars())
    fax = inbox.add(SALES)
    pipe.poll()
    assert seen == [
        {"provider": "faxage", "remote_id": fax.remote_id, "dnis": SALES, "route": "sales"}
    ]
    assert structlog.contextvars.get_contextvars() == {}


def test_stop_finishes_the_fax_in_hand_and_takes_no_other(
    inbox: FakeInbox, db: Any, config: Config, book: ActionBook, clock: ManualClock
) -> None:
    """stop() during a delivery lets that fax finish and leaves the rest for later."""
    pipe = pipeline(inbox, db, one_at_a_time(config), book, clock)
    first, second = inbox.add(SUPPORT), inbox.add(SUPPORT)
    book["support-a"].before = lambda _item: pipe.stop()
    pipe.poll()
    assert first.deleted and not second.deleted


def test_reordered_actions_of_the_same_type_never_skip_one(
    inbox: FakeInbox, db: Any, tmp_path: Path, book: ActionBook, clock: ManualClock
) -> None:
    """A reload swapping two same-type actions holds the fax: none is skipped before delfax."""
    config = make_config(tmp_path, ROUTES)
    fax = inbox.add(SALES)
    book["sales-b"].failures = [fail_transient()]
    pipeline(inbox, db, config, book, clock).poll()
    assert len(book["sales-a"].delivered) == 1 and book["sales-b"].delivered == []
    swapped = replace(
        config, routes=(recorder_route("sales", "sales-b", "sales-a", dnis=(SALES,)), ROUTES[1])
    )
    clock.advance(3600)
    pipe = pipeline(inbox, db, swapped, book, clock)
    pipe.poll()
    # sales-b never got the fax, so FAXAGE's copy must still be there.
    assert book["sales-b"].delivered or not fax.deleted
    assert not fax.deleted and states(db)[fax.remote_id] == FaxState.HELD


def test_retry_reroutes_to_a_changed_route_of_the_same_name(
    inbox: FakeInbox, db: Any, tmp_path: Path, book: ActionBook, clock: ManualClock
) -> None:
    """Retry after a route's actions changed runs the new ones; same done ones are not redone."""
    config = make_config(tmp_path, ROUTES)
    fax = inbox.add(SALES)
    book["sales-b"].failures = [fail_transient()]
    pipeline(inbox, db, config, book, clock).poll()
    changed = replace(
        config,
        routes=(recorder_route("sales", "sales-a", "sales-c", dnis=(SALES,)), ROUTES[1]),
    )
    clock.advance(3600)
    pipe = pipeline(inbox, db, changed, book, clock)
    assert pipe.poll().held == 1 and not fax.deleted
    assert pipe.retry(fax.remote_id) is FaxState.DOWNLOADED
    outcome = pipe.poll()
    assert outcome.done == 1, pipe.ledger.get(fax.remote_id)
    assert book["sales-c"].delivered == [(fax.remote_id, fax.data)] and fax.deleted
    assert len(book["sales-a"].delivered) == 1  # done before, same action: not repeated
    assert book["sales-b"].delivered == []


def test_retry_after_delfax_failed_needs_no_spool_copy(
    pipe: InboundPipeline, inbox: FakeInbox, book: ActionBook
) -> None:
    """A fax that failed only at delfax is retried at delivered even if its spool copy is gone."""
    fax = inbox.add(SUPPORT)
    inbox.fail["delfax"] = [FaxdError("refused")]  # not transient: fails at once
    assert pipe.poll().failed == 1
    row = pipe.ledger.get(fax.remote_id)
    assert row is not None and row.spool_path is not None
    row.spool_path.unlink()
    inbox.fail["getfax"] = [NotFoundError("ERR12: fax gone", operation="getfax")]
    assert pipe.retry(fax.remote_id) is FaxState.DELIVERED
    assert pipe.poll().done == 1
    assert inbox.count("getfax") == 1 and len(book["support-a"].delivered) == 1
    assert fax.deleted


def test_a_lost_done_commit_after_the_spool_file_went_is_finished_quietly(
    pipe: InboundPipeline, inbox: FakeInbox, db: Any, book: ActionBook
) -> None:
    """A power cut took back `done` (NORMAL) only: the restart re-deletes and redoes nothing."""
    fax = inbox.add(SUPPORT)
    assert pipe.poll().done == 1 and fax.deleted
    spool_file = pipe.spool.final_path(fax.remote_id, "pdf")
    assert not spool_file.exists()
    with db.session() as session:  # the row as the last FULL commit left it
        row = session.query(InboundFax).filter_by(remote_id=fax.remote_id).one()
        row.state, row.spool_path, row.deleted_at = "delivered", str(spool_file), None
    inbox.fail["delfax"] = [NotFoundError("ERR14: FAX ID not found", operation="delfax")]
    restarted = pipeline(inbox, db, pipe.config, book, pipe.clock)  # type: ignore[arg-type]
    outcome = restarted.poll()
    assert outcome.done == 1 and outcome.errors == 0 and outcome.failed == 0
    assert inbox.count("getfax") == 1 and len(book["support-a"].delivered) == 1
    after = restarted.ledger.get(fax.remote_id)
    assert after is not None and after.state is FaxState.DONE and after.deleted_at is not None


def test_retry_reroute_replaces_a_finished_action_that_changed(
    inbox: FakeInbox, db: Any, tmp_path: Path, book: ActionBook, clock: ManualClock
) -> None:
    """Rerouted to a same-named route whose first action changed: the new one runs too."""
    config = make_config(tmp_path, ROUTES)
    fax = inbox.add(SALES)
    book["sales-b"].failures = [fail_transient()]
    pipeline(inbox, db, config, book, clock).poll()
    changed = replace(config, routes=(recorder_route("sales", "sales-c", dnis=(SALES,)), ROUTES[1]))
    clock.advance(3600)
    pipe = pipeline(inbox, db, changed, book, clock)
    assert pipe.poll().held == 1 and not fax.deleted
    pipe.retry(fax.remote_id)
    assert pipe.poll().done == 1 and fax.deleted
    assert book["sales-c"].delivered == [(fax.remote_id, fax.data)]
    assert len(book["sales-a"].delivered) == 1 and book["sales-b"].delivered == []
    with db.session() as session:
        rows = session.query(Delivery).order_by(Delivery.action_index).all()
        assert [(d.action_index, d.target, d.state) for d in rows] == [
            (0, "recorder sales-c", "done")
        ]


def test_hours_route_by_when_the_fax_arrived_not_when_it_is_processed(
    tmp_path: Path, inbox: FakeInbox, book: ActionBook, db: Any
) -> None:
    """A fax received at 22:00 is after hours even if faxd only processes it at 09:00."""
    day = replace(recorder_route("day", "day-desk"), hours=Hours.parse("Mon-Fri 08:00-18:00"))
    routes = (day, recorder_route("night", "night-mail"))
    night_fax = inbox.add(SALES)
    night_fax.received = datetime(2024, 3, 4, 22, 0)  # Monday evening, FAXAGE wall clock
    day_fax = inbox.add(SALES)
    day_fax.received = datetime(2024, 3, 5, 10, 30)  # Tuesday morning
    clock = ManualClock(datetime(2024, 3, 5, 9, 0, tzinfo=UTC))  # processed the next morning
    pipe = pipeline(inbox, db, make_config(tmp_path, routes), book, clock)
    pipe.poll()
    assert book["night-mail"].delivered == [(night_fax.remote_id, night_fax.data)]
    assert book["day-desk"].delivered == [(day_fax.remote_id, day_fax.data)]
