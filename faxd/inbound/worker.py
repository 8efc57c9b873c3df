"""One fax's journey, step by step: download, route, deliver, delete.

:class:`FaxWorker` takes one fax as far as it can go now.  Every step is
ordered so that a crash at any instant loses nothing and duplicates no file
(DESIGN invariants 1-3):

1. ``listed``: downloaded by the provider's adapter into the spool's
   ``.part`` file, verified by it, fsync'd and renamed; then ``downloaded``
   with size and sha256.
2. ``downloaded``: the spool copy is re-checked (a missing or changed file goes
   back to ``listed``); the fax is routed; one delivery row per action is
   committed *before* any action runs; each action's success is committed on
   its own, so a restart repeats only what was not recorded.
3. every delivery done: ``delivered`` is committed, *then* the fax is released
   on the provider (deleted or moved; nothing when its capabilities say
   ``Release.KEEP``), then ``done``, then the spool file is removed.

A failure is recorded with backoff, or after ``max_attempts`` as ``failed``
(kept on the provider).  A lack of disk is no failure (:mod:`faxd.inbound.diskguard`):
with too little free space no download starts, and a disk that fills during a
download or a folder delivery leaves no partial file and no attempt counted;
the fax waits, in the state it had, until space returns.

Several faxd instances may share the database (DESIGN "Several
instances"), so a fax is *claimed* in it (:mod:`faxd.store.claims`) before
its worker starts and given back when the worker returns, however the pass
ended (done, failed, backing off, held, waiting for disk).  A fax another live
instance holds is left to it.  Right before each side effect (the download,
each action, the release) the claim is renewed; if it was lost meanwhile (this
instance stalled past its lease and another took the fax over), the worker
stops there without the side effect, and the other instance finishes the fax.

The worker holds no state of its own between calls: the ledger's short
transactions and the fax's own spool files are all it touches, so one worker
serves every thread of the pipeline's pool at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from datetime import tzinfo
from typing import Protocol

import structlog
from structlog.contextvars import bound_contextvars

from faxd.actions.base import Action, Deliverable
from faxd.actions.folder import FolderAction
from faxd.alerts.events import retry_command
from faxd.clock import Clock
from faxd.config import ActionSpec, Config, RouteSpec, SmtpSettings
from faxd.errors import AuthError, FaxdError, NotFoundError, RoutingError, TooLargeError
from faxd.inbound import spool as spooling
from faxd.inbound.backoff import RandomSource, RetryPolicy
from faxd.inbound.diskguard import DiskGuard, disk_full
from faxd.inbound.ledger import Ledger
from faxd.inbound.rows import DeliveryRow, FaxRow, Plan
from faxd.inbound.spool import Spool
from faxd.providers.base import InboundProvider, Release
from faxd.redact import redact
from faxd.routing import FaxFacts, route
from faxd.store.claims import RowClaims
from faxd.store.states import FAX_ACTIVE, FaxState

log = structlog.get_logger(__name__)

#: Bytes in one MB of ``[inbound] max_fax_mb``.
MIB = 1024 * 1024

#: Most state changes one fax can make in one pass (listed, downloaded,
#: delivered, done, plus one trip back to listed for a damaged spool file).
_MAX_STEPS = 6


class ActionFactory(Protocol):
    """Builds the action for one action spec (``build_action`` by default)."""

    def __call__(self, spec: ActionSpec, *, smtp: SmtpSettings | None) -> Action: ...


class FaxWorker:
    """Moves one fax at a time through its states; safe to share between threads."""

    def __init__(
        self,
        provider: InboundProvider,
        ledger: Ledger,
        spool: Spool,
        config: Config,
        *,
        actions_for: ActionFactory,
        clock: Clock,
        rng: RandomSource,
        claims: RowClaims,
        guard: DiskGuard | None = None,
    ) -> None:
        self.provider = provider
        #: This instance's claims on fax rows: taken, kept before each side effect, given back.
        self.claims = claims
        #: The zone of the provider's naive wall-clock times, if its adapter knows it
        #: (``wall_clock_zone``); ``None``: this machine's.
        self.zone: tzinfo | None = getattr(provider, "wall_clock_zone", None)
        #: Downloads wait while it finds a disk short of space (``None``: never).
        self.guard = guard
        self.ledger = ledger
        self.spool = spool
        self.config = config
        self.actions_for = actions_for
        self.clock = clock
        self.rng = rng
        self.policy = RetryPolicy(
            base=config.inbound.backoff_base,
            cap=config.inbound.backoff_max,
            max_attempts=config.inbound.max_attempts,
        )

    def run(self, remote_id: str) -> FaxRow | None:
        """Take fax ``remote_id`` as far as it can go now; the row it ends in.

        Failures are recorded, never raised, except :class:`AuthError`, which
        concerns the whole account.  ``None`` if the database does not know
        the fax, or another instance holds its claim (it is in hand there).
        """
        row = self.ledger.get(remote_id)
        if row is None or row.state not in FAX_ACTIVE:
            return row
        if not self.claims.take(row.id):
            log.debug("inbound.claimed_elsewhere", provider=row.provider, remote_id=remote_id)
            return None
        finished_here = False
        try:
            # Read again now that it is ours: another instance may have moved it on
            # between the read above and the claim.
            now = self.ledger.get(remote_id)
            if now is None:
                return None
            ended = self._steps(now)
            finished_here = ended.state is FaxState.DONE and now.state is not FaxState.DONE
            return ended
        finally:
            if not finished_here:  # mark_done gave the claim back in its own commit
                self.claims.give_back(row.id)  # a no-op if another instance holds it now

    def _steps(self, row: FaxRow) -> FaxRow:
        """The steps of a claimed fax, while it makes progress."""
        with bound_contextvars(provider=row.provider, remote_id=row.remote_id, dnis=row.dnis):
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
                if row.state is before or row.next_attempt_at is not None:
                    break  # no progress, a failure recorded (backing off), or the claim lost
            return row

    def _keep(self, row: FaxRow, before: str) -> bool:
        """Renew the fax's claim right before a side effect; ``False``: lost, do nothing."""
        if self.claims.keep(row.id):
            return True
        log.warning(
            "inbound.claim_lost",
            before=before,
            hint="another faxd instance took this fax over (this one stalled past "
            "[database] lease_seconds); it finishes the fax, this one stops here",
        )
        return False

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
                return self.ledger.relist(row.remote_id, "spool file missing or changed")
            return self._deliver(row)
        if row.state is FaxState.DELIVERED:
            return self._finish(row)
        return row

    def _download(self, row: FaxRow) -> FaxRow:
        """listed -> downloaded, routed and planned in the same commit, then delivered.

        The spool file was verified a moment ago by this thread, so the
        deliveries run on it at once; a fax that cannot be routed is recorded
        as downloaded and held.
        """
        if self.guard is not None and self.guard.check():
            return row  # downloads paused: the fax waits on the provider, no attempt counted
        if not self._keep(row, "download"):
            return row
        limit = self.config.inbound.max_fax_mb
        try:
            self.spool.ensure()
            part = self.spool.new_part(row.remote_id)  # a spool out of inodes fails here
            result = self.provider.download(row.remote_id, part, max_bytes=int(limit * MIB))
            final = self.spool.commit(part, row.remote_id, result.kind)
        except TooLargeError as exc:
            self.spool.discard_part(row.remote_id)
            # Permanent: the fax fails now and stays on the provider until the limit is raised.
            raise TooLargeError(
                f"fax {row.remote_id} is larger than [inbound] max_fax_mb = {limit:g} MB; "
                f"raise it and run `{retry_command(row.provider, row.remote_id)}`",
                limit=exc.limit,
                operation=exc.operation or "download",
            ) from exc
        except BaseException as exc:
            self.spool.discard_part(row.remote_id)
            if self.guard is not None and isinstance(exc, Exception) and disk_full(exc):
                log.warning(
                    "inbound.download_disk_full",
                    folder=str(self.spool.root),
                    hint="partial file removed; the fax waits on the provider for space",
                )
                self.guard.filled(self.spool.root)
                return row
            raise
        log.debug("inbound.downloaded", size=result.size, kind=result.kind)
        facts = _facts(row, result.kind)
        chosen = self._route(row, facts)
        if isinstance(chosen, str):
            downloaded, _ = self.ledger.mark_downloaded(row.remote_id, final, result)
            return self._hold(downloaded, chosen)
        spec, planned = chosen
        downloaded, plan = self.ledger.mark_downloaded(
            row.remote_id, final, result, route=spec.name, actions=_described(planned)
        )
        assert plan is not None
        return self._run_plan(downloaded, facts, spec, planned, plan)

    def _deliver(self, row: FaxRow) -> FaxRow:
        """downloaded -> delivered (or held): route, plan, run each pending action."""
        assert row.kind is not None
        facts = _facts(row, row.kind)
        chosen = self._route(row, facts)
        if isinstance(chosen, str):
            return self._hold(row, chosen)
        spec, planned = chosen
        plan = self.ledger.plan_deliveries(row.remote_id, spec.name, _described(planned))
        return self._run_plan(row, facts, spec, planned, plan)

    def _route(self, row: FaxRow, facts: FaxFacts) -> tuple[RouteSpec, list[Action]] | str:
        """The route that takes the fax and its actions, or why the fax must be held.

        ``hours`` are matched against when the fax was *received*, not when it is
        processed: a fax that arrived at 22:00 during an outage is still an
        after-hours fax when faxd catches up at 08:00.
        """
        zone = self.zone
        received = row.recvdate.replace(tzinfo=zone) if zone is not None else row.recvdate
        try:
            spec = route(facts, self.config.routes, received)
        except RoutingError as exc:
            return exc.message
        if not spec.actions:
            return (
                f"route {spec.name!r} has no actions; give it at least one in {self.config.path} "
                f"and run `{retry_command(row.provider, row.remote_id)}`"
            )
        return spec, self._build(spec)

    def _run_plan(
        self,
        row: FaxRow,
        facts: FaxFacts,
        spec: RouteSpec,
        planned: list[Action],
        plan: Plan,
    ) -> FaxRow:
        """Run the recorded plan: the route chosen now, or the one recorded before."""
        assert row.spool_path is not None and row.kind and row.sha256 and row.size is not None
        with bound_contextvars(route=plan.route):
            if plan.route != spec.name:
                # Routed before (under an older config): finish that route, never redo.
                log.info("inbound.route_kept", now_matching=spec.name)
            actions = planned if plan.route == spec.name else self.actions_of(plan.route)
            if actions is None or not compatible(actions, plan.deliveries):
                return self._hold(row, self.route_gone(row, plan.route))
            item = Deliverable(facts, plan.route, row.spool_path, row.sha256, row.size, row.kind)
            return self._run_actions(row, item, actions, plan.deliveries)

    def _run_actions(
        self,
        row: FaxRow,
        item: Deliverable,
        actions: Sequence[Action],
        deliveries: Sequence[DeliveryRow],
    ) -> FaxRow:
        """Run every unfinished delivery, recording each success on its own commit.

        The commit of the last success also makes the fax ``delivered``.
        """
        failures: dict[int, str] = {}
        worst: Exception | None = None
        waiting = False  # a delivery waits for disk space: no failure, not delivered yet
        for delivery in deliveries:
            if delivery.done:
                continue
            action = actions[delivery.action_index]
            # Only a folder action writes to a disk faxd watches; the others do not wait.
            root = action.root if isinstance(action, FolderAction) else None
            if root is not None and self.guard is not None and self.guard.waits(root):
                waiting = True
                continue
            if not self._keep(row, f"{delivery.action_type} {delivery.target}"):
                return row  # what succeeded is recorded; the new holder runs the rest
            try:
                detail = action.deliver(item)
            except Exception as exc:
                if root is not None and self.guard is not None and disk_full(exc):
                    log.warning(
                        "inbound.delivery_disk_full",
                        action=delivery.action_type,
                        target=delivery.target,
                        error=describe(exc),
                        hint="no partial file left; the delivery waits for space",
                    )
                    self.guard.filled(root)
                    waiting = True
                    continue
                if worst is None or (permanent(exc) and not permanent(worst)):
                    worst = exc  # one action that cannot succeed decides for the fax
                failures[delivery.id] = describe(exc)
                log.warning(
                    "inbound.action_failed",
                    action=delivery.action_type,
                    target=delivery.target,
                    error=describe(exc),
                )
                continue
            row = self.ledger.delivery_done(delivery.id, detail)
            log.info("inbound.action_done", action=delivery.action_type, detail=detail)
        if worst is not None:
            return self._record_failure(row, worst, failures)
        if waiting:
            return row
        if row.state is not FaxState.DELIVERED:
            # Every delivery was already done (recorded before a crash or a retry),
            # or another instance that took the fax over has finished it meanwhile.
            if not self._keep(row, "delivered"):
                return row
            row = self.ledger.mark_delivered(row.remote_id)
        log.debug("inbound.delivered", actions=len(deliveries))
        return row

    def _hold(self, row: FaxRow, reason: str) -> FaxRow:
        """Keep the fax (here and on the provider) until the operator acts (``faxd inbox``)."""
        log.warning("inbound.held", reason=reason, hint="kept on the provider; see faxd inbox")
        return self.ledger.hold(row.remote_id, reason)

    def _build(self, spec: RouteSpec) -> list[Action]:
        return [self.actions_for(a, smtp=self.config.smtp) for a in spec.actions]

    def actions_of(self, name: str) -> list[Action] | None:
        """The actions of route ``name`` under the current config (``None``: gone)."""
        spec = next((r for r in self.config.routes if r.name == name), None)
        return None if spec is None else self._build(spec)

    def route_gone(self, row: FaxRow, name: str) -> str:
        """Why a fax whose recorded route no longer fits the config is held."""
        return (
            f"route {name!r}, chosen for this fax before, is no longer in {self.config.path} "
            "with the same actions, so its unfinished actions cannot run; put it back, or run "
            f"`{retry_command(row.provider, row.remote_id)}` to route the fax again"
        )

    def _finish(self, row: FaxRow) -> FaxRow:
        """delivered -> done: release on the provider (unless kept), then drop the spool file."""
        released = self.provider.capabilities.release is not Release.KEEP
        if not self._keep(row, "release"):
            return row
        if released:
            try:
                self.provider.release(row.remote_id)
            except NotFoundError:
                log.info("inbound.already_deleted", hint="the provider no longer has it")
        done = self.ledger.mark_done(row.remote_id, deleted=released)
        self.spool.remove(row.spool_path)
        with _route_context(row.route):
            log.info("inbound.done", released=released)
        return done

    def _record_failure(self, row: FaxRow, exc: Exception, deliveries: dict[int, str]) -> FaxRow:
        """Count a failed step: back off, or give up at once if it cannot help."""
        message = describe(exc)
        if not isinstance(exc, FaxdError | OSError):
            log.exception("inbound.unexpected_error", step=row.state.value)
        after = self.ledger.record_failure(
            row.remote_id,
            f"{row.state.value}: {message}",
            policy=self.policy,
            rng=self.rng,
            deliveries=deliveries,
            permanent=permanent(exc),
        )
        with _route_context(after.route or row.route):
            self._log_failure(row, after, message)
        return after

    def _log_failure(self, row: FaxRow, after: FaxRow, message: str) -> None:
        if after.state is FaxState.FAILED:
            log.error(
                "inbound.fax_failed",
                error=message,
                attempts=after.attempts,
                hint="kept on the provider; fix the cause, then run "
                f"`{retry_command(row.provider, row.remote_id)}`",
            )
        else:
            log.warning(
                "inbound.attempt_failed",
                step=row.state.value,
                error=message,
                attempts=after.attempts,
                next_attempt_at=str(after.next_attempt_at),
            )


