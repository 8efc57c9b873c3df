"""The ``[database]`` section: which database, and where a server's password comes from.

SQLite (one file, the default) needs no password.  PostgreSQL, the database
several faxd instances share, does, and the URL is what faxd shows in
``check-config``, ``status`` and its logs, so the password is kept beside it:
from ``FAXD_DATABASE_PASSWORD`` or the systemd credential ``database-password``.
A password written into the URL still works (it is taken out of the URL, and
the config gets a warning saying where to put it instead).  Either way it is
registered with :func:`faxd.redact.register_secret` before anything can print it.

Two keys matter only when several servers share a PostgreSQL database:
``instance`` names this server in every row it claims (the hostname unless
set), and ``lease_seconds`` is how long the claims of a server that died keep
the others off its work (:mod:`faxd.store.claims`).
"""

from __future__ import annotations

import dataclasses
import re
import socket
from collections.abc import Mapping
from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from faxd.config.model import DatabaseSettings
from faxd.config.reader import Table
from faxd.config.secrets import DATABASE_PASSWORD, resolve_outside_secret
from faxd.redact import register_secret

#: The databases faxd runs on, by SQLAlchemy dialect; ``postgresql://`` means psycopg.
DRIVERS = {"sqlite": "sqlite", "postgresql": "postgresql+psycopg"}
#: Longest ``[database] instance`` name (it is stored in every row an instance claims).
INSTANCE_MAX = 64
_INSTANCE_NAME = re.compile(rf"[A-Za-z0-9][A-Za-z0-9._-]{{0,{INSTANCE_MAX - 1}}}")
#: Shortest ``[database] lease_seconds``: a claim must outlive a slow database round trip.
MIN_LEASE_SECONDS = 5.0

#: Where the warning sends a password found in the URL.
PASSWORD_PLACES = (
    f"set the environment variable {DATABASE_PASSWORD.env_var} or "
    f"LoadCredential={DATABASE_PASSWORD.credential} in the systemd unit"
)


def read_database(
    table: Table | None, base: Path, env: Mapping[str, str], file: Path
) -> DatabaseSettings:
    """The ``[database]`` settings; problems go to the table's problem list."""
    if table is None:
        return DatabaseSettings(instance=default_instance())
    instance = _instance_name(table)
    lease = table.duration("lease_seconds", DatabaseSettings.lease_seconds)
    if lease < MIN_LEASE_SECONDS:
        table.problem(
            "lease_seconds",
            f"must be at least {MIN_LEASE_SECONDS:g} (a shorter lease expires while an "
            f"instance is still working), not {lease:g}",
        )
        lease = DatabaseSettings.lease_seconds
    found = _read_url(table, base, env, file)
    return dataclasses.replace(found, instance=instance, lease_seconds=lease)


def default_instance() -> str:
    """The hostname, as far as it makes a valid instance name (else ``faxd``)."""
    name = socket.gethostname().split(".")[0][:INSTANCE_MAX]
    return name if _INSTANCE_NAME.fullmatch(name) else "faxd"


def _instance_name(table: Table) -> str:
    name = table.text("instance")
    if name is None:
        return default_instance()
    if not _INSTANCE_NAME.fullmatch(name):
        table.problem(
            "instance",
            f"must be 1 to {INSTANCE_MAX} letters, digits, '.', '-' or '_' (e.g. \"fax1\"), "
            f"not {name!r}",
        )
        return default_instance()
    return name


def _read_url(table: Table, base: Path, env: Mapping[str, str], file: Path) -> DatabaseSettings:
    raw = table.text("url") or DatabaseSettings.url
    table.finish()
    try:
        url = make_url(raw)
    except ArgumentError:
        table.problem(
            "url",
            "is not a database URL; use sqlite:////var/lib/faxd/faxd.db or "
            "postgresql+psycopg://faxd@db.example.com/faxd",
        )
        return DatabaseSettings()
    backend = url.get_backend_name()
    if backend not in DRIVERS:
        table.problem(
            "url",
            f"{backend!r} is not a database faxd runs on; use sqlite:///PATH (one machine) "
            "or postgresql+psycopg://USER@HOST/DB (several machines)",
        )
        return DatabaseSettings()
    if backend == "sqlite":
        return DatabaseSettings(url=_sqlite_url(raw, base))
    return _server(table, url, env, file)


def _sqlite_url(url: str, base: Path) -> str:
    """A relative SQLite path is relative to the config file's folder."""
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        rest = url[len("sqlite:///") :]
        if rest and not rest.startswith(":memory:") and not rest.startswith("file:"):
            return f"sqlite:///{base / rest}"
    return url


def _server(table: Table, url: URL, env: Mapping[str, str], file: Path) -> DatabaseSettings:
    if url.drivername == "postgresql":
        url = url.set(drivername=DRIVERS["postgresql"])
    in_url = url.password if isinstance(url.password, str) and url.password else None
    register_secret(in_url)
    url = url._replace(password=None)  # set() takes None as "leave it"
    shown = url.render_as_string(hide_password=False)
    outside = resolve_outside_secret(table, DATABASE_PASSWORD, env)
    if in_url is not None and outside is not None:
        table.problem(
            "url",
            f"holds a password, and {outside.source} gives one too; "
            "remove the password from the url",
        )
        return DatabaseSettings(url=shown)
    if in_url is not None:
        return DatabaseSettings(url=shown, password=in_url, password_source=f"the url in {file}")
    if outside is not None:
        return DatabaseSettings(url=shown, password=outside.value, password_source=outside.source)
    return DatabaseSettings(url=shown)


def password_warning(settings: DatabaseSettings) -> list[str]:
    """The config's warning when the password was written into the URL."""
    if settings.password is None or not settings.password_source.startswith("the url"):
        return []
    return [
        f"[database] url holds the database password, which then sits in the config file "
        f"and in every copy of the URL; {PASSWORD_PLACES} instead"
    ]
