"""Open the database the way faxd's crash-safety promises need it.

Everything faxd remembers lives in one SQLite file (or another SQLAlchemy
database).  The ledger (STYLE.md §6) only protects anything if a committed row
survives power loss and if two threads (the poller and the hot-folder
submitter) can write without tripping over each other, so every SQLite
connection gets:

- ``journal_mode=WAL``: readers never block the writer;
- ``synchronous=FULL``: a COMMIT is on disk before it returns (see below for
  the transactions that may ask for less);
- ``foreign_keys=ON``: a delivery cannot point at a missing fax;
- ``busy_timeout=30000``: a writer waits for the lock instead of failing;
- ``BEGIN IMMEDIATE`` for every transaction, emitted by SQLAlchemy instead of
  the ``sqlite3`` module (which would begin lazily, only before the first
  write).  A transaction that read under a shared lock and then wants to write
  gets ``database is locked`` at once, whatever the busy timeout; taking the
  write lock at BEGIN makes writers queue up instead.  It also makes DDL
  transactional, so a migration applies completely or not at all.

A transaction opened with ``durable=False`` (:meth:`Database.session`,
:meth:`Database.transaction`) runs at ``synchronous=NORMAL`` instead.  In WAL
mode its COMMIT is still atomic and consistent, it only skips the fsync of the
WAL: a power cut may roll back the newest such commits, never a part of one.
The next ``FULL`` commit fsyncs the WAL up to its own frames, so it makes every
earlier commit durable too.  The caller asks for this only where losing the
commit costs nothing but repeated, idempotent work (the inbound ledger says why
at each call site); everything else, by default, stays ``FULL``.  The level is
set before ``BEGIN IMMEDIATE``, outside any transaction, and only when it
differs from the level the pooled connection was left at.

The file, its ``-wal`` and ``-shm`` are 0600 and a folder faxd makes for it
0700, whatever the umask (the faxes' metadata is as private as the faxes):
faxd creates the file 0600 before SQLite opens it, and SQLite creates the WAL
and SHM with the main file's permission bits, umask or not (its
``findCreateFileMode``; tests/store/test_db.py checks all three under umask 022).

PostgreSQL (``postgresql+psycopg://user@host/db``) is the database several faxd
instances share.  None of the above applies there: the server owns durability
and locking.  Its engine pings a pooled connection before handing it out
(``pool_pre_ping``), so a server restart or a cut connection costs a reconnect,
not a failed pass; ``durable=False`` becomes ``SET LOCAL synchronous_commit =
off``, the same bargain as ``synchronous=NORMAL`` (the newest such commits may
be lost in a crash, never a part of one).  The password is passed beside the
URL (:class:`Database`'s ``password``), so the URL faxd shows never holds it.
:meth:`Database.upgrade` takes a PostgreSQL advisory lock, so two machines
upgrading one database at once take turns instead of both creating tables.

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
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from faxd.errors import ConfigError, FaxdError
from faxd.filemodes import create_private, make_dirs
from faxd.redact import register_secret

#: Where the migration scripts live (package data; see the module docstring).
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

_SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA busy_timeout=30000",
    "PRAGMA synchronous=FULL",
    "PRAGMA foreign_keys=ON",
)

#: Execution option (and connection ``info`` key) carrying a transaction's
#: ``synchronous`` level: ``"FULL"`` unless the caller passed ``durable=False``.
SYNCHRONOUS = "faxd_synchronous"
#: Execution option of :meth:`Database.reading`: a transaction that only reads.
READ_ONLY = "faxd_read_only"

#: The PostgreSQL advisory lock :meth:`Database.upgrade` holds: one fixed key
#: ("faxd" and the schema lock's number), the same on every machine.
UPGRADE_LOCK_KEY = 0x6661_7864_0001

#: Seconds a PostgreSQL connection attempt may take before it fails clearly.
CONNECT_TIMEOUT = 10


class Database:
    """One database: an engine, a session factory and the schema version.

    ``password`` (PostgreSQL) is used to connect but kept out of :attr:`url`,
    the URL faxd shows; a password written into ``url`` itself still works.
    """

    def __init__(self, url: str, *, password: str | None = None) -> None:
        self.url: URL = make_url(url)
        register_secret(self.url.password if isinstance(self.url.password, str) else None)
        register_secret(password)
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        file = _sqlite_file(self.url)
        if file is not None:
            _ensure_sqlite_file(file)
        if self.is_sqlite:
            self.engine: Engine = create_engine(self.url)
            _install_sqlite_listeners(self.engine)
        else:
            given = self.url if password is None else self.url.set(password=password)
            self.engine = _server_engine(given)
        self._sessions = sessionmaker(bind=self.engine, expire_on_commit=False)

    def __repr__(self) -> str:
        return f"Database({self.shown_url!r})"

    @property
    def shown_url(self) -> str:
        """The URL as faxd may print it: any password in it masked."""
        return self.url.render_as_string(hide_password=True)

    @contextmanager
    def session(self, *, durable: bool = True) -> Iterator[Session]:
        """A session whose work is committed on success and rolled back on error.

        Objects stay readable after the block (``expire_on_commit=False``).
        ``durable=False`` commits at ``synchronous=NORMAL`` (module docstring):
        only for work whose loss in a power cut is harmlessly redone.
        """
        with self._sessions() as session:
            if not durable:
                # Opens the connection now, so the level is known at BEGIN.
                session.connection(execution_options=_options(durable))
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    @contextmanager
    def transaction(self, *, durable: bool = True) -> Iterator[Connection]:
        """A Core connection in one transaction: committed on success, rolled back on error.

        For hot paths that need no ORM objects; ``durable`` as for :meth:`session`.
        """
        with self.engine.connect() as connection:
            if not durable:
                connection = connection.execution_options(**_options(durable))
            with connection.begin():
                yield connection

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """A Core connection for reads only: on SQLite it does not take the write lock.

        Every other transaction on SQLite begins ``IMMEDIATE`` (it may write);
        a check made before each step of every fax (``claims.keep``) must not
        queue behind the writers for that.
        """
        with self.engine.connect() as connection:
            connection = connection.execution_options(**{READ_ONLY: True})
            with connection.begin():
                yield connection

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

        On PostgreSQL the transaction first takes the advisory lock
        :data:`UPGRADE_LOCK_KEY` (released at its end, commit or not), so a
        second machine upgrading at the same moment waits, then finds the
        schema current and does nothing.  The revision is read under the lock.
        """
        config = self._alembic_config()
        scripts = ScriptDirectory.from_config(config)
        with self.engine.begin() as connection:
            if not self.is_sqlite:
                connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({UPGRADE_LOCK_KEY})")
            current = MigrationContext.configure(connection).get_current_revision()
            if current is not None and current not in {
                s.revision for s in scripts.walk_revisions()
            }:
                raise ConfigError(
                    f"the database {self.shown_url} is at schema revision {current}, which "
                    f"this faxd does not know (its newest is {scripts.get_current_head()}): "
                    "a newer faxd wrote it. Install that faxd again, or set [database] url "
                    "to another database."
                )
            config.attributes["connection"] = connection
            command.upgrade(config, revision)

    def check_connection(self) -> None:
        """Connect once, or raise :class:`~faxd.errors.FaxdError` saying which server and why.

        For a database server, before anything else: an unreachable server or a
        refused login is then one clear line, not an error from the middle of a pass.
        """
        try:
            with self.engine.connect() as connection:
                connection.exec_driver_sql("SELECT 1")
        except OperationalError as exc:
            reason = str(exc.orig or exc).strip().splitlines()[0]
            raise FaxdError(
                f"cannot reach the database {self.shown_url}: {reason}. Check that the server "
                "is up, the [database] url, and the password (FAXD_DATABASE_PASSWORD or the "
                "database-password credential)"
            ) from None

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


