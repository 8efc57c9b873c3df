"""The database layer: migrations, SQLite settings, constraints and concurrent writers."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from pg_helper import ON_BOTH
from sqlalchemy import Column, Connection, Integer, MetaData, event, inspect, select, text
from sqlalchemy.exc import IntegrityError, StatementError

from faxd.errors import ConfigError
from faxd.store import Database
from faxd.store.models import Base, Delivery, InboundFax, OutboundJob, PollCursor

REPO_ROOT = Path(__file__).resolve().parents[2]
MODEL_TABLES = set(Base.metadata.tables)
#: The newest migration; bump it with each new file in faxd/store/migrations/versions.
HEAD = "0009"


def _fax(recvid: int, account: str = "acme@12345") -> InboundFax:
    return InboundFax(
        provider="faxage", account=account, remote_id=str(recvid),
        recvdate=datetime(2024, 5, 1, 9, 30),
    )  # fmt: skip


def _schema_diffs(database: Database, metadata: MetaData) -> list[object]:
    with database.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, metadata))


def test_upgrade_creates_the_schema_in_a_new_file(tmp_path: Path) -> None:
    """upgrade() on a path that does not exist yet creates directory, file and every table."""
    path = tmp_path / "var" / "lib" / "faxd" / "faxd.db"
    database = Database(f"sqlite:///{path}")
    try:
        assert database.current_revision() is None
        database.upgrade()
        assert path.is_file()
        assert set(inspect(database.engine).get_table_names()) == MODEL_TABLES | {"alembic_version"}
        assert database.current_revision() == database.head_revision() == HEAD
    finally:
        database.dispose()


@ON_BOTH
def test_upgrade_twice_changes_nothing(db: Database) -> None:
    """Running upgrade() on a current database (as the daemon does on every start) is harmless."""
    with db.session() as session:
        session.add(_fax(1))
    db.upgrade()
    with db.session() as session:
        assert session.scalars(select(InboundFax.remote_id)).all() == ["1"]
    assert db.current_revision() == db.head_revision()


@ON_BOTH
def test_database_from_a_newer_faxd_is_refused_clearly(db: Database) -> None:
    """A schema revision this faxd does not know stops upgrade() with a message saying why."""
    with db.engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(ConfigError, match="revision 9999, which this faxd does not know"):
        db.upgrade()


@ON_BOTH
def test_migrated_schema_matches_the_models(db: Database) -> None:
    """The migrations create exactly what models.py declares: autogenerate finds no difference."""
    assert _schema_diffs(db, Base.metadata) == []


@ON_BOTH
def test_schema_comparison_notices_a_model_change_without_migration(db: Database) -> None:
    """A column added to the models but not to a migration shows up as a difference."""
    changed = MetaData()
    for table in Base.metadata.tables.values():
        table.to_metadata(changed)
    changed.tables["outbound_jobs"].append_column(Column("priority", Integer, nullable=True))
    diffs = _schema_diffs(db, changed)
    assert [d[0] for d in diffs if isinstance(d, tuple)] == ["add_column"]


def _alembic_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "alembic", *args],
        cwd=REPO_ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_alembic_command_line_upgrades_and_downgrades(tmp_path: Path) -> None:
    """`alembic -x url=... upgrade head` from the repo root migrates; `downgrade base` undoes it."""
    url = f"sqlite:///{tmp_path / 'cli' / 'faxd.db'}"
    upgraded = _alembic_cli("-x", f"url={url}", "upgrade", "head")
    assert upgraded.returncode == 0, upgraded.stderr
    database = Database(url)
    try:
        assert database.current_revision() == HEAD
        assert _schema_diffs(database, Base.metadata) == []
        downgraded = _alembic_cli("-x", f"url={url}", "downgrade", "base")
        assert downgraded.returncode == 0, downgraded.stderr
        assert set(inspect(database.engine).get_table_names()) == {"alembic_version"}
        assert database.current_revision() is None
    finally:
        database.dispose()


def test_alembic_command_line_reads_the_url_from_the_environment(tmp_path: Path) -> None:
    """Without -x url, FAXD_DATABASE_URL names the database the command line works on."""
    url = f"sqlite:///{tmp_path / 'env.db'}"
    upgraded = _alembic_cli("upgrade", "head", env={"FAXD_DATABASE_URL": url})
    assert upgraded.returncode == 0, upgraded.stderr
    current = _alembic_cli("current", env={"FAXD_DATABASE_URL": url})
    assert current.returncode == 0, current.stderr
    assert f"{HEAD} (head)" in current.stdout


def test_sqlite_pragmas_hold_on_every_connection(db: Database) -> None:
    """WAL, synchronous=FULL, foreign keys and busy timeout are set on each pooled connection."""
    first, second = db.engine.raw_connection(), db.engine.raw_connection()
    try:
        for connection in (first, second):
            cursor = connection.cursor()
            pragmas = {
                name: cursor.execute(f"PRAGMA {name}").fetchone()[0]
                for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
            }
            assert pragmas == {
                "journal_mode": "wal",
                "synchronous": 2,
                "foreign_keys": 1,
                "busy_timeout": 30000,
            }
    finally:
        first.close()
        second.close()


def commit_levels(database: Database) -> list[int]:
    """The ``synchronous`` level of each later commit of ``database`` (2 FULL, 1 NORMAL)."""
    levels: list[int] = []

    @event.listens_for(database.engine, "commit")
    def _record(connection: Connection) -> None:
        cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        levels.append(cursor.execute("PRAGMA synchronous").fetchone()[0])

    return levels


def test_commits_are_full_unless_a_transaction_asks_for_less(db: Database) -> None:
    """durable=False commits at NORMAL; every other transaction, before or after, at FULL."""
    levels = commit_levels(db)
    bump = text("UPDATE poll_cursor SET cursor = CAST(cursor AS INTEGER) + 1")
    with db.session() as session:
        session.add(PollCursor(provider="faxage", account="acme@12345", cursor="0"))
    with db.session(durable=False) as session:
        session.execute(bump)
    with db.session() as session:  # likely the same pooled connection: back to FULL
        session.execute(bump)
    with db.transaction(durable=False) as connection:
        connection.execute(bump)
    with db.transaction() as connection:
        connection.execute(bump)
    with db.engine.begin() as connection:  # plain SQLAlchemy use: FULL
        connection.execute(bump)
    assert levels == [2, 1, 2, 1, 2, 2]
    with db.session() as session:
        assert session.scalars(select(PollCursor.cursor)).one() == "5"


@ON_BOTH
def test_a_normal_transaction_is_still_all_or_nothing(db: Database) -> None:
    """A durable=False block that fails is rolled back whole, like any other."""
    with pytest.raises(RuntimeError), db.transaction(durable=False) as connection:
        connection.execute(
            text("INSERT INTO poll_cursor (provider, account, cursor) VALUES ('faxage', 'a', '1')")
        )
        raise RuntimeError("boom")
    with db.session() as session:
        assert session.scalars(select(PollCursor)).all() == []


@ON_BOTH
def test_a_fax_is_recorded_once_per_account(db: Database) -> None:
    """The same recvid twice on one account is refused; on another account it is a new fax."""
    with db.session() as session:
        session.add(_fax(4242))
        session.add(_fax(4242, account="other@999"))
    with pytest.raises(IntegrityError, match=r"(?i)unique constraint"), db.session() as session:
        session.add(_fax(4242))
    with db.session() as session:
        assert session.scalar(select(text("count(*)")).select_from(InboundFax)) == 2


@ON_BOTH
def test_a_delivery_needs_an_existing_fax(db: Database) -> None:
    """Foreign keys are enforced: a delivery for a fax id that does not exist is refused."""
    with pytest.raises(IntegrityError, match=r"(?i)foreign key"), db.session() as session:
        session.add(Delivery(fax_id=999, route="main", action_index=0, action_type="folder"))


@ON_BOTH
def test_a_failed_block_leaves_nothing_behind(db: Database) -> None:
    """An exception inside session() rolls the whole block back and reaches the caller."""
    with pytest.raises(RuntimeError, match="boom"), db.session() as session:
        session.add(_fax(1))
        session.flush()
        raise RuntimeError("boom")
    with db.session() as session:
        assert session.scalars(select(InboundFax)).all() == []


@ON_BOTH
def test_rows_stay_readable_after_the_session(db: Database) -> None:
    """Objects returned from a committed session keep their values (expire_on_commit=False)."""
    with db.session() as session:
        job = OutboundJob(faxno="4158006052", source_name="4158006052.pdf", spool_path="/s/1.pdf")
        session.add(job)
    assert job.id is not None
    assert job.state == "queued"
    assert job.created_at.tzinfo is UTC


@ON_BOTH
def test_utc_datetime_round_trips_aware_values(db: Database) -> None:
    """An aware datetime in any zone is stored as naive UTC and read back as the same instant."""
    moment = datetime(2024, 3, 10, 23, 15, 7, tzinfo=timezone(timedelta(hours=-5)))
    with db.session() as session:
        session.add(PollCursor(provider="faxage", account="acme@12345", last_poll_at=moment))
    with db.session() as session:
        cursor = session.get(PollCursor, ("faxage", "acme@12345"))
        assert cursor is not None
        assert cursor.last_poll_at == moment
        assert cursor.last_poll_at is not None and cursor.last_poll_at.tzinfo is UTC
        stored = session.execute(text("SELECT last_poll_at FROM poll_cursor")).scalar()
    assert str(stored).startswith("2024-03-11 04:15:07")


@ON_BOTH
def test_utc_datetime_refuses_naive_values(db: Database) -> None:
    """A naive datetime (zone unknown) is refused instead of being stored as a guess."""
    with pytest.raises(StatementError, match="aware"), db.session() as session:
        session.add(
            PollCursor(
                provider="faxage", account="acme@12345", last_poll_at=datetime(2024, 3, 10, 23, 15)
            )
        )


def test_unwritable_database_directory_is_a_clear_config_error(tmp_path: Path) -> None:
    """A database path under a regular file names the directory and how to fix it."""
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    with pytest.raises(ConfigError) as caught:
        Database(f"sqlite:///{blocker / 'faxd' / 'faxd.db'}")
    assert str(blocker / "faxd") in str(caught.value)
    assert "[database] url" in str(caught.value)


def _increment(db: Database, after_read: Callable[[], object] = lambda: None) -> None:
    """Read the cursor and write it back +1, in one transaction, as faxd's code does.

    The read locks the row (``FOR UPDATE``): PostgreSQL's READ COMMITTED lets a
    plain read-then-write lose the other writer's update; SQLite omits the
    clause, its ``BEGIN IMMEDIATE`` already serialises the whole transaction.
    """
    with db.session() as session:
        cursor = session.get(PollCursor, ("faxage", "acme@12345"), with_for_update=True)
        assert cursor is not None
        after_read()
        cursor.cursor = str(int(cursor.cursor or "0") + 1)


def _run_threads(*targets: Callable[[], None]) -> list[BaseException]:
    errors: list[BaseException] = []

    def guarded(target: Callable[[], None]) -> None:
        try:
            target()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(t,)) for t in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    return errors


def _cursor_value(db: Database) -> int:
    with db.session() as session:
        cursor = session.get(PollCursor, ("faxage", "acme@12345"))
        assert cursor is not None
        return int(cursor.cursor or "0")


@ON_BOTH
def test_writers_in_two_threads_queue_instead_of_failing(db: Database) -> None:
    """A read-then-write transaction overlapped by another writer neither fails nor loses an update.

    The first thread reads, then waits (up to 0.5 s) for the second to finish its own
    increment.  With a lazily begun transaction the second commits in between and the
    first gets "database is locked"; with BEGIN IMMEDIATE the second waits its turn.
    On PostgreSQL the row lock of the read makes the second wait the same way; without
    it the second's increment would be overwritten (two instances, one cursor).
    """
    with db.session() as session:
        session.add(PollCursor(provider="faxage", account="acme@12345", cursor="0"))
    first_has_read = threading.Event()
    second_done = threading.Event()

    def let_second_write() -> None:
        first_has_read.set()
        second_done.wait(0.5)

    def first() -> None:
        _increment(db, let_second_write)

    def second() -> None:
        first_has_read.wait(10)
        _increment(db)
        second_done.set()

    assert _run_threads(first, second) == []
    assert _cursor_value(db) == 2


@ON_BOTH
def test_many_concurrent_increments_all_land(db: Database) -> None:
    """Two threads doing 25 read-modify-write transactions each end at 50, without errors."""
    with db.session() as session:
        session.add(PollCursor(provider="faxage", account="acme@12345", cursor="0"))

    def work() -> None:
        for _ in range(25):
            _increment(db)

    assert _run_threads(work, work) == []
    assert _cursor_value(db) == 50


def test_database_files_are_private_whatever_the_umask(tmp_path: Path) -> None:
    """Issue 10 #5: under umask 022 the SQLite file, its -wal and -shm are 0600 and the
    folder faxd makes for them 0700."""
    old = os.umask(0o022)
    try:
        database = Database(f"sqlite:///{tmp_path / 'state' / 'faxd.db'}")
        database.upgrade()
        with database.engine.connect() as connection:  # holds the WAL and SHM open
            connection.exec_driver_sql("SELECT 1")
            files = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "state").iterdir()}
    finally:
        os.umask(old)
        database.dispose()
    assert files == {"faxd.db": 0o600, "faxd.db-wal": 0o600, "faxd.db-shm": 0o600}
    assert stat.S_IMODE((tmp_path / "state").stat().st_mode) == 0o700


def test_a_read_does_not_wait_for_a_writer(db: Database) -> None:
    """reading() begins deferred on SQLite: it answers while another connection writes."""
    import threading

    from sqlalchemy import text

    writing, done = threading.Event(), threading.Event()

    def writer() -> None:
        with db.transaction() as connection:
            connection.execute(text("UPDATE poll_cursor SET cursor = 'x'"))
            writing.set()
            done.wait(30)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert writing.wait(30)
        with db.reading() as connection:
            assert connection.execute(text("SELECT count(*) FROM inbound_faxes")).scalar() == 0
        assert thread.is_alive()  # the writer still holds its transaction: no waiting happened
    finally:
        done.set()
        thread.join(30)
