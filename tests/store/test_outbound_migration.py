"""Migration 0007: outbound jobs gain a provider and a text job id, losing no row.

The database starts at the revision just before 0007 (read from the script,
so the test holds whatever revision comes before it) with FAXAGE jobs in it,
as today's main writes them.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from faxd.store import Database
from faxd.store.models import OutboundJob

REVISION = "0007"

_INSERT = text(
    "INSERT INTO outbound_jobs (id, state, faxno, recipname, source_name, source_relpath, "
    "spool_path, size, sha256, created_at, updated_at, attempts, resends, faxage_jobid, "
    "shortstatus, cleared) VALUES (:id, :state, '3035551212', 'Bob', :name, :name, "
    "'/spool/x', 10, '', '2026-11-01 10:00:00', '2026-11-01 10:00:00', 1, 0, :jobid, "
    ":short, 0)"
)


def _previous(database: Database) -> str:
    script = ScriptDirectory.from_config(database._alembic_config()).get_revision(REVISION)
    assert script is not None and isinstance(script.down_revision, str)
    return script.down_revision


@pytest.fixture
def old_db(tmp_path: Path) -> Database:
    database = Database(f"sqlite:///{tmp_path / 'old.db'}")
    database.upgrade(_previous(database))
    with database.engine.begin() as connection:
        for id_, state, jobid, short in [
            (1, "sent", 5271001, "success"),
            (2, "submitted", 2147483647, "pending"),
            (3, "queued", None, None),
            (4, "failed", None, None),
        ]:
            connection.execute(
                _INSERT,
                {"id": id_, "state": state, "name": f"f{id_}.pdf", "jobid": jobid, "short": short},
            )
    return database


def test_every_faxage_job_is_kept_with_its_id_as_text(old_db: Database) -> None:
    old_db.upgrade()  # through {REVISION} to head: the ORM reads the newest columns
    with old_db.session() as session:
        rows = [
            (job.id, job.state, job.provider, job.remote_jobid, job.source_name, job.shortstatus)
            for job in session.scalars(select(OutboundJob).order_by(OutboundJob.id))
        ]
    old_db.dispose()
    assert rows == [
        (1, "sent", "faxage", "5271001", "f1.pdf", "success"),
        (2, "submitted", "faxage", "2147483647", "f2.pdf", "pending"),
        (3, "queued", "faxage", None, "f3.pdf", None),
        (4, "failed", "faxage", None, "f4.pdf", None),
    ]


def test_a_remote_id_is_unique_per_provider_only(old_db: Database) -> None:
    old_db.upgrade()  # through {REVISION} to head: the ORM reads the newest columns
    with old_db.session() as session:
        job = session.get(OutboundJob, 3)
        assert job is not None
        job.provider, job.remote_jobid = "voipms", "5271001"  # same text, other provider
    with pytest.raises(IntegrityError), old_db.session() as session:
        job = session.get(OutboundJob, 4)
        assert job is not None
        job.remote_jobid = "5271001"  # FAXAGE's 5271001 belongs to job 1
    old_db.dispose()


def test_downgrade_gives_faxage_ids_back_as_numbers(old_db: Database) -> None:
    old_db.upgrade(REVISION)
    from alembic import command

    config = old_db._alembic_config()
    with old_db.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, _previous(old_db))
    with old_db.engine.connect() as connection:
        ids = connection.execute(text("SELECT id, faxage_jobid FROM outbound_jobs ORDER BY id"))
        assert list(ids) == [(1, 5271001), (2, 2147483647), (3, None), (4, None)]
    old_db.dispose()
