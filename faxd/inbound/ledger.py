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
database.  The steps every fax takes (read, downloaded, each action done,
delivered, done) live in :mod:`faxd.inbound.steps`, in prebuilt Core SQL,
with the reason for each commit's durability level; this class inherits
them.  Everything here (the listing and cursor, failures, holds, ``faxd
retry``) commits at the default ``synchronous=FULL``.

A long listing is recorded a batch at a time (:meth:`Ledger.record_listing`
once per batch), so no transaction holds the write lock for the whole answer,
and the cursor never points past a fax whose row is not committed.  Lines
that do not parse are counted in ``listing_problems``
(:meth:`Ledger.record_problems`), which also keeps their warning to once a day.

Each method is one short ``BEGIN IMMEDIATE`` transaction with no
network I/O inside it, so the pipeline's worker threads queue for the write
lock for milliseconds, never for a download.  States change only through
:func:`faxd.store.states.advance`.

On PostgreSQL (several instances, DESIGN "Several instances") transactions
are READ COMMITTED: nothing like ``BEGIN IMMEDIATE`` queues the writers, so a
method that reads a row and writes it back could lose another instance's
update.  Each such method therefore loads its row ``FOR UPDATE`` (SQLite
leaves the clause out; its write lock already serialises): a fax's own row
for its changes, and the account's cursor row for everything account-wide
(the listing and cursor, listing problems, the pause and the disk
conditions), which also queues two instances inserting the same new fax.
"""

from __future__ import annotations

import hashlib
import shlex
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from faxd.alerts import events
from faxd.alerts.events import condition_scope
from faxd.clock import Clock
from faxd.config import NotifySettings
from faxd.inbound.backoff import RandomSource, RetryPolicy
from faxd.inbound.rows import CursorRow, DeliveryRow, FaxRow, Plan
from faxd.inbound.steps import ERROR_LIMIT as _ERROR_LIMIT
from faxd.inbound.steps import LedgerSteps
from faxd.phone import normalize_caller_id
from faxd.providers.base import RemoteFax, Unreadable
from faxd.store.claims import RowClaims
from faxd.store.db import Database
from faxd.store.models import Delivery, InboundFax, ListingProblem, PollCursor
from faxd.store.states import FAX_ACTIVE, FaxState, advance

__all__ = ["PROBLEM_LOG_INTERVAL", "CursorRow", "DeliveryRow", "FaxRow", "Ledger", "Plan"]

#: A listing record that keeps failing to parse is warned about at most this often.
PROBLEM_LOG_INTERVAL = timedelta(days=1)

#: One fax by its remote id, for the ORM methods below.
_FAX_BY_REMOTE_ID = select(InboundFax).where(
    InboundFax.provider == bindparam("provider"),
    InboundFax.account == bindparam("account"),
    InboundFax.remote_id == bindparam("remote_id"),
)
_FAX_BY_REMOTE_ID_LOCKED = _FAX_BY_REMOTE_ID.with_for_update()


class Ledger(LedgerSteps):
    """The inbound rows of one provider account (FAXAGE: ``username@company``)."""

    def __init__(
        self,
        db: Database,
        provider: str,
        account: str,
        *,
        clock: Clock,
        notify: NotifySettings | None = None,
        claims: RowClaims | None = None,
    ) -> None:
        self.db = db
        self.provider = provider
        self.account = account
        #: How admin conditions of this account are keyed (``auth_failed:<scope>``).
        self.scope = condition_scope(provider, account)
        self.clock = clock
        #: ``[notify]``: a fax failing or held, and a refused login, write their admin
        #: event in the same transaction (:mod:`faxd.alerts.events`).
        self.notify = notify
        #: This instance's claims on faxes: :meth:`due` leaves out the faxes another
        #: live instance holds (``None``: every fax, as for one faxd alone).
        self.claims = claims

    # ------------------------------------------------------------ cursor

    def _cursor(self, session: Session, *, lock: bool = False) -> PollCursor:
        """The cursor row (created empty on first use); ``lock``: ``FOR UPDATE``.

        Locked, it is the account's mutex: every account-wide change takes it
        first, so two instances make theirs one after the other.
        """
        key = (self.provider, self.account)
        cursor = session.get(PollCursor, key, with_for_update=lock)
        if cursor is None:
            try:
                with session.begin_nested():
                    session.add(PollCursor(provider=self.provider, account=self.account))
            except IntegrityError:
                pass  # another instance created it meanwhile: read theirs
            cursor = session.get_one(PollCursor, key, with_for_update=lock)
        return cursor

    def cursor(self) -> CursorRow:
        """The poll cursor (created empty on first use)."""
        with self.db.session() as session:
            c = self._cursor(session)
            return CursorRow(
                c.cursor,
                c.last_poll_at,
                c.last_poll_outcome,
                c.last_sweep_at,
                c.paused_reason,
            )

    def record_poll(self, outcome: str) -> None:
        """Note when the last poll ran and how it went (for status lines)."""
        with self.db.session() as session:
            c = self._cursor(session, lock=True)
            c.last_poll_at = self.clock()
            c.last_poll_outcome = outcome[:_ERROR_LIMIT]

    def set_paused(self, reason: str | None) -> None:
        """Pause polling with the reason shown to the operator (``None``: resume).

        The pause is the ``auth_failed`` condition: raised with it, cleared
        (``recovered``) when a login works again.
        """
        key = f"auth_failed:{self.scope}"
        with self.db.session() as session:
            self._cursor(session, lock=True).paused_reason = reason
            conn, now = session.connection(), self.clock()
            if reason is None:
                events.clear_condition(conn, self.notify, key, now=now)
            else:
                event = events.Event(
                    kind="auth_failed", subject=f"{self.provider} account {self.account}",
                    summary=reason, command="faxd check-config   # then: faxd status",
                )  # fmt: skip
                events.raise_condition(conn, self.notify, key, event, now=now)

    def set_disk_low(self, reason: str | None, *, folder: str = "") -> None:
        """Downloads paused for want of disk (``reason``), or resumed (``None``).

        The pause is the ``disk_low`` condition of this account on this server: raised once
        with it, cleared (``recovered``) when space returns.  ``folder`` is the
        first folder short of space, which the mail's subject names.
        """
        key = f"disk_low:{self.scope}"
        if self.claims is not None:
            # Each server's spool is its own disk: one server's full disk must not be
            # "recovered" by another's free one.
            key += f"@{self.claims.instance.name}"
        with self.db.session() as session:
            self._cursor(session, lock=True)  # one instance at a time raises or clears it
            conn, now = session.connection(), self.clock()
            if reason is None:
                events.clear_condition(conn, self.notify, key, now=now)
            else:
                event = events.Event(
                    kind="disk_low", subject=folder, summary=reason,
                    detail="faxd downloads no fax until space is free again; nothing is lost.",
                    command=f"df -h {shlex.quote(folder)}   # what is free\n"
                    "faxd status   # the pause",
                )  # fmt: skip
                events.raise_condition(conn, self.notify, key, event, now=now)

    def record_listed(self) -> None:
        """A listing was read to its end: the provider answers (clears ``provider_down``)."""
        with self.db.session() as session:
            self._cursor(session, lock=True).last_listed_at = self.clock()
            events.clear_condition(
                session.connection(), self.notify, f"provider_down:{self.scope}",
                now=self.clock(),
            )  # fmt: skip

    def record_sweep(self) -> None:
        """Note that a full listing (the sweep) has just been read."""
        with self.db.session() as session:
            self._cursor(session, lock=True).last_sweep_at = self.clock()

    def record_listing(self, faxes: Sequence[RemoteFax], cursor: str | None = None) -> list[str]:
        """Insert the faxes not known yet (state ``listed``) and set the cursor.

        One transaction: the cursor can only ever point past rows that are
        committed with it (DESIGN invariant 3).  ``cursor`` is what the
        provider's adapter says the next listing starts from once these
        faxes are recorded (``None``: leave it as it is).  A fax the ledger
        knows already (by provider, account and remote id) is never added
        twice, however often a window listing shows it.
        Returns the remote ids that were new, oldest first (the order they are
        worked on).
        """
        with self.db.session() as session:
            # Locked first: two instances listing at once (a pushed poll beside
            # the lister) insert one after the other, and the second sees the
            # first's rows instead of a duplicate key.
            row = self._cursor(session, lock=True)
            known = set(self._remote_ids_in(session, {f.remote_id for f in faxes}))
            new: list[str] = []
            for fax in sorted(faxes, key=_oldest_first):
                if fax.remote_id in known:
                    continue
                known.add(fax.remote_id)
                new.append(fax.remote_id)
                session.add(
                    InboundFax(
                        provider=self.provider,
                        account=self.account,
                        remote_id=fax.remote_id,
                        recvdate=fax.received_at,
                        starttime=None,
                        cid=normalize_caller_id(fax.caller_id),
                        dnis=normalize_caller_id(fax.dnis),
                        server_filename=fax.filename,
                        pagecount=fax.pages,
                        state=FaxState.LISTED.value,
                        attempts=0,
                        listed_at=self.clock(),
                    )
                )
            if new:
                session.flush()
            if cursor is not None:
                row.cursor = cursor
            return new

    def record_problems(self, lines: Sequence[Unreadable]) -> list[Unreadable]:
        """Count each listing record that did not parse; return those to warn about now.

        A line is warned about the first time it is seen and then at most once
        per :data:`PROBLEM_LOG_INTERVAL` while it keeps coming back, so a line
        the provider sends with every listing does not fill the log.  The line is
        known by its recorded text and reason, not its number, which shifts as
        other faxes come and go.
        """
        if not lines:
            return []
        now = self.clock()
        by_print = {_fingerprint(line): line for line in lines}
        due: list[Unreadable] = []
        with self.db.session() as session:
            self._cursor(session, lock=True)  # counts and first sightings, one instance at a time
            rows = {
                row.fingerprint: row
                for row in session.scalars(
                    select(ListingProblem).where(
                        ListingProblem.provider == self.provider,
                        ListingProblem.account == self.account,
                        ListingProblem.fingerprint.in_(by_print),
                    )
                )
            }
            for fingerprint, line in by_print.items():
                row = rows.get(fingerprint)
                if row is None:
                    row = ListingProblem(
                        provider=self.provider,
                        account=self.account,
                        fingerprint=fingerprint,
                        text=line.text,
                        reason=line.reason[:_ERROR_LIMIT],
                        first_seen=now,
                        count=0,
                    )
                    session.add(row)
                row.count += 1
                row.last_seen = now
                if row.last_logged_at is None or now - row.last_logged_at >= PROBLEM_LOG_INTERVAL:
                    row.last_logged_at = now
                    due.append(line)
        return due

    # ------------------------------------------------------------ reading

    def _mine(self) -> Any:
        """The WHERE clause of this ledger's rows."""
        return (InboundFax.provider == self.provider) & (InboundFax.account == self.account)

    def _remote_ids_in(self, session: Session, remote_ids: set[str]) -> list[str]:
        if not remote_ids:
            return []
        query = select(InboundFax.remote_id).where(
            self._mine(), InboundFax.remote_id.in_(remote_ids)
        )
        return list(session.scalars(query))

    def _fax(self, session: Session, remote_id: str, *, lock: bool) -> InboundFax:
        """The fax's row; ``lock``: ``FOR UPDATE``, for a method that changes it."""
        fax = session.scalars(
            _FAX_BY_REMOTE_ID_LOCKED if lock else _FAX_BY_REMOTE_ID,
            {"provider": self.provider, "account": self.account, "remote_id": remote_id},
        ).one_or_none()
        if fax is None:
            raise LookupError(
                f"no inbound fax {remote_id} of {self.provider} account {self.account} "
                "in the database"
            )
        return fax

    def known(self, remote_ids: Iterable[str]) -> dict[str, FaxRow]:
        """The rows of those of ``remote_ids`` the database knows."""
        wanted = set(remote_ids)
        if not wanted:
            return {}
        with self.db.session() as session:
            rows = session.scalars(
                select(InboundFax).where(self._mine(), InboundFax.remote_id.in_(wanted))
            )
            return {row.remote_id: FaxRow.of(row) for row in rows}

    def due(self, now: datetime) -> list[str]:
        """Faxes that need work now (active and not backing off), oldest listed first.

        A fax another live instance holds is not due here: it is in hand.
        """
        query = select(InboundFax.remote_id).where(
            self._mine(),
            InboundFax.state.in_([s.value for s in FAX_ACTIVE]),
            (InboundFax.next_attempt_at.is_(None)) | (InboundFax.next_attempt_at <= now),
        )
        if self.claims is not None:
            query = query.where(self.claims.available(now))
        with self.db.session() as session:
            return list(session.scalars(query.order_by(InboundFax.id)))

    def unfinished(self) -> dict[str, str | None]:
        """Every fax not ``done``, with its recorded spool file (those must be kept)."""
        with self.db.session() as session:
            rows = session.execute(
                select(InboundFax.remote_id, InboundFax.spool_path).where(
                    self._mine(), InboundFax.state != FaxState.DONE.value
                )
            )
            return {remote_id: spool_path for remote_id, spool_path in rows}

    def in_hand_elsewhere(self, now: datetime) -> set[str]:
        """Unfinished faxes a live claim of another instance holds (its spool files are in use)."""
        if self.claims is None:
            return set()
        with self.db.session() as session:
            rows = session.scalars(
                select(InboundFax.remote_id).where(
                    self._mine(),
                    InboundFax.state != FaxState.DONE.value,
                    ~self.claims.available(now),
                )
            )
            return set(rows)

    def deliveries(self, remote_id: str) -> list[DeliveryRow]:
        """The delivery rows of the route recorded for the fax (none before routing)."""
        with self.db.session() as session:
            fax = self._fax(session, remote_id, lock=False)
            return [DeliveryRow.of(d) for d in fax.deliveries if d.route == fax.route]

    # ---------------------------------------- detours (the usual steps: steps.py)

    def relist(self, remote_id: str, reason: str) -> FaxRow:
        """downloaded -> listed: the spool copy is gone or changed; download again."""
        with self.db.session() as session:
            fax = self._fax(session, remote_id, lock=True)
            advance(fax, FaxState.LISTED)
            fax.spool_path = fax.size = fax.sha256 = fax.kind = None
            fax.last_error = reason[:_ERROR_LIMIT]
            fax.next_attempt_at = None  # due again at once: this is no failed attempt
            return FaxRow.of(fax)

    def hold(self, remote_id: str, reason: str) -> FaxRow:
        """downloaded -> held: no route takes the fax; it stays on the provider."""
        with self.db.session() as session:
            fax = self._fax(session, remote_id, lock=True)
            advance(fax, FaxState.HELD)
            fax.last_error = reason[:_ERROR_LIMIT]
            fax.next_attempt_at = None
            event = events.fax_held(
                self.provider, remote_id, dnis=fax.dnis, cid=fax.cid, spool_path=fax.spool_path
            )
            events.record(session.connection(), self.notify, event, now=self.clock())
            return FaxRow.of(fax)

    def record_redeleted(self, remote_id: str) -> None:
        """A done fax was found on the provider again and released again."""
        with self.db.session() as session:
            self._fax(session, remote_id, lock=True).deleted_at = self.clock()

    def record_failure(
        self,
        remote_id: str,
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
            fax = self._fax(session, remote_id, lock=True)
            fax.attempts += 1
            fax.last_error = text
            for delivery_id, delivery_error in (deliveries or {}).items():
                delivery = session.get_one(Delivery, delivery_id, with_for_update=True)
                delivery.attempts += 1
                delivery.last_error = delivery_error[:_ERROR_LIMIT]
            if permanent or policy.exhausted(fax.attempts):
                advance(fax, FaxState.FAILED)
                fax.next_attempt_at = None
                event = events.fax_failed(
                    self.provider, remote_id, dnis=fax.dnis, cid=fax.cid, route=fax.route,
                    reason=text, spool_path=fax.spool_path,
                )  # fmt: skip
                events.record(session.connection(), self.notify, event, now=now)
            else:
                fax.next_attempt_at = policy.next_attempt_at(fax.attempts, now, rng)
            return FaxRow.of(fax)

    def revive(self, remote_id: str, to: FaxState, *, reroute: bool = False) -> FaxRow:
        """``faxd retry``: a failed or held fax goes back to work with attempts reset.

        ``reroute`` forgets the recorded route (gone from the config) with its
        unfinished rows, so the fax is routed afresh; finished rows stay as
        history (routed to a route of the same name again, a finished row
        whose action is unchanged counts as done: see ``steps._plan``).
        """
        with self.db.session() as session:
            fax = self._fax(session, remote_id, lock=True)
            if FaxState(fax.state) not in (FaxState.FAILED, FaxState.HELD):
                raise ValueError(f"fax {remote_id} is {fax.state}, not failed or held")
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


def _oldest_first(fax: RemoteFax) -> tuple[datetime, int, str]:
    """Received time, then the id; digit ids of one length sort as numbers do."""
    return fax.received_at, len(fax.remote_id), fax.remote_id


def _fingerprint(line: Unreadable) -> str:
    """What identifies an unreadable line from one listing to the next."""
    return hashlib.sha256(f"{line.text}\0{line.reason}".encode()).hexdigest()
