"""Claims for several instances on one database (issue 14): who holds each fax and job, until when.

``instance`` is the name of the faxd instance that holds a row's claim, and
after it gave the claim back, the one that last worked on the row (``faxd
inbox`` and ``faxd jobs`` show it).  ``lease_until`` is when the claim lapses
if its holder stops renewing it; ``NULL`` when nobody holds it.  ``leases``
holds the named roles only one instance plays at a time (the lister of an
inbound account, the status follow-up of a provider...), and ``instances`` the
servers that share the database, with when each was last seen.

The columns are added in place (no table rebuild), so the rows and the
``deliveries`` that point at ``inbound_faxes`` are untouched on SQLite and
PostgreSQL alike.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 16:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CLAIMED_TABLES = ("inbound_faxes", "outbound_jobs")


def upgrade() -> None:
    for table in CLAIMED_TABLES:
        op.add_column(table, sa.Column("instance", sa.String(64), nullable=True))
        op.add_column(table, sa.Column("lease_until", sa.DateTime(), nullable=True))
    op.create_table(
        "leases",
        sa.Column("role", sa.String(200), primary_key=True),
        sa.Column("holder", sa.String(64), nullable=False),
        sa.Column("lease_until", sa.DateTime(), nullable=False),
        sa.Column("taken_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "instances",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("machine", sa.String(64), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("seen_at", sa.DateTime(), nullable=False),
        sa.Column("stopped_at", sa.DateTime(), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("instances")
    op.drop_table("leases")
    for table in CLAIMED_TABLES:
        op.drop_column(table, "lease_until")
        op.drop_column(table, "instance")
