"""Conditions faxd notices only by looking: a provider that stopped answering.

A refused login or a fax that fails announces itself where it happens; a
provider that simply stops answering does not, so the daemon's notify pass
asks :func:`check_provider` whether a listing has been read to its end within
three poll intervals (DESIGN "Operations": ``provider_down``).  The condition
is cleared, with its ``recovered`` event, by the next listing read whole
(:meth:`faxd.inbound.ledger.Ledger.record_listed`).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from faxd.alerts.events import Event, condition_scope, raise_condition
from faxd.config import NotifySettings
from faxd.store.db import Database
from faxd.store.models import PollCursor

#: Polls without a listing read whole before the provider counts as down.
DOWN_AFTER_POLLS = 3


def check_provider(
    db: Database,
    settings: NotifySettings | None,
    provider: str,
    account: str,
    *,
    poll_interval: float,
    since: datetime,
    now: datetime,
) -> bool:
    """Raise ``provider_down`` for a provider account if it is due; ``True`` if raised now.

    ``since`` is when this daemon started: a provider is not called down for
    polls that nobody made.  While polling is paused for a refused login,
    ``auth_failed`` already says what is wrong and this stays quiet.
    """
    if settings is None:
        return False
    with db.session() as session:
        cursor = session.get(PollCursor, (provider, account))
        last = cursor.last_listed_at if cursor is not None else None
        if cursor is not None and cursor.paused_reason is not None:
            return False
        reference = max(last, since) if last is not None else since
        if now - reference <= timedelta(seconds=DOWN_AFTER_POLLS * poll_interval):
            return False
        minutes = (now - reference).total_seconds() / 60
        event = Event(
            kind="provider_down",
            subject=f"{provider} account {account}",
            summary=(
                f"no poll of {provider} account {account} has succeeded for {minutes:.0f} minutes "
                f"(last success: {f'{last:%Y-%m-%d %H:%M} UTC' if last else 'none since start'})"
            ),
            detail=(cursor.last_poll_outcome or "") if cursor is not None else "",
            command="faxd status   # the last poll's outcome\njournalctl -u faxd   # its log",
        )
        return raise_condition(
            session.connection(), settings, f"provider_down:{condition_scope(provider, account)}",
            event, now=now,
        )
