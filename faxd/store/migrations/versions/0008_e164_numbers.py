"""Stored numbers become E.164: ``3035550101`` -> ``+13035550101`` (issue 11, numbers abroad).

Before this revision faxd stored every NANP number as its 10 digits
(``inbound_faxes.dnis`` and ``.cid``, ``outbound_jobs.faxno``); a caller id that
was not a NANP number kept its digits, and an unknown one was ``""``.  A value of
exactly 10 ASCII digits was therefore always a NANP number, and only those are
rewritten; ``""`` and anything else (junk digits of a caller id) stay as they are.

The rule is written here, not imported from :mod:`faxd.phone`, so this revision
does the same thing whatever later versions of that module decide.  Rows are
read and written through plain SQL, so the migration runs on SQLite and
PostgreSQL alike.  Downgrading turns ``+1`` and 10 digits back into the 10
digits; a number abroad stays E.164, which the older faxd shows as it is.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 13:20:00
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: (table, column) of every stored phone number.
NUMBER_COLUMNS: tuple[tuple[str, str], ...] = (
    ("inbound_faxes", "dnis"),
    ("inbound_faxes", "cid"),
    ("outbound_jobs", "faxno"),
)

_TEN_DIGITS = re.compile(r"[0-9]{10}")
_E164_NANP = re.compile(r"\+1([0-9]{10})")


def to_e164(value: str) -> str:
    """The 10-digit NANP form as E.164; anything else unchanged."""
    return f"+1{value}" if _TEN_DIGITS.fullmatch(value) else value


def to_ten_digits(value: str) -> str:
    """A ``+1`` E.164 number as its 10 digits; anything else unchanged."""
    match = _E164_NANP.fullmatch(value)
    return match.group(1) if match else value


def upgrade() -> None:
    for table, column in NUMBER_COLUMNS:
        _rewrite(table, column, to_e164, length=10)


def downgrade() -> None:
    for table, column in NUMBER_COLUMNS:
        _rewrite(table, column, to_ten_digits, length=12)


def _rewrite(table: str, column: str, convert: Callable[[str], str], *, length: int) -> None:
    """Apply ``convert`` to ``column`` of every row whose value has ``length`` characters."""
    bind = op.get_bind()
    rows = sa.table(table, sa.column("id", sa.Integer()), sa.column(column, sa.String()))
    value = rows.c[column]
    found = bind.execute(sa.select(rows.c.id, value).where(sa.func.length(value) == length))
    changes = [
        {"row_id": row_id, "number": new} for row_id, old in found if (new := convert(old)) != old
    ]
    if changes:
        bind.execute(
            rows.update()
            .where(rows.c.id == sa.bindparam("row_id"))
            .values({column: sa.bindparam("number")}),
            changes,
        )
