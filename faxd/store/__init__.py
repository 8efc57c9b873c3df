"""Everything faxd remembers: the database, its tables and their state machines.

- :mod:`faxd.store.db`: :class:`Database` (engine, sessions, SQLite pragmas,
  Alembic upgrade);
- :mod:`faxd.store.models`: the tables (the crash-safety ledger);
- :mod:`faxd.store.states`: the legal state changes, through ``advance()``;
- ``faxd/store/migrations``: the Alembic scripts, shipped with the package.
"""

from __future__ import annotations

from faxd.store.db import Database

__all__ = ["Database"]
