"""The database tables: the ledger that makes faxd crash-safe.

Each row exists *before* the remote side effect it guards (STYLE.md §6): an
``InboundFax`` row before ``getfax``, its ``Delivery`` rows before any action
and before ``delfax``, an ``OutboundJob`` in state ``submitting`` before
``sendfax``.  After a crash the daemon reads these rows and resumes.

Times we make are aware UTC (:class:`UTCDateTime`); times FAXAGE reports
(``recvdate``, ``starttime``, ``sendtime``) are kept as the naive wall-clock
values FAXAGE wrote, because the documents do not say which zone they are in.
The schema is created by Alembic (``faxd/store/migrations/versions``), never by
``create_all`` outside tests.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from faxd.store.states import DeliveryState, FaxState, JobState


class UTCDateTime(TypeDecorator[datetime]):
    """Stores aware datetimes as naive UTC; returns them aware again."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("UTCDateTime needs an aware datetime")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC)


def _now() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class InboundFax(Base):
    """One fax received on a provider account, from listing to release."""

    __tablename__ = "inbound_faxes"
    __table_args__ = (
        UniqueConstraint("provider", "account", "remote_id", name="uq_inbound_provider_remote"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    provider: Mapped[str] = mapped_column(String(20), default="faxage")  # PROVIDER_NAMES
    account: Mapped[str] = mapped_column(String(200))  # "username@company" for FAXAGE
    remote_id: Mapped[str] = mapped_column(String(200))  # the provider's id (FAXAGE: recvid)
    recvdate: Mapped[datetime] = mapped_column(DateTime)  # provider wall clock
    starttime: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    cid: Mapped[str] = mapped_column(String(40), default="")  # normalised; "" = unavailable
    dnis: Mapped[str] = mapped_column(String(40), default="")  # normalised, 10 digits
    server_filename: Mapped[str | None] = mapped_column(String(255), nullable=True)  # sanitised
    pagecount: Mapped[int | None] = mapped_column(Integer, nullable=True)

    state: Mapped[str] = mapped_column(String(20), default=FaxState.LISTED.value, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    route: Mapped[str | None] = mapped_column(String(200), nullable=True)

    spool_path: Mapped[str | None] = mapped_column(Text, nullable=True)
    kind: Mapped[str | None] = mapped_column(String(8), nullable=True)  # "pdf" | "tiff"
    size: Mapped[int | None] = mapped_column(Integer, nullable=True)
    sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)

    listed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_now, onupdate=_now)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    #: The instance holding this row's claim, and once given back, the last one that
    #: worked on it (:mod:`faxd.store.claims`).
    instance: Mapped[str | None] = mapped_column(String(64), nullable=True)
    #: When the claim lapses unless renewed; ``None``: nobody holds it.
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    deliveries: Mapped[list[Delivery]] = relationship(
        back_populates="fax", order_by="Delivery.action_index", cascade="all, delete-orphan"
    )


class Delivery(Base):
    """One action of a fax's route; its success is recorded on its own."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("fax_id", "route", "action_index", name="uq_delivery_fax_route_action"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    fax_id: Mapped[int] = mapped_column(ForeignKey("inbound_faxes.id"), index=True)
    route: Mapped[str] = mapped_column(String(200))
    action_index: Mapped[int] = mapped_column(Integer)
    action_type: Mapped[str] = mapped_column(String(20))  # folder | print | email | command
    target: Mapped[str] = mapped_column(Text, default="")  # path / printer / addresses / argv
    state: Mapped[str] = mapped_column(String(20), default=DeliveryState.PENDING.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    detail: Mapped[str | None] = mapped_column(Text, nullable=True)  # lp job id, SMTP answer, path
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    fax: Mapped[InboundFax] = relationship(back_populates="deliveries")


class PollCursor(Base):
    """Where inbound polling stands for one provider account."""

    __tablename__ = "poll_cursor"

    provider: Mapped[str] = mapped_column(String(20), primary_key=True)
    account: Mapped[str] = mapped_column(String(200), primary_key=True)
    # What the next listing starts from, as the provider's adapter wrote it
    # (FAXAGE: the highest recvid recorded); None before the first listing.
    cursor: Mapped[str | None] = mapped_column(String(200), nullable=True)
    last_poll_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_poll_outcome: Mapped[str | None] = mapped_column(Text, nullable=True)
    last_sweep_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    paused_reason: Mapped[str | None] = mapped_column(Text, nullable=True)  # set on ERR02
    # When a listing was last read to its end (provider_down counts from it).
    last_listed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # The running daemon's schedule, as APScheduler has it (for `faxd status`).
    next_poll_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    next_sweep_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class OutboundJob(Base):
    """One file dropped in the outbox (or given to `faxd send`), sent as one fax."""

    __tablename__ = "outbound_jobs"
    __table_args__ = (
        UniqueConstraint("provider", "remote_jobid", name="uq_outbound_provider_remote_jobid"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    state: Mapped[str] = mapped_column(String(20), default=JobState.QUEUED.value, index=True)
    faxno: Mapped[str] = mapped_column(String(20))
    recipname: Mapped[str] = mapped_column(String(64), default="")
    source_name: Mapped[str] = mapped_column(Text)  # file name as the user dropped it
    source_relpath: Mapped[str] = mapped_column(Text, default="")  # relative to hot folder
    spool_path: Mapped[str] = mapped_column(Text)  # where the file waits while in flight
    size: Mapped[int] = mapped_column(Integer, default=0)
    sha256: Mapped[str] = mapped_column(String(64), default="")

    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_now, onupdate=_now)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    resends: Mapped[int] = mapped_column(Integer, default=0)  # resends after a lost answer

    #: The provider that has (or will have) the job; set again when it is claimed for sending.
    provider: Mapped[str] = mapped_column(String(20), default="faxage", server_default="faxage")
    #: The provider's job id, as text; ``None`` until it is known (VoIP.ms gives none at send).
    remote_jobid: Mapped[str | None] = mapped_column(String(200), nullable=True)
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    shortstatus: Mapped[str | None] = mapped_column(String(20), nullable=True)
    longstatus: Mapped[str | None] = mapped_column(Text, nullable=True)
    commid: Mapped[str | None] = mapped_column(String(40), nullable=True)
    pages: Mapped[int | None] = mapped_column(Integer, nullable=True)
    xmitpages: Mapped[int | None] = mapped_column(Integer, nullable=True)
    xmittime: Mapped[str | None] = mapped_column(String(20), nullable=True)
    csid: Mapped[str | None] = mapped_column(String(64), nullable=True)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    final_path: Mapped[str | None] = mapped_column(Text, nullable=True)  # in sent/ or failed/
    cleared: Mapped[int] = mapped_column(Integer, default=0)  # 1 once `clear` succeeded
    #: The instance holding this row's claim, and once given back, the last one that
    #: worked on it (:mod:`faxd.store.claims`).
    instance: Mapped[str | None] = mapped_column(String(64), nullable=True)
    #: When the claim lapses unless renewed; ``None``: nobody holds it.
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class AdminEvent(Base):
    """Something an admin should hear about (``[notify]``), written with its cause.

    The row is inserted in the same transaction as the state change it reports
    (a fax going ``failed``, a job going ``failed``...), so a crash can neither
    lose it nor make it twice; :class:`AdminNotification` then groups the
    events of one kind into one mail.
    """

    __tablename__ = "admin_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20), index=True)  # one of NOTIFY_EVENTS
    subject: Mapped[str] = mapped_column(String(200))  # "fax 104730", "job 12", "faxage"
    summary: Mapped[str] = mapped_column(Text)  # one line
    detail: Mapped[str] = mapped_column(Text, default="")  # the reason, several lines at most
    command: Mapped[str] = mapped_column(Text, default="")  # what shows or retries it
    attach_path: Mapped[str | None] = mapped_column(Text, nullable=True)  # the fax, if attach
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_now)
    notification_id: Mapped[int | None] = mapped_column(
        ForeignKey("admin_notifications.id"), nullable=True, index=True
    )


class AdminNotification(Base):
    """One mail to the admins: the events of one kind it carries, sent or still due."""

    __tablename__ = "admin_notifications"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_now)
    message_id: Mapped[str] = mapped_column(String(200))  # the same on every retry
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)


class AdminCondition(Base):
    """A lasting problem (login refused, provider down, disk low) while it lasts.

    Raising one that is already raised does nothing, so a refused login that
    repeats at every poll is one ``auth_failed`` mail; clearing it writes the
    ``recovered`` event.
    """

    __tablename__ = "admin_conditions"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)  # "auth_failed:faxage"
    kind: Mapped[str] = mapped_column(String(20))
    summary: Mapped[str] = mapped_column(Text)
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_now)


class ListingProblem(Base):
    """A listing record that did not parse, kept so an operator can ask the provider about it.

    A line that never parses comes back with every listing.  One row per
    distinct line (``fingerprint``: sha256 of its recorded text and reason)
    counts the sightings; ``last_logged_at`` keeps the warning to once a day.
    ``faxd inbox --problems`` shows the rows.
    """

    __tablename__ = "listing_problems"
    __table_args__ = (
        UniqueConstraint(
            "provider", "account", "fingerprint", name="uq_listing_problem_provider_line"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    provider: Mapped[str] = mapped_column(String(20), default="faxage")
    account: Mapped[str] = mapped_column(String(200))
    fingerprint: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text)  # redacted and shortened, as logged
    reason: Mapped[str] = mapped_column(Text)
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime)
    count: Mapped[int] = mapped_column(Integer, default=1)
    last_logged_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Lease(Base):
    """A role only one instance plays at a time (listing an account...), and until when."""

    __tablename__ = "leases"

    role: Mapped[str] = mapped_column(String(200), primary_key=True)  # "list:faxage:acct"
    holder: Mapped[str] = mapped_column(String(64))
    lease_until: Mapped[datetime] = mapped_column(UTCDateTime)
    taken_at: Mapped[datetime] = mapped_column(UTCDateTime)


class InstanceRow(Base):
    """A faxd instance sharing this database, and when it was last seen alive."""

    __tablename__ = "instances"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    machine: Mapped[str] = mapped_column(String(64))  # /etc/machine-id (or the hostname)
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
