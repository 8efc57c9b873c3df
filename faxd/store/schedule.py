"""The daemon's next scheduled runs, written where `faxd status` can read them.

Only the running daemon knows when APScheduler will next poll (a reload, a
wake-up or a missed run all move it), so it records the time here whenever
the scheduler sets it; `faxd status` shows that value instead of guessing
"last poll plus the interval".  A recorded time that has passed long ago means
the daemon is not running.
"""

from __future__ import annotations

from datetime import datetime

from faxd.store.db import Database
from faxd.store.models import PollCursor

#: The scheduler job ids whose next run is recorded, and the column each goes to.
RECORDED_JOBS = {"inbound-poll": "next_poll_at", "inbound-sweep": "next_sweep_at"}


def record_next_run(
    db: Database, provider: str, account: str, job_id: str, when: datetime | None
) -> None:
    """Store the next run of ``job_id`` (one of :data:`RECORDED_JOBS`) for a provider account."""
    column = RECORDED_JOBS[job_id]
    # Losing this on power loss only shows an older time until the next run.
    with db.session(durable=False) as session:
        cursor = session.get(PollCursor, (provider, account))
        if cursor is None:
            cursor = PollCursor(provider=provider, account=account, cursor=None)
            session.add(cursor)
        setattr(cursor, column, when)