def _route_context(route: str | None) -> AbstractContextManager[object]:
    """Bind ``route`` to the log lines inside, once the fax has one."""
    return bound_contextvars(route=route) if route else nullcontext()


def _facts(row: FaxRow, kind: str) -> FaxFacts:
    """What routing and path templates know about a fax."""
    return FaxFacts(
        recvid=row.remote_id,
        provider=row.provider,
        dnis=row.dnis,
        cid=row.cid,
        pages=row.pagecount,
        ext=spooling.extension(kind),
        received=row.recvdate,
    )


def _described(actions: Sequence[Action]) -> list[tuple[str, str]]:
    """``(type, target)`` of each action, as the delivery rows record them."""
    return [(a.type, a.target) for a in actions]


def permanent(exc: BaseException) -> bool:
    """Whether trying again cannot help (a faxd error that says it is not transient)."""
    return isinstance(exc, FaxdError) and not exc.transient


def describe(exc: BaseException) -> str:
    """A one-line description of a failure (FaxdError messages are already redacted)."""
    if isinstance(exc, FaxdError):
        return exc.message
    if isinstance(exc, OSError):
        where = f" ({exc.filename})" if exc.filename else ""
        return redact(f"{exc.strerror or exc}{where}")
    return redact(f"{type(exc).__name__}: {exc}")


def compatible(actions: Sequence[Action], deliveries: Sequence[DeliveryRow]) -> bool:
    """Whether every unfinished delivery row still has its very action at its index.

    Type *and* target must match: after a reload that swapped two folders of
    a route, the action now at a pending row's index may be one already done,
    and running it would let the release delete a fax the other folder never got.
    """
    for delivery in deliveries:
        if delivery.done:
            continue
        index = delivery.action_index
        if index >= len(actions):
            return False
        action = actions[index]
        if action.type != delivery.action_type or action.target != delivery.target:
            return False
    return True
