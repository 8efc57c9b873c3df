"""The inbound pipeline: poll FAXAGE, download, route, deliver, then delete.

This is the heart of faxd, and every step is ordered so that a crash at any
instant loses nothing and duplicates no file (DESIGN invariants 1-3):

1. ``listfax`` (``idgt`` = cursor, ascending); the new rows and the cursor are
   committed together (:meth:`Ledger.record_listing`).
2. ``listed``: ``getfax`` into ``<spool>/<recvid>.part``, verified by the
   client, fsync'd and renamed; then ``downloaded`` with size and sha256.
3. ``downloaded``: the spool copy is re-checked (a missing or changed file goes
   back to ``listed``); the fax is routed; one delivery row per action is
   committed *before* any action runs; each action's success is committed on
   its own, so a restart repeats only what was not recorded.
4. every delivery done: ``delivered`` is committed, *then* ``delfax`` (or
   nothing, with ``delete_after_delivery = false``), then ``done``, then the
   spool file is removed.

Each fax is processed on its own (``process``): its failure is recorded with
backoff, or after ``max_attempts`` as ``failed`` (kept on FAXAGE), and never
stops the others.  Faxes share nothing but the database, so ``process_due``
can later hand them to a thread pool.  ``ERR02`` pauses polling with one log
line per poll (invariant 8); a periodic full listing, :meth:`sweep`, catches
anything on FAXAGE the database does not know or has not finished.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import structlog
from structlog.contextvars import bound_contextvars

from faxd.actions.base import Action, Deliverable, build_action
from faxd.clock import Clock, system_clock
from faxd.config import ActionSpec, Config, RouteSpec, SmtpSettings
from faxd.errors import AuthError, FaxdError, NotFoundError, ProviderError, RoutingError
from faxd.faxage.records import DownloadResult, ListfaxResult
from faxd.inbound import spool as spooling
from faxd.inbound.backoff import RandomSource, RetryPolicy
from faxd.inbound.ledger import DeliveryRow, FaxRow, Ledger
from faxd.inbound.spool import Spool
from faxd.redact import redact
from faxd.routing import FaxFacts, route
from faxd.store.db import Database
from faxd.store.states import FAX_ACTIVE, FaxState

log = structlog.get_logger(__name__)

#: Most state changes one fax can make in one pass (listed, downloaded,
#: delivered, done, plus one trip back to listed for a damaged spool file).
_MAX_STEPS = 6


class InboundClient(Protocol):
    """The three FAXAGE operations the pipeline uses (FaxageClient has them)."""

    def listfax(self, *, idgt: int | None = None, idasc: bool = True) -> ListfaxResult: ...

    def getfax(self, recvid: int, dest: Path) -> DownloadResult: ...

    def delfax(self, recvid: int) -> None: ...


class ActionFactory(Protocol):
    """Builds the action for one action spec (``build_action`` by default)."""

    def __call__(self, spec: ActionSpec, *, smtp: SmtpSettings | None) -> Action: ...


@dataclass(frozen=True)
class PollOutcome:
    """What one poll, sweep or pass achieved, for status lines."""

    new: int = 0
    done: int = 0
    failed: int = 0
    held: int = 0
    errors: int = 0
    paused: bool = False

    def summary(self) -> str:
        if self.paused:
            return "paused: FAXAGE refused the login"
        return (
            f"{self.new} new, {self.done} done, {self.failed} failed, "
            f"{self.held} held, {self.errors} errors"
        )


@dataclass
class _Tally:
    """Counts of one pass; local to the pass, never shared."""

    new: int = 0
    done: int = 0
    failed: int = 0
    held: int = 0
    errors: int = 0
    paused: bool = False

    def count(self, row: FaxRow) -> None:
        """Count where one fax ended this pass."""
        if row.state is FaxState.DONE:
            self.done += 1
        elif row.state is FaxState.FAILED:
            self.failed += 1
        elif row.state is FaxState.HELD:
            self.held += 1
        elif row.last_error:
            self.errors += 1

    def outcome(self) -> PollOutcome:
        return PollOutcome(self.new, self.done, self.failed, self.held, self.errors, self.paused)


class InboundPipeline:
    """Turns every fax received on one FAXAGE account into delivered files."""

    def __init__(
        self,
        client: InboundClient,
        db: Database,
        config: Config,
        *,
        actions_for: ActionFactory = build_action,
        clock: Clock = system_clock,
        rng: RandomSource | None = None,
    ) -> None:
        self.client = client
        self.config = config
        self.settings = config.inbound
        self.clock = clock
        self.actions_for = actions_for
        self.rng: RandomSource = rng or random.Random()  # noqa: S311 - jitter, not secrets
        self.ledger = Ledger(db, config.faxage.account, clock=clock)
        self.spool = Spool(config.inbound.spool_dir)
        self.policy = RetryPolicy(
            base=config.inbound.backoff_base,
            cap=config.inbound.backoff_max,
            max_attempts=config.inbound.max_attempts,
        )
        self._stop = threading.Event()
        self._recovered = False

    def stop(self) -> None:
        """Finish the fax in hand and take no further one (the daemon is stopping)."""
        self._stop.set()

    # ------------------------------------------------------------ poll and sweep

    def poll(self) -> PollOutcome:
        """List what is new after the cursor, record it, then process everything due."""
        self._recover()
        cursor = self.ledger.cursor()
        listing = self._list(idgt=cursor.last_recvid or None)
        if listing is None:
            outcome = PollOutcome(errors=1, paused=self._paused())
            if not outcome.paused:
                # Listing failed, but faxes already known may still be finished.
                outcome = _merge(outcome, self.process_due())
        else:
            new = self.ledger.record_listing(listing.records)
            if new:
                log.info("inbound.listed", new=len(new), first=new[0], last=new[-1])
            listed = PollOutcome(new=len(new), errors=len(listing.malformed))
            outcome = _merge(listed, self.process_due())
        self.ledger.record_poll(outcome.summary())
        return outcome

    def sweep(self) -> PollOutcome:
        """Full listing: adopt unknown faxes, finish known ones, re-delete leftovers."""
        self._recover()
        if self._paused():
            # The next poll tries the login again; the sweep must not add log lines.
            log.debug("inbound.sweep_skipped", reason="polling paused after ERR02")
            return PollOutcome(paused=True)
        listing = self._list(idgt=None)
        if listing is None:
            return PollOutcome(errors=1, paused=self._paused())
        new = self.ledger.record_listing(listing.records)
        if new:
            log.warning("inbound.sweep_found_unknown", count=len(new), recvids=new[:20])
        errors = len(listing.malformed)
        known = self.ledger.known(r.recvid for r in listing.records)
        for recvid in sorted(known):
            row = known[recvid]
            if row.state is FaxState.DONE and row.deleted_at is not None:
                errors += 0 if self._delete_again(row) else 1
        self.ledger.record_sweep()
        return _merge(PollOutcome(new=len(new), errors=errors), self.process_due())

    def _list(self, *, idgt: int | None) -> ListfaxResult | None:
        """``listfax``, with ERR02 turned into a pause and other faults into a log line."""
        try:
            listing = self.client.listfax(idgt=idgt, idasc=True)
        except AuthError as exc:
            self._pause(exc)
            return None
        except ProviderError as exc:
            log.warning(
                "inbound.listfax_failed",
                error=exc.message,
                transient=exc.transient,
                hint="the cursor did not move; faxd lists again at the next poll",
            )
            return None
        if self._paused():
            self.ledger.set_paused(None)
            log.info("inbound.login_accepted", account=self.config.faxage.account)
        for bad in listing.malformed:
            log.warning(
                "inbound.listfax_line_skipped", lineno=bad.lineno, reason=bad.reason, line=bad.text
            )
        return listing

    def _paused(self) -> bool:
        return self.ledger.cursor().paused_reason is not None

    def _pause(self, exc: AuthError) -> None:
        """ERR02: one clear error line, and polling paused until a login works."""
        faxage = self.config.faxage
        reason = (
            f"FAXAGE refused the login for user {faxage.username} company {faxage.company}: "
            f"check username/company/password in {self.config.path}; polling paused, "
            f"retrying every {self.settings.poll_interval:g} s"
        )
        log.error("inbound.login_refused", message=reason, code=exc.code)
        self.ledger.set_paused(reason)

    def _delete_again(self, row: FaxRow) -> bool:
        """A fax recorded done and deleted is listed again: delete it again."""
        with bound_contextvars(recvid=row.recvid, dnis=row.dnis):
            log.warning("inbound.deleted_fax_listed_again", deleted_at=str(row.deleted_at))
            try:
                self.client.delfax(row.recvid)
            except NotFoundError:
                pass
            except ProviderError as exc:
                log.warning("inbound.redelete_failed", error=exc.message)
                return False
            self.ledger.record_redeleted(row.recvid)
            return True

    # ------------------------------------------------------------ processing

    def process_due(self) -> PollOutcome:
        """Work on every fax that is due now, oldest first, each on its own."""
        self._recover()
        tally = _Tally()
        for recvid in self.ledger.due(self.clock()):
            if self._stop.is_set():
                break
            try:
                row = self._process(recvid)
            except AuthError as exc:
                self._pause(exc)
                tally.paused = True
                tally.errors += 1
                break
            except Exception:
                # Even recording the failure failed (a database fault, a bug):
                # log it and go on; the fax is still active and is retried.
                log.exception("inbound.fax_crashed", recvid=recvid)
                tally.errors += 1
                continue
            if row is not None:
                tally.count(row)
        return tally.outcome()

    def process(self, recvid: int) -> FaxState | None:
        """Take fax ``recvid`` as far as it can go now; return the state it ends in.

        Failures are recorded (backoff, or ``failed``), never raised, except
        :class:`AuthError`, which concerns the whole account.  ``None`` if the
        database does not know the fax.
        """
        row = self._process(recvid)
        return None if row is None else row.state

    def _process(self, recvid: int) -> FaxRow | None:
        row = self.ledger.get(recvid)
        if row is None:
            return None
        with bound_contextvars(recvid=recvid, dnis=row.dnis):
            for _ in range(_MAX_STEPS):
                if row.state not in FAX_ACTIVE:
                    break
                before = row.state
                try:
                    row = self._step(row)
                except AuthError:
                    raise
                except Exception as exc:
                    row = self._record_failure(row, exc, {})
                if row.state is before:
                    break
            return row

    def _step(self, row: FaxRow) -> FaxRow:
        if row.state is FaxState.LISTED:
            return self._download(row)
        if row.state is FaxState.DOWNLOADED:
            if row.spool_path is None or not spooling.matches(row.spool_path, row.size, row.sha256):
                log.warning(
                    "inbound.spool_file_damaged",
                    path=str(row.spool_path),
                    hint="the spooled copy is missing or changed; downloading it again",
                )
                return self.ledger.relist(row.recvid, "spool file missing or changed")
            return self._deliver(row)
        if row.state is FaxState.DELIVERED:
            return self._finish(row)
        return row

    def _download(self, row: FaxRow) -> FaxRow:
        """listed -> downloaded: getfax into the spool, durable under its final name."""
        self.spool.ensure()
        part = self.spool.part_path(row.recvid)
        try:
            result = self.client.getfax(row.recvid, part)
            final = self.spool.commit(part, row.recvid, result.kind)
        except BaseException:
            self.spool.discard_part(row.recvid)
            raise
        log.info("inbound.downloaded", size=result.size, kind=result.kind, sha256=result.sha256)
        return self.ledger.mark_downloaded(row.recvid, final, result)

    def _deliver(self, row: FaxRow) -> FaxRow:
        """downloaded -> delivered (or held): route, plan, run each pending action."""
        assert row.spool_path is not None and row.kind and row.sha256 and row.size is not None
        facts = FaxFacts(
            recvid=row.recvid,
            dnis=row.dnis,
            cid=row.cid,
            pages=row.pagecount,
            ext=spooling.extension(row.kind),
            received=row.recvdate,
        )
        try:
            spec = route(facts, self.config.routes, self.clock())
        except RoutingError as exc:
            return self._hold(row, exc.message)
        if not spec.actions:
            return self._hold(
                row,
                f"route {spec.name!r} has no actions; give it at least one in {self.config.path} "
                f"and run `faxd retry {row.recvid}`",
            )
        planned = self._build(spec)
        chosen, deliveries = self.ledger.plan_deliveries(
            row.recvid, spec.name, [(a.type, a.target) for a in planned]
        )
        with bound_contextvars(route=chosen):
            if chosen != spec.name:
                # Routed before (under an older config): finish that route, never redo.
                log.info("inbound.route_kept", now_matching=spec.name)
            actions = planned if chosen == spec.name else self._actions_of(chosen)
            if actions is None or not _compatible(actions, deliveries):
                return self._hold(row, self._route_gone(row.recvid, chosen))
            item = Deliverable(facts, chosen, row.spool_path, row.sha256, row.size, row.kind)
            failures: dict[int, str] = {}
            worst: Exception | None = None
            for delivery in deliveries:
                if delivery.done:
                    continue
                action = actions[delivery.action_index]
                try:
                    detail = action.deliver(item)
                except Exception as exc:
                    if worst is None or (_permanent(exc) and not _permanent(worst)):
                        worst = exc  # one action that cannot succeed decides for the fax
                    failures[delivery.id] = _describe(exc)
                    log.warning(
                        "inbound.action_failed",
                        action=delivery.action_type,
                        target=delivery.target,
                        error=_describe(exc),
                    )
                    continue
                self.ledger.delivery_done(delivery.id, detail)
                log.info("inbound.action_done", action=delivery.action_type, detail=detail)
            if worst is not None:
                return self._record_failure(row, worst, failures)
            delivered = self.ledger.mark_delivered(row.recvid)
            log.info("inbound.delivered", actions=len(deliveries))
            return delivered

    def _hold(self, row: FaxRow, reason: str) -> FaxRow:
        """Keep the fax (here and on FAXAGE) until the operator acts; ``faxd inbox`` shows it."""
        log.warning("inbound.held", reason=reason, hint="kept on FAXAGE; see faxd inbox")
        return self.ledger.hold(row.recvid, reason)

    def _build(self, spec: RouteSpec) -> list[Action]:
        return [self.actions_for(a, smtp=self.config.smtp) for a in spec.actions]

    def _actions_of(self, name: str) -> list[Action] | None:
        """The actions of route ``name`` under the current config (``None``: gone)."""
        spec = self._route_named(name)
        return None if spec is None else self._build(spec)

    def _route_named(self, name: str) -> RouteSpec | None:
        return next((r for r in self.config.routes if r.name == name), None)

    def _route_gone(self, recvid: int, name: str) -> str:
        return (
            f"route {name!r}, chosen for this fax before, is no longer in {self.config.path} "
            "with the same actions, so its unfinished actions cannot run; put it back, or run "
            f"`faxd retry {recvid}` to route the fax again"
        )

    def _finish(self, row: FaxRow) -> FaxRow:
        """delivered -> done: delfax (unless kept on purpose), then drop the spool file."""
        deleted = self.settings.delete_after_delivery
        if deleted:
            try:
                self.client.delfax(row.recvid)
            except NotFoundError:
                log.info("inbound.already_deleted", hint="FAXAGE no longer has it; nothing lost")
        done = self.ledger.mark_done(row.recvid, deleted=deleted)
        self.spool.remove(row.spool_path)
        log.info("inbound.done", deleted_on_faxage=deleted)
        return done

    def _record_failure(self, row: FaxRow, exc: Exception, deliveries: dict[int, str]) -> FaxRow:
        """Count a failed step: back off, or give up at once if it cannot help."""
        message = _describe(exc)
        permanent = _permanent(exc)
        if not isinstance(exc, FaxdError | OSError):
            log.exception("inbound.unexpected_error", step=row.state.value)
        after = self.ledger.record_failure(
            row.recvid,
            f"{row.state.value}: {message}",
            policy=self.policy,
            rng=self.rng,
            deliveries=deliveries,
            permanent=permanent,
        )
        if after.state is FaxState.FAILED:
            log.error(
                "inbound.fax_failed",
                error=message,
                attempts=after.attempts,
                hint=f"kept on FAXAGE; fix the cause, then run `faxd retry {row.recvid}`",
            )
        else:
            log.warning(
                "inbound.attempt_failed",
                step=row.state.value,
                error=message,
                attempts=after.attempts,
                next_attempt_at=str(after.next_attempt_at),
            )
        return after

    # ------------------------------------------------------------ operator and recovery

    def retry(self, recvid: int) -> FaxState:
        """``faxd retry``: send a failed or held fax back to work, attempts reset.

        It resumes where it stands: ``delivered`` if every delivery is done,
        ``downloaded`` if the spool copy is intact, else ``listed``.
        """
        row = self.ledger.get(recvid)
        if row is None:
            raise FaxdError(
                f"no inbound fax {recvid} in the database; `faxd inbox` lists the faxes faxd knows"
            )
        if row.state not in (FaxState.FAILED, FaxState.HELD):
            raise FaxdError(
                f"fax {recvid} is {row.state.value}; only failed or held faxes can be retried"
            )
        deliveries = self.ledger.deliveries(recvid)
        actions = self._actions_of(row.route) if row.route is not None else []
        reroute = row.route is not None and (
            actions is None or not _compatible(actions, deliveries)
        )
        intact = row.spool_path is not None and spooling.matches(
            row.spool_path, row.size, row.sha256
        )
        target = FaxState.LISTED
        if intact:
            all_done = bool(deliveries) and all(d.done for d in deliveries) and not reroute
            target = (
                FaxState.DELIVERED
                if all_done and row.state is FaxState.FAILED
                else FaxState.DOWNLOADED
            )
        self.ledger.revive(recvid, target, reroute=reroute)
        log.info("inbound.retry", recvid=recvid, state=target.value, rerouted=reroute)
        return target

    def _recover(self) -> None:
        """Once per start: drop partial downloads and spool files of finished faxes."""
        if self._recovered:
            return
        self._recovered = True
        for path in self.spool.stale_files(self.ledger.unfinished()):
            path.unlink(missing_ok=True)
            log.info("inbound.spool_cleaned", path=str(path))


def _permanent(exc: BaseException) -> bool:
    """Whether trying again cannot help (a faxd error that says it is not transient)."""
    return isinstance(exc, FaxdError) and not exc.transient


def _describe(exc: BaseException) -> str:
    """A one-line description of a failure (FaxdError messages are already redacted)."""
    if isinstance(exc, FaxdError):
        return exc.message
    if isinstance(exc, OSError):
        where = f" ({exc.filename})" if exc.filename else ""
        return redact(f"{exc.strerror or exc}{where}")
    return redact(f"{type(exc).__name__}: {exc}")


def _compatible(actions: Sequence[Action], deliveries: Sequence[DeliveryRow]) -> bool:
    """Whether every unfinished delivery row still has its action at its index."""
    for delivery in deliveries:
        if delivery.done:
            continue
        index = delivery.action_index
        if index >= len(actions) or actions[index].type != delivery.action_type:
            return False
    return True


def _merge(a: PollOutcome, b: PollOutcome) -> PollOutcome:
    return PollOutcome(
        new=a.new + b.new,
        done=a.done + b.done,
        failed=a.failed + b.failed,
        held=a.held + b.held,
        errors=a.errors + b.errors,
        paused=a.paused or b.paused,
    )
