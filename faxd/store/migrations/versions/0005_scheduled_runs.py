"""The daemon's next poll and sweep (for `faxd status`), and the last listing read whole.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 11:12:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("poll_cursor") as batch:
        batch.add_column(sa.Column("next_poll_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("next_sweep_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("last_listed_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("poll_cursor") as batch:
        batch.drop_column("last_listed_at")
        batch.drop_column("next_sweep_at")
        batch.drop_column("next_poll_at")
