"""A long listing is recorded a batch at a time; unreadable lines are kept and warned once a day.

DESIGN invariant 3: the cursor may only point past faxes whose rows are
committed.  Each commit of the database is watched from a second, read-only
SQLite connection, so the tests see exactly what a crash at that moment would
leave behind.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from inbound_helpers import (
    ActionBook,
    FakeInbox,
    FixedRandom,
    ManualClock,
    events,
    faxage_inbound,
    make_config,
    recorder_route,
)
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from faxd.config import Config
from faxd.inbound.pipeline import InboundPipeline
from faxd.providers.faxage.records import MalformedLine
from faxd.store.models import InboundFax, ListingProblem

SALES = "+13035550101"


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return make_config(tmp_path, (recorder_route("sales", "sales-a"),))


@pytest.fixture
def pipe(inbox: FakeInbox, db: Any, config: Config, book: ActionBook, clock: ManualClock) -> Any:
    return InboundPipeline(
        faxage_inbound(inbox, config),
        db,
        config,
        actions_for=book,
        clock=clock,
        rng=FixedRandom(0.0),
    )


@contextmanager
def commits_seen(db: Any) -> Iterator[list[tuple[int, int, int]]]:
    """After every commit: (rows, highest committed recvid, cursor), read from outside."""
    seen: list[tuple[int, int, int]] = []
    reader = sqlite3.connect(f"file:{db.url.database}?mode=ro", uri=True)

    def look(_session: Session) -> None:
        rows, top = reader.execute(
            "SELECT count(*), coalesce(max(CAST(remote_id AS INTEGER)), 0) FROM inbound_faxes"
        ).fetchone()
        (cursor,) = reader.execute(
            "SELECT coalesce(max(CAST(cursor AS INTEGER)), 0) FROM poll_cursor"
        ).fetchone()
        seen.append((rows, top, cursor))

    event.listen(Session, "after_commit", look)
    try:
        yield seen
    finally:
        event.remove(Session, "after_commit", look)
        reader.close()


def recvids(db: Any) -> list[int]:
    with db.session() as session:
        return sorted(int(r) for r in session.scalars(select(InboundFax.remote_id)))


def test_long_listing_commits_batch_by_batch_and_the_cursor_follows(
    pipe: InboundPipeline, inbox: FakeInbox, db: Any
) -> None:
    """2500 faxes in batches of 1000: three commits of rows, the cursor never ahead of them."""
    faxes = [inbox.add(SALES) for _ in range(2500)]
    inbox.batch_size = 1000
    with commits_seen(db) as seen:
        outcome = pipe.list_new()
    assert outcome.new == 2500
    growth = [rows for rows, _top, _cursor in seen]
    assert sorted(set(growth)) == [0, 1000, 2000, 2500]  # rows arrived in three commits
    assert all(cursor <= top for _rows, top, cursor in seen)
    assert seen[-1][2] == faxes[-1].recvid


def test_a_listing_that_breaks_off_keeps_the_cursor_at_the_last_committed_batch(
    pipe: InboundPipeline, inbox: FakeInbox, db: Any, logs: list[Any]
) -> None:
    """The answer breaks after two batches: their faxes are kept, the cursor is theirs, no more."""
    faxes = [inbox.add(SALES) for _ in range(2500)]
    inbox.batch_size = 1000
    inbox.break_after = 2
    with commits_seen(db) as seen:
        outcome = pipe.list_new()
    assert outcome.errors == 1 and outcome.new == 2000 and not outcome.paused
    committed = [f.recvid for f in faxes[:2000]]
    assert recvids(db) == committed
    assert pipe.ledger.cursor().cursor == str(committed[-1])
    assert all(cursor <= top for _rows, top, cursor in seen)
    (failed,) = events(logs, "inbound.listing_failed")
    assert failed["recorded"] == 2000
    # The next listing starts after the last committed fax and picks up the rest.
    inbox.break_after = None
    assert pipe.list_new().new == 500
    assert inbox.calls[-1] == ("listfax", committed[-1])
    assert recvids(db) == [f.recvid for f in faxes]


def test_sweep_is_batched_too(pipe: InboundPipeline, inbox: FakeInbox, db: Any) -> None:
    """The full listing of the sweep commits batch by batch as well."""
    for _ in range(1500):
        inbox.add(SALES)
    inbox.batch_size = 600
    with commits_seen(db) as seen:
        outcome = pipe.sweep()
    assert outcome.new == 1500
    assert sorted({rows for rows, _top, _cursor in seen}) == [0, 600, 1200, 1500]


BAD = MalformedLine(2, "12x 2024-05-01 10:00:00 garbage", "recvid '12x' is not a number")


def problems(db: Any) -> list[ListingProblem]:
    with db.session() as session:
        return list(session.scalars(select(ListingProblem)))


def test_an_unreadable_line_is_recorded_and_warned_once_a_day(
    pipe: InboundPipeline, inbox: FakeInbox, db: Any, clock: ManualClock, logs: list[Any]
) -> None:
    """Listed on every poll, the line is counted each time but warned about once per day."""
    inbox.malformed = [BAD]
    start = clock()
    for _ in range(5):
        pipe.poll()
        clock.advance(60)
    assert len(events(logs, "inbound.listing_line_skipped")) == 1
    (row,) = problems(db)
    assert (row.text, row.reason, row.count) == (BAD.text, BAD.reason, 5)
    assert row.first_seen == start and row.last_seen == start.replace(minute=4)
    clock.advance(24 * 3600)
    pipe.poll()
    pipe.poll()
    warned = events(logs, "inbound.listing_line_skipped")
    assert len(warned) == 2
    assert "faxd inbox --problems" in warned[-1]["hint"]
    assert problems(db)[0].count == 7


def test_the_same_line_at_another_position_is_the_same_problem(
    pipe: InboundPipeline, inbox: FakeInbox, db: Any, logs: list[Any]
) -> None:
    """A line keeps its identity when faxes before it come and go; another line is new."""
    inbox.malformed = [BAD]
    pipe.poll()
    inbox.malformed = [MalformedLine(7, BAD.text, BAD.reason), MalformedLine(8, "x", "too short")]
    pipe.poll()
    assert sorted((p.text, p.count) for p in problems(db)) == [(BAD.text, 2), ("x", 1)]
    assert len(events(logs, "inbound.listing_line_skipped")) == 2
