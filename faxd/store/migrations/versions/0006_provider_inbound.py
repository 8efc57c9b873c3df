"""Inbound rows keyed by provider: ``(provider, account, remote_id)`` instead of FAXAGE's recvid.

faxd now receives from several providers at once (issue 11), whose fax ids
are strings (VoIP.ms, iFax ``jobId:transactionId``).  Every existing row was
FAXAGE's, so each gets ``provider = 'faxage'`` and its recvid as text; the
poll cursor keeps its recvid as text too (``0``, "nothing listed yet",
becomes NULL).  No row is dropped: a fax half-way through its steps resumes
where it stood.

SQLite cannot drop ``inbound_faxes`` to rebuild it while ``deliveries``
points at it (``foreign_keys=ON``, and the pragma cannot change inside the
migration's transaction), so there the deliveries wait in a table without
the foreign key while ``inbound_faxes`` is rebuilt, and come back with the
same ids.  Other databases alter the tables in place.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 13:20:00
"""

# The SQL below is built from this module's own table and column names only.
# ruff: noqa: S608

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_DELIVERY_COLUMNS = (
    "id, fax_id, route, action_index, action_type, target, state, attempts, "
    "detail, last_error, completed_at"
)
_PARKED = "_deliveries_0006"
#: The poll_cursor columns 0006 keeps as they are.
_CURSOR_KEPT = (
    "last_poll_at, last_poll_outcome, last_sweep_at, paused_reason, "
    "last_listed_at, next_poll_at, next_sweep_at"
)


def _recreate() -> Literal["always", "auto"]:
    """SQLite rebuilds the table to change it; other databases alter it in place."""
    return "always" if op.get_bind().dialect.name == "sqlite" else "auto"


def _delivery_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("fax_id", sa.Integer(), nullable=False),
        sa.Column("route", sa.String(length=200), nullable=False),
        sa.Column("action_index", sa.Integer(), nullable=False),
        sa.Column("action_type", sa.String(length=20), nullable=False),
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("completed_at", sa.DateTime(), nullable=True),
    ]


def _park_deliveries() -> None:
    """SQLite: move ``deliveries`` out of the way (no foreign key) while its parent is rebuilt."""
    op.create_table(_PARKED, *_delivery_columns(), sa.PrimaryKeyConstraint("id"))
    op.execute(
        f"INSERT INTO {_PARKED} ({_DELIVERY_COLUMNS}) SELECT {_DELIVERY_COLUMNS} FROM deliveries"
    )
    op.drop_index("ix_deliveries_fax_id", table_name="deliveries")
    op.drop_table("deliveries")


