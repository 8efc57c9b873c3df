"""The ledger's part that every fax goes through: its steps, in prebuilt Core SQL.

Each received fax is read once and then committed three times: downloaded
(with its route and delivery rows), each action's success (the last one also
makes it ``delivered``), and done.  These run for every fax, so they are a
few Core statements built once at import, not ORM loads and flushes: building
a statement and the ORM's unit of work cost several times the SQL itself.
:class:`faxd.inbound.ledger.Ledger` inherits them; the rest of the ledger
(listing, failures, ``faxd retry``) stays with the ORM.

How durable each commit is, is decided here, at each call site:

- an action's success and ``delivered`` are ``synchronous=FULL``: they decide
  that an action is not run again and that ``delfax`` may delete FAXAGE's copy
  (DESIGN invariants 1, 2);
- ``downloaded`` and ``done`` are ``NORMAL`` (:meth:`Database.transaction`):
  a power cut may take them back, which only repeats idempotent work, and the
  next ``FULL`` commit makes them durable with it (SQLite's WAL is synced up
  to and including every earlier commit).

States still change only through :func:`faxd.store.states.advance`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Row, Table, bindparam, func, insert, select, update

from faxd.clock import Clock
from faxd.inbound.rows import DeliveryRow, FaxRow, Plan
from faxd.providers.base import Downloaded
from faxd.store.db import Database
from faxd.store.models import Base, Delivery, InboundFax
from faxd.store.states import DeliveryState, FaxState, advance

FAXES: Table = Base.metadata.tables[InboundFax.__tablename__]
DELIVERIES: Table = Base.metadata.tables[Delivery.__tablename__]

#: Longest error or detail text kept in a row (the full story is in the log).
ERROR_LIMIT = 1000

# The statements, built once.  An UPDATE or INSERT without ``values()`` sets
# the columns named by the parameters it is executed with.
_FAX = select(FAXES).where(
    FAXES.c.provider == bindparam("b_provider"),
    FAXES.c.account == bindparam("b_account"),
    FAXES.c.remote_id == bindparam("b_remote_id"),
)
#: The row a step changes, locked (``FOR UPDATE``; SQLite leaves it out): on
#: PostgreSQL a step whose claim was lost meanwhile waits for the other
#: instance's step instead of writing over it (see :mod:`faxd.inbound.ledger`).
_FAX_LOCKED = _FAX.with_for_update()
_FAX_BY_ID_LOCKED = select(FAXES).where(FAXES.c.id == bindparam("b_fax_id")).with_for_update()
_UPDATE_FAX = update(FAXES).where(FAXES.c.id == bindparam("b_fax_id")).returning(*FAXES.c)
_ROUTE_DELIVERIES = (
    select(DELIVERIES)
    .where(DELIVERIES.c.fax_id == bindparam("b_fax_id"), DELIVERIES.c.route == bindparam("b_route"))
    .order_by(DELIVERIES.c.action_index)
)
_ADD_DELIVERY = insert(DELIVERIES).returning(*DELIVERIES.c)
#: A finished row made pending for another action (``action_type`` and
#: ``target`` come with the parameters), see :func:`_plan`.
_RESET_DELIVERY = (
    update(DELIVERIES)
    .where(DELIVERIES.c.id == bindparam("b_delivery_id"))
    .values(
        state=DeliveryState.PENDING.value,
        attempts=0,
        detail=None,
        last_error=None,
        completed_at=None,
    )
    .returning(*DELIVERIES.c)
)
_DELIVERY_DONE = (
    update(DELIVERIES)
    .where(DELIVERIES.c.id == bindparam("b_delivery_id"))
    .values(attempts=DELIVERIES.c.attempts + 1, state=DeliveryState.DONE.value, last_error=None)
    .returning(DELIVERIES.c.fax_id)
)
_PENDING = (
    select(func.count())
    .select_from(DELIVERIES)
    .where(
        DELIVERIES.c.fax_id == bindparam("b_fax_id"),
        DELIVERIES.c.route == bindparam("b_route"),
        DELIVERIES.c.state != DeliveryState.DONE.value,
    )
)

#: A step succeeded: the failure count restarts for the next step.
_PROGRESS: dict[str, Any] = {"attempts": 0, "next_attempt_at": None, "last_error": None}


class LedgerSteps:
    """The per-fax steps of :class:`faxd.inbound.ledger.Ledger` (a base class of it)."""

    db: Database
    provider: str
    account: str
    clock: Clock

    def _key(self, remote_id: str) -> dict[str, str]:
        return {"b_provider": self.provider, "b_account": self.account, "b_remote_id": remote_id}

    def _fax_row(self, conn: Connection, remote_id: str) -> Row[Any]:
        """The fax's row, locked: every caller changes it in this transaction."""
        row = conn.execute(_FAX_LOCKED, self._key(remote_id)).one_or_none()
        if row is None:
            raise LookupError(
                f"no inbound fax {remote_id} of {self.provider} account {self.account} "
                "in the database"
            )
        return row

    def get(self, remote_id: str) -> FaxRow | None:
        """The fax ``remote_id``, or ``None`` if the database does not know it."""
        with self.db.transaction() as conn:  # reads only: its commit writes nothing
            row = conn.execute(_FAX, self._key(remote_id)).one_or_none()
            return None if row is None else FaxRow.from_mapping(row._mapping)

    def mark_downloaded(
        self,
        remote_id: str,
        path: Path,
        result: Downloaded,
        *,
        route: str | None = None,
        actions: Sequence[tuple[str, str]] = (),
    ) -> tuple[FaxRow, Plan | None]:
        """listed -> downloaded: the verified spool file and its checksum.

        With ``route``, the route and its delivery rows are recorded in the
        same commit (as :meth:`plan_deliveries` would), so a fax routed right
        after its download costs one transaction, not two; the plan is
        returned with the row.
        """
        # NORMAL: if a power cut takes this commit back, the fax is `listed`
        # again and is downloaded once more over its own spool file.  Every
        # action's success is a FULL commit after this one, which makes this
        # one durable too, so no action is recorded without its plan.
        with self.db.transaction(durable=False) as conn:
            fax = self._fax_row(conn, remote_id)
            values: dict[str, Any] = {
                "state": _advanced(fax.state, FaxState.DOWNLOADED),
                "spool_path": str(path),
                "size": result.size,
                "sha256": result.sha256,
                "kind": result.kind,
                **_PROGRESS,
            }
            if result.server_filename:
                values["server_filename"] = result.server_filename[:255]
            plan = None
            if route is not None:
                plan = _plan(conn, fax, route, actions)
                values["route"] = plan.route
            return _update_fax(conn, fax.id, values), plan

    def plan_deliveries(
        self, remote_id: str, route: str, actions: Sequence[tuple[str, str]]
    ) -> Plan:
        """Record the route and one pending row per action, before any action runs.

        ``actions`` is ``(type, target)`` per action of ``route``.  If the fax
        already has a route recorded (an earlier attempt, maybe under an older
        config), nothing is added: that route and its rows are returned, so
        work already done is never redone elsewhere.
        """
        with self.db.transaction() as conn:  # FULL, the default: not a per-fax hot path
            fax = self._fax_row(conn, remote_id)
            plan = _plan(conn, fax, route, actions)
            if fax.route is None:
                _update_fax(conn, fax.id, {"route": plan.route})
            return plan

    def delivery_done(self, delivery_id: int, detail: str) -> FaxRow:
        """One action succeeded: recorded on its own commit (DESIGN invariant 2).

        If it was the last pending action of the fax's route, the fax becomes
        ``delivered`` in the same commit (see :meth:`mark_delivered`): either
        both are recorded or neither, so a crash repeats at most that action.
        Returns the fax's row.
        """
        # FULL: once this returns, the action is never run again (a print or
        # an email must not repeat) and, after the last one, delfax may delete
        # the only other copy of the fax (DESIGN invariants 1, 2).
        with self.db.transaction(durable=True) as conn:
            fax_id = conn.execute(
                _DELIVERY_DONE,
                {
                    "b_delivery_id": delivery_id,
                    "detail": detail[:ERROR_LIMIT],
                    "completed_at": self.clock(),
                },
            ).scalar_one()
            fax = conn.execute(_FAX_BY_ID_LOCKED, {"b_fax_id": fax_id}).one()
            if FaxState(fax.state) is FaxState.DOWNLOADED and not _pending(conn, fax):
                return _update_fax(conn, fax.id, self._delivered(fax.state))
            return FaxRow.from_mapping(fax._mapping)

    def mark_delivered(self, remote_id: str) -> FaxRow:
        """downloaded -> delivered: every action succeeded; delfax may run now.

        A fax already ``delivered`` (its last action's commit did it) is
        returned as it is.
        """
        # FULL: this commit is what lets delfax run (DESIGN invariant 1).
        with self.db.transaction(durable=True) as conn:
            fax = self._fax_row(conn, remote_id)
            if FaxState(fax.state) is FaxState.DELIVERED:
                return FaxRow.from_mapping(fax._mapping)
            if fax.route is None or _pending(conn, fax):
                raise RuntimeError(f"fax {remote_id}: not every delivery is done")
            return _update_fax(conn, fax.id, self._delivered(fax.state))

    def _delivered(self, state: str) -> dict[str, Any]:
        return {
            "state": _advanced(state, FaxState.DELIVERED),
            "delivered_at": self.clock(),
            **_PROGRESS,
        }

    def mark_done(self, remote_id: str, *, deleted: bool) -> FaxRow:
        """delivered -> done, released on the provider (``deleted``) or kept there on purpose."""
        # NORMAL: if a power cut takes this commit back, the fax is `delivered`
        # again (that was a FULL commit) and the next pass runs delfax once
        # more; FAXAGE answers that it is gone (ERR14), which counts as
        # deleted.  Nothing is delivered twice.
        with self.db.transaction(durable=False) as conn:
            fax = self._fax_row(conn, remote_id)
            values: dict[str, Any] = {
                "state": _advanced(fax.state, FaxState.DONE),
                "spool_path": None,
                "lease_until": None,  # its claim ends with it (faxd.store.claims)
                **_PROGRESS,
            }
            if deleted:
                values["deleted_at"] = self.clock()
            return _update_fax(conn, fax.id, values)


