"""Build faxd's working objects from a :class:`~faxd.config.Config`, in one place.

``faxd run``, ``faxd run --once``, ``faxd demo`` and the operator's commands all
need the same database, FAXAGE client, inbound pipeline and outbound service,
built the same way from the same settings.  This is the only module that
constructs them, so a new setting is wired once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from faxd.clock import Clock, system_clock

if TYPE_CHECKING:
    from faxd.alerts.mailer import AdminMailer
    from faxd.config import Config, FaxageSettings
    from faxd.inbound.pipeline import InboundPipeline
    from faxd.outbound.service import Outbound
    from faxd.providers.base import OutboundProvider
    from faxd.providers.faxage.client import FaxageClient
    from faxd.store.claims import Claims
    from faxd.store.db import Database
    from faxd.web.metrics import Metrics


def open_database(config: Config, *, upgrade: bool = False, check: bool = True) -> Database:
    """The configured database, migrated to the newest schema if ``upgrade``.

    Without ``upgrade`` (the operator's commands), a database whose schema is
    not the newest is refused with what to do, rather than failing later on
    a missing table.
    """
    from faxd.errors import FaxdError
    from faxd.store.db import Database

    db = Database(config.database.url, password=config.database.password)
    if not db.is_sqlite:
        db.check_connection()
    if upgrade:
        db.upgrade()
    elif check:
        current, newest = db.current_revision(), db.head_revision()
        if current != newest:
            db.dispose()
            state = f"schema {current}" if current else "no tables yet"
            raise FaxdError(
                f"the database {_shown(config.database.url)} is not ready ({state}, "
                f"this faxd needs {newest}): run `faxd db upgrade` or start the daemon once"
            )
    return db


def _shown(url: str) -> str:
    """A SQLite database as its file, a server's as its URL (which holds no password)."""
    return url.split("///")[-1] if url.startswith("sqlite") else url


def make_client(settings: FaxageSettings, *, retries: int = 3) -> FaxageClient:
    """A FAXAGE client for the configured account."""
    from faxd.providers.faxage.client import FaxageClient

    return FaxageClient(
        settings.username,
        settings.company,
        settings.password,
        base_url=settings.base_url,
        timeout=float(settings.timeout),
        retries=retries,
    )


def make_pipelines(
    config: Config,
    db: Database,
    client: FaxageClient | None,
    *,
    clock: Clock = system_clock,
    metrics: Metrics | None = None,
    claims: Claims | None = None,
) -> dict[str, InboundPipeline]:
    """One inbound pipeline per provider in ``[inbound] providers`` (none when disabled).

    They share one dispatcher, so a fax is never worked on twice at once
    whichever pass holds it.  ``client`` is the shared FAXAGE client (passed
    to FAXAGE's adapter).  With ``metrics``, each action's delivery is timed
    for ``/metrics``.  ``claims``: this instance's (the daemon's), shared by
    every pipeline; ``None``: new ones under ``[database] instance``, the same
    name, so a reload's pipelines claim as the daemon's own.
    """
    if not config.inbound.enabled:
        return {}
    from faxd.actions.base import build_action
    from faxd.inbound.dispatch import Dispatcher
    from faxd.inbound.pipeline import InboundPipeline
    from faxd.providers import registry
    from faxd.store.claims import Claims, Instance

    if claims is None:
        claims = Claims(db, Instance.of(config.database), clock=clock)
    actions = metrics.timed_actions(build_action) if metrics is not None else build_action
    dispatcher = Dispatcher(config.inbound.concurrency)
    pipelines: dict[str, InboundPipeline] = {}
    for name in config.inbound_providers:
        shared = {"client": client} if name == "faxage" and client is not None else {}
        provider = registry.make_inbound(config, name, clock=clock, **shared)
        if metrics is not None and name != "faxage":  # FAXAGE's client observes each attempt
            provider = metrics.observed(provider)
        pipelines[name] = InboundPipeline(
            provider, db, config, clock=clock, actions_for=actions, dispatcher=dispatcher,
            claims=claims,
        )  # fmt: skip
    return pipelines


def make_pipeline(
    config: Config,
    db: Database,
    client: FaxageClient | None,
    *,
    clock: Clock = system_clock,
    metrics: Metrics | None = None,
) -> InboundPipeline | None:
    """The first inbound provider's pipeline (the only one in most offices), or ``None``."""
    pipelines = make_pipelines(config, db, client, clock=clock, metrics=metrics)
    return next(iter(pipelines.values()), None)


def make_sender(
    config: Config, client: FaxageClient | None = None, *, clock: Clock = system_clock
) -> OutboundProvider:
    """The configured ``[outbound] provider``'s sending half.

    ``client`` is the daemon's FAXAGE client: FAXAGE's half shares it (one
    connection pool, one metrics observer) instead of opening its own.
    """
    from faxd.providers import registry

    name = config.outbound_provider
    shared = {"client": client} if name == "faxage" and client is not None else {}
    return registry.make_outbound(config, name, clock=clock, **shared)


def make_outbound(
    config: Config,
    db: Database,
    client: FaxageClient | None,
    *,
    clock: Clock = system_clock,
    claims: Claims | None = None,
) -> Outbound | None:
    """The outbound service, or ``None`` when ``[outbound] enabled = false``.

    ``claims`` are the daemon's (registered, kept alive by its heartbeat);
    without them the service claims as ``[database] instance``.
    """
    if not config.outbound.enabled:
        return None
    from faxd.outbound.service import Outbound
    from faxd.store.claims import Claims, Instance

    http = config.http
    provider = make_sender(config, client, clock=clock)
    return Outbound(
        config.outbound,
        db,
        provider,
        clock=clock,
        # The zone of the provider's naive send times (None: aware, or this machine's).
        sendtime_zone=getattr(provider, "wall_clock_zone", None),
        notify=config.notify,
        url_notify=(http.hook_url(provider.name) if http is not None and http.public_url else None),
        claims=claims or Claims(db, Instance.of(config.database), clock=clock),
    )


@dataclass
class App:
    """Everything one running faxd works with."""

    config: Config
    db: Database
    client: FaxageClient | None  # None: FAXAGE is not configured
    pipelines: dict[str, InboundPipeline]  # by provider name, in [inbound] providers order
    outbound: Outbound | None
    mailer: AdminMailer | None = None
    metrics: Metrics | None = None  # with [http]: what /metrics serves
    #: This instance's claims on faxes, jobs and roles (several servers, one database).
    claims: Claims | None = None

    @property
    def pipeline(self) -> InboundPipeline | None:
        """The first inbound provider's pipeline (``None``: inbound disabled)."""
        return next(iter(self.pipelines.values()), None)

    def pipeline_for(self, provider: str) -> InboundPipeline | None:
        """The pipeline of ``provider``, if it is one of ``[inbound] providers``."""
        return self.pipelines.get(provider)

    def close(self) -> None:
        """Release the HTTP connections and the database pool."""
        if self.client is not None:
            self.client.close()
        self.db.dispose()


def build_app(config: Config, *, clock: Clock = system_clock, upgrade: bool = True) -> App:
    """Open the database (migrating it) and build the client and both halves."""
    db = open_database(config, upgrade=upgrade)
    # FAXAGE's client is shared by both halves and the metrics; other providers' adapters
    # make their own clients.
    client = make_client(config.faxage) if config.faxage is not None else None
    metrics = None
    if config.http is not None:
        from faxd.web.metrics import Metrics

        metrics = Metrics(db, config, clock=clock)
        if client is not None:
            client.observer = metrics
    from faxd.store.claims import Claims, Instance

    claims = Claims(db, Instance.of(config.database), clock=clock)
    return App(
        config=config,
        db=db,
        claims=claims,
        client=client,
        pipelines=make_pipelines(config, db, client, clock=clock, metrics=metrics, claims=claims),
        outbound=make_outbound(config, db, client, clock=clock, claims=claims),
        mailer=make_mailer(config, db, clock=clock),
        metrics=metrics,
    )


def make_mailer(config: Config, db: Database, *, clock: Clock = system_clock) -> AdminMailer | None:
    """The admin mailer, when ``[notify]`` (and so ``[smtp]``) is configured."""
    if config.notify is None or config.smtp is None:
        return None
    from faxd.alerts.mailer import AdminMailer
    from faxd.smtp import SmtpSender

    return AdminMailer(
        db, config.notify, SmtpSender(config.smtp), config_path=config.path, clock=clock
    )
