"""The inbound side's database queries: the ledger that makes polling crash-safe.

Every step of a fax is written here before or right after it happens
(STYLE.md §6): the listed rows and the cursor in one transaction (DESIGN
invariant 3), the spool file once verified, the delivery rows before any
action runs, each action's success on its own commit, ``delivered`` before
``delfax`` and ``done`` after it (invariants 1, 2).  Each method is one
committed transaction, so whatever the daemon was doing when it died, the
database says what is left to do.

Methods hand back frozen snapshots (:mod:`faxd.inbound.rows`), never live
ORM objects, so faxes processed on different threads share nothing but the
database.  Each method is one short ``BEGIN IMMEDIATE`` transaction with no
network I/O inside it, so the pipeline's worker threads queue for the write
lock for milliseconds, never for a download.  States change only through
:func:`faxd.store.states.advance`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session, joinedload

from faxd.clock import Clock
from faxd.faxage.records import DownloadResult, ListfaxRecord
from faxd.inbound.backoff import RandomSource, RetryPolicy
from faxd.inbound.rows import CursorRow, DeliveryRow, FaxRow, Plan
from faxd.store.db import Database
from faxd.store.models import Delivery, InboundFax, PollCursor
from faxd.store.states import FAX_ACTIVE, DeliveryState, FaxState, advance

__all__ = ["CursorRow", "DeliveryRow", "FaxRow", "Ledger", "Plan"]

#: One fax by its recvid: built once, because every step of every fax runs it.
_FAX_BY_RECVID = select(InboundFax).where(
    InboundFax.account == bindparam("account"), InboundFax.recvid == bindparam("recvid")
)

#: The fax owning one delivery, with all its deliveries, in one query (once per action).
_FAX_OF_DELIVERY = (
    select(InboundFax)
    .where(
        InboundFax.id
        == select(Delivery.fax_id).where(Delivery.id == bindparam("delivery_id")).scalar_subquery()
    )
    .options(joinedload(InboundFax.deliveries))
)

#: Longest error text kept in a row (the full story is in the log).
_ERROR_LIMIT = 1000


class Ledger:
    """The inbound rows of one FAXAGE account (``username@company``)."""

    def __init__(self, db: Database, account: str, *, clock: Clock) -> None:
        self.db = db
        self.account = account
        self.clock = clock

    # ------------------------------------------------------------ cursor

    def _cursor(self, session: Session) -> PollCursor:
        cursor = session.get(PollCursor, self.account)
        if cursor is None:
            cursor = PollCursor(account=self.account, last_recvid=0)
            session.add(cursor)
            session.flush()
        return cursor

    def cursor(self) -> CursorRow:
        """The poll cursor (created at 0 on first use)."""
        with self.db.session() as session:
            c = self._cursor(session)
            return CursorRow(
                c.last_recvid,
                c.last_poll_at,
                c.last_poll_outcome,
                c.last_sweep_at,
                c.paused_reason,
            )

    def record_poll(self, outcome: str) -> None:
        """Note when the last poll ran and how it went (for status lines)."""
        with self.db.session() as session:
            c = self._cursor(session)
            c.last_poll_at = self.clock()
            c.last_poll_outcome = outcome[:_ERROR_LIMIT]

    def set_paused(self, reason: str | None) -> None:
        """Pause polling with the reason shown to the operator (``None``: resume)."""
        with self.db.session() as session:
            self._cursor(session).paused_reason = reason

    def record_sweep(self) -> None:
        """Note that a full listing (the sweep) has just been read."""
        with self.db.session() as session:
            self._cursor(session).last_sweep_at = self.clock()

    def record_listing(self, records: Sequence[ListfaxRecord]) -> list[int]:
        """Insert the faxes not known yet (state ``listed``) and move the cursor.

        One transaction: the cursor can only ever point past rows that are
        committed with it (DESIGN invariant 3).  It only moves forward.
        Returns the recvids that were new, oldest first.
        """
        with self.db.session() as session:
            cursor = self._cursor(session)
            wanted = {r.recvid for r in records}
            known = set(self._recvids_in(session, wanted))
            new: list[int] = []
            for record in sorted(records, key=lambda r: r.recvid):
                if record.recvid in known:
                    continue
                known.add(record.recvid)
                new.append(record.recvid)
                session.add(
                    InboundFax(
                        account=self.account,
                        recvid=record.recvid,
                        recvdate=record.recvdate,
                        starttime=record.starttime,
                        cid=record.cid,
                        dnis=record.dnis,
                        server_filename=record.filename,
                        pagecount=record.pagecount,
                        state=FaxState.LISTED.value,
                        attempts=0,
                        listed_at=self.clock(),
                    )
                )
            if wanted:
                session.flush()
                cursor.last_recvid = max(cursor.last_recvid, max(wanted))
            return new

    # ------------------------------------------------------------ reading

    def _recvids_in(self, session: Session, recvids: set[int]) -> list[int]:
        if not recvids:
            return []
        query = select(InboundFax.recvid).where(
            InboundFax.account == self.account, InboundFax.recvid.in_(recvids)
        )
        return list(session.scalars(query))

    def _fax(self, session: Session, recvid: int) -> InboundFax:
        fax = session.scalars(
            _FAX_BY_RECVID, {"account": self.account, "recvid": recvid}
        ).one_or_none()
        if fax is None:
            raise LookupError(f"no inbound fax {recvid} for {self.account} in the database")
        return fax

    def get(self, recvid: int) -> FaxRow | None:
        """The fax ``recvid``, or ``None`` if the database does not know it."""
        with self.db.session() as session:
            try:
                return FaxRow.of(self._fax(session, recvid))
            except LookupError:
                return None

    def known(self, recvids: Iterable[int]) -> dict[int, FaxRow]:
        """The rows of those of ``recvids`` the database knows."""
        wanted = set(recvids)
        if not wanted:
            return {}
        with self.db.session() as session:
            rows = session.scalars(
                select(InboundFax).where(
                    InboundFax.account == self.account, InboundFax.recvid.in_(wanted)
                )
            )
            return {row.recvid: FaxRow.of(row) for row in rows}

    def due(self, now: datetime) -> list[int]:
        """Faxes that need work now (active and not backing off), oldest first."""
        with self.db.session() as session:
            rows = session.scalars(
                select(InboundFax.recvid)
                .where(
                    InboundFax.account == self.account,
                    InboundFax.state.in_([s.value for s in FAX_ACTIVE]),
                    (InboundFax.next_attempt_at.is_(None)) | (InboundFax.next_attempt_at <= now),
                )
                .order_by(InboundFax.recvid)
            )
            return list(rows)

    def unfinished(self) -> set[int]:
        """Every fax not ``done`` (their spool files must be kept)."""
        with self.db.session() as session:
            rows = session.scalars(
                select(InboundFax.recvid).where(
                    InboundFax.account == self.account, InboundFax.state != FaxState.DONE.value
                )
            )
            return set(rows)

    def deliveries(self, recvid: int) -> list[DeliveryRow]:
        """The delivery rows of the route recorded for the fax (none before routing)."""
        with self.db.session() as session:
            fax = self._fax(session, recvid)
            return [DeliveryRow.of(d) for d in fax.deliveries if d.route == fax.route]

    # ------------------------------------------------------------ steps

    def mark_downloaded(
        self,
        recvid: int,
        path: Path,
        result: DownloadResult,
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
        with self.db.session() as session:
            fax = self._fax(session, recvid)
            advance(fax, FaxState.DOWNLOADED)
            fax.spool_path = str(path)
            fax.size = result.size
            fax.sha256 = result.sha256
            fax.kind = result.kind
            if result.server_filename:
                fax.server_filename = result.server_filename[:255]
            _progress(fax)
            plan = None if route is None else self._plan(session, fax, route, actions)
            return FaxRow.of(fax), plan

    def relist(self, recvid: int, reason: str) -> FaxRow:
        """downloaded -> listed: the spool copy is gone or changed; download again."""
        with self.db.session() as session:
            fax = self._fax(session, recvid)
            advance(fax, FaxState.LISTED)
            fax.spool_path = fax.size = fax.sha256 = fax.kind = None
            fax.last_error = reason[:_ERROR_LIMIT]
            fax.next_attempt_at = None  # due again at once: this is no failed attempt
            return FaxRow.of(fax)

    def hold(self, recvid: int, reason: str) -> FaxRow:
        """downloaded -> held: no route takes the fax; it stays on FAXAGE."""
        with self.db.session() as session:
            fax = self._fax(session, recvid)
            advance(fax, FaxState.HELD)
            fax.last_error = reason[:_ERROR_LIMIT]
            fax.next_attempt_at = None
            return FaxRow.of(fax)

    def plan_deliveries(self, recvid: int, route: str, actions: Sequence[tuple[str, str]]) -> Plan:
        """Record the route and one pending row per action, before any action runs.

        ``actions`` is ``(type, target)`` per action of ``route``.  If the fax
        already has a route recorded (an earlier attempt, maybe under an older
        config), nothing is added: that route and its rows are returned, so
        work already done is never redone elsewhere.
        """
        with self.db.session() as session:
            return self._plan(session, self._fax(session, recvid), route, actions)

    def _plan(
        self, session: Session, fax: InboundFax, route: str, actions: Sequence[tuple[str, str]]
    ) -> Plan:
        if fax.route is not None:
            chosen = fax.route
            rows = tuple(DeliveryRow.of(d) for d in fax.deliveries if d.route == chosen)
            return Plan(chosen, rows)
        fax.route = route
        added = [
            Delivery(
                fax_id=fax.id,
                route=route,
                action_index=index,
                action_type=action_type,
                target=target,
                state=DeliveryState.PENDING.value,
                attempts=0,
            )
            for index, (action_type, target) in enumerate(actions)
        ]
        session.add_all(added)
        session.flush()  # assigns the ids the rows carry
        return Plan(route, tuple(DeliveryRow.of(d) for d in added))

    def delivery_done(self, delivery_id: int, detail: str) -> FaxRow:
        """One action succeeded: recorded on its own commit (DESIGN invariant 2).

        If it was the last pending action of the fax's route, the fax becomes
        ``delivered`` in the same commit (see :meth:`mark_delivered`): either
        both are recorded or neither, so a crash repeats at most that action.
        Returns the fax's row.
        """
        with self.db.session() as session:
            fax = session.scalars(_FAX_OF_DELIVERY, {"delivery_id": delivery_id}).unique().one()
            delivery = next(d for d in fax.deliveries if d.id == delivery_id)
            delivery.attempts += 1
            delivery.state = DeliveryState.DONE.value
            delivery.detail = detail[:_ERROR_LIMIT]
            delivery.last_error = None
            delivery.completed_at = self.clock()
            if FaxState(fax.state) is FaxState.DOWNLOADED and not _pending(fax):
                self._delivered(fax)
            return FaxRow.of(fax)

    def mark_delivered(self, recvid: int) -> FaxRow:
        """downloaded -> delivered: every action succeeded; delfax may run now.

        A fax already ``delivered`` (its last action's commit did it) is
        returned as it is.
        """
        with self.db.session() as session:
            fax = self._fax(session, recvid)
            if FaxState(fax.state) is not FaxState.DELIVERED:
                if fax.route is None or _pending(fax):
                    raise RuntimeError(f"fax {recvid}: not every delivery is done")
                self._delivered(fax)
            return FaxRow.of(fax)

    def _delivered(self, fax: InboundFax) -> None:
        advance(fax, FaxState.DELIVERED)
        fax.delivered_at = self.clock()
        _progress(fax)

    def mark_done(self, recvid: int, *, deleted: bool) -> FaxRow:
        """delivered -> done, deleted on FAXAGE or kept there on purpose."""
        with self.db.session() as session:
            fax = self._fax(session, recvid)
            advance(fax, FaxState.DONE)
            if deleted:
                fax.deleted_at = self.clock()
            fax.spool_path = None
            _progress(fax)
            return FaxRow.of(fax)

    def record_redeleted(self, recvid: int) -> None:
        """A done fax was found on FAXAGE again and deleted again."""
        with self.db.session() as session:
            self._fax(session, recvid).deleted_at = self.clock()

    def record_failure(
        self,
        recvid: int,
        error: str,
        *,
        policy: RetryPolicy,
        rng: RandomSource,
        deliveries: Mapping[int, str] | None = None,
        permanent: bool = False,
    ) -> FaxRow:
        """A step failed: count it, back off, or give up (state ``failed``).

        ``deliveries`` maps the id of each delivery that failed to its error.
        ``permanent`` gives up at once (retrying the same thing cannot help);
        otherwise the fax fails after ``policy.max_attempts`` failed tries in a
        row (a step that succeeds starts the count again).
        """
        now = self.clock()
        text = error[:_ERROR_LIMIT]
        with self.db.session() as session:
            fax = self._fax(session, recvid)
            fax.attempts += 1
            fax.last_error = text
            for delivery_id, delivery_error in (deliveries or {}).items():
                delivery = session.get_one(Delivery, delivery_id)
                delivery.attempts += 1
                delivery.last_error = delivery_error[:_ERROR_LIMIT]
            if permanent or policy.exhausted(fax.attempts):
                advance(fax, FaxState.FAILED)
                fax.next_attempt_at = None
            else:
                fax.next_attempt_at = policy.next_attempt_at(fax.attempts, now, rng)
            return FaxRow.of(fax)

    def revive(self, recvid: int, to: FaxState, *, reroute: bool = False) -> FaxRow:
        """``faxd retry``: a failed or held fax goes back to work with attempts reset.

        ``reroute`` forgets the recorded route (gone from the config) with its
        unfinished rows, so the fax is routed afresh; finished rows stay as
        history.
        """
        with self.db.session() as session:
            fax = self._fax(session, recvid)
            if FaxState(fax.state) not in (FaxState.FAILED, FaxState.HELD):
                raise ValueError(f"fax {recvid} is {fax.state}, not failed or held")
            if reroute and fax.route is not None:
                for delivery in list(fax.deliveries):
                    if delivery.route == fax.route and delivery.state != "done":
                        fax.deliveries.remove(delivery)
                fax.route = None
            if to is FaxState.LISTED:
                fax.spool_path = fax.size = fax.sha256 = fax.kind = None
            advance(fax, to)
            fax.attempts = 0
            fax.next_attempt_at = None
            fax.last_error = None
            return FaxRow.of(fax)


def _pending(fax: InboundFax) -> list[Delivery]:
    """The deliveries of the fax's recorded route that have not succeeded yet."""
    return [d for d in fax.deliveries if d.route == fax.route and d.state != DeliveryState.DONE]


def _progress(fax: InboundFax) -> None:
    """A step succeeded: the failure count restarts for the next step."""
    fax.attempts = 0
    fax.next_attempt_at = None
    fax.last_error = None
