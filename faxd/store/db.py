"""Open the database the way faxd's crash-safety promises need it.

Everything faxd remembers lives in one SQLite file (or another SQLAlchemy
database).  The ledger (STYLE.md §6) only protects anything if a committed row
survives power loss and if two threads (the poller and the hot-folder
submitter) can write without tripping over each other, so every SQLite
connection gets:

- ``journal_mode=WAL``: readers never block the writer;
- ``synchronous=FULL``: a COMMIT is on disk before it returns;
- ``foreign_keys=ON``: a delivery cannot point at a missing fax;
- ``busy_timeout=30000``: a writer waits for the lock instead of failing;
- ``BEGIN IMMEDIATE`` for every transaction, emitted by SQLAlchemy instead of
  the ``sqlite3`` module (which would begin lazily, only before the first
  write).  A transaction that read under a shared lock and then wants to write
  gets ``database is locked`` at once, whatever the busy timeout; taking the
  write lock at BEGIN makes writers queue up instead.  It also makes DDL
  transactional, so a migration applies completely or not at all.

The schema is owned by Alembic; the migration scripts ship inside the package
(``faxd/store/migrations``) so :meth:`Database.upgrade` works from an installed
wheel as well as from the repository.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.orm import Session, sessionmaker

from faxd.errors import ConfigError

#: Where the migration scripts live (package data; see the module docstring).
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

_SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA busy_timeout=30000",
    "PRAGMA synchronous=FULL",
    "PRAGMA foreign_keys=ON",
)


class Database:
    """One database: an engine, a session factory and the schema version."""

    def __init__(self, url: str) -> None:
        self.url: URL = make_url(url)
        if self.url.get_backend_name() == "sqlite":
            _ensure_sqlite_directory(self.url)
        self.engine: Engine = create_engine(self.url)
        if self.url.get_backend_name() == "sqlite":
            _install_sqlite_listeners(self.engine)
        self._sessions = sessionmaker(bind=self.engine, expire_on_commit=False)

    def __repr__(self) -> str:
        return f"Database({self.url.render_as_string(hide_password=True)!r})"

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session whose work is committed on success and rolled back on error.

        Objects stay readable after the block (``expire_on_commit=False``).
        """
        with self._sessions() as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def _alembic_config(self) -> Config:
        """Alembic's configuration, built in code: no ``alembic.ini`` is needed.

        The migrations run on a connection handed over in ``attributes`` (see
        ``migrations/env.py``), so no URL, and no password, goes into it.
        """
        config = Config()
        # ``%`` is ConfigParser's interpolation character.
        config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
        return config

    def upgrade(self, revision: str = "head") -> None:
        """Bring the schema up to ``revision`` (the newest by default).

        Runs in this database's own engine, so the pragmas and ``BEGIN
        IMMEDIATE`` apply and the whole upgrade is one transaction.
        Upgrading a database that is already current does nothing.
        """
        config = self._alembic_config()
        current = self.current_revision()
        scripts = ScriptDirectory.from_config(config)
        if current is not None and current not in {s.revision for s in scripts.walk_revisions()}:
            raise ConfigError(
                f"the database {self.url.render_as_string(hide_password=True)} is at schema "
                f"revision {current}, which this faxd "
                f"does not know (its newest is {scripts.get_current_head()}): a newer faxd "
                "wrote it. Install that faxd again, or set [database] url to another file."
            )
        with self.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, revision)

    def current_revision(self) -> str | None:
        """The schema revision the database is at; ``None`` if it was never migrated."""
        with self.engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()

    def head_revision(self) -> str | None:
        """The newest schema revision this version of faxd knows."""
        return ScriptDirectory.from_config(self._alembic_config()).get_current_head()

    def dispose(self) -> None:
        """Close every pooled connection (the file can then be moved or deleted)."""
        self.engine.dispose()


def _ensure_sqlite_directory(url: URL) -> None:
    """Create the directory of a SQLite file, or say clearly why it cannot be."""
    database = url.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        return
    parent = Path(database).expanduser().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ConfigError(
            f"database url: cannot create the directory {parent} for the SQLite file "
            f"{database}: {reason}. Create it (writable by the user faxd runs as), "
            "or set [database] url to a path that user can write."
        ) from exc


def _install_sqlite_listeners(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Stop the sqlite3 module from issuing BEGIN (and COMMIT before DDL)
        # itself; SQLAlchemy's "begin" event below takes over.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            for pragma in _SQLITE_PRAGMAS:
                cursor.execute(pragma)
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")
