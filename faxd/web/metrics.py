"""``GET /metrics``: what faxd did and where it stands, in Prometheus text format.

Two kinds of numbers: what the database knows (faxes and jobs by state, the
oldest undelivered fax, the last successful listing, a paused login) is read
at each scrape by :class:`StateCollector`, so it is right after a restart and
the same whichever process scrapes; what only the running daemon sees (how
long polls, downloads and actions took, provider errors by kind, callbacks)
is counted as it happens by :class:`Metrics`, told through the client's
:class:`~faxd.providers.faxage.client.RequestObserver` hook, the action factory
(:meth:`Metrics.timed_actions`) and the daemon's poll job.  Everything lives
in its own ``CollectorRegistry``, never the process-global one, so two
daemons in one test process do not share counters.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from faxd.actions.base import Action, Deliverable
from faxd.clock import Clock, system_clock
from faxd.config import ActionSpec, Config, SmtpSettings
from faxd.errors import ProviderError
from faxd.inbound.worker import ActionFactory
from faxd.providers.base import Downloaded, InboundProvider, ListingBatch
from faxd.store.db import Database
from faxd.store.models import InboundFax, OutboundJob, PollCursor
from faxd.store.states import FaxState

#: The provider label of what only FAXAGE's client reports (download times, errors by
#: kind) and of an action whose fax names no provider.
PROVIDER = "faxage"
#: Faxes that have not reached their route's folder, printer or mailbox yet.
UNDELIVERED = tuple(
    s.value for s in (FaxState.LISTED, FaxState.DOWNLOADED, FaxState.HELD, FaxState.FAILED)
)
#: Duration buckets in seconds: a listing takes well under one, a big download minutes.
BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def error_kind(error: ProviderError) -> str:
    """``AuthError`` -> ``auth``, ``NotFoundError`` -> ``not_found``: the metric's label."""
    name = type(error).__name__.removesuffix("Error") or "provider"
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


class Metrics:
    """The daemon's counters and histograms, and the registry ``/metrics`` renders."""

    def __init__(self, db: Database, config: Config, *, clock: Clock = system_clock) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.poll_seconds = Histogram(
            "faxd_poll_duration_seconds", "Inbound polls (listing and processing what is due)",
            ["provider"], buckets=BUCKETS, registry=r,
        )  # fmt: skip
        self.download_seconds = Histogram(
            "faxd_download_duration_seconds", "Fax downloads (getfax), per attempt",
            ["provider"], buckets=BUCKETS, registry=r,
        )  # fmt: skip
        self.action_seconds = Histogram(
            "faxd_action_duration_seconds", "Delivery actions, by action type",
            ["provider", "action"], buckets=BUCKETS, registry=r,
        )  # fmt: skip
        self.polls = Counter("faxd_polls", "Inbound polls run", ["provider"], registry=r)
        self.provider_errors = Counter(
            "faxd_provider_errors", "Failed provider requests, by kind of error",
            ["provider", "kind"], registry=r,
        )  # fmt: skip
        self.callbacks = Counter(
            "faxd_callbacks", "Provider callbacks accepted, by what they asked for",
            ["provider", "kind"], registry=r,
        )  # fmt: skip
        self.refused = Counter(
            "faxd_callbacks_refused", "HTTP requests refused (bad_token, bad_path, too_large)",
            ["reason"], registry=r,
        )  # fmt: skip
        r.register(StateCollector(db, config, clock=clock))

    def render(self) -> bytes:
        """The Prometheus text exposition of everything."""
        return generate_latest(self.registry)

    # -- faxd.providers.faxage.client.RequestObserver ----------------------------------------

    def request_done(self, operation: str, seconds: float) -> None:
        if operation == "getfax":
            self.download_seconds.labels(PROVIDER).observe(seconds)

    def request_failed(self, operation: str, error: ProviderError) -> None:
        del operation
        self.provider_errors.labels(PROVIDER, error_kind(error)).inc()

    def observed(self, provider: InboundProvider) -> InboundProvider:
        """``provider`` with its downloads timed and its failures counted, per call.

        FAXAGE's client reports every attempt itself (``observer``); the other
        providers' clients retry inside, so their calls are observed here at
        the interface, labelled with the provider's name.
        """
        return _ObservedInbound(provider, self)

    # -- actions ---------------------------------------------------------------------

    def timed_actions(self, factory: ActionFactory) -> ActionFactory:
        """``factory`` whose actions' ``deliver`` calls are timed."""
        histogram = self.action_seconds

        def build(spec: ActionSpec, *, smtp: SmtpSettings | None) -> Action:
            return _TimedAction(factory(spec, smtp=smtp), histogram)

        return build


