"""``faxd run``: the long-running process, readable top to bottom.

:meth:`Daemon.run` starts the pieces, then the main thread only waits on an
``Event`` that the signal handlers set (rq's worker loop, STYLE.md §5):

- an APScheduler 3 ``BackgroundScheduler`` runs the inbound poll, the sweep,
  the outbound submit pass and the status follow-up, each ``max_instances=1``
  and ``coalesce=True``;
- the outbound service's watcher and worker thread run beside it;
- a heartbeat thread pings the systemd watchdog while the health check passes;
- with ``[http]``, a waitress listener (:mod:`faxd.web.app`) whose provider
  callbacks move the poll or the status follow-up to now through a
  :class:`~faxd.wake.Waker`, and which serves ``/healthz`` and ``/metrics``.

SIGTERM / SIGINT stop taking new work: the scheduler is shut down without
waiting, the outbound worker finishes the file in hand, and a job thread still
inside a download gets a few seconds before the process exits anyway.  Nothing
is lost by that: the database says where every fax and job stands, and the
next start resumes there.  Job threads are daemon threads (see
:class:`~faxd.scheduling.DaemonThreadExecutor`) so a slow FAXAGE can never
hold the exit past systemd's stop timeout.

SIGHUP reloads the config file: routes and intervals change in place; a config
that does not load is refused, its problems logged, and the old one kept.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import structlog
from apscheduler.events import (
    EVENT_JOB_ADDED,
    EVENT_JOB_MODIFIED,
    EVENT_JOB_SUBMITTED,
    JobEvent,
)
from apscheduler.jobstores.base import JobLookupError
from sqlalchemy import text

from faxd import app as wiring
from faxd.clock import Clock, system_clock
from faxd.config import Config, load_config
from faxd.errors import ConfigError, FaxdError
from faxd.notify import Heartbeat, Notifier
from faxd.scheduling import DaemonThreadExecutor, Pass, apply_schedule, new_scheduler
from faxd.store.claims import NOTIFY_ROLE, RETENTION_ROLE
from faxd.tables import job_counts
from faxd.wake import Waker

if TYPE_CHECKING:
    from faxd.store.claims import Renewal

log = structlog.get_logger(__name__)

#: How long a stop waits for job threads still inside a download or an action.
STOP_GRACE_SECONDS = 5.0
#: After a stop request, a process that has still not exited is ended this many seconds
#: later (``faxd run`` only): safe, as the database records every step, and it keeps
#: the exit inside systemd's stop timeout whatever a thread is stuck in.
STOP_DEADLINE_SECONDS = 8.0
#: The outbound submit pass runs at least this often, so a dropped file goes out quickly.
QUICK_SUBMIT_SECONDS = 3.0
#: How often ``[retention]`` runs (it also runs once at start).
RETENTION_SECONDS = 86400.0
#: How often the admin mails that are due are sent (``[notify]``).
NOTIFY_SECONDS = 30.0
#: A poll pass run for one provider's callback also polls every other provider whose
#: last poll began at least this share of ``poll_interval`` ago, so callbacks from one
#: provider (which move the shared poll job forward) never starve another.
DUE_FRACTION = 0.9


class Daemon:
    """One faxd process: build from a config, run until a signal, tear down."""

    def __init__(
        self,
        config: Config,
        *,
        notifier: Notifier | None = None,
        watchdog_seconds: float | None = None,
        clock: Clock = system_clock,
        loader: Callable[[Path], Config] = load_config,
        stop_deadline: float | None = None,
    ) -> None:
        self.config = config
        self.notifier = notifier or Notifier(None)
        self.watchdog_seconds = watchdog_seconds
        self.clock = clock
        self.started_at = clock()
        self.loader = loader
        self.stop_deadline = stop_deadline
        self.app: wiring.App | None = None
        self.scheduler: Any = None
        self.executor = DaemonThreadExecutor()
        self.heartbeat: Heartbeat | None = None
        self.renewal: Renewal | None = None  # keeps this instance's claims alive
        self._stop = threading.Event()  # set by SIGTERM/SIGINT: leave the loop
        self._wake = threading.Event()  # set by any signal: the loop looks again
        self._reload = threading.Event()  # set by SIGHUP
        # One inbound pass (poll or sweep) and one outbound pass (submit or follow)
        # at a time, also across a reload that replaced the objects doing them.
        self._inbound_busy = threading.Lock()
        #: A poll was skipped because a sweep held the inbound side: poll once it ends,
        #: or a fax pushed meanwhile would wait a whole poll interval.
        self._poll_skipped = threading.Event()
        self._outbound_busy = threading.Lock()
        self._deadline: threading.Timer | None = None
        self._old_handlers: dict[int, Any] = {}
        self.last_poll: str = "not polled yet"
        # Provider callbacks ([http]) run these passes now, collapsing bursts.
        self.poll_waker = Waker("inbound-poll", lambda: self.scheduler)
        self.follow_waker = Waker("outbound-follow", lambda: self.scheduler)
        # Providers whose callback asked for a poll, and when each one's last poll began
        # (monotonic): a pass run for a hint polls those providers and any that are due.
        self._hint_lock = threading.Lock()
        self._hinted: set[str] = set()
        self._polled_at: dict[str, float] = {}
        self.listener: Any = None  # faxd.web.app.Listener with [http]

    # -- the loop ----------------------------------------------------------------------

    def run(self) -> int:
        """Run until SIGTERM/SIGINT (or :meth:`request_stop`); returns the exit code."""
        self._install_signal_handlers()
        try:
            self._start()
            while not self._stop.is_set():
                self._wake.wait()
                self._wake.clear()
                if self._reload.is_set() and not self._stop.is_set():
                    self._reload.clear()
                    try:
                        self.reload()
                    except Exception:  # a failed reload must not take the daemon down
                        log.exception("config.reload_failed", hint="fix it and send SIGHUP")
            log.info("daemon.stopping")
            self.notifier.stopping()
        finally:
            self._teardown()
            self._restore_signal_handlers()
        log.info("daemon.stopped")
        return 0

    def run_once(self) -> int:
        """One inbound poll (which processes everything due) and one outbound pass.

        Raises :class:`FaxdError` (exit 1) when either half could not do its
        work, e.g. FAXAGE unreachable; the log lines above it say why.
        """
        self.app = wiring.build_app(self.config, clock=self.clock)
        problems: list[str] = []
        renewal = self._claim_instance()
        try:
            for name, pipeline in self.app.pipelines.items():
                outcome = pipeline.poll()
                log.info("daemon.polled", provider=name, outcome=outcome.summary())
                if outcome.errors or outcome.paused:
                    problems.append(f"inbound {name}: {outcome.summary()}")
            if self.app.outbound is not None:
                try:
                    self.app.outbound.run_once()
                except FaxdError as exc:
                    problems.append(f"outbound: {exc.message}")
            if self.app.mailer is not None:
                with _logged("notify"):  # a mail that cannot go waits in the database
                    if self._plays(NOTIFY_ROLE):
                        self.app.mailer.send_due()
        finally:
            renewal.stop()
            self._retire()  # every pass ran to its end in this thread: nothing is in hand
            self.app.close()
        if problems:
            raise FaxdError("; ".join(problems) + " (the log lines above say why)")
        return 0

    def request_stop(self) -> None:
        """Ask the loop to stop (what SIGTERM does); safe from any thread.

        With ``stop_deadline`` set, the first request also arms a timer that
        ends the process if it is still alive that many seconds later.
        """
        if self.stop_deadline is not None and self._deadline is None:
            self._deadline = threading.Timer(self.stop_deadline, _exit_now)
            self._deadline.daemon = True
            self._deadline.start()
        self._stop.set()
        self._wake.set()

    def request_reload(self) -> None:
        """Ask the loop to reload the config file (what SIGHUP does)."""
        self._reload.set()
        self._wake.set()

    # -- start, reload, stop -----------------------------------------------------------

    def _start(self) -> None:
        self.started_at = self.clock()
        self.app = wiring.build_app(self.config, clock=self.clock)  # migrates the database
        if self._stop.is_set():  # SIGTERM while migrating: start nothing, just leave
            return
        self.renewal = self._claim_instance()
        self._start_outbound()
        self._start_listener()
        self.scheduler = new_scheduler(self.executor)
        self.scheduler.add_listener(
            self._on_schedule_change, EVENT_JOB_ADDED | EVENT_JOB_MODIFIED | EVENT_JOB_SUBMITTED
        )
        self._schedule(first_run=True)
        log.info("daemon.ready", config=str(self.config.path), jobs=self.job_ids())
        self.notifier.ready(status=self.status_text())  # before any job can send STATUS=
        self.scheduler.start()
        if self.watchdog_seconds:  # after READY=1: systemd ignores pings before it
            self.heartbeat = Heartbeat(self.notifier, self.watchdog_seconds, self.is_healthy)
            self.heartbeat.start()

    def _schedule(self, *, first_run: bool) -> None:
        """Add (or replace) the scheduler's jobs with the current config's intervals."""
        inbound, outbound = self.config.inbound, self.config.outbound
        wanted: list[Pass] = []
        if inbound.enabled:
            wanted.append(("inbound-poll", self._poll_job, float(inbound.poll_interval)))
            wanted.append(("inbound-sweep", self._sweep_job, float(inbound.sweep_interval)))
        if outbound.enabled:
            quick = min(QUICK_SUBMIT_SECONDS, float(outbound.status_interval))
            wanted.append(("outbound-submit", self._submit_job, quick))
            wanted.append(("outbound-follow", self._follow_job, float(outbound.status_interval)))
        if self.config.retention is not None:
            wanted.append(("retention", self._retention_job, RETENTION_SECONDS))
        if self.config.notify is not None:
            wanted.append(("notify", self._notify_job, NOTIFY_SECONDS))
        apply_schedule(self.scheduler, wanted, first_run=first_run)

    def reload(self) -> bool:
        """Load the config file again and apply it; ``False`` if it was refused."""
        self.notifier.reloading()
        path = Path(self.config.path)
        try:
            new = self.loader(path)
        except ConfigError as exc:
            for problem in exc.problems:
                log.error("config.reload_refused", path=str(path), problem=problem)
            log.error("config.kept_old", path=str(path), hint="fix the file and send SIGHUP again")
            self.notifier.ready(status=f"config reload refused ({len(exc.problems)} problems)")
            return False
        old, self.config = self.config, new
        for section in ("faxage", "database", "http"):
            if getattr(old, section) != getattr(new, section):
                log.warning("config.needs_restart", section=section, hint="systemctl restart faxd")
        assert self.app is not None
        # Swap without waiting for a pass in progress (a download may take
        # minutes, and a SIGTERM must still be served): that pass finishes with
        # the object it holds, the old pipeline takes no further fax, and the
        # busy locks keep the next pass from starting before it is over.
        retired = list(self.app.pipelines.values())
        self.app.config = new
        self.app.pipelines = wiring.make_pipelines(
            new, self.app.db, self.app.client, metrics=self.app.metrics, claims=self.app.claims
        )
        for pipeline in retired:
            pipeline.stop()
        if old.outbound != new.outbound:
            if self.app.outbound is not None:
                self.app.outbound.stop()
            self.app.outbound = wiring.make_outbound(
                new, self.app.db, self.app.client, claims=self.app.claims
            )
            self._start_outbound()
        self._schedule(first_run=False)
        log.info("config.reloaded", path=str(path), routes=[r.name for r in new.routes])
        self.notifier.ready(status=self.status_text())
        return True

    def _teardown(self) -> None:
        """Stop everything started, in reverse order, each step on its own."""
        if self.heartbeat is not None:  # first: the parts stopping below are not a failure
            self.heartbeat.stop()
        if self.listener is not None:
            with _logged("http"):
                self.listener.stop()
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        for pipeline in self.app.pipelines.values() if self.app is not None else ():
            pipeline.stop()
        if self.app is not None and self.app.outbound is not None:
            self.app.outbound.stop()
        finished = self.executor.join(STOP_GRACE_SECONDS)
        if not finished:
            log.warning("daemon.abandoned_work", hint="resumed from the database at next start")
        if self.renewal is not None:
            self.renewal.stop()
        if finished:
            # Work still running in an abandoned thread keeps its claims until they
            # lapse, so no other server can start on it meanwhile.
            self._retire()
        if self.app is not None:
            self.app.close()

    def _claim_instance(self) -> Renewal:
        """Register this instance's name and keep its claims renewed while it works."""
        from faxd.logs import name_instance
        from faxd.store.claims import Renewal

        assert self.app is not None and self.app.claims is not None
        self.app.claims.register()
        if not self.app.db.is_sqlite:  # several servers: every line says which one wrote it
            name_instance(self.app.claims.name)
        return Renewal(self.app.claims).start()

    def _plays(self, role: str) -> bool:
        """Whether this instance does ``role``'s pass now: one server mails and cleans for all."""
        claims = self.app.claims if self.app is not None else None
        return claims is None or claims.hold(role)

    def _retire(self) -> None:
        """Give back every claim at a clean stop, so the other servers need not wait."""
        if self.app is not None and self.app.claims is not None:
            with _logged("claims"):
                self.app.claims.retire()

    # -- health and status -------------------------------------------------------------

    def is_healthy(self) -> bool:
        """Scheduler running, watcher and worker alive, database answering."""
        scheduler, app = self.scheduler, self.app
        if scheduler is None or app is None or not scheduler.running:
            return False
        thread = getattr(scheduler, "_thread", None)
        if thread is not None and not thread.is_alive():
            return False
        if app.outbound is not None and not app.outbound.is_healthy():
            return False
        with app.db.engine.connect() as connection:
            return connection.execute(text("SELECT 1")).scalar() == 1

    def health(self) -> Any:
        """``/healthz``: the database's view plus whether the hot folder is watched."""
        from faxd.web.health import check_health

        app = self.app
        assert app is not None
        watched = app.outbound.is_healthy() if app.outbound is not None else None
        return check_health(app.db, self.config, now=self.clock(), watched=watched)

    def job_ids(self) -> list[str]:
        """Names of the scheduled jobs."""
        return [job.id for job in self.scheduler.get_jobs()] if self.scheduler else []

    def status_text(self) -> str:
        """The ``STATUS=`` line: last poll's outcome and the outbound backlog."""
        assert self.app is not None
        pending = job_counts(self.app.db, active_only=True)
        return f"{self.last_poll}; {sum(pending.values())} jobs pending"

    # -- the scheduled jobs ------------------------------------------------------------

    def _poll_job(self) -> None:
        self.poll_waker.run(self._poll_once, stopping=self._stop.is_set)

    def _poll_once(self) -> None:
        with self._inbound(operation="poll") as pipelines:
            if pipelines is None:
                if not self._stop.is_set():
                    self._poll_skipped.set()
                return
            with self._hint_lock:
                hinted, self._hinted = self._hinted, set()
            lines: list[str] = []
            for name, pipeline in pipelines.items():
                if hinted and name not in hinted and not self._poll_due(name):
                    continue  # a callback from another provider: this one waits its turn
                # Each provider on its own: one that fails or is paused stops no other.
                with _logged(f"poll {name}"):
                    started = time.monotonic()
                    self._polled_at[name] = started
                    # A provider's callback says a fax is there: list now, even on the
                    # server that does not hold the listing role (pipeline.poll says why).
                    outcome = pipeline.poll(pushed=name in hinted)
                    metrics = self.app.metrics if self.app is not None else None
                    if metrics is not None:
                        metrics.polls.labels(name).inc()
                        metrics.poll_seconds.labels(name).observe(time.monotonic() - started)
                    line = (
                        outcome.summary() if outcome.paused
                        else f"polled {outcome.new} new, {outcome.failed} failed"
                    )  # fmt: skip
                    lines.append(line if len(pipelines) == 1 else f"{name}: {line}")
            if lines:
                self.last_poll = "; ".join(lines)
        self._report()

    def _start_listener(self) -> None:
        """With ``[http]``: serve callbacks, ``/healthz`` and ``/metrics`` on their own threads."""
        http, app = self.config.http, self.app
        if http is None or app is None or app.metrics is None:
            return
        from faxd.providers.registry import configured
        from faxd.web.app import Listener, WebApp

        web = WebApp(
            http.token,
            on_hint=self.on_hint,
            health=self.health,
            metrics=app.metrics,
            providers=configured(self.config),
        )
        try:
            self.listener = Listener(web, http.listen_host, http.listen_port)
        except OSError as exc:
            raise FaxdError(
                f"cannot listen on {http.listen_host}:{http.listen_port} ([http] listen in "
                f"{self.config.path}): {exc.strerror or exc}; pick a free port or stop "
                "what uses it"
            ) from None
        self.listener.start()

    def on_hint(self, provider: str, hint: Any) -> None:
        """A provider callback: poll that provider now, or follow up its sent jobs now.

        A hint is never the truth: it only moves a pass forward.  A callback
        from a provider that does not receive here (inbound) or does not send
        here (outbound) asks for nothing.
        """
        from faxd.web.hooks import HintKind

        app = self.app
        if app is None:
            return
        if hint.kind is HintKind.OUTBOUND:
            outbound = app.outbound
            if outbound is not None and outbound.provider.name == provider:
                self.follow_waker.wake()
            else:
                log.debug("http.callback_ignored", provider=provider, kind=hint.kind.value)
        elif provider in app.pipelines:
            with self._hint_lock:
                self._hinted.add(provider)
            self.poll_waker.wake()
        else:
            log.debug("http.callback_ignored", provider=provider, kind=hint.kind.value)

    def _poll_due(self, name: str) -> bool:
        """Whether provider ``name`` is due for its regular poll (never polled, or long ago)."""
        last = self._polled_at.get(name)
        interval = float(self.config.inbound.poll_interval)
        return last is None or time.monotonic() - last >= interval * DUE_FRACTION

    def _sweep_job(self) -> None:
        with self._inbound(operation="sweep") as pipelines:
            for name, pipeline in (pipelines or {}).items():
                with _logged(f"sweep {name}"):
                    pipeline.sweep()
        if self._poll_skipped.is_set() and not self._stop.is_set():
            self._poll_skipped.clear()
            self.poll_waker.wake()  # the poll (a callback's, say) skipped during the sweep
        self._report()

    def _start_outbound(self) -> None:
        """Start the outbox (if enabled), telling us whenever a file became a job."""
        outbound = self.app.outbound if self.app is not None else None
        if outbound is not None:
            outbound.on_queued = self._wake_submit
            outbound.start()

    def _wake_submit(self) -> None:
        """Run the submit pass now: a file just became a job (the hot folder's latency)."""
        scheduler = self.scheduler
        if scheduler is None or self._stop.is_set():
            return
        with suppress(JobLookupError):  # outbound switched off by a reload meanwhile
            scheduler.modify_job("outbound-submit", next_run_time=datetime.now(UTC))

    def _submit_job(self) -> None:
        with self._outbound(operation="submit") as outbound:
            if outbound is not None:
                outbound.submit_pending()

    def _follow_job(self) -> None:
        self.follow_waker.run(self._follow_once, stopping=self._stop.is_set)

    def _follow_once(self) -> None:
        with self._outbound(operation="follow") as outbound:
            if outbound is not None:
                outbound.follow_up()
        self._report()

    def _on_schedule_change(self, event: JobEvent) -> None:
        """Record the next poll and sweep as APScheduler set them, for `faxd status`."""
        from faxd.store.schedule import RECORDED_JOBS, record_next_run

        scheduler, app = self.scheduler, self.app
        if event.job_id not in RECORDED_JOBS or scheduler is None or app is None:
            return
        job = scheduler.get_job(event.job_id)
        try:
            for pipeline in app.pipelines.values():
                record_next_run(app.db, pipeline.name, pipeline.provider.account, event.job_id,
                                job.next_run_time if job is not None else None)  # fmt: skip
        except Exception as exc:  # the schedule line of `faxd status` is never worth a pass
            log.warning("daemon.schedule_not_recorded", job=event.job_id, error=str(exc))

    def _notify_job(self) -> None:
        from faxd.alerts.watch import check_provider

        mailer = self.app.mailer if self.app is not None else None
        if self.app is None or mailer is None or self._stop.is_set():
            return
        with _logged("notify"):
            if not self._plays(NOTIFY_ROLE):
                return
            for pipeline in self.app.pipelines.values():
                check_provider(
                    self.app.db, self.config.notify, pipeline.name, pipeline.provider.account,
                    poll_interval=self.config.inbound.poll_interval,
                    since=self.started_at, now=self.clock(),
                )  # fmt: skip
            mailer.send_due()

    def _retention_job(self) -> None:
        from faxd.retention import Retention

        app, settings = self.app, self.config.retention
        if app is None or settings is None or self._stop.is_set():
            return
        with _logged("retention"):
            if not self._plays(RETENTION_ROLE):
                return
            Retention(app.db, settings, self.config.outbound, clock=self.clock).run()

    @contextmanager
    def _inbound(self, *, operation: str) -> Iterator[Any]:
        """The pipelines to work with (by provider), or ``None`` if skipped or stopping.

        A poll that finds another pass running is skipped (the next one is
        due soon, and that pass processes what is due anyway); a sweep waits
        for it, as it would otherwise be lost until the next sweep interval.
        """
        if not self._acquire(self._inbound_busy, wait=operation != "poll"):
            log.debug("daemon.pass_skipped", operation=operation)
            yield None
            return
        try:
            with _logged(operation):
                yield self.app.pipelines if self.app else None
        finally:
            self._inbound_busy.release()

    @contextmanager
    def _outbound(self, *, operation: str) -> Iterator[Any]:
        """The outbound service, or ``None`` if stopping; passes never overlap."""
        if not self._acquire(self._outbound_busy, wait=True):
            yield None
            return
        try:
            with _logged(operation):
                yield self.app.outbound if self.app else None
        finally:
            self._outbound_busy.release()

    def _acquire(self, lock: threading.Lock, *, wait: bool) -> bool:
        """Take ``lock`` (waiting for it if ``wait``) unless stopping; ``True`` if taken."""
        while not self._stop.is_set():
            if lock.acquire(timeout=0.5) if wait else lock.acquire(blocking=False):
                if self._stop.is_set():  # the stop came while we waited
                    lock.release()
                    return False
                return True
            if not wait:
                return False
        return False

    def _report(self) -> None:
        try:
            self.notifier.status(self.status_text())
        except Exception as exc:  # a status line is never worth a failed job
            log.warning("daemon.status_failed", error=str(exc))

    # -- signals -----------------------------------------------------------------------

    def _install_signal_handlers(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # e.g. tests driving the loop from a thread: use request_stop()
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            self._old_handlers[signum] = signal.signal(signum, self._on_signal)

    def _restore_signal_handlers(self) -> None:
        for signum, handler in self._old_handlers.items():
            signal.signal(signum, handler)
        self._old_handlers.clear()

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if signum == signal.SIGHUP:
            self.request_reload()
        else:
            self.request_stop()


def _exit_now() -> None:
    """The stop deadline passed: leave now; the database says where to resume."""
    log.warning("daemon.stop_deadline", hint="work in progress is resumed at the next start")
    for stream in (sys.stdout, sys.stderr):
        with suppress(OSError, ValueError):
            stream.flush()
    os._exit(0)


@contextmanager
def _logged(operation: str) -> Iterator[None]:
    """Log a scheduled pass's failure without letting it kill the scheduler thread."""
    try:
        yield
    except FaxdError as exc:
        log.error("daemon.pass_failed", operation=operation, error=exc.message)
    except Exception:
        log.exception("daemon.pass_crashed", operation=operation)