def _sqlite_file(url: URL) -> Path | None:
    """The file of a SQLite URL; ``None`` for other databases and in-memory ones."""
    if url.get_backend_name() != "sqlite":
        return None
    database = url.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        return None
    return Path(database).expanduser()


def _ensure_sqlite_file(file: Path) -> None:
    """Create the SQLite file (0600) and its folder (0700), or say clearly why not."""
    try:
        make_dirs(file.parent)
        create_private(file)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ConfigError(
            f"database url: cannot create the SQLite file {file} (or its directory "
            f"{file.parent}): {reason}. Create the directory (writable by the user faxd "
            "runs as), or set [database] url to a path that user can write."
        ) from exc


def _options(durable: bool) -> dict[str, str]:
    return {SYNCHRONOUS: "FULL" if durable else "NORMAL"}


def _server_engine(url: URL) -> Engine:
    """An engine for a database server (PostgreSQL): see the module docstring."""
    engine = create_engine(
        url,
        pool_pre_ping=True,
        connect_args={"connect_timeout": CONNECT_TIMEOUT, "application_name": "faxd"},
    )

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        if connection.get_execution_options().get(SYNCHRONOUS) == "NORMAL":
            connection.exec_driver_sql("SET LOCAL synchronous_commit = off")

    return engine


def _install_sqlite_listeners(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, record: Any) -> None:
        # Stop the sqlite3 module from issuing BEGIN (and COMMIT before DDL)
        # itself; SQLAlchemy's "begin" event below takes over.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            for pragma in _SQLITE_PRAGMAS:
                cursor.execute(pragma)
        finally:
            cursor.close()
        record.info[SYNCHRONOUS] = "FULL"

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        # Every transaction states its level (FULL unless asked otherwise), so
        # a connection a NORMAL transaction used goes back to FULL on its next
        # use.  Set outside the transaction, where the pragma surely applies.
        options = connection.get_execution_options()
        if options.get(READ_ONLY):
            connection.exec_driver_sql("BEGIN")  # deferred: readers never wait for writers (WAL)
            return
        wanted = "NORMAL" if options.get(SYNCHRONOUS) == "NORMAL" else "FULL"
        info = connection.connection.info
        if info.get(SYNCHRONOUS) != wanted:
            connection.exec_driver_sql(f"PRAGMA synchronous={wanted}")
            info[SYNCHRONOUS] = wanted
        connection.exec_driver_sql("BEGIN IMMEDIATE")
