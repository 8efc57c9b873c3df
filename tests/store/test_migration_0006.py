"""Migration 0006: a FAXAGE-only database from before issue 11 keeps every row and its cursor.

The database is built at revision 0005 with the rows a running faxd leaves
(faxes in several states, their deliveries, the cursor, a listing problem),
upgraded, and read back: every row is there, with the same values, keyed by
``(provider, account, remote_id)``.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from faxd.store import Database
from faxd.store.models import Base

ACCOUNT = "acme@12345"
T = datetime(2024, 5, 1, 9, 30)

_FAX_COLUMNS = (
    "id, account, recvid, recvdate, starttime, cid, dnis, server_filename, pagecount, state, "
    "attempts, next_attempt_at, last_error, route, spool_path, kind, size, sha256, listed_at, "
    "updated_at, delivered_at, deleted_at"
)
FAXES: list[dict[str, Any]] = [
    {"id": 1, "recvid": 104730, "state": "done", "route": "sales", "spool_path": None,
     "kind": "pdf", "size": 1234, "sha256": "a" * 64, "deleted_at": T, "delivered_at": T,
     "attempts": 0, "last_error": None},
    {"id": 2, "recvid": 104731, "state": "downloaded", "route": "sales",
     "spool_path": "/var/spool/faxd/104731.pdf", "kind": "pdf", "size": 99, "sha256": "b" * 64,
     "deleted_at": None, "delivered_at": None, "attempts": 2, "last_error": "listed: boom"},
    {"id": 3, "recvid": 7, "state": "listed", "route": None, "spool_path": None, "kind": None,
     "size": None, "sha256": None, "deleted_at": None, "delivered_at": None, "attempts": 0,
     "last_error": None},
]  # fmt: skip
DELIVERIES: list[dict[str, Any]] = [
    {"id": 10, "fax_id": 1, "route": "sales", "action_index": 0, "action_type": "folder",
     "target": "/srv/fax/sales", "state": "done", "attempts": 1, "detail": "/srv/fax/a.pdf",
     "last_error": None, "completed_at": T},
    {"id": 11, "fax_id": 2, "route": "sales", "action_index": 0, "action_type": "email",
     "target": "office@example.com", "state": "pending", "attempts": 3, "detail": None,
     "last_error": "smtp down", "completed_at": None},
]  # fmt: skip


def _at_0005(tmp_path: Path, *, last_recvid: int) -> Database:
    db = Database(f"sqlite:///{tmp_path / 'faxd.db'}")
    db.upgrade("0005")
    with db.engine.begin() as conn:
        for fax in FAXES:
            conn.execute(
                text(f"INSERT INTO inbound_faxes ({_FAX_COLUMNS}) VALUES ("  # noqa: S608
                     ":id, :account, :recvid, :recvdate, NULL, '3035550100', '3035550101', "
                     "'fax.pdf', 2, :state, :attempts, NULL, :last_error, :route, :spool_path, "
                     ":kind, :size, :sha256, :t, :t, :delivered_at, :deleted_at)"),
                {**fax, "account": ACCOUNT, "recvdate": T, "t": T},
            )  # fmt: skip
        for delivery in DELIVERIES:
            conn.execute(
                text("INSERT INTO deliveries VALUES (:id, :fax_id, :route, :action_index, "
                     ":action_type, :target, :state, :attempts, :detail, :last_error, "
                     ":completed_at)"),
                delivery,
            )  # fmt: skip
        conn.execute(
            text("INSERT INTO poll_cursor (account, last_recvid, last_poll_at, last_poll_outcome,"
                 " last_sweep_at, paused_reason, next_poll_at, next_sweep_at, last_listed_at) "
                 "VALUES (:a, :r, :t, 'polled 1 new', :t, 'login refused', :t, :t, :t)"),
            {"a": ACCOUNT, "r": last_recvid, "t": T},
        )  # fmt: skip
        conn.execute(
            text("INSERT INTO listing_problems (id, account, fingerprint, text, reason, "
                 "first_seen, last_seen, count, last_logged_at) "
                 "VALUES (5, :a, :f, 'bad line', 'no recvid', :t, :t, 4, :t)"),
            {"a": ACCOUNT, "f": "c" * 64, "t": T},
        )  # fmt: skip
        conn.execute(
            text("INSERT INTO admin_conditions (key, kind, summary, raised_at) "
                 "VALUES (:k, 'auth_failed', 'login refused', :t)"),
            {"k": f"auth_failed:{ACCOUNT}", "t": T},
        )  # fmt: skip
    return db


def _rows(db: Database, table: str) -> list[dict[str, Any]]:
    with db.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(text(f"SELECT * FROM {table} ORDER BY 1"))]  # noqa: S608


def test_upgrade_keeps_every_faxage_row_with_its_values(tmp_path: Path) -> None:
    """Faxes, deliveries, cursor and listing problems all survive 0006, keyed by provider."""
    db = _at_0005(tmp_path, last_recvid=104731)
    try:
        before_faxes = _rows(db, "inbound_faxes")
        db.upgrade("0006")
        assert db.current_revision() == "0006"

        after_faxes = _rows(db, "inbound_faxes")
        assert len(after_faxes) == len(before_faxes) == 3
        for old, new in zip(before_faxes, after_faxes, strict=True):
            assert new["provider"] == "faxage"
            assert new["remote_id"] == str(old["recvid"])
            unchanged = {k: v for k, v in old.items() if k != "recvid"}
            assert {k: new[k] for k in unchanged} == unchanged

        deliveries = _rows(db, "deliveries")
        assert deliveries == [{k: _sql(v) for k, v in d.items()} for d in DELIVERIES]

        [cursor] = _rows(db, "poll_cursor")
        assert cursor == {
            "provider": "faxage", "account": ACCOUNT, "cursor": "104731",
            "last_poll_at": _sql(T), "last_poll_outcome": "polled 1 new",
            "last_sweep_at": _sql(T), "paused_reason": "login refused",
            "last_listed_at": _sql(T), "next_poll_at": _sql(T), "next_sweep_at": _sql(T),
        }  # fmt: skip

        [problem] = _rows(db, "listing_problems")
        assert problem == {
            "id": 5, "provider": "faxage", "account": ACCOUNT, "fingerprint": "c" * 64,
            "text": "bad line", "reason": "no recvid", "first_seen": _sql(T),
            "last_seen": _sql(T), "count": 4, "last_logged_at": _sql(T),
        }  # fmt: skip
        [condition] = _rows(db, "admin_conditions")
        assert condition["key"] == f"auth_failed:faxage:{ACCOUNT}"  # so a good login clears it
        db.upgrade()  # the later revisions on top of a 0006 rebuilt here end at the models
        _assert_schema_is_the_models(db)
    finally:
        db.dispose()


def test_a_cursor_at_zero_becomes_no_cursor(tmp_path: Path) -> None:
    """``last_recvid = 0`` meant "nothing listed yet": the first listing starts from the top."""
    db = _at_0005(tmp_path, last_recvid=0)
    try:
        db.upgrade("0006")
        [cursor] = _rows(db, "poll_cursor")
        assert cursor["cursor"] is None
    finally:
        db.dispose()


def test_upgraded_database_keeps_its_constraints(tmp_path: Path) -> None:
    """After the rebuild a delivery still needs its fax, and a remote id is still unique."""
    db = _at_0005(tmp_path, last_recvid=1)
    try:
        db.upgrade("0006")
        with pytest.raises(IntegrityError), db.engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO deliveries VALUES (99, 999, 'r', 0, 'folder', '', 'pending', 0, "
                "NULL, NULL, NULL)"
            ))  # fmt: skip
        with pytest.raises(IntegrityError), db.engine.begin() as conn:
            conn.execute(
                text("INSERT INTO inbound_faxes (provider, account, remote_id, recvdate, cid, "
                     "dnis, state, attempts, listed_at, updated_at) VALUES ('faxage', :a, "
                     "'104730', :t, '', '', 'listed', 0, :t, :t)"),
                {"a": ACCOUNT, "t": T},
            )  # fmt: skip
        with db.engine.begin() as conn:  # the same id at another provider is another fax
            conn.execute(
                text("INSERT INTO inbound_faxes (provider, account, remote_id, recvdate, cid, "
                     "dnis, state, attempts, listed_at, updated_at) VALUES ('voipms', :a, "
                     "'104730', :t, '', '', 'listed', 0, :t, :t)"),
                {"a": ACCOUNT, "t": T},
            )  # fmt: skip
        assert "_deliveries_0006" not in inspect(db.engine).get_table_names()
    finally:
        db.dispose()


def test_downgrade_gives_the_faxage_rows_back(tmp_path: Path) -> None:
    """0006 undone: recvids as integers again, the cursor's NULL back to 0, no row lost."""
    db = _at_0005(tmp_path, last_recvid=0)
    try:
        before = _rows(db, "inbound_faxes"), _rows(db, "deliveries"), _rows(db, "poll_cursor")
        db.upgrade("0006")
        with db.engine.begin() as connection:
            config = db._alembic_config()
            config.attributes["connection"] = connection
            command.downgrade(config, "0005")
        after = _rows(db, "inbound_faxes"), _rows(db, "deliveries"), _rows(db, "poll_cursor")
        assert _rows(db, "admin_conditions")[0]["key"] == f"auth_failed:{ACCOUNT}"
        assert after[0] == before[0]
        assert after[1] == before[1]
        assert [{k: r[k] for k in before[2][0]} for r in after[2]] == before[2]
    finally:
        db.dispose()


def _sql(value: Any) -> Any:
    """A value as SQLite hands it back through a raw query (datetimes as text)."""
    return str(value) if isinstance(value, datetime) else value


def _assert_schema_is_the_models(db: Database) -> None:
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert list(compare_metadata(context, Base.metadata)) == []
