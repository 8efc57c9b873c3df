"""What the operator's commands show: ledger queries and their 80-column rendering.

``faxd inbox``, ``faxd jobs`` and ``faxd status`` read the same database the
daemon writes (safe while it runs: SQLite in WAL mode lets readers in), and the
daemon's ``STATUS=`` line uses the same counts, so systemd and the command line
never disagree.  Every listing is either a table that fits an 80-column
terminal (long columns are shortened, a fax's last error goes on its own line
under it) or, with ``--json``, a list of objects for scripts.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from faxd.config import Config
    from faxd.store.db import Database
    from faxd.store.models import InboundFax, OutboundJob

WIDTH = 80

Row = Mapping[str, Any]


@dataclass(frozen=True)
class Column:
    """One table column: the row key, its heading, and how it may be squeezed."""

    key: str
    header: str
    right: bool = False
    shrink: bool = False  # may be shortened (with "…") to fit the width
    floor: int = 6  # a shrunk column keeps at least this many characters (or its header's)
    #: Shown only when the rows differ in it (the server: only when several share the work).
    when_varied: bool = False


def render_table(
    columns: Sequence[Column],
    rows: Sequence[Row],
    *,
    notes: Sequence[str | None] = (),
    width: int = WIDTH,
    empty: str = "nothing to show",
) -> str:
    """Rows as aligned text no wider than ``width``; ``notes[i]`` goes under row i."""
    if not rows:
        return empty
    columns = [
        col for col in columns if not col.when_varied or len({row.get(col.key) for row in rows}) > 1
    ]
    cells = [[_cell(row.get(col.key)) for col in columns] for row in rows]
    widths = [max([len(col.header)] + [len(r[i]) for r in cells]) for i, col in enumerate(columns)]
    excess = sum(widths) + 2 * (len(columns) - 1) - width
    for i in sorted(range(len(columns)), key=lambda i: -widths[i]):
        if excess <= 0:
            break
        if columns[i].shrink:
            floor = max(len(columns[i].header), columns[i].floor)
            cut = min(excess, widths[i] - floor)
            if cut > 0:
                widths[i] -= cut
                excess -= cut
    lines = [_line([c.header for c in columns], columns, widths)]
    for index, row_cells in enumerate(cells):
        lines.append(_line(row_cells, columns, widths))
        note = notes[index] if index < len(notes) else None
        if note:
            lines.append(_fit("    ! " + " ".join(note.split()), width))
    return "\n".join(lines)


def _line(values: Sequence[str], columns: Sequence[Column], widths: Sequence[int]) -> str:
    parts = []
    for value, col, w in zip(values, columns, widths, strict=True):
        value = _fit(value, w)
        parts.append(value.rjust(w) if col.right else value.ljust(w))
    return "  ".join(parts).rstrip()


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    return " ".join(str(value).split())


def render_json(data: Any) -> str:
    """``data`` as indented JSON; dates as ISO 8601, paths as strings."""
    return json.dumps(data, indent=2, default=_json_default, ensure_ascii=False)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot show {type(value).__name__} as JSON")


def render_mapping(items: Sequence[tuple[str, Any]]) -> str:
    """``key: value`` lines with the keys aligned (``faxd status``)."""
    pad = max((len(k) for k, _v in items), default=0)
    return "\n".join(f"{k.ljust(pad)}  {_fit(_cell(v), WIDTH - pad - 2)}" for k, v in items)


# -- inbound faxes -----------------------------------------------------------------------

INBOX_COLUMNS = (
    Column("provider", "PROVIDER"),
    Column("remote_id", "ID", right=True, shrink=True),
    Column("received", "RECEIVED"),
    Column("cid", "FROM", shrink=True),
    Column("dnis", "TO"),
    Column("pages", "PG", right=True),
    Column("route", "ROUTE", shrink=True),
    Column("state", "STATE"),
    Column("instance", "BY", shrink=True, floor=4, when_varied=True),
)


def inbox_rows(
    db: Database, *, failed_only: bool = False, since: datetime | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """Newest faxes first: what ``faxd inbox`` lists (``since`` is the provider's wall clock)."""
    from sqlalchemy import select

    from faxd.store.models import InboundFax
    from faxd.store.states import FaxState

    query = select(InboundFax).order_by(InboundFax.id.desc()).limit(limit)
    if failed_only:
        query = query.where(InboundFax.state == FaxState.FAILED.value)
    if since is not None:
        query = query.where(InboundFax.recvdate >= since)
    with db.session() as session:
        return [_fax_row(fax) for fax in session.scalars(query)]


def _fax_row(fax: InboundFax) -> dict[str, Any]:
    return {
        "provider": fax.provider,
        "remote_id": fax.remote_id,
        "received": fax.recvdate,
        "cid": fax.cid or "unknown",
        "dnis": fax.dnis,
        "pages": fax.pagecount,
        "route": fax.route,
        "state": fax.state,
        # The server holding the fax now, or the last one that worked on it.
        "instance": fax.instance,
        "attempts": fax.attempts,
        "next_attempt_at": fax.next_attempt_at,
        "last_error": fax.last_error,
        "size": fax.size,
        "sha256": fax.sha256,
    }


def fax_provider(db: Database, remote_id: str) -> str:
    """The provider of the fax ``remote_id`` (``faxd retry`` without ``--provider``).

    Raises :class:`~faxd.errors.FaxdError` when no fax has that id, or when
    faxes of several providers do (then ``--provider`` must say which).
    """
    from sqlalchemy import select

    from faxd.errors import FaxdError
    from faxd.store.models import InboundFax

    with db.session() as session:
        found = sorted(
            set(
                session.scalars(
                    select(InboundFax.provider).where(InboundFax.remote_id == remote_id)
                )
            )
        )
    if not found:
        raise FaxdError(
            f"no inbound fax {remote_id} in the database; `faxd inbox` lists the faxes faxd knows"
        )
    if len(found) > 1:
        raise FaxdError(
            f"faxes of {' and '.join(found)} both have the id {remote_id}; "
            f"say which with --provider {found[0]} (or {', '.join(found[1:])})"
        )
    return found[0]


def problem_rows(db: Database, *, limit: int = 100) -> list[dict[str, Any]]:
    """Listfax and status lines that did not parse, newest first (``faxd inbox --problems``)."""
    from sqlalchemy import select

    from faxd.store.models import ListingProblem

    query = (
        select(ListingProblem)
        .order_by(ListingProblem.last_seen.desc(), ListingProblem.id.desc())
        .limit(limit)
    )
    with db.session() as session:
        return [
            {
                "provider": problem.provider,
                "account": problem.account,
                "line": problem.text,
                "reason": problem.reason,
                "first_seen": problem.first_seen,
                "last_seen": problem.last_seen,
                "count": problem.count,
            }
            for problem in session.scalars(query)
        ]


def render_problems(rows: Sequence[Row]) -> str:
    """One block per unreadable line, its text in full so it can be quoted to the provider."""
    if not rows:
        return "no unreadable listfax or status lines recorded"
    blocks = [
        f"line:       {row['line']}\n"
        f"reason:     {row['reason']}\n"
        f"seen:       {row['count']} time{'' if row['count'] == 1 else 's'}, "
        f"first {_cell(row['first_seen'])} UTC, last {_cell(row['last_seen'])} UTC "
        f"({row['provider']} {row['account']})"
        for row in rows
    ]
    return "\n\n".join(blocks)


# -- outbound jobs -----------------------------------------------------------------------

JOB_COLUMNS = (
    Column("id", "JOB", right=True),
    Column("created", "CREATED"),
    Column("faxno", "TO"),
    Column("file", "FILE", shrink=True),
    Column("state", "STATE"),
    Column("provider", "PROVIDER"),
    Column("remote_jobid", "REMOTE", right=True, shrink=True),
    Column("pages", "PG", right=True),
    Column("instance", "BY", shrink=True, floor=4, when_varied=True),
)


def job_row(job: OutboundJob) -> dict[str, Any]:
    """One outbound job as ``faxd jobs`` shows it."""
    return {
        "id": job.id,
        "created": job.created_at.astimezone() if job.created_at else None,
        "faxno": job.faxno,
        "recipname": job.recipname,
        "file": job.source_relpath or job.source_name,
        "state": job.state,
        "provider": job.provider,
        "remote_jobid": job.remote_jobid,
        "instance": job.instance,
        "pages": job.pages,
        "xmitpages": job.xmitpages,
        "csid": job.csid,
        "attempts": job.attempts,
        "shortstatus": job.shortstatus,
        "longstatus": job.longstatus,
        "last_error": job.last_error,
        "final_path": job.final_path,
    }


# -- counts for `faxd status` and the daemon's STATUS= line --------------------------------


def fax_counts(db: Database) -> dict[str, int]:
    """Number of inbound faxes in each state."""
    from sqlalchemy import func, select

    from faxd.store.models import InboundFax

    query = select(InboundFax.state, func.count()).group_by(InboundFax.state)
    with db.session() as session:
        return {state: int(n) for state, n in session.execute(query)}


def job_counts(db: Database, *, active_only: bool = False) -> dict[str, int]:
    """Number of outbound jobs in each state (only unfinished ones if ``active_only``)."""
    from sqlalchemy import func, select

    from faxd.store.models import OutboundJob
    from faxd.store.states import JOB_ACTIVE

    query = select(OutboundJob.state, func.count()).group_by(OutboundJob.state)
    if active_only:
        query = query.where(OutboundJob.state.in_([s.value for s in JOB_ACTIVE]))
    with db.session() as session:
        return {state: int(n) for state, n in session.execute(query)}


def cursor_rows(db: Database, providers: Sequence[str]) -> list[dict[str, Any]]:
    """Where polling stands for each account of ``providers`` (one empty row before a poll)."""
    from sqlalchemy import select

    from faxd.store.models import PollCursor

    rows: list[dict[str, Any]] = []
    for provider in providers:
        with db.session() as session:
            found = session.scalars(
                select(PollCursor.account).where(PollCursor.provider == provider)
            ).all()
        rows += [cursor_row(db, provider, account) for account in found] or [
            {**cursor_row(db, provider, ""), "account": None}
        ]
    return rows


def cursor_row(db: Database, provider: str, account: str) -> dict[str, Any]:
    """Where polling stands for one provider account (empty values before the first poll)."""
    from faxd.store.models import PollCursor

    with db.session() as session:
        cursor = session.get(PollCursor, (provider, account))
        if cursor is None:
            return {"provider": provider, "account": account, "cursor": None,
                    "last_poll_at": None, "last_poll_outcome": None,
                    "last_sweep_at": None, "paused_reason": None, "next_poll_at": None,
                    "next_sweep_at": None}  # fmt: skip
        return {
            "provider": provider,
            "account": account,
            "cursor": cursor.cursor,
            "last_poll_at": cursor.last_poll_at,
            "last_poll_outcome": cursor.last_poll_outcome,
            "last_sweep_at": cursor.last_sweep_at,
            "paused_reason": cursor.paused_reason,
            "next_poll_at": cursor.next_poll_at,
            "next_sweep_at": cursor.next_sweep_at,
        }


def status_report(db: Database, config: Config) -> dict[str, Any]:
    """What ``faxd status`` shows: last poll, cursor, counts by state, next runs.

    The next runs are the ones the running daemon recorded from its scheduler;
    a time in the past means the daemon is not running (or stuck).
    """
    from faxd.store.claims import Claims, Instance
    from faxd.store.states import JOB_ACTIVE

    cursors = cursor_rows(db, config.inbound_providers)
    jobs = job_counts(db)
    active = {s.value for s in JOB_ACTIVE}
    claims = Claims(db, Instance.of(config.database))

    return {
        "config": str(config.path),
        "database": db.shown_url,
        "account": config.account,
        "instance": config.database.instance,
        "instances": [vars(seen) for seen in claims.instances()],
        "roles": [vars(role) for role in claims.roles()],
        "schema": {"current": db.current_revision(), "newest": db.head_revision()},
        "inbound": {
            "enabled": config.inbound.enabled,
            # The first provider's, as `faxd status` showed before; none when only
            # a provider that cannot receive (faxnummer.de) is configured.
            **(cursors[0] if cursors else {}),
            "providers": cursors,
            "faxes": fax_counts(db),
            "disk_low": disk_pause(config) if config.inbound.enabled else None,
        },
        "outbound": {
            "enabled": config.outbound.enabled,
            "hot_folder": str(config.outbound.hot_folder),
            "jobs": jobs,
            "pending": sum(n for state, n in jobs.items() if state in active),
        },
    }


def disk_pause(config: Config) -> str | None:
    """Why downloads wait for disk space now (measured as the daemon does), or ``None``.

    Measured here rather than read back: free space changes without faxd, and
    the next poll decides by what is free then.  A folder that cannot be
    measured is left out, with a warning in the log, as the daemon does.
    """
    from faxd.inbound.diskguard import DiskGuard, pause_reason

    low = DiskGuard.for_config(config).measure()
    return pause_reason(low) if low else None


def render_status(report: Mapping[str, Any], *, now: datetime | None = None) -> str:
    """``status_report`` as aligned lines a person reads at a glance."""
    now = now or datetime.now(UTC)
    inbound, outbound = report["inbound"], report["outbound"]
    disk_low = inbound.get("disk_low") if inbound["enabled"] else None

    def when(value: datetime | None, *, future: bool = False) -> str:
        if value is None:
            return "not yet" if future else "never"
        local = value.astimezone().strftime("%Y-%m-%d %H:%M:%S")
        if future and value < now - timedelta(seconds=30):
            return f"{local} (overdue: is faxd running?)"
        return local

    def counts(found: Mapping[str, int]) -> str:
        return ", ".join(f"{n} {state}" for state, n in sorted(found.items())) or "none"

    schema = report["schema"]
    items: list[tuple[str, Any]] = [
        ("config", report["config"]),
        ("database", report["database"]),
        ("account", report["account"]),
        (
            "schema",
            schema["current"]
            if schema["current"] == schema["newest"]
            else f"{schema['current']} (newest {schema['newest']}: run faxd db upgrade)",
        ),
    ]
    items.append(("instance", report["instance"]))
    if len(report["instances"]) > 1 or report["roles"]:
        items += _servers(report, when)
    if inbound["enabled"]:
        for cursor in inbound["providers"]:
            items += [
                ("provider", f"{cursor['provider']} {cursor['account'] or ''}".strip()),
                ("last poll", when(cursor["last_poll_at"])),
                ("outcome", cursor["last_poll_outcome"] or "-"),
                ("cursor", cursor["cursor"] or "-"),
                ("next poll", when(cursor["next_poll_at"], future=True)),
                ("last sweep", when(cursor["last_sweep_at"])),
                ("next sweep", when(cursor["next_sweep_at"], future=True)),
            ]
            if cursor["paused_reason"]:
                items.append(("PAUSED", cursor["paused_reason"]))
        items.append(("faxes", counts(inbound["faxes"])))
    else:
        items.append(("inbound", "disabled"))
    if outbound["enabled"]:
        items += [
            ("outbox", outbound["hot_folder"]),
            ("jobs", counts(outbound["jobs"])),
            ("pending", outbound["pending"]),
        ]
    else:
        items.append(("outbound", "disabled"))
    text = render_mapping(items)
    if disk_low:
        # In full, however long the folders' names: it says what to free and where.
        text += "\n" + textwrap.fill(
            disk_low, WIDTH, initial_indent="DISK: ", subsequent_indent="      ",
            break_long_words=False, break_on_hyphens=False,
        )  # fmt: skip
    return text


def _servers(
    report: Mapping[str, Any], when: Callable[[datetime | None], str]
) -> list[tuple[str, Any]]:
    """The servers sharing the database, and which of them plays which role."""
    items: list[tuple[str, Any]] = []
    for seen in report["instances"]:
        if seen["stopped_at"] is not None:
            state = f"stopped {when(seen['stopped_at'])}"
        elif seen["alive"]:
            state = f"alive, pid {seen['pid']}, last seen {when(seen['seen_at'])}"
        else:
            state = f"SILENT since {when(seen['seen_at'])} (its work is taken over)"
        items.append(("server", f"{seen['name']}: {state}"))
    for role in report["roles"]:
        lapsed = "" if role["live"] else " (lapsed)"
        items.append(("role", f"{role['role']}: {role['holder']}{lapsed}"))
    return items


# -- FAXAGE account listings --------------------------------------------------------------

CDR_COLUMNS = (
    Column("calldate", "WHEN"),
    Column("direction", "DIR"),
    Column("src", "FROM", shrink=True),
    Column("dst", "TO", shrink=True),
    Column("duration", "SECONDS", right=True),
    Column("nuid", "ID", right=True),
)

NPANXX_COLUMNS = (
    Column("npanxx", "NPANXX"),
    Column("rcname", "RATE CENTER", shrink=True),
    Column("rcstate", "STATE"),
)
