"""Alembic's entry point for faxd's migrations, from code or from the command line.

:meth:`faxd.store.db.Database.upgrade` hands over a connection of its own
engine in ``config.attributes["connection"]`` (already inside a transaction), so
the migration runs with faxd's SQLite pragmas and ``BEGIN IMMEDIATE``.

From the repository root, ``alembic upgrade head`` (using ``alembic.ini``)
finds the database URL in this order: ``-x url=...``, the ``FAXD_DATABASE_URL``
environment variable, ``sqlalchemy.url`` in the configuration.  It opens the
URL through :class:`~faxd.store.db.Database` too, so both paths behave alike; a
PostgreSQL password comes from ``FAXD_DATABASE_PASSWORD``, as for the daemon.

The same scripts run on SQLite and PostgreSQL.  Batch mode (a table rebuilt
for each ALTER) is what SQLite needs; on PostgreSQL ``batch_alter_table``
issues plain ``ALTER TABLE`` statements, and autogenerate writes batch blocks
only when it compares against SQLite.
"""

from __future__ import annotations

import os
from logging.config import fileConfig
from typing import Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy import TypeDecorator
from sqlalchemy.engine import Connection

from faxd.errors import ConfigError
from faxd.store.db import Database
from faxd.store.models import Base

config = context.config
target_metadata = Base.metadata

if config.config_file_name is not None and "connection" not in config.attributes:
    # Command-line use: show Alembic's progress as alembic.ini says.
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def _database_url() -> str:
    url = (
        context.get_x_argument(as_dictionary=True).get("url")
        or os.environ.get("FAXD_DATABASE_URL")
        or config.get_main_option("sqlalchemy.url")
    )
    if not url:
        raise ConfigError(
            "no database URL for the migration: pass -x url=sqlite:////path/faxd.db, "
            "set FAXD_DATABASE_URL, or set sqlalchemy.url in alembic.ini"
        )
    return url


def _render_item(type_: str, obj: object, _autogen: AutogenContext) -> str | Literal[False]:
    """Write faxd's column types (``UTCDateTime``) as their plain SQL type.

    A migration must not import today's models: it has to run unchanged after
    the models have moved on.
    """
    if type_ == "type" and isinstance(obj, TypeDecorator):
        return f"sa.{obj.impl_instance!r}"
    return False


def _configure_and_run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        # Our BEGIN IMMEDIATE makes DDL transactional on SQLite: a failed
        # upgrade leaves the schema exactly as it was.
        transactional_ddl=True,
        compare_type=True,
        render_item=_render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_offline() -> None:
    """Write the migration SQL to standard output (``alembic upgrade head --sql``)."""
    context.configure(
        url=_database_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
        transactional_ddl=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Apply the migrations to a live database."""
    given = config.attributes.get("connection")
    if given is not None:
        _configure_and_run(given)
        return
    database = Database(_database_url(), password=os.environ.get("FAXD_DATABASE_PASSWORD") or None)
    try:
        with database.engine.begin() as connection:
            _configure_and_run(connection)
    finally:
        database.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
