"""The one interface between faxd's policy (pipeline, hot folder) and a fax provider.

Why it exists: the inbound pipeline and the outbound submitter must keep their
promises (nothing received is released before it is delivered; nothing dropped
is sent twice) for every provider, so they are written once, against this
module, and never see a provider's own names for things.  What they see:

- *remote fax ids* and *remote job ids*: opaque strings, unique per provider
  (an adapter may pack several provider values in one, e.g. iFax's
  ``jobId:transactionId``); the database keys rows by ``(provider, remote id)``;
- the :mod:`faxd.errors` tree: :class:`~faxd.errors.TransientError` (retry),
  :class:`~faxd.errors.PermanentError` / :class:`~faxd.errors.NotFoundError`
  (give up / already gone), :class:`~faxd.errors.AuthError` (pause, tell the
  admin what to fix in the provider's portal),
  :class:`~faxd.errors.OutcomeUnknownError` (the request went out, the answer
  was lost: reconcile before anything is resent);
- :class:`Capabilities`, so policy asks what a provider can do instead of
  asking which provider it is.

An adapter is two objects, one per half, made by the provider package's
``make_inbound(config, ...)`` / ``make_outbound(config, ...)`` (see
:mod:`faxd.providers.registry`).  A provider that cannot receive (faxnummer.de)
has no inbound half.  Both halves are called from several threads at once.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol, runtime_checkable

#: The provider names, as they appear in config sections, the database and the CLI.
PROVIDER_NAMES = ("faxage", "voipms", "ifax", "faxnummer")


class Release(enum.Enum):
    """What :meth:`InboundProvider.release` does once a fax is delivered."""

    DELETE = "delete"  # removed on the provider (FAXAGE delfax, VoIP.ms deleteFaxMessage)
    MOVE = "move"  # moved to an archive folder (VoIP.ms moveFaxMessage)
    KEEP = "keep"  # left on the server; the ledger remembers it was taken (iFax)


@dataclass(frozen=True)
class Capabilities:
    """What one configured provider can do; policy reads this, never the name."""

    receive: bool
    send: bool
    #: How inbound faxes are released after delivery, as configured.
    release: Release = Release.DELETE
    #: Whether listing has a cursor the provider keeps (FAXAGE ``idgt``) rather
    #: than a date window the ledger dedupes (VoIP.ms, iFax).
    cursor_listing: bool = False
    #: File types :meth:`OutboundProvider.send` takes as they are (lower-case
    #: extensions without dot, e.g. ``{"pdf", "tif"}``); others are converted
    #: to PDF first (:mod:`faxd.outbound.convert`) or refused.
    send_types: frozenset[str] = frozenset({"pdf"})
    #: Largest file :meth:`OutboundProvider.send` takes, or ``None``.
    max_send_bytes: int | None = None
    #: Whether :meth:`OutboundProvider.send` returns the remote job id.  When it
    #: does not (VoIP.ms), every send is followed by
    #: :meth:`OutboundProvider.recent_jobs` to find the job.
    send_returns_id: bool = True
    #: Whether :meth:`OutboundProvider.recent_jobs` works; without it a lost
    #: send answer cannot be reconciled and the job is failed with a reason
    #: telling the user to check the portal (never resent blindly).
    reconcile: bool = True
    cancel: bool = False


# ---------------------------------------------------------------- inbound


@dataclass(frozen=True)
class RemoteFax:
    """One received fax waiting on the provider, as a listing shows it.

    ``received_at`` is the provider's naive wall-clock time, as it wrote it.
    ``caller_id`` and ``dnis`` are as the provider gave them (the pipeline
    normalises them with :mod:`faxd.phone`); ``""`` means unknown.
    ``filename`` is for display only and never used as a path.
    """

    remote_id: str
    received_at: datetime
    caller_id: str = ""
    dnis: str = ""
    pages: int | None = None
    filename: str | None = None


@dataclass(frozen=True)
class Unreadable:
    """A record of a listing that could not be read; ``text`` is redacted and short."""

    lineno: int
    text: str
    reason: str


@dataclass(frozen=True)
class ListingBatch:
    """Part of a listing, to be committed together with ``cursor``.

    ``cursor`` is what the next :meth:`InboundProvider.list_new` starts from
    once this batch is recorded (``None``: leave the stored cursor as it is).
    The adapter decides what it means: FAXAGE's highest recvid, or a date
    window start for VoIP.ms and iFax (set only on the last batch of a
    listing that was read to its end).
    """

    faxes: tuple[RemoteFax, ...]
    unreadable: tuple[Unreadable, ...] = ()
    cursor: str | None = None


@dataclass(frozen=True)
class Downloaded:
    """A verified fax file on disk: magic bytes checked, size and sha256 computed."""

    path: Path
    size: int
    sha256: str
    kind: str  # "pdf" | "tiff"
    server_filename: str | None = None  # sanitised, display only


class InboundProvider(Protocol):
    """List new faxes, download one, release one."""

    name: str  # one of PROVIDER_NAMES
    account: str  # the account as shown to people and stored with each fax
    capabilities: Capabilities

    def list_new(self, cursor: str | None, *, now: datetime) -> Iterator[ListingBatch]:
        """What is new after ``cursor`` (``None``: first poll of a fresh install)."""
        ...

    def list_all(self, *, now: datetime) -> Iterator[ListingBatch]:
        """Everything the provider still holds that faxd may take (the sweep)."""
        ...

    def download(self, remote_id: str, dest: Path, *, max_bytes: int | None) -> Downloaded:
        """Write the fax to ``dest`` and verify it; never keeps it whole in memory.

        Raises :class:`~faxd.errors.TooLargeError` past ``max_bytes`` and
        :class:`~faxd.errors.NotFoundError` when the fax is gone.
        """
        ...

    def release(self, remote_id: str) -> None:
        """Delete, move or keep the delivered fax (``capabilities.release``).

        Raises :class:`~faxd.errors.NotFoundError` if it is already gone.
        """
        ...


# ---------------------------------------------------------------- outbound


class JobOutcome(enum.Enum):
    """Where a sent job stands on the provider, in faxd's words."""

    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