def _plan(conn: Connection, fax: Row[Any], route: str, actions: Sequence[tuple[str, str]]) -> Plan:
    """The plan recorded for the fax, or a new one (the caller records ``route`` on the fax).

    A fax rerouted by ``faxd retry`` may come back to a route of the same
    name whose earlier rows it kept as history (the finished ones): a row
    that did the very same action (type and target) at the same index stays
    done, so it is not repeated; any other is reused for the new action,
    pending again.  Finished rows past the new route's last action stay as
    history (done rows are never run, nor waited for).
    """
    if fax.route is not None:
        rows = conn.execute(_ROUTE_DELIVERIES, {"b_fax_id": fax.id, "b_route": fax.route})
        return Plan(fax.route, tuple(DeliveryRow.from_mapping(r._mapping) for r in rows))
    earlier = {
        r.action_index: r
        for r in conn.execute(_ROUTE_DELIVERIES, {"b_fax_id": fax.id, "b_route": route})
    }
    planned: list[Row[Any]] = []
    for index, (action_type, target) in enumerate(actions):
        old = earlier.pop(index, None)
        if old is None:
            planned.append(
                conn.execute(
                    _ADD_DELIVERY,
                    {
                        "fax_id": fax.id,
                        "route": route,
                        "action_index": index,
                        "action_type": action_type,
                        "target": target,
                        "state": DeliveryState.PENDING.value,
                        "attempts": 0,
                    },
                ).one()
            )
        elif (
            old.state == DeliveryState.DONE.value
            and old.action_type == action_type
            and old.target == target
        ):
            planned.append(old)
        else:
            planned.append(
                conn.execute(
                    _RESET_DELIVERY,
                    {"b_delivery_id": old.id, "action_type": action_type, "target": target},
                ).one()
            )
    return Plan(route, tuple(DeliveryRow.from_mapping(r._mapping) for r in planned))


@dataclass
class _State:
    """A state to check a transition on (:func:`advance` takes an object)."""

    state: str


def _advanced(state: str, new: FaxState) -> str:
    """``new``, once :func:`advance` has allowed the change from ``state`` (else it raises)."""
    holder = _State(state)
    advance(holder, new)
    return holder.state


def _update_fax(conn: Connection, fax_id: int, values: dict[str, Any]) -> FaxRow:
    """Write ``values`` to one fax row and return the row as it now is."""
    row = conn.execute(_UPDATE_FAX, {"b_fax_id": fax_id, **values}).one()
    return FaxRow.from_mapping(row._mapping)


def _pending(conn: Connection, fax: Row[Any]) -> int:
    """How many deliveries of the fax's recorded route have not succeeded yet."""
    count = conn.execute(_PENDING, {"b_fax_id": fax.id, "b_route": fax.route}).scalar_one()
    return int(count)
