"""Migration 0009 (claims): from the previous revision with rows, on SQLite and on PostgreSQL.

The rows are written at 0008 through plain SQL on the reflected tables, as the
faxd before claims left them: a fax with its delivery, a job.  Upgrading must
keep every row and value, with nobody holding a claim; downgrading must give
the 0008 tables back with the same rows.  (From an empty database, every test
of the suite upgrades to head on both; ``test_db`` compares that schema with the
models on both.)
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command

from faxd.store import Database

PREVIOUS = "0008"
FAX = {
    "provider": "faxage", "account": "acme@12345", "remote_id": "104730",
    "recvdate": sa.func.now(), "cid": "+17205550142", "dnis": "+13035550101",
    "state": "delivered", "attempts": 1, "route": "sales", "spool_path": "/spool/104730.pdf",
}  # fmt: skip
JOB = {
    "state": "submitted", "faxno": "+13035551212", "recipname": "Bob", "source_name": "a.pdf",
    "source_relpath": "a.pdf", "spool_path": "/spool/1-a.pdf", "size": 10, "sha256": "ab" * 32,
    "attempts": 1, "resends": 0, "provider": "faxage", "remote_jobid": "9001", "cleared": 0,
}  # fmt: skip


@pytest.fixture(params=["sqlite", "postgresql"])
def old_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A database at 0008 holding one fax with its delivery and one job."""
    if request.param == "postgresql":
        url = request.getfixturevalue("pg_url").render_as_string(hide_password=False)
    else:
        url = f"sqlite:///{tmp_path / 'faxd.db'}"
    database = Database(url)
    database.upgrade(PREVIOUS)
    metadata = sa.MetaData()
    metadata.reflect(database.engine, only=("inbound_faxes", "deliveries", "outbound_jobs"))
    now = sa.func.now()
    with database.engine.begin() as connection:
        faxes = metadata.tables["inbound_faxes"]
        values = {**FAX, "listed_at": now, "updated_at": now}
        fax_id = connection.execute(
            sa.insert(faxes).values(values).returning(faxes.c.id)
        ).scalar_one()
        connection.execute(
            sa.insert(metadata.tables["deliveries"]).values(
                fax_id=fax_id,
                route="sales",
                action_index=0,
                action_type="folder",
                target="/srv/fax/sales",
                state="done",
                attempts=1,
            )
        )
        connection.execute(
            sa.insert(metadata.tables["outbound_jobs"]).values(
                {**JOB, "created_at": now, "updated_at": now}
            )
        )
    yield database
    database.dispose()


def _rows(database: Database, table: str, columns: dict[str, Any]) -> list[tuple[Any, ...]]:
    names = ", ".join(k for k in columns if k != "recvdate")
    with database.engine.connect() as connection:
        return [tuple(r) for r in connection.execute(sa.text(f"SELECT {names} FROM {table}"))]  # noqa: S608


def test_upgrade_keeps_every_row_and_nobody_holds_a_claim(old_database: Database) -> None:
    faxes_before = _rows(old_database, "inbound_faxes", FAX)
    jobs_before = _rows(old_database, "outbound_jobs", JOB)
    old_database.upgrade()
    assert old_database.current_revision() == old_database.head_revision() == "0009"
    assert _rows(old_database, "inbound_faxes", FAX) == faxes_before
    assert _rows(old_database, "outbound_jobs", JOB) == jobs_before
    with old_database.engine.connect() as connection:
        for table in ("inbound_faxes", "outbound_jobs"):
            claims = connection.execute(sa.text(f"SELECT instance, lease_until FROM {table}"))  # noqa: S608
            assert list(claims) == [(None, None)]
        assert connection.execute(sa.text("SELECT count(*) FROM deliveries")).scalar() == 1
        assert connection.execute(sa.text("SELECT count(*) FROM leases")).scalar() == 0
        assert connection.execute(sa.text("SELECT count(*) FROM instances")).scalar() == 0


def test_downgrade_gives_the_previous_tables_back_with_their_rows(old_database: Database) -> None:
    faxes_before = _rows(old_database, "inbound_faxes", FAX)
    old_database.upgrade()
    config = old_database._alembic_config()
    with old_database.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, PREVIOUS)
    assert old_database.current_revision() == PREVIOUS
    assert _rows(old_database, "inbound_faxes", FAX) == faxes_before
    inspector = sa.inspect(old_database.engine)
    assert "leases" not in inspector.get_table_names()
    assert "instance" not in {c["name"] for c in inspector.get_columns("outbound_jobs")}