@dataclass(frozen=True)
class SendRequest:
    """One fax to send: a checked spool file and where it goes.

    ``number`` is E.164 (``+13035550101``).  ``size`` and ``sha256`` are the
    bytes taken; the adapter checks them before every POST and raises
    :class:`~faxd.errors.FileChangedError` unsent on a mismatch.
    ``job_id`` is faxd's own job number, for providers that take a reference.
    """

    job_id: int
    number: str
    recipient: str
    path: Path
    filename: str
    size: int
    sha256: str
    url_notify: str | None = None


@dataclass(frozen=True)
class JobStatus:
    """One job's status on the provider."""

    remote_id: str
    outcome: JobOutcome
    status: str  # the provider's own short status word, for display
    reason: str = ""  # why it failed, in words a person can act on
    number: str = ""  # the destination, as the provider reports it
    sent_at: datetime | None = None  # provider wall clock
    completed_at: datetime | None = None
    pages: int | None = None
    pages_sent: int | None = None
    extra: dict[str, str] = field(default_factory=dict)  # csid, commid, xmittime...


@dataclass(frozen=True)
class StatusAnswer:
    """The answer to :meth:`OutboundProvider.statuses`: readable records and the rest."""

    jobs: tuple[JobStatus, ...]
    unreadable: tuple[Unreadable, ...] = ()


class OutboundProvider(Protocol):
    """Send, follow, reconcile, cancel."""

    name: str
    account: str
    capabilities: Capabilities

    def send(self, request: SendRequest) -> str | None:
        """POST the fax; the remote job id, or ``None`` when the provider gives none.

        Raises :class:`~faxd.errors.OutcomeUnknownError` when the request may
        have reached the provider but no answer came back.
        """
        ...

    def statuses(self, remote_ids: Sequence[str]) -> StatusAnswer:
        """The status of each job in ``remote_ids`` (missing ones are left out)."""
        ...

    def recent_jobs(self, since: datetime) -> StatusAnswer:
        """Jobs sent since ``since`` (aware UTC), to find a lost or id-less submission."""
        ...

    def cancel(self, remote_id: str) -> None:
        """Stop a job that has not gone out yet (``capabilities.cancel``)."""
        ...

    def forget(self, remote_id: str) -> None:
        """Tidy a finished job on the provider if it keeps a list (FAXAGE ``clear``); may no-op."""
        ...


@runtime_checkable
class OnlineCheck(Protocol):
    """``faxd check-config --online``: a harmless authenticated read."""

    def check_login(self) -> str:
        """A short description of what was read (e.g. ``"3 faxes in INBOX"``); raises on failure."""
        ...