class _ObservedInbound:
    """An InboundProvider whose calls feed ``faxd_download_duration_seconds`` and errors."""

    def __init__(self, inner: InboundProvider, metrics: Metrics) -> None:
        self._inner = inner
        self._metrics = metrics
        self.name = inner.name
        self.account = inner.account
        self.capabilities = inner.capabilities
        zone = getattr(inner, "wall_clock_zone", None)
        if zone is not None:
            self.wall_clock_zone = zone

    def _failed(self, error: ProviderError) -> None:
        self._metrics.provider_errors.labels(self.name, error_kind(error)).inc()

    def list_new(self, cursor: str | None, *, now: datetime) -> Iterator[ListingBatch]:
        try:
            yield from self._inner.list_new(cursor, now=now)
        except ProviderError as exc:
            self._failed(exc)
            raise

    def list_all(self, *, now: datetime) -> Iterator[ListingBatch]:
        try:
            yield from self._inner.list_all(now=now)
        except ProviderError as exc:
            self._failed(exc)
            raise

    def download(self, remote_id: str, dest: Path, *, max_bytes: int | None) -> Downloaded:
        started = time.monotonic()
        try:
            result = self._inner.download(remote_id, dest, max_bytes=max_bytes)
        except ProviderError as exc:
            self._failed(exc)
            raise
        self._metrics.download_seconds.labels(self.name).observe(time.monotonic() - started)
        return result

    def release(self, remote_id: str) -> None:
        try:
            self._inner.release(remote_id)
        except ProviderError as exc:
            self._failed(exc)
            raise


class _TimedAction:
    """An action whose deliveries are observed in ``faxd_action_duration_seconds``."""

    def __init__(self, action: Action, histogram: Histogram) -> None:
        self._action = action
        self._histogram = histogram

    @property
    def type(self) -> str:
        return self._action.type

    @property
    def target(self) -> str:
        return self._action.target

    def deliver(self, item: Deliverable) -> str:
        provider = item.facts.provider or PROVIDER
        with self._histogram.labels(provider, self._action.type).time():
            return self._action.deliver(item)


class StateCollector(Collector):
    """Gauges read from the database at each scrape."""

    def __init__(self, db: Database, config: Config, *, clock: Clock = system_clock) -> None:
        self.db = db
        self.config = config
        self.clock = clock

    def describe(self) -> list[Metric]:
        return []  # read at each scrape; nothing to check at registration

    def collect(self) -> Iterator[Metric]:
        labels = ["provider", "state"]
        faxes = GaugeMetricFamily("faxd_faxes", "Received faxes by state", labels=labels)
        jobs = GaugeMetricFamily("faxd_jobs", "Outbound jobs by state", labels=labels)
        oldest = GaugeMetricFamily(
            "faxd_oldest_undelivered_fax_age_seconds",
            "Age of the oldest fax listed but not delivered (0: none)", labels=["provider"],
        )  # fmt: skip
        last = GaugeMetricFamily(
            "faxd_last_successful_poll_timestamp_seconds",
            "When a listing was last read to its end (0: never)", labels=["provider"],
        )  # fmt: skip
        paused = GaugeMetricFamily(
            "faxd_polling_paused", "1 while the provider refuses the login", labels=["provider"]
        )
        now = self.clock()
        with self.db.session() as session:
            for provider, state, count in session.execute(
                select(InboundFax.provider, InboundFax.state, func.count()).group_by(
                    InboundFax.provider, InboundFax.state
                )
            ):
                faxes.add_metric([provider, state], count)
            for provider, state, count in session.execute(
                select(OutboundJob.provider, OutboundJob.state, func.count()).group_by(
                    OutboundJob.provider, OutboundJob.state
                )
            ):
                jobs.add_metric([provider, state], count)
            for provider in self.config.inbound_providers:
                first = session.scalar(
                    select(func.min(InboundFax.listed_at)).where(
                        InboundFax.provider == provider, InboundFax.state.in_(UNDELIVERED)
                    )
                )
                cursors = session.scalars(
                    select(PollCursor).where(PollCursor.provider == provider)
                ).all()
                oldest.add_metric([provider], _age(now, first))
                times = [c.last_listed_at for c in cursors if c.last_listed_at is not None]
                last.add_metric([provider], min(times).timestamp() if times else 0.0)
                is_paused = any(c.paused_reason is not None for c in cursors)
                paused.add_metric([provider], 1.0 if is_paused else 0.0)
        yield from (faxes, jobs, oldest, last, paused)
        if self.config.outbound.enabled:
            waiting = GaugeMetricFamily(
                "faxd_hotfolder_files_waiting", "Files in the hot folder not yet taken"
            )
            waiting.add_metric([], files_waiting(self.config.outbound.hot_folder))
            yield waiting


def _age(now: datetime, then: datetime | None) -> float:
    if then is None:
        return 0.0
    return max(0.0, (now - then).total_seconds())


def files_waiting(folder: Path) -> int:
    """Visible regular files directly in ``folder`` (0 when it cannot be read)."""
    try:
        with os.scandir(folder) as entries:
            return sum(
                1
                for entry in entries
                if not entry.name.startswith(".") and entry.is_file(follow_symlinks=False)
            )
    except OSError:
        return 0
