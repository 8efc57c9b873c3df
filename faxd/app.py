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
    from faxd.providers.faxage.client import FaxageClient
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


def make_pipeline(
    config: Config,
    db: Database,
    client: FaxageClient,
    *,
    clock: Clock = system_clock,
    metrics: Metrics | None = None,
) -> InboundPipeline | None:
    """The inbound pipeline, or ``None`` when ``[inbound] enabled = false``.

    With ``metrics``, each action's delivery is timed for ``/metrics``.
    """
    if not config.inbound.enabled:
        return None
    from faxd.actions.base import build_action
    from faxd.inbound.pipeline import InboundPipeline

    actions = metrics.timed_actions(build_action) if metrics is not None else build_action
    return InboundPipeline(client, db, config, clock=clock, actions_for=actions)


def make_outbound(
    config: Config, db: Database, client: FaxageClient, *, clock: Clock = system_clock
) -> Outbound | None:
    """The outbound service, or ``None`` when ``[outbound] enabled = false``."""
    if not config.outbound.enabled:
        return None
    from faxd.outbound.service import Outbound

    http = config.http
    return Outbound(
        config.outbound,
        db,
        client,
        clock=clock,
        sendtime_zone=config.faxage.server_zone,
        notify=config.notify,
        url_notify=http.hook_url("faxage") if http is not None and http.public_url else None,
    )


@dataclass
class App:
    """Everything one running faxd works with."""

    config: Config
    db: Database
    client: FaxageClient
    pipeline: InboundPipeline | None
    outbound: Outbound | None
    mailer: AdminMailer | None = None
    metrics: Metrics | None = None  # with [http]: what /metrics serves

    def close(self) -> None:
        """Release the HTTP connections and the database pool."""
        self.client.close()
        self.db.dispose()


def build_app(config: Config, *, clock: Clock = system_clock, upgrade: bool = True) -> App:
    """Open the database (migrating it) and build the client and both halves."""
    db = open_database(config, upgrade=upgrade)
    client = make_client(config.faxage)
    metrics = None
    if config.http is not None:
        from faxd.web.metrics import Metrics

        metrics = Metrics(db, config, clock=clock)
        client.observer = metrics
    return App(
        config=config,
        db=db,
        client=client,
        pipeline=make_pipeline(config, db, client, clock=clock, metrics=metrics),
        outbound=make_outbound(config, db, client, clock=clock),
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
