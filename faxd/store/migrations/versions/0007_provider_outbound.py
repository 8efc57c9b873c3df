"""Outbound jobs name their provider and keep the provider's job id as text.

Why: FAXAGE numbers its jobs, but VoIP.ms gives no id and iFax and
faxnummer.de use strings, so ``faxage_jobid`` (an integer, unique alone)
becomes ``remote_jobid`` (a string), unique per ``provider``.  Every existing
row is a FAXAGE job: it gets ``provider = 'faxage'`` and its job id copied as
text, so a job submitted before the upgrade is still followed to the end.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 13:20:00
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNIQUE = "uq_outbound_provider_remote_jobid"


def _recreate() -> Literal["always", "auto"]:
    """SQLite rebuilds the table to change it; other databases alter it in place."""
    return "always" if op.get_bind().dialect.name == "sqlite" else "auto"


def upgrade() -> None:
    with op.batch_alter_table("outbound_jobs") as batch:
        batch.add_column(
            sa.Column("provider", sa.String(length=20), nullable=False, server_default="faxage")
        )
        batch.add_column(sa.Column("remote_jobid", sa.String(length=200), nullable=True))
    op.execute(
        "UPDATE outbound_jobs SET remote_jobid = CAST(faxage_jobid AS VARCHAR(200)) "
        "WHERE faxage_jobid IS NOT NULL"
    )
    # The recreate drops the old column's unnamed unique constraint with it.
    with op.batch_alter_table("outbound_jobs", recreate=_recreate()) as batch:
        batch.drop_column("faxage_jobid")
        batch.create_unique_constraint(UNIQUE, ["provider", "remote_jobid"])


def downgrade() -> None:
    with op.batch_alter_table("outbound_jobs") as batch:
        batch.add_column(sa.Column("faxage_jobid", sa.Integer(), nullable=True))
    # Only FAXAGE's ids are numbers; other providers' jobs lose their id going back.
    op.execute(
        "UPDATE outbound_jobs SET faxage_jobid = CAST(remote_jobid AS INTEGER) "
        "WHERE provider = 'faxage' AND remote_jobid IS NOT NULL"
    )
    with op.batch_alter_table("outbound_jobs", recreate=_recreate()) as batch:
        batch.drop_constraint(UNIQUE, type_="unique")
        batch.drop_column("remote_jobid")
        batch.drop_column("provider")
        batch.create_unique_constraint("uq_outbound_jobs_faxage_jobid", ["faxage_jobid"])
