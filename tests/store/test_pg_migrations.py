"""The schema on both databases faxd runs on, and the database password kept secret (issue 14).

Every migration runs on SQLite and on a real PostgreSQL server (tests/pg_helper.py;
no SQLite stand-in counts): from an empty database, and from the revision before
the newest with a row in every table, whose values must come through.  Two
upgrades of one empty PostgreSQL database started at the same instant (two
machines running ``faxd db upgrade``) must both succeed and leave one schema.
Then the real CLI (``faxd db upgrade``, ``check-config``, ``status``, ``run --once``)
runs against a PostgreSQL role with a password, and no text it prints holds it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Boolean, DateTime, Integer, MetaData, String, Table, inspect, select, text
from sqlalchemy.engine import Connection

from faxd.demo import DemoLayout, write_config
from faxd.store.db import UPGRADE_LOCK_KEY, Database
from faxd.store.models import Base

#: Phone-number columns: migration 0008 rewrites them to E.164 on purpose (its own
#: test checks the new values), so only their presence is compared here.
CONVERTED = {"cid", "dnis", "faxno"}
STATES = {"inbound_faxes": "delivered", "outbound_jobs": "submitted", "deliveries": "done"}
WHEN = datetime(2026, 11, 30, 12, 34, 56)
DB_PASSWORD = "Pg7+db/SECRET=13&q"


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database of each kind (its URL): a new SQLite file, a new PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'faxd.db'}"
    url = request.getfixturevalue("pg_url")
    return str(url.render_as_string(hide_password=False))


@pytest.fixture
def database(empty_url: str) -> Iterator[Database]:
    db = Database(empty_url)
    yield db
    db.dispose()


def schema_differences(db: Database) -> list[Any]:
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))


def previous_revision(db: Database) -> str:
    scripts = ScriptDirectory.from_config(db._alembic_config())
    head = scripts.get_revision(db.head_revision())
    assert head is not None and isinstance(head.down_revision, str)
    return head.down_revision


def reflect(connection: Connection) -> MetaData:
    metadata = MetaData()
    metadata.reflect(connection)
    metadata.remove(metadata.tables["alembic_version"])
    return metadata


def value_for(table: Table, column: Any, ids: dict[str, Any]) -> Any:
    """A realistic value for ``column``: the row it points at, a valid state, a number."""
    for key in column.foreign_keys:
        return ids[key.column.table.name]
    kind = column.type
    if isinstance(kind, Boolean):
        return True
    if isinstance(kind, Integer):
        return 3
    if isinstance(kind, DateTime):
        return WHEN
    if column.name in CONVERTED:
        return "3035550199"
    if column.name == "state" and table.name in STATES:
        return STATES[table.name]
    if column.name == "account":
        return "acme@12345"
    word = f"{table.name}.{column.name}"
    length = getattr(kind, "length", None) if isinstance(kind, String) else None
    return word[:length] if length else word


def fill(connection: Connection, metadata: MetaData) -> dict[str, dict[str, Any]]:
    """One row in every table (parents first), every column set; each row as read back."""
    ids: dict[str, Any] = {}
    rows: dict[str, dict[str, Any]] = {}
    for table in metadata.sorted_tables:
        key_columns = list(table.primary_key.columns)
        generated = {  # a lone integer key is the database's to give
            c.name for c in key_columns if len(key_columns) == 1 and isinstance(c.type, Integer)
        }
        values = {
            c.name: value_for(table, c, ids) for c in table.columns if c.name not in generated
        }
        key = connection.execute(table.insert().values(values)).inserted_primary_key
        ids[table.name] = key[0]
        rows[table.name] = dict(connection.execute(select(table)).mappings().one())
    return rows


def test_upgrade_head_from_empty(database: Database) -> None:
    """An empty database of either kind is brought to the newest schema, equal to the models."""
    assert database.current_revision() is None
    database.upgrade()
    assert database.current_revision() == database.head_revision()
    assert set(inspect(database.engine).get_table_names()) == set(Base.metadata.tables) | {
        "alembic_version"
    }
    assert schema_differences(database) == []
    with database.transaction() as connection:  # every column of the newest schema takes a value
        fill(connection, reflect(connection))


def test_upgrade_from_the_previous_revision_keeps_the_rows(database: Database) -> None:
    """Rows written at the revision before the newest come through the last migration."""
    database.upgrade(previous_revision(database))
    with database.transaction() as connection:
        before = fill(connection, reflect(connection))

    database.upgrade()

    assert database.current_revision() == database.head_revision()
    assert schema_differences(database) == []
    with database.transaction() as connection:
        after = reflect(connection)
        for name, row in before.items():
            if name not in after.tables:
                continue  # a table the newest migration dropped
            found = connection.execute(select(after.tables[name])).mappings().all()
            assert len(found) == 1, name
            # Compared as text: a migration may change a column's type (an id to a string).
            kept = {c: str(v) for c, v in found[0].items() if c in row and c not in CONVERTED}
            assert kept == {c: str(v) for c, v in row.items() if c in kept}, name
        # New rows still get their keys: sequences and defaults fit the newest schema.
        for table in reversed(after.sorted_tables):
            connection.execute(table.delete())
        fill(connection, after)


#: One machine's `faxd db upgrade`.
MACHINE = """
import sys
from faxd.store.db import Database
db = Database(sys.argv[1])
db.upgrade()
print("upgraded", db.current_revision(), flush=True)
"""


def waiting_for_the_schema_lock(connection: Connection) -> int:
    """How many sessions of this database wait for an advisory lock."""
    found = connection.exec_driver_sql(
        "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
        "WHERE l.locktype = 'advisory' AND NOT l.granted AND d.datname = current_database()"
    )
    return int(found.scalar_one())


def test_upgrades_of_one_empty_postgresql_database_at_once(pg_url: Any) -> None:
    """Machines running `faxd db upgrade` at the same moment: all succeed, one schema.

    Three processes (Alembic keeps its state in module globals, so threads would
    not be machines).  The test holds the schema lock first, so all three are
    surely at the same point at once, each waiting for it; then it lets go.
    Without the lock they would run straight on, creating the same tables side
    by side, and the one that lost would fail.
    """
    url = pg_url.render_as_string(hide_password=False)
    db = Database(url)
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as holder:
        holder.exec_driver_sql(f"SELECT pg_advisory_lock({UPGRADE_LOCK_KEY})")
        machines = [
            subprocess.Popen([sys.executable, "-c", MACHINE, url], text=True, **pipes)
            for _ in range(3)
        ]
        try:
            deadline = time.monotonic() + 60
            while waiting_for_the_schema_lock(holder) < len(machines):
                exited = [m.args for m in machines if m.poll() is not None]
                assert not exited and time.monotonic() < deadline, (
                    "the upgrades did not wait for the schema lock"
                )
                time.sleep(0.05)
            assert db.current_revision() is None  # none of them started before the lock
            holder.exec_driver_sql(f"SELECT pg_advisory_unlock({UPGRADE_LOCK_KEY})")
            results = [machine.communicate(timeout=120) for machine in machines]
        finally:
            for machine in machines:
                machine.kill()
                machine.wait()
    try:
        head = db.head_revision()
        for machine, (out, err) in zip(machines, results, strict=True):
            assert machine.returncode == 0, err
            assert out == f"upgraded {head}\n"
        assert db.current_revision() == head
        assert schema_differences(db) == []
        with db.transaction() as connection:
            versions = connection.execute(text("SELECT version_num FROM alembic_version"))
            assert versions.scalars().all() == [head]
    finally:
        db.dispose()


def test_a_durable_false_transaction_skips_only_its_own_commit_flush(pg_db: Database) -> None:
    """On PostgreSQL durable=False is synchronous_commit=off for that transaction only."""
    with pg_db.transaction(durable=False) as connection:
        assert connection.exec_driver_sql("SHOW synchronous_commit").scalar() == "off"
    with pg_db.transaction() as connection:
        assert connection.exec_driver_sql("SHOW synchronous_commit").scalar() == "on"
    with pg_db.session(durable=False) as session:
        assert session.execute(text("SHOW synchronous_commit")).scalar() == "off"


# -- the database password -------------------------------------------------------------


@pytest.fixture
def pg_role(pg_admin: Any, pg_url: Any) -> Iterator[Any]:
    """A login role with :data:`DB_PASSWORD` owning the test database; the URL reaching it
    over TCP, where the server checks passwords, with the password left out."""
    import pg_helper

    name = pg_helper.create_role(pg_admin, DB_PASSWORD)
    pg_helper.run_admin(pg_admin, f'ALTER DATABASE "{pg_url.database}" OWNER TO "{name}"')
    try:
        yield pg_helper.tcp_url(pg_admin, pg_url.database, name)
    finally:
        pg_helper.drop_database(pg_admin, pg_url)
        pg_helper.drop_role(pg_admin, name)


def faxd(config: Path, *argv: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "faxd", *argv, "--config", str(config)],
        capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, **env},
    )  # fmt: skip


def pg_config(tmp_path: Path, sim: Any, url: str) -> Path:
    config = write_config(
        DemoLayout(tmp_path / "site"), base_url=sim.base_url, username=sim.username,
        company=sim.company, password=sim.password,
    )  # fmt: skip
    lines = config.read_text().splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("url = \"sqlite"))
    lines[at] = f'url = "{url}"'
    config.write_text("\n".join(lines) + "\n")
    return config


def leaks(done: subprocess.CompletedProcess[str]) -> list[str]:
    from urllib.parse import quote, quote_plus

    text = done.stdout + done.stderr
    return [form for form in {DB_PASSWORD, quote(DB_PASSWORD, safe=""), quote_plus(DB_PASSWORD)}
            if form in text]  # fmt: skip


def test_the_database_password_never_shows_in_cli_output_or_logs(
    tmp_path: Path, sim: Any, pg_role: Any
) -> None:
    """FAXD_DATABASE_PASSWORD reaches PostgreSQL; no faxd command prints it, success or not."""
    shown = pg_role.render_as_string(hide_password=False)
    config = pg_config(tmp_path, sim, shown)
    sim.seed_inbound(2)
    env = {"FAXD_DATABASE_PASSWORD": DB_PASSWORD}
    runs = {
        "db upgrade": faxd(config, "db", "upgrade", env=env),
        "check-config": faxd(config, "check-config", env=env),
        "run --once": faxd(config, "run", "--once", env=env),
        "status": faxd(config, "status", env=env),
        "status --json": faxd(config, "status", "--json", env=env),
    }
    for name, done in runs.items():
        assert done.returncode == 0, f"{name}: {done.stderr}"
        assert leaks(done) == [], name
    assert "environment variable FAXD_DATABASE_PASSWORD" in runs["check-config"].stdout
    assert shown in runs["status --json"].stdout  # the text form cuts it to 80 columns
    assert "database    postgresql+psycopg://faxd_role_" in runs["status"].stdout
    assert "2 done" in runs["status"].stdout  # the run really worked on PostgreSQL

    # The server checks the password: a wrong one fails, and is not printed either.
    wrong = faxd(config, "status", env={"FAXD_DATABASE_PASSWORD": DB_PASSWORD[::-1]})
    assert wrong.returncode != 0
    assert f"cannot reach the database {shown}" in wrong.stderr
    assert "password authentication failed" in wrong.stderr and "unexpected" not in wrong.stderr
    assert DB_PASSWORD[::-1] not in wrong.stdout + wrong.stderr


def test_a_password_inside_the_url_works_with_a_warning_and_is_never_shown(
    tmp_path: Path, sim: Any, pg_role: Any
) -> None:
    """A password written into [database] url connects, draws a warning, and is masked."""
    from urllib.parse import quote

    in_url = pg_role.render_as_string(hide_password=False).replace(
        "@", f":{quote(DB_PASSWORD, safe='')}@", 1
    )
    config = pg_config(tmp_path, sim, in_url)
    config.chmod(0o600)
    upgrade = faxd(config, "db", "upgrade", env={})
    check = faxd(config, "check-config", env={})
    status = faxd(config, "status", env={})
    for done in (upgrade, check, status):
        assert done.returncode == 0, done.stderr
        assert leaks(done) == []
    assert "url holds the database password" in check.stdout
    assert "FAXD_DATABASE_PASSWORD" in check.stdout
