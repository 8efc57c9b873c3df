"""The first schema: inbound faxes, their deliveries, the poll cursor, outbound jobs.

Aware-UTC columns (``UTCDateTime`` in the models) are plain ``DATETIME`` here:
the type decorator only converts values in Python.  Defaults live in the models
(Python side), so no column has a server default.

Revision ID: 0001
Revises:
Create Date: 2026-11-24 23:01:05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "inbound_faxes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account", sa.String(length=200), nullable=False),
        sa.Column("recvid", sa.Integer(), nullable=False),
        sa.Column("recvdate", sa.DateTime(), nullable=False),
        sa.Column("starttime", sa.DateTime(), nullable=True),
        sa.Column("cid", sa.String(length=40), nullable=False),
        sa.Column("dnis", sa.String(length=40), nullable=False),
        sa.Column("server_filename", sa.String(length=255), nullable=True),
        sa.Column("pagecount", sa.Integer(), nullable=True),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("route", sa.String(length=200), nullable=True),
        sa.Column("spool_path", sa.Text(), nullable=True),
        sa.Column("kind", sa.String(length=8), nullable=True),
        sa.Column("size", sa.Integer(), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("listed_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("delivered_at", sa.DateTime(), nullable=True),
        sa.Column("deleted_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("account", "recvid", name="uq_inbound_account_recvid"),
    )
    op.create_index("ix_inbound_faxes_state", "inbound_faxes", ["state"], unique=False)

    op.create_table(
        "outbound_jobs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("faxno", sa.String(length=20), nullable=False),
        sa.Column("recipname", sa.String(length=64), nullable=False),
        sa.Column("source_name", sa.Text(), nullable=False),
        sa.Column("source_relpath", sa.Text(), nullable=False),
        sa.Column("spool_path", sa.Text(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("resends", sa.Integer(), nullable=False),
        sa.Column("faxage_jobid", sa.Integer(), nullable=True),
        sa.Column("submitted_at", sa.DateTime(), nullable=True),
        sa.Column("shortstatus", sa.String(length=20), nullable=True),
        sa.Column("longstatus", sa.Text(), nullable=True),
        sa.Column("commid", sa.String(length=40), nullable=True),
        sa.Column("pages", sa.Integer(), nullable=True),
        sa.Column("xmitpages", sa.Integer(), nullable=True),
        sa.Column("xmittime", sa.String(length=20), nullable=True),
        sa.Column("csid", sa.String(length=64), nullable=True),
        sa.Column("completed_at", sa.DateTime(), nullable=True),
        sa.Column("final_path", sa.Text(), nullable=True),
        sa.Column("cleared", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("faxage_jobid"),
    )
    op.create_index("ix_outbound_jobs_state", "outbound_jobs", ["state"], unique=False)

    op.create_table(
        "poll_cursor",
        sa.Column("account", sa.String(length=200), nullable=False),
        sa.Column("last_recvid", sa.Integer(), nullable=False),
        sa.Column("last_poll_at", sa.DateTime(), nullable=True),
        sa.Column("last_poll_outcome", sa.Text(), nullable=True),
        sa.Column("last_sweep_at", sa.DateTime(), nullable=True),
        sa.Column("paused_reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("account"),
    )
    op.create_table(
        "deliveries",
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
        sa.ForeignKeyConstraint(["fax_id"], ["inbound_faxes.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("fax_id", "route", "action_index", name="uq_delivery_fax_route_action"),
    )
    op.create_index("ix_deliveries_fax_id", "deliveries", ["fax_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_deliveries_fax_id", table_name="deliveries")
    op.drop_table("deliveries")
    op.drop_table("poll_cursor")
    op.drop_index("ix_outbound_jobs_state", table_name="outbound_jobs")
    op.drop_table("outbound_jobs")
    op.drop_index("ix_inbound_faxes_state", table_name="inbound_faxes")
    op.drop_table("inbound_faxes")
