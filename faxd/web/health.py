"""Is faxd doing its job?  One answer for ``GET /healthz`` and ``faxd health``.

Healthy means: the provider's listing was last read to its end within three
poll intervals (the ``provider_down`` rule of :mod:`faxd.alerts.watch`), no
refused login has paused polling, and, when outbound is on, the hot folder is
watched.  The report is the same JSON either way, with a ``reason`` when it is
not healthy, so a script or a load balancer reads one format.

``faxd health`` runs in its own process and reads only the database: it cannot
see the daemon's watcher thread, so it reports ``"watched": null`` and judges
by the listing alone (the daemon's own ``/healthz`` checks the watcher too).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from faxd.alerts.watch import DOWN_AFTER_POLLS
from faxd.config import Config
from faxd.store.db import Database
from faxd.store.states import FAX_ACTIVE
from faxd.tables import cursor_rows, fax_counts, job_counts
from faxd.web.metrics import files_waiting


@dataclass(frozen=True)
class Health:
    """``ok`` and the JSON body (``reason`` set when not ok)."""

    ok: bool
    report: dict[str, Any]


def check_health(
    db: Database, config: Config, *, now: datetime, watched: bool | None = None
) -> Health:
    """Judge faxd's health from the database (and ``watched``: the outbox watcher alive)."""
    reasons: list[str] = []
    providers: dict[str, Any] = {}
    for cursor in cursor_rows(db, config.inbound_providers):
        name = cursor["provider"]
        listed = _last_listed(db, name, cursor["account"])
        providers[name] = {
            "account": cursor["account"],
            "last_successful_poll": _iso(listed),
            "last_poll_at": _iso(cursor["last_poll_at"]),
            "last_outcome": cursor["last_poll_outcome"],
            "paused_reason": cursor["paused_reason"],
        }
        if config.inbound.enabled:
            reasons += _provider_reasons(name, cursor, listed, config, now)
    outbound = config.outbound
    hot_folder: dict[str, Any] = {"enabled": outbound.enabled}
    if outbound.enabled:
        hot_folder.update(
            path=str(outbound.hot_folder),
            watched=watched,
            files_waiting=files_waiting(outbound.hot_folder),
        )
        if watched is None:
            hot_folder["note"] = "watched is unknown here: GET /healthz of the daemon checks it"
        if watched is False:
            reasons.append(f"the hot folder {outbound.hot_folder} is not watched")
    active = {s.value for s in FAX_ACTIVE}
    report: dict[str, Any] = {
        "status": "ok" if not reasons else "failing",
        "checked_at": _iso(now),
        "instance": config.database.instance,  # which server answered (several may share)
        "providers": providers,
        "hot_folder": hot_folder,
        "pending": {
            "faxes": sum(n for state, n in fax_counts(db).items() if state in active),
            "jobs": sum(job_counts(db, active_only=True).values()),
        },
    }
    if reasons:
        report["reason"] = "; ".join(reasons)
    return Health(ok=not reasons, report=report)


def _provider_reasons(
    name: str, cursor: dict[str, Any], listed: datetime | None, config: Config, now: datetime
) -> list[str]:
    """Why one inbound provider makes faxd unhealthy (none: it is fine)."""
    limit = timedelta(seconds=DOWN_AFTER_POLLS * config.inbound.poll_interval)
    if cursor["paused_reason"]:
        return [f"{name}: polling paused: {cursor['paused_reason']}"]
    if listed is None:
        return [f"{name}: no listing has succeeded yet"]
    if now - listed > limit:
        minutes = (now - listed).total_seconds() / 60
        return [
            f"{name}: no successful poll for {minutes:.1f} minutes "
            f"(more than {DOWN_AFTER_POLLS} poll intervals); see the last outcome"
        ]
    return []


def _last_listed(db: Database, provider: str, account: str | None) -> datetime | None:
    from faxd.store.models import PollCursor

    if account is None:
        return None
    with db.session() as session:
        cursor = session.get(PollCursor, (provider, account))
        return cursor.last_listed_at if cursor is not None else None


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
