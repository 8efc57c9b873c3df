"""Claims in the database: which faxd instance works on which fax, job and role, until when.

Several ``faxd run`` on different machines may share one PostgreSQL database
(DESIGN "Several instances").  Nothing that lives on one machine (a thread
lock, an flock) can keep them off each other's work, so every unit of work is
claimed here first:

- a **row claim** on an ``inbound_faxes`` or ``outbound_jobs`` row: the row's
  ``instance`` names the holder and ``lease_until`` says until when.  Taking
  one is a single compare-and-set ``UPDATE`` ("free, lapsed, or already
  mine"), so it is race-free on PostgreSQL READ COMMITTED and on SQLite alike;
  whoever's ``UPDATE`` matched the row has it.  A holder renews it before each
  side effect (:meth:`RowClaims.keep`) and stops if it was lost.  Given back,
  ``lease_until`` is cleared and ``instance`` stays, saying which server last
  worked on the row (``faxd inbox``, ``faxd jobs``);
- a **role** (a row of ``leases``): what one instance does for all, e.g.
  listing an inbound account (``list:<provider>:<account>``, which also moves
  its cursor and sweeps it) or following a provider's job statuses
  (``follow:<provider>``).  Whoever holds it renews it; when it lapses the
  next instance to ask takes it over.

An instance that dies (SIGKILL, a cut network) renews nothing, and after
``lease_seconds`` its claims and roles lapse and the others finish its work.
A restarted instance under the same name takes its own claims back at once.
:meth:`Claims.register` makes sure no two live servers share a name, because
that one rule would let both work on one fax.

Leases are read against the injected clock of each instance: the servers must
keep time (NTP); a skew only makes a lease lapse that much sooner or later.
SQLite (one machine) runs the same code, with one instance holding everything.
"""

from __future__ import annotations

import os
import socket
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import structlog
from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Connection,
    Table,
    bindparam,
    delete,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from faxd.clock import Clock, system_clock
from faxd.config.database import default_instance
from faxd.config.model import DatabaseSettings
from faxd.errors import ConfigError
from faxd.store.db import Database
from faxd.store.models import Base, InboundFax, InstanceRow, Lease, OutboundJob

log = structlog.get_logger(__name__)

FAXES: Table = Base.metadata.tables[InboundFax.__tablename__]
JOBS: Table = Base.metadata.tables[OutboundJob.__tablename__]
LEASES: Table = Base.metadata.tables[Lease.__tablename__]
INSTANCES: Table = Base.metadata.tables[InstanceRow.__tablename__]

#: The default ``[database] lease_seconds``.
LEASE_SECONDS = DatabaseSettings.lease_seconds


#: The role of sending the admins' mails (``[notify]``): one server mails for all.
NOTIFY_ROLE = "notify"
#: The role of ``[retention]``'s daily clean-up.
RETENTION_ROLE = "retention"


def list_role(provider: str, account: str) -> str:
    """The role of listing (and sweeping, and moving the cursor of) one inbound account."""
    return f"list:{provider}:{account}"


def follow_role(provider: str) -> str:
    """The role of following the status of a provider's sent jobs."""
    return f"follow:{provider}"


@dataclass(frozen=True)
class Instance:
    """This faxd: its name among the servers sharing the database, and its lease."""

    name: str
    lease: timedelta

    @classmethod
    def of(cls, settings: DatabaseSettings) -> Instance:
        return cls(settings.instance, timedelta(seconds=settings.lease_seconds))


@dataclass(frozen=True)
class SeenInstance:
    """An instance as ``faxd status`` shows it."""

    name: str
    machine: str
    pid: int
    started_at: datetime
    seen_at: datetime
    stopped_at: datetime | None
    alive: bool


@dataclass(frozen=True)
class HeldRole:
    """A role, who plays it and until when."""

    role: str
    holder: str
    lease_until: datetime
    live: bool


