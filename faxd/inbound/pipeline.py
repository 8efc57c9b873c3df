"""The inbound pipeline: poll one provider, then download, route, deliver and release.

This is the heart of faxd.  One pipeline serves one receiving provider
account (:class:`~faxd.providers.base.InboundProvider`); the daemon runs one
per provider in ``[inbound] providers``, each with its own cursor, login
pause, sweep and listing problems.  The pipeline lists what is new and hands
each fax that is due to a :class:`~faxd.inbound.worker.FaxWorker`, up to
``[inbound] concurrency`` at once (:mod:`faxd.inbound.dispatch`); the worker
module tells the step-by-step story of one fax.  What keeps it crash-safe
(DESIGN invariants 1-3), for every provider:

- the listing comes in batches (:class:`~faxd.providers.base.ListingBatch`),
  and each batch's new rows are committed together with the cursor the
  adapter gives with it (:meth:`Ledger.record_listing`), before any
  download.  So the memory and the write lock a listing takes are bounded by
  a batch, and a fault halfway leaves the cursor past committed faxes only.
  A provider that lists a date window (no cursor of its own) shows the same
  fax again and again: the ledger knows it by (provider, account, remote id)
  and never adds it twice;
- a record that does not parse is counted in the database and warned about
  at most once a day (:meth:`Ledger.record_problems`; ``faxd inbox --problems``);
- every step of a fax is committed in its own short transaction, never across
  a download or an action, so worker threads queue for SQLite's write lock
  for milliseconds and a crash leaves each fax at a recorded step;
- a fax is worked on by one thread at a time, and a failing fax never stops
  the others.

Too little free disk (``[inbound] min_free_mb``, :mod:`faxd.inbound.diskguard`)
pauses downloads, with one log line when it starts and one when it ends, and
the ``disk_low`` condition raised and cleared in the database.

A refused login (:class:`~faxd.errors.AuthError`) pauses this provider's
polling with one log line per poll (invariant 8) and stops the pass from
taking further faxes; a periodic full listing, :meth:`sweep`, catches
anything on the provider the database does not know or has not finished.

Several instances sharing one database (DESIGN "Several instances") divide
the work, they do not double it (:mod:`faxd.store.claims`):

- listing an account, moving its cursor and sweeping it is the role
  ``list:<provider>:<account>`` of one instance at a time; the others skip
  the listing and only work on what is due.  Every poll asks for the role,
  so when its holder dies another takes it within ``lease_seconds`` and one
  poll interval;
- every fax is claimed in the database before its worker starts, and
  :meth:`Ledger.due` leaves out the faxes another live instance holds, so
  downloads and deliveries are shared and none is done twice.  The
  in-process :class:`Dispatcher` still keeps the threads of one instance off
  each other's fax.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import structlog
from structlog.contextvars import bound_contextvars

from faxd.actions.base import build_action
from faxd.clock import Clock, system_clock
from faxd.config import Config
from faxd.errors import AuthError, FaxdError, NotFoundError, ProviderError
from faxd.inbound import spool as spooling
from faxd.inbound.backoff import RandomSource
from faxd.inbound.diskguard import DiskGuard, FreeBytes, LowDisk, pause_reason, statvfs_free
from faxd.inbound.dispatch import Dispatcher
from faxd.inbound.ledger import Ledger
from faxd.inbound.outcome import PollOutcome, Tally
from faxd.inbound.rows import FaxRow
from faxd.inbound.spool import Spool
from faxd.inbound.worker import ActionFactory, FaxWorker, compatible
from faxd.providers.base import InboundProvider, ListingBatch, Release, Unreadable
from faxd.store.claims import Claims, list_role
from faxd.store.db import Database
from faxd.store.states import FaxState

__all__ = ["ActionFactory", "FaxKey", "InboundPipeline", "PollOutcome"]

#: How a fax is known to a dispatcher the pipelines of several providers share.
FaxKey = tuple[str, str]  # (provider, remote id)

log = structlog.get_logger(__name__)


@dataclass
class _Listed:
    """What one listing recorded, batch by batch: counts, not the records themselves."""

    new: int = 0
    first: str | None = None
    last: str | None = None
    malformed: int = 0
    listed: int = 0
    leftovers: list[FaxRow] = field(default_factory=list)  # done and released, yet listed
    broke_off: bool = False  # the answer failed after the batches counted here

    def add(self, new: list[str], batch: ListingBatch) -> None:
        if new:
            self.new += len(new)
            self.first = new[0] if self.first is None else self.first
            self.last = new[-1]
        self.malformed += len(batch.unreadable)
        self.listed += len(batch.faxes)


class InboundPipeline:
    """Turns every fax received on one provider account into delivered files."""

    def __init__(
        self,
        provider: InboundProvider,
        db: Database,
        config: Config,
        *,
        actions_for: ActionFactory = build_action,
        clock: Clock = system_clock,
        rng: RandomSource | None = None,
        free_bytes: FreeBytes = statvfs_free,
        dispatcher: Dispatcher | None = None,
        claims: Claims | None = None,
    ) -> None:
        self.provider = provider
        self.name = provider.name
        self.config = config
        self.settings = config.inbound
        self.clock = clock
        #: This instance's claims (the daemon's; alone on the database by default).
        self.claims = claims or Claims.solo(db, clock=clock)
        #: The role of listing, moving the cursor of and sweeping this account.
        self.role = list_role(provider.name, provider.account)
        self.ledger = Ledger(
            db, provider.name, provider.account, clock=clock, notify=config.notify,
            claims=self.claims.faxes,
        )  # fmt: skip
        self.spool = Spool(config.inbound.spool_dir, provider.name)
        self.guard = DiskGuard.for_config(
            config, free_bytes=free_bytes, on_change=self._disk_changed
        )
        self.worker = FaxWorker(
            provider,
            self.ledger,
            self.spool,
            config,
            actions_for=actions_for,
            clock=clock,
            rng=rng or random.Random(),  # noqa: S311 - jitter, not secrets
            claims=self.claims.faxes,
            guard=self.guard,
        )
        #: May be shared with the other providers' pipelines (claims are per provider).
        self.dispatcher = dispatcher or Dispatcher(config.inbound.concurrency)
        self._stop = threading.Event()
        self._recover_lock = threading.Lock()
        self._recovered = False

    def stop(self) -> None:
        """Let the faxes in hand finish and take no further one (the daemon is stopping)."""
        self._stop.set()

    # ------------------------------------------------------------ poll and sweep

    def poll(self, *, pushed: bool = False) -> PollOutcome:
        """List what is new after the cursor, record it, then process everything due.

        Only the instance holding this account's listing role lists; another
        only processes what is due.  ``pushed``: the poll was asked for by the
        provider's callback to this instance, which lists even without the
        role, so the fax it announced is not left waiting for the holder's
        next poll.  Listing twice at once is safe: :meth:`Ledger.record_listing`
        adds a fax only once and the two listings take turns on the cursor
        row, each cursor committed with the faxes it points past (at worst the
        cursor steps back to where the other began, and the next listing shows
        a few known faxes again, which adds nothing).
        """
        self._recover()
        if not self.claims.hold(self.role) and not pushed:
            log.debug("inbound.listing_elsewhere", provider=self.name, role=self.role)
            if self._paused():
                return PollOutcome(paused=True)
            return self.process_due()
        outcome = self.list_new()
        if not outcome.paused:
            # Even after a failed listing, faxes already known may be finished.
            outcome += self.process_due()
        self.ledger.record_poll(outcome.summary())
        return outcome

    def list_new(self) -> PollOutcome:
        """The listing half of :meth:`poll`: record what is new after the cursor."""
        cursor = self.ledger.cursor()
        now = self.clock()
        listed = self._list(
            lambda: self.provider.list_new(cursor.cursor, now=now),
            paused=cursor.paused_reason is not None,
        )
        if listed is None:
            return PollOutcome(errors=1, paused=self._paused())
        if listed.new:
            log.info(
                "inbound.listed", provider=self.name, new=listed.new, first=listed.first,
                last=listed.last,
            )  # fmt: skip
        return PollOutcome(new=listed.new, errors=listed.malformed + listed.broke_off)

    def sweep(self) -> PollOutcome:
        """Full listing: adopt unknown faxes, finish known ones, release leftovers again.

        Only the instance holding this account's listing role sweeps it.
        """
        self._recover()
        if not self.claims.hold(self.role):
            log.debug("inbound.sweep_elsewhere", provider=self.name, role=self.role)
            return PollOutcome()
        if self._paused():
            # The next poll tries the login again; the sweep must not add log lines.
            log.debug("inbound.sweep_skipped", provider=self.name, reason="polling paused")
            return PollOutcome(paused=True)
        # A paused sweep returned above.  Leftovers are only noted while the
        # answer streams in; they are released once it is read.
        now = self.clock()
        listed = self._list(
            lambda: self.provider.list_all(now=now), paused=False, each=self._note_leftovers
        )
        if listed is None:
            return PollOutcome(errors=1, paused=self._paused())
        if listed.broke_off:
            # Not a full listing: what it did not reach is swept next time.
            return PollOutcome(new=listed.new, errors=1 + listed.malformed)
        if listed.new:
            log.warning(
                "inbound.sweep_found_unknown",
                provider=self.name,
                count=listed.new,
                first=listed.first,
                last=listed.last,
            )
        errors = listed.malformed
        for row in listed.leftovers:
            errors += 0 if self._delete_again(row) else 1
        self.ledger.record_sweep()
        return PollOutcome(new=listed.new, errors=errors) + self.process_due()

    def _note_leftovers(self, batch: ListingBatch, listed: _Listed) -> None:
        """Keep the faxes of ``batch`` recorded done and released (to release them again).

        A fax kept on the provider on purpose (``Release.KEEP``) was never
        released, so it is no leftover: the sweep leaves it alone.
        """
        if self.provider.capabilities.release is Release.KEEP:
            return
        known = self.ledger.known(f.remote_id for f in batch.faxes)
        for fax in batch.faxes:
            row = known.get(fax.remote_id)
            if row is not None and row.state is FaxState.DONE and row.deleted_at is not None:
                listed.leftovers.append(row)

    def _list(
        self,
        listing: Callable[[], Iterator[ListingBatch]],
        *,
        paused: bool,
        each: Callable[[ListingBatch, _Listed], None] | None = None,
    ) -> _Listed | None:
        """A listing recorded batch by batch; a refused login becomes a pause, faults a log line.

        Each batch is committed (its rows with the cursor) before the next is
        read, then ``each`` sees it.  A fault, before or amid the answer, is
        logged and marks the result ``broke_off`` (what was committed stays);
        ``None`` means a refused login paused polling.  ``paused``: whether
        polling was paused when the pass began (read by the caller).
        """
        listed = _Listed()
        try:
            for batch in listing():
                if paused:
                    paused = False
                    self.ledger.set_paused(None)
                    log.info(
                        "inbound.login_accepted", provider=self.name,
                        account=self.provider.account,
                    )  # fmt: skip
                listed.add(self.ledger.record_listing(batch.faxes, batch.cursor), batch)
                self._report(batch.unreadable)
                if each is not None:
                    each(batch, listed)
            self.ledger.record_listed()
        except AuthError as exc:
            self._pause(exc)
            return None
        except ProviderError as exc:
            log.warning(
                "inbound.listing_failed",
                provider=self.name,
                error=exc.message,
                transient=exc.transient,
                recorded=listed.listed,
                hint="the cursor moved only past the faxes recorded; "
                "faxd lists again at the next poll",
            )
            listed.broke_off = True
        return listed

    def _report(self, lines: tuple[Unreadable, ...]) -> None:
        """Record the records that did not parse; warn about each at most once a day."""
        for bad in self.ledger.record_problems(lines):
            log.warning(
                "inbound.listing_line_skipped",
                provider=self.name,
                lineno=bad.lineno,
                reason=bad.reason,
                line=bad.text,
                hint=f"this fax cannot be fetched until {self.name} lists it readably; "
                "`faxd inbox --problems` shows every such line (warned again in a day)",
            )

    def _paused(self) -> bool:
        return self.ledger.cursor().paused_reason is not None

    def _pause(self, exc: AuthError) -> None:
        """A refused login: one clear error line, and polling paused until a login works."""
        reason = (
            f"{self.name}: {exc.message}; config file {self.config.path}; polling of {self.name} "
            f"account {self.provider.account} paused, retrying every "
            f"{self.settings.poll_interval:g} s"
        )
        log.error("inbound.login_refused", provider=self.name, message=reason, code=exc.code)
        self.ledger.set_paused(reason)

    def _disk_changed(self, before: tuple[LowDisk, ...] | None, now: tuple[LowDisk, ...]) -> None:
        """Downloads paused or resumed for disk space: one log line, and ``disk_low``."""
        if now:
            reason = pause_reason(now)
            log.warning("inbound.disk_low", message=reason)
            self.ledger.set_disk_low(reason, folder=str(now[0].folder))
            return
        if before:
            log.info("inbound.disk_ok", hint="enough free space again; downloads resume")
        # At start (before is None) too: a pause recorded before a restart is over.
        self.ledger.set_disk_low(None)

    def _delete_again(self, row: FaxRow) -> bool:
        """A fax recorded done and released is listed again: release it again."""
        with bound_contextvars(provider=row.provider, remote_id=row.remote_id, dnis=row.dnis):
            log.warning("inbound.deleted_fax_listed_again", deleted_at=str(row.deleted_at))
            try:
                self.provider.release(row.remote_id)
            except NotFoundError:
                pass
            except ProviderError as exc:
                log.warning("inbound.redelete_failed", error=exc.message)
                return False
            self.ledger.record_redeleted(row.remote_id)
            return True

    # ------------------------------------------------------------ processing

    def process_due(self) -> PollOutcome:
        """Work on every fax that is due now, oldest first, up to ``concurrency`` at once.

        Each fax succeeds or fails on its own; a refused login from any of
        them pauses polling and lets only the faxes already in hand finish.
        """
        self._recover()
        self.guard.check()  # raises or clears disk_low even when no download is due
        tally = Tally()

        def halt() -> bool:
            return self._stop.is_set() or tally.paused

        due = [(self.name, remote_id) for remote_id in self.ledger.due(self.clock())]
        for finished in self.dispatcher.run(due, self._work, halt=halt):
            error = finished.error
            if error is None:
                if finished.value is not None:
                    tally.count(finished.value)
            elif isinstance(error, AuthError):
                tally.errors += 1
                if not tally.paused:
                    self._pause(error)
                    tally.paused = True
            else:
                # Even recording the failure failed (a database fault, a bug):
                # log it and go on; the fax is still active and is retried.
                log.error(
                    "inbound.fax_crashed",
                    provider=self.name,
                    remote_id=finished.key[1],
                    exc_info=(type(error), error, error.__traceback__),
                )
                tally.errors += 1
        return tally.outcome()

    def _work(self, key: FaxKey) -> FaxRow | None:
        return self.worker.run(key[1])

    def process(self, remote_id: str) -> FaxState | None:
        """Take fax ``remote_id`` as far as it can go now; return the state it ends in.

        Failures are recorded (backoff, or ``failed``), never raised, except
        :class:`AuthError`, which concerns the whole account.  ``None`` if the
        database does not know the fax.  A fax another thread (or another
        instance) is working on is left to it; its current state is returned.
        """
        key = (self.name, remote_id)
        row = None
        if self.dispatcher.claim(key):
            try:
                row = self.worker.run(remote_id)
            finally:
                self.dispatcher.release(key)
        if row is None:  # in hand elsewhere (or unknown)
            row = self.ledger.get(remote_id)
        return None if row is None else row.state

    # ------------------------------------------------------------ operator and recovery

    def retry(self, remote_id: str) -> FaxState:
        """``faxd retry``: send a failed or held fax back to work, attempts reset.

        It resumes where it stands: ``delivered`` if every delivery is done
        (only the release is left, which needs no spool copy: the copy may be
        gone already, and so may the provider's), ``downloaded`` if the spool
        copy is intact, else ``listed``.
        """
        row = self.ledger.get(remote_id)
        if row is None:
            raise FaxdError(
                f"no inbound {self.name} fax {remote_id} in the database; "
                "`faxd inbox` lists the faxes faxd knows"
            )
        if row.state not in (FaxState.FAILED, FaxState.HELD):
            raise FaxdError(
                f"fax {remote_id} is {row.state.value}; only failed or held faxes can be retried"
            )
        deliveries = self.ledger.deliveries(remote_id)
        actions = self.worker.actions_of(row.route) if row.route is not None else []
        reroute = row.route is not None and (actions is None or not compatible(actions, deliveries))
        all_done = bool(deliveries) and all(d.done for d in deliveries) and not reroute
        if all_done and row.state is FaxState.FAILED:
            target = FaxState.DELIVERED  # only the release is left: no spool copy needed
        elif row.spool_path is not None and spooling.matches(row.spool_path, row.size, row.sha256):
            target = FaxState.DOWNLOADED
        else:
            target = FaxState.LISTED
        self.ledger.revive(remote_id, target, reroute=reroute)
        log.info(
            "inbound.retry", provider=self.name, remote_id=remote_id, state=target.value,
            rerouted=reroute,
        )  # fmt: skip
        return target

    def _recover(self) -> None:
        """Once per start: drop partial downloads and spool files of finished faxes.

        The spool folder may be shared with other instances: the files of a
        fax another live instance holds (its download in progress, too) are
        left alone.  The folder is listed before the database is read, so a
        file seen there belongs to a fax whose row (and, while it downloads,
        whose claim) is already committed.
        """
        with self._recover_lock:
            if self._recovered:
                return
            self._recovered = True
            files = self.spool.files()
            keep = self.ledger.unfinished()
            busy = self.ledger.in_hand_elsewhere(self.clock())
            for path in self.spool.stale_files(keep, busy=busy, among=files):
                path.unlink(missing_ok=True)
                log.info("inbound.spool_cleaned", path=str(path))
