"""The clock faxd's policies read, so tests can hand them another.

Backoff, the hot-folder settle check and time-of-day routing take a ``Clock``
(a callable returning an aware ``datetime`` in UTC) instead of calling
``datetime.now()`` themselves.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    """Now, as an aware UTC datetime."""
    return datetime.now(UTC)