class RowClaims:
    """Claims on the rows of one table (faxes or jobs), by primary key."""

    def __init__(self, db: Database, table: Table, instance: Instance, clock: Clock) -> None:
        self.db = db
        self.table = table
        self.instance = instance
        self.clock = clock
        c = table.c
        # Built once: these run several times for every fax and job.
        mine = self._held_by_me()
        self._take = (
            update(table)
            .where(c.id == bindparam("b_id"), self.available(bindparam("b_now")))
            .values(instance=instance.name, lease_until=bindparam("b_until"))
        )
        self._renew = (
            update(table)
            .where(c.id == bindparam("b_id"), mine)
            .values(lease_until=bindparam("b_until"))
        )
        self._give_back = (
            update(table).where(c.id == bindparam("b_id"), mine).values(lease_until=None)
        )
        self._mine_until = select(c.lease_until).where(c.id == bindparam("b_id"), mine)

    def available(self, now: datetime | BindParameter[datetime]) -> ColumnElement[bool]:
        """A WHERE clause: rows no live claim of another instance holds."""
        c = self.table.c
        return or_(c.lease_until.is_(None), c.lease_until < now, self._held_by_me())

    def take(self, row_id: int) -> bool:
        """Claim row ``row_id``; ``True`` if this instance holds it now."""
        now = self.clock()
        with self.db.transaction(durable=False) as connection:
            result = connection.execute(
                self._take,
                {"b_id": row_id, "b_now": now, "b_until": now + self.instance.lease},
            )
            return result.rowcount == 1

    def keep(self, row_id: int) -> bool:
        """Make sure the claim holds before a side effect; ``False``: another instance has it.

        A read answers while more than half the lease is left (the renewal
        thread keeps it so): on SQLite a read does not queue behind the
        writers, and this runs before every step of every fax.  Closer to its
        end, the lease is renewed here.
        """
        now = self.clock()
        with self.db.reading() as connection:
            found = connection.execute(self._mine_until, {"b_id": row_id}).first()
        if found is None:
            return False
        if found[0] is not None and found[0] - now > self.instance.lease / 2:
            return True
        with self.db.transaction(durable=False) as connection:
            result = connection.execute(
                self._renew,
                {"b_id": row_id, "b_until": now + self.instance.lease},
            )
            return result.rowcount == 1

    def give_back(self, row_id: int) -> None:
        """End the claim; the row keeps this instance's name as the last one on it."""
        with self.db.transaction(durable=False) as connection:
            connection.execute(self._give_back, {"b_id": row_id})

    def holder(self, row_id: int) -> str | None:
        """The instance holding a live claim on the row, or ``None``."""
        now = self.clock()
        with self.db.reading() as connection:
            return connection.execute(
                select(self.table.c.instance).where(
                    self.table.c.id == row_id, self.table.c.lease_until >= now
                )
            ).scalar_one_or_none()

    def _held_by_me(self) -> ColumnElement[bool]:
        """Rows whose claim is (or was last) this instance's."""
        return self.table.c.instance == self.instance.name

    def _live_and_mine(self) -> ColumnElement[bool]:
        return self._held_by_me() & self.table.c.lease_until.is_not(None)

    def _renew_all(self, connection: Connection, until: datetime) -> None:
        connection.execute(
            update(self.table).where(self._live_and_mine()).values(lease_until=until)
        )

    def _give_back_all(self, connection: Connection) -> None:
        connection.execute(update(self.table).where(self._live_and_mine()).values(lease_until=None))


