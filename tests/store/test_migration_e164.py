"""Migration 0008: stored 10-digit numbers become E.164, and back on downgrade.

The rows are written at the revision before 0008 (whatever columns it has:
other branches add some), through plain SQL on the reflected tables, exactly as
an older faxd left them; then the real migration runs on the real SQLite file.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from datetime import datetime
from itertools import count
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import sqlalchemy as sa

from faxd.store import Database

REPO_ROOT = Path(__file__).resolve().parents[2]
MIGRATION = REPO_ROOT / "faxd" / "store" / "migrations" / "versions" / "0008_e164_numbers.py"


def _migration() -> ModuleType:
    spec = importlib.util.spec_from_file_location("migration_0008", MIGRATION)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


PREVIOUS = str(_migration().down_revision)

#: What an older faxd stored -> what 0008 makes of it.
INBOUND = [
    ("3035550101", "7205550142", "+13035550101", "+17205550142"),
    ("3035550102", "", "+13035550102", ""),  # caller id withheld
    ("3035550103", "442079460018", "+13035550103", "442079460018"),  # digits of a number abroad
    ("3035550103", "01", "+13035550103", "01"),  # junk kept as its digits
    ("", "12345", "", "12345"),
]
OUTBOUND = [("3035551212", "+13035551212"), ("6479484755", "+16479484755")]


def _alembic(url: str, *args: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "alembic", "-x", f"url={url}", *args],
        cwd=REPO_ROOT,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def _filler(column: sa.Column[Any], serial: int) -> object:
    """A value for a NOT NULL column this test does not care about."""
    if column.name == "provider":
        return "faxage"
    python_type = column.type.python_type
    if python_type is datetime:
        return datetime(2024, 5, 1, 9, 30)
    if python_type is bool:
        return False
    if python_type is int:
        return serial
    if python_type is float:
        return 0.0
    return f"x{serial}"


def _insert(connection: sa.Connection, table: sa.Table, serials: Any, **given: object) -> None:
    """Insert a row giving ``given`` and a filler for every other required column."""
    values = dict(given)
    for column in table.columns:
        required = not column.nullable and column.server_default is None
        if column.name not in values and required and not column.primary_key:
            values[column.name] = _filler(column, next(serials))
    connection.execute(sa.insert(table).values(values))


def _numbers(database: Database) -> tuple[list[tuple[str, str]], list[str]]:
    with database.engine.connect() as connection:
        inbound = connection.execute(sa.text("SELECT dnis, cid FROM inbound_faxes ORDER BY id"))
        outbound = connection.execute(sa.text("SELECT faxno FROM outbound_jobs ORDER BY id"))
        return [(d, c) for d, c in inbound], [f for (f,) in outbound]


@pytest.fixture
def old_database(tmp_path: Path) -> Any:
    """A database at the revision before 0008, holding numbers as an older faxd stored them."""
    url = f"sqlite:///{tmp_path / 'faxd.db'}"
    database = Database(url)
    database.upgrade(PREVIOUS)
    metadata = sa.MetaData()
    metadata.reflect(database.engine, only=("inbound_faxes", "outbound_jobs"))
    serials = count(1000)
    with database.engine.begin() as connection:
        for dnis, cid, _new_dnis, _new_cid in INBOUND:
            _insert(
                connection, metadata.tables["inbound_faxes"], serials,
                account="acme@12345", dnis=dnis, cid=cid, state="done",
            )  # fmt: skip
        jobs = metadata.tables["outbound_jobs"]
        for faxno, _new in OUTBOUND:
            _insert(connection, jobs, serials, faxno=faxno, state="sent")
    yield url, database
    database.dispose()


def test_upgrade_makes_ten_digits_e164_and_leaves_the_rest(old_database: Any) -> None:
    """dnis, cid and faxno of 10 digits become +1 and 10 digits; "" and junk stay."""
    _url, database = old_database
    before = _numbers(database)
    assert before == ([(d, c) for d, c, _, _ in INBOUND], [f for f, _ in OUTBOUND])
    database.upgrade("0008")
    assert _numbers(database) == (
        [(d, c) for _, _, d, c in INBOUND],
        [f for _, f in OUTBOUND],
    )


def test_downgrade_gives_the_ten_digits_back(old_database: Any) -> None:
    """Down to the revision before: +1 numbers are 10 digits again; a number abroad stays."""
    url, database = old_database
    database.upgrade("0008")
    with database.engine.begin() as connection:
        connection.execute(sa.text("UPDATE outbound_jobs SET faxno = '+49301234567' WHERE id = 2"))
    _alembic(url, "downgrade", PREVIOUS)
    assert database.current_revision() == PREVIOUS
    inbound, outbound = _numbers(database)
    assert inbound == [(d, c) for d, c, _, _ in INBOUND]
    assert outbound == ["3035551212", "+49301234567"]


def test_conversion_rules() -> None:
    """Only exactly 10 ASCII digits go up; only +1 and 10 digits come down."""
    migration = _migration()
    assert migration.to_e164("3035550101") == "+13035550101"
    for kept in ("", "303555010", "13035550101", "+13035550101", "303555010x", "٣٠٣٥٥٥٠١٠١"):
        assert migration.to_e164(kept) == kept
    assert migration.to_ten_digits("+13035550101") == "3035550101"
    for kept in ("", "+49301234567", "3035550101", "+130355501011"):
        assert migration.to_ten_digits(kept) == kept
