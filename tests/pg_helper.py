"""A real PostgreSQL server for the tests, and a fresh database in it per test.

No SQLite stand-in counts as a PostgreSQL test (issue 14), so the PostgreSQL
tests need a server.  ``.ci/run`` starts one and names it in
``FAXD_TEST_PG_URL`` (a superuser's SQLAlchemy URL).  Without that variable,
:class:`PrivateCluster` makes one for the session when ``initdb`` and
``pg_ctl`` are installed: a cluster in a fresh folder, listening on a private
port on 127.0.0.1 and on a Unix socket in that folder, stopped at the end.
PostgreSQL refuses to run as root, so as root the cluster belongs to the
``postgres`` user the Debian package creates (``runuser``).

Local (socket) connections are trusted; TCP connections need a password
(scram-sha-256), so a test can prove that faxd really sends the one it was
given.  Each test gets its own database (``CREATE DATABASE`` with a unique
name, dropped afterwards), never a shared one.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url

#: Runs a test taking the ``db`` fixture twice: on SQLite, then on PostgreSQL.
ON_BOTH = pytest.mark.parametrize("db", ["sqlite", "postgresql"], indirect=True)
#: Set by .ci/run: a missing PostgreSQL is then a failure, not a skip.
REQUIRE_ENV = "FAXD_TEST_REQUIRE_PG"
URL_ENV = "FAXD_TEST_PG_URL"


def server_url(raw: str) -> URL:
    """``raw`` as a SQLAlchemy URL on the psycopg driver (``postgresql://`` is accepted)."""
    url = make_url(raw)
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    return url


def pg_bin_dir() -> Path | None:
    """The folder holding ``initdb`` and ``pg_ctl`` (PATH first, then Debian's), or None."""
    initdb = shutil.which("initdb")
    if initdb is not None and shutil.which("pg_ctl") is not None:
        return Path(initdb).resolve().parent
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(found[-1]).parent if found else None


def unavailable_reason() -> str | None:
    """Say why no private cluster can be started here (``None``: it can)."""
    if pg_bin_dir() is None:
        return (
            f"no PostgreSQL server: set {URL_ENV} to a superuser URL, or install it "
            "(apt-get install postgresql; .ci/run does this)"
        )
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "PostgreSQL refuses root and there is no postgres user to run it as"
        if shutil.which("runuser") is None:
            return "PostgreSQL refuses root and runuser is missing to run it as postgres"
    return None


class PrivateCluster:
    """initdb + pg_ctl in a fresh folder: a server of this test session's own."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.bin = pg_bin_dir()
        if self.bin is None:
            raise RuntimeError(unavailable_reason() or "PostgreSQL is not installed")
        # Not under pytest's tmp folder: that one is 0700 root, which the
        # postgres user could not enter.
        self.root = Path(tempfile.mkdtemp(prefix="faxd-pg-"))
        self.data = self.root / "data"
        self._as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self._as:
            user = pwd.getpwnam("postgres")
            os.chown(self.root, user.pw_uid, user.pw_gid)

    @property
    def url(self) -> URL:
        """The superuser's URL over the Unix socket (trusted, no password)."""
        user = "postgres" if self._as else pwd.getpwuid(os.geteuid()).pw_name
        return URL.create(
            "postgresql+psycopg",
            username=user,
            database="postgres",
            query={"host": str(self.root), "port": str(self.port)},
        )

    def _run(self, *args: str) -> None:
        done = subprocess.run(
            [*self._as, *args], capture_output=True, text=True, timeout=120, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"{args[0]} failed ({done.returncode}): {done.stderr.strip()}")

    def start(self) -> PrivateCluster:
        assert self.bin is not None
        self._run(
            str(self.bin / "initdb"), "-D", str(self.data), "-U", self.url.username or "",
            "--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync", "-E", "UTF8",
        )  # fmt: skip
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c full_page_writes=off -c max_connections=200"
        )
        self._run(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "log"),
            "-o", options, "-w", "-t", "60", "start",
        )  # fmt: skip
        return self

    def stop(self) -> None:
        assert self.bin is not None
        try:
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def create_database(admin: URL) -> URL:
    """A new, empty database on ``admin``'s server; its URL (same user and host)."""
    name = f"faxd_test_{uuid.uuid4().hex[:12]}"
    run_admin(admin, f'CREATE DATABASE "{name}"')
    return admin.set(database=name)


def drop_database(admin: URL, url: URL) -> None:
    """Drop ``url``'s database, closing whatever connections a test left open."""
    run_admin(admin, f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)')


def create_role(admin: URL, password: str) -> str:
    """A new login role with ``password``, allowed to use every test database; its name."""
    name = f"faxd_role_{uuid.uuid4().hex[:12]}"
    run_admin(admin, f"CREATE ROLE \"{name}\" LOGIN PASSWORD '{password}'")
    return name


def tcp_url(admin: URL, database: str, username: str) -> URL:
    """A URL (without password) reaching ``admin``'s server over TCP, where passwords count."""
    host = admin.host or "127.0.0.1"
    port = admin.port or int(str(admin.query.get("port", "5432")))
    return URL.create(
        "postgresql+psycopg", username=username, host=host, port=port,
        database=database,
    )  # fmt: skip


def drop_role(admin: URL, name: str) -> None:
    run_admin(admin, f'DROP ROLE IF EXISTS "{name}"')


def run_admin(admin: URL, statement: str) -> None:
    """Run one statement as the superuser, outside a transaction (CREATE DATABASE needs that)."""
    engine = create_engine(admin, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(text(statement))
    finally:
        engine.dispose()