class Claims:
    """This instance's claims: on faxes, on jobs, and on roles."""

    def __init__(self, db: Database, instance: Instance, *, clock: Clock = system_clock) -> None:
        self.db = db
        self.instance = instance
        self.clock = clock
        self.faxes = RowClaims(db, FAXES, instance, clock)
        self.jobs = RowClaims(db, JOBS, instance, clock)

    @classmethod
    def solo(cls, db: Database, *, clock: Clock = system_clock) -> Claims:
        """Claims for one faxd alone on its database (tests, SQLite): hostname, default lease."""
        return cls(db, Instance(default_instance(), timedelta(seconds=LEASE_SECONDS)), clock=clock)

    @property
    def name(self) -> str:
        return self.instance.name

    # ------------------------------------------------------------ roles

    def hold(self, role: str) -> bool:
        """Take or renew ``role``; ``True`` if this instance plays it until now + the lease."""
        now = self.clock()
        until = now + self.instance.lease
        with self.db.transaction(durable=False) as connection:
            renewed = connection.execute(
                update(LEASES)
                .where(LEASES.c.role == role, LEASES.c.holder == self.name)
                .values(lease_until=until)
            )
            if renewed.rowcount == 1:
                return True
            before = connection.execute(
                select(LEASES.c.holder).where(LEASES.c.role == role)
            ).scalar_one_or_none()
            if before is not None:
                taken = connection.execute(
                    update(LEASES)
                    .where(LEASES.c.role == role, LEASES.c.lease_until < now)
                    .values(holder=self.name, lease_until=until, taken_at=now)
                )
                if taken.rowcount != 1:
                    return False
                log.info("claims.role_taken_over", role=role, previous=before)
                return True
        try:
            with self.db.transaction(durable=False) as connection:
                connection.execute(
                    insert(LEASES).values(
                        role=role, holder=self.name, lease_until=until, taken_at=now
                    )
                )
        except IntegrityError:
            return False  # another instance created it first
        log.info("claims.role_taken", role=role)
        return True

    def let_go(self, role: str) -> None:
        """Stop playing ``role`` now, so another instance may take it without waiting."""
        with self.db.transaction(durable=False) as connection:
            connection.execute(
                delete(LEASES).where(LEASES.c.role == role, LEASES.c.holder == self.name)
            )

    def holder(self, role: str) -> str | None:
        """The instance playing ``role`` now, or ``None`` if nobody (or its lease lapsed)."""
        now = self.clock()
        with self.db.transaction(durable=False) as connection:
            return connection.execute(
                select(LEASES.c.holder).where(LEASES.c.role == role, LEASES.c.lease_until >= now)
            ).scalar_one_or_none()

    def roles(self) -> list[HeldRole]:
        """Every role, who plays it and whether that lease is still live."""
        now = self.clock()
        with self.db.session(durable=False) as session:
            return [
                HeldRole(r.role, r.holder, r.lease_until, r.lease_until >= now)
                for r in session.scalars(select(Lease).order_by(Lease.role))
            ]

    # ------------------------------------------------------------ the instance

    def register(self) -> None:
        """Record this instance as started; refuse a name a live other server already uses."""
        for _ in range(2):
            try:
                self._register()
                self._forget_previous_life()
                return
            except IntegrityError:
                continue  # two servers registered the name at once: look again
        raise ConfigError(
            f"another faxd registered instance name {self.name!r} at the same moment; "
            "give each server its own [database] instance"
        )

    def _register(self) -> None:
        now = self.clock()
        machine = machine_id()
        with self.db.session() as session:
            row = session.get(InstanceRow, self.name, with_for_update=True)
            if row is None:
                session.add(
                    InstanceRow(
                        name=self.name, machine=machine, pid=os.getpid(), started_at=now,
                        seen_at=now, stopped_at=None,
                    )
                )  # fmt: skip
                return
            live = row.stopped_at is None and row.seen_at + self.instance.lease > now
            if live and row.machine != machine:
                raise ConfigError(
                    f"instance name {self.name!r} is in use by a faxd on another machine "
                    f"(last seen {row.seen_at:%Y-%m-%d %H:%M:%S} UTC); give each server its own "
                    "[database] instance, or wait lease_seconds if that server is gone"
                )
            if live and row.pid != os.getpid() and _faxd_runs(row.pid):
                raise ConfigError(
                    f"instance name {self.name!r} is in use by faxd process {row.pid} on this "
                    "machine; give each faxd its own [database] instance"
                )
            row.machine, row.pid = machine, os.getpid()
            row.started_at = row.seen_at = now
            row.stopped_at = None
        log.info("claims.registered", instance=self.name, lease_seconds=self.lease_seconds)

    def _forget_previous_life(self) -> None:
        """Give back the row claims an earlier process of this name left when it was killed.

        This process holds none yet, and the heartbeat renews every claim under
        this name: it would keep them for ever, e.g. a submitted job that only
        the other server (playing ``follow:<provider>``) would follow.  Safe:
        :meth:`_register` has refused a faxd of this name that still runs.
        """
        with self.db.transaction(durable=False) as connection:
            self.faxes._give_back_all(connection)
            self.jobs._give_back_all(connection)

    @property
    def lease_seconds(self) -> float:
        return self.instance.lease.total_seconds()

    def heartbeat(self) -> None:
        """Say this instance is alive and renew every claim and role it holds."""
        now = self.clock()
        until = now + self.instance.lease
        with self.db.transaction(durable=False) as connection:
            connection.execute(
                update(INSTANCES).where(INSTANCES.c.name == self.name).values(seen_at=now)
            )
            self.faxes._renew_all(connection, until)
            self.jobs._renew_all(connection, until)
            connection.execute(
                update(LEASES).where(LEASES.c.holder == self.name).values(lease_until=until)
            )

    def retire(self) -> None:
        """A clean stop: give back every claim and role, so the others need not wait."""
        now = self.clock()
        with self.db.transaction(durable=False) as connection:
            self.faxes._give_back_all(connection)
            self.jobs._give_back_all(connection)
            connection.execute(delete(LEASES).where(LEASES.c.holder == self.name))
            connection.execute(
                update(INSTANCES).where(INSTANCES.c.name == self.name).values(stopped_at=now)
            )

    def instances(self) -> list[SeenInstance]:
        """Every instance that ever registered, and whether it is alive now."""
        now = self.clock()
        with self.db.session(durable=False) as session:
            return [
                SeenInstance(
                    r.name,
                    r.machine,
                    r.pid,
                    r.started_at,
                    r.seen_at,
                    r.stopped_at,
                    alive=r.stopped_at is None and r.seen_at + self.instance.lease >= now,
                )
                for r in session.scalars(select(InstanceRow).order_by(InstanceRow.name))
            ]

    def dead_instances(self) -> list[str]:
        """Other instances not seen for a lease (or stopped): their leftovers are free to take."""
        return [i.name for i in self.instances() if not i.alive and i.name != self.name]