def _unpark_deliveries() -> None:
    op.create_table(
        "deliveries",
        *_delivery_columns(),
        sa.ForeignKeyConstraint(["fax_id"], ["inbound_faxes.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("fax_id", "route", "action_index", name="uq_delivery_fax_route_action"),
    )
    op.create_index("ix_deliveries_fax_id", "deliveries", ["fax_id"], unique=False)
    op.execute(
        f"INSERT INTO deliveries ({_DELIVERY_COLUMNS}) SELECT {_DELIVERY_COLUMNS} FROM {_PARKED}"
    )
    op.drop_table(_PARKED)


def _upgrade_faxes() -> None:
    op.add_column("inbound_faxes", sa.Column("provider", sa.String(length=20), nullable=True))
    op.add_column("inbound_faxes", sa.Column("remote_id", sa.String(length=200), nullable=True))
    op.execute(
        "UPDATE inbound_faxes SET provider = 'faxage', remote_id = CAST(recvid AS VARCHAR(200))"
    )
    with op.batch_alter_table("inbound_faxes", recreate=_recreate()) as batch:
        batch.drop_constraint("uq_inbound_account_recvid", type_="unique")
        batch.drop_column("recvid")
        batch.alter_column("provider", existing_type=sa.String(length=20), nullable=False)
        batch.alter_column("remote_id", existing_type=sa.String(length=200), nullable=False)
        batch.create_unique_constraint(
            "uq_inbound_provider_remote", ["provider", "account", "remote_id"]
        )


def _upgrade_cursor() -> None:
    """``poll_cursor`` keyed by (provider, account), its recvid kept as the text cursor."""
    op.create_table(
        "poll_cursor_0006",
        sa.Column("provider", sa.String(length=20), nullable=False),
        sa.Column("account", sa.String(length=200), nullable=False),
        sa.Column("cursor", sa.String(length=200), nullable=True),
        sa.Column("last_poll_at", sa.DateTime(), nullable=True),
        sa.Column("last_poll_outcome", sa.Text(), nullable=True),
        sa.Column("last_sweep_at", sa.DateTime(), nullable=True),
        sa.Column("paused_reason", sa.Text(), nullable=True),
        sa.Column("last_listed_at", sa.DateTime(), nullable=True),
        sa.Column("next_poll_at", sa.DateTime(), nullable=True),
        sa.Column("next_sweep_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("provider", "account"),
    )
    op.execute(
        f"INSERT INTO poll_cursor_0006 (provider, account, cursor, {_CURSOR_KEPT}) "
        "SELECT 'faxage', account, "
        "CASE WHEN last_recvid > 0 THEN CAST(last_recvid AS VARCHAR(200)) END, "
        f"{_CURSOR_KEPT} FROM poll_cursor"
    )
    op.drop_table("poll_cursor")
    op.rename_table("poll_cursor_0006", "poll_cursor")


def _upgrade_problems() -> None:
    op.add_column("listing_problems", sa.Column("provider", sa.String(length=20), nullable=True))
    op.execute("UPDATE listing_problems SET provider = 'faxage'")
    with op.batch_alter_table("listing_problems", recreate=_recreate()) as batch:
        batch.drop_constraint("uq_listing_problem_account_line", type_="unique")
        batch.alter_column("provider", existing_type=sa.String(length=20), nullable=False)
        batch.create_unique_constraint(
            "uq_listing_problem_provider_line", ["provider", "account", "fingerprint"]
        )


#: Admin conditions keyed by account, now by ``provider:account`` (see ``condition_scope``).
_CONDITION_KINDS = ("auth_failed", "disk_low", "provider_down")


def _rekey_conditions(old: str, new: str) -> None:
    """Rename the raised conditions of each FAXAGE account, so they still clear."""
    bind = op.get_bind()
    for kind in _CONDITION_KINDS:
        rows = bind.execute(
            sa.text("SELECT key FROM admin_conditions WHERE kind = :kind"), {"kind": kind}
        ).scalars()
        for key in list(rows):
            scope = key.partition(":")[2]
            if not scope.startswith(old):
                continue
            bind.execute(
                sa.text("UPDATE admin_conditions SET key = :new WHERE key = :old"),
                {"new": f"{kind}:{new}{scope[len(old) :]}", "old": key},
            )


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        _park_deliveries()
    _upgrade_faxes()
    if sqlite:
        _unpark_deliveries()
    _upgrade_cursor()
    _upgrade_problems()
    _rekey_conditions("", "faxage:")


def _downgrade_faxes() -> None:
    op.add_column("inbound_faxes", sa.Column("recvid", sa.Integer(), nullable=True))
    op.execute("UPDATE inbound_faxes SET recvid = CAST(remote_id AS INTEGER)")
    with op.batch_alter_table("inbound_faxes", recreate=_recreate()) as batch:
        batch.drop_constraint("uq_inbound_provider_remote", type_="unique")
        batch.drop_column("remote_id")
        batch.drop_column("provider")
        batch.alter_column("recvid", existing_type=sa.Integer(), nullable=False)
        batch.create_unique_constraint("uq_inbound_account_recvid", ["account", "recvid"])


def _downgrade_cursor() -> None:
    op.create_table(
        "poll_cursor_0005",
        sa.Column("account", sa.String(length=200), nullable=False),
        sa.Column("last_recvid", sa.Integer(), nullable=False),
        sa.Column("last_poll_at", sa.DateTime(), nullable=True),
        sa.Column("last_poll_outcome", sa.Text(), nullable=True),
        sa.Column("last_sweep_at", sa.DateTime(), nullable=True),
        sa.Column("paused_reason", sa.Text(), nullable=True),
        sa.Column("next_poll_at", sa.DateTime(), nullable=True),
        sa.Column("next_sweep_at", sa.DateTime(), nullable=True),
        sa.Column("last_listed_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("account"),
    )
    op.execute(
        f"INSERT INTO poll_cursor_0005 (account, last_recvid, {_CURSOR_KEPT}) "
        f"SELECT account, COALESCE(CAST(cursor AS INTEGER), 0), {_CURSOR_KEPT} FROM poll_cursor"
    )
    op.drop_table("poll_cursor")
    op.rename_table("poll_cursor_0005", "poll_cursor")


def _downgrade_problems() -> None:
    with op.batch_alter_table("listing_problems", recreate=_recreate()) as batch:
        batch.drop_constraint("uq_listing_problem_provider_line", type_="unique")
        batch.drop_column("provider")
        batch.create_unique_constraint(
            "uq_listing_problem_account_line", ["account", "fingerprint"]
        )


def downgrade() -> None:
    """Back to FAXAGE only; refused while rows of another provider exist (they would be lost)."""
    bind = op.get_bind()
    for table in ("inbound_faxes", "poll_cursor", "listing_problems"):
        others = bind.execute(
            sa.text(f"SELECT COUNT(*) FROM {table} WHERE provider != 'faxage'")
        ).scalar_one()
        if others:
            raise RuntimeError(
                f"cannot downgrade below 0006: {table} holds {others} rows of providers other "
                "than FAXAGE, which the older schema cannot keep; restore a backup from before "
                "the upgrade instead"
            )
    sqlite = bind.dialect.name == "sqlite"
    _rekey_conditions("faxage:", "")
    _downgrade_problems()
    _downgrade_cursor()
    if sqlite:
        _park_deliveries()
    _downgrade_faxes()
    if sqlite:
        _unpark_deliveries()
