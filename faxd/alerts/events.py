"""Record admin events beside the state change they report.

An event row is written through the caller's own connection, inside the
transaction that moves a fax to ``failed`` or a job to ``failed``: if that
commits the event exists, if it rolls back (or the process dies) neither does.
That is what lets a crash neither lose a notification that was due nor make
one twice (the mail itself is :mod:`faxd.alerts.mailer`'s business).

Lasting conditions (a refused login, a provider that stopped answering, a full
disk) are raised once and cleared once: :func:`raise_condition` records the
event only when the condition was not already raised, and
:func:`clear_condition` records ``recovered`` only when it was.

Nothing is written when ``[notify]`` is not configured, and an event whose
kind ``[notify] events`` leaves out is not written either.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, delete, insert, select

from faxd.config import NotifySettings
from faxd.store.models import AdminCondition, AdminEvent
from faxd.templates import one_line

#: Kinds that are lasting conditions, cleared by a ``recovered`` event.
CONDITIONS = frozenset({"auth_failed", "provider_down", "disk_low"})


@dataclass(frozen=True)
class Event:
    """What one event says: about what, in one line, why at more length, and what to run."""

    kind: str
    subject: str
    summary: str
    detail: str = ""
    command: str = ""
    attach_path: str | None = None


def record(
    conn: Connection, settings: NotifySettings | None, event: Event, *, now: datetime
) -> bool:
    """Write ``event`` in ``conn``'s transaction; ``False`` if ``[notify]`` does not want it."""
    if settings is None or event.kind not in settings.events:
        return False
    conn.execute(
        insert(AdminEvent).values(
            kind=event.kind,
            subject=one_line(event.subject)[:200],
            summary=one_line(event.summary),
            detail=event.detail.strip(),
            command=event.command,
            attach_path=event.attach_path,
            created_at=now,
        )
    )
    return True


def raise_condition(
    conn: Connection, settings: NotifySettings | None, key: str, event: Event, *, now: datetime
) -> bool:
    """Raise the lasting condition ``key``; its event is written only the first time."""
    if settings is None:
        return False
    if conn.execute(select(AdminCondition.key).where(AdminCondition.key == key)).first():
        return False
    conn.execute(
        insert(AdminCondition).values(
            key=key, kind=event.kind, summary=one_line(event.summary), raised_at=now
        )
    )
    record(conn, settings, event, now=now)
    return True


def clear_condition(
    conn: Connection, settings: NotifySettings | None, key: str, *, now: datetime
) -> bool:
    """Clear the condition ``key`` if it was raised, writing its ``recovered`` event."""
    if settings is None:
        return False
    row = conn.execute(
        select(AdminCondition.kind, AdminCondition.summary, AdminCondition.raised_at).where(
            AdminCondition.key == key
        )
    ).first()
    if row is None:
        return False
    conn.execute(delete(AdminCondition).where(AdminCondition.key == key))
    kind, summary, raised_at = row
    record(
        conn,
        settings,
        Event(
            kind="recovered",
            subject=key.partition(":")[2] or key,
            summary=f"recovered: {summary}",
            detail=f"{kind} was raised at {raised_at:%Y-%m-%d %H:%M} UTC and has cleared.",
        ),
        now=now,
    )
    return True


# -- the events faxd raises, worded once ---------------------------------------------


def condition_scope(provider: str, account: str) -> str:
    """How the conditions of one provider account are keyed (``auth_failed:<scope>``)."""
    return f"{provider}:{account}"


def retry_command(provider: str, remote_id: str) -> str:
    """The ``faxd retry`` line for one fax, quoted for a shell."""
    return f"faxd retry --provider {provider} {shlex.quote(remote_id)}"


def fax_failed(
    provider: str, remote_id: str, *, dnis: str, cid: str, route: str | None, reason: str,
    spool_path: str | None,
) -> Event:  # fmt: skip
    """A fax gave up after ``max_attempts``; it stays on the provider."""
    return Event(
        kind="fax_failed",
        subject=f"{provider} fax {remote_id}",
        summary=(
            f"{provider} fax {remote_id} from {cid or 'unknown caller'} "
            f"to {dnis or 'unknown number'}{f' (route {route})' if route else ''} "
            "could not be delivered and is kept "
            "on the provider"
        ),
        detail=reason,
        command=f"faxd inbox --failed   # to see it\n"
        f"{retry_command(provider, remote_id)}   # to try it again",
        attach_path=spool_path,
    )


def fax_held(
    provider: str, remote_id: str, *, dnis: str, cid: str, spool_path: str | None
) -> Event:
    """No route matches a fax and there is no default route."""
    return Event(
        kind="fax_held",
        subject=f"{provider} fax {remote_id}",
        summary=(
            f"{provider} fax {remote_id} from {cid or 'unknown caller'} "
            f"to {dnis or 'unknown number'} "
            "matches no route and there is no default route; it is held on the provider"
        ),
        detail="Add a route for this number (or a default route) to the config file.",
        command=f"faxd inbox   # to see it\n"
        f"{retry_command(provider, remote_id)}   # after fixing the routes",
        attach_path=spool_path,
    )


def job_failed(job_id: int, *, faxno: str, file: str, reason: str) -> Event:
    """An outbound job failed; its file is in the failed folder."""
    return Event(
        kind="job_failed",
        subject=f"job {job_id}",
        summary=f"job {job_id}: {file} to {faxno} was not sent",
        detail=reason,
        command=(
            f"faxd jobs --state failed   # to see it\n"
            f"faxd retry --job {job_id}   # to send it again"
        ),
    )