class Renewal:
    """A thread that calls :meth:`Claims.heartbeat` every third of the lease while work runs.

    A pass may take longer than the lease (a 500 MB download, a backlog), so
    the claims are renewed beside the work, not by it.  A failed renewal (the
    database unreachable) is logged and tried again; if it keeps failing the
    claims lapse and other instances take the work over, which is the point.
    """

    def __init__(self, claims: Claims) -> None:
        self.claims = claims
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="faxd-claims", daemon=True)

    def start(self) -> Renewal:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        every = max(1.0, self.claims.lease_seconds / 3)
        while not self._stop.wait(every):
            try:
                self.claims.heartbeat()
            except Exception as exc:  # the next beat tries again
                log.warning(
                    "claims.renewal_failed",
                    instance=self.claims.name,
                    error=str(exc).splitlines()[0][:300],
                    fix="check that the database answers; claims lapse after lease_seconds",
                )


def machine_id() -> str:
    """This machine's id (systemd's ``/etc/machine-id``), else its hostname."""
    try:
        found = Path("/etc/machine-id").read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        found = ""
    return found[:64] or socket.gethostname()[:64]


def _faxd_runs(pid: int) -> bool:
    """Whether process ``pid`` on this machine is alive and is a faxd."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"faxd" in cmdline
