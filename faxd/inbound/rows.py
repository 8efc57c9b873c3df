"""Frozen snapshots of the inbound rows, handed out by the ledger.

The ledger never lets a live ORM object out of its session: each method
returns one of these, read inside the transaction that wrote it.  Faxes
processed on different threads therefore share nothing but the database, and
no snapshot can lazily load (and so open a connection) after its session has
closed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from faxd.store.models import Delivery, InboundFax
from faxd.store.states import DeliveryState, FaxState


@dataclass(frozen=True)
class FaxRow:
    """What the database knows about one inbound fax, at one moment."""

    recvid: int
    state: FaxState
    recvdate: datetime
    cid: str
    dnis: str
    pagecount: int | None
    server_filename: str | None
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    route: str | None
    spool_path: Path | None
    kind: str | None
    size: int | None
    sha256: str | None
    deleted_at: datetime | None

    @classmethod
    def of(cls, fax: InboundFax) -> FaxRow:
        return cls(
            recvid=fax.recvid,
            state=FaxState(fax.state),
            recvdate=fax.recvdate,
            cid=fax.cid,
            dnis=fax.dnis,
            pagecount=fax.pagecount,
            server_filename=fax.server_filename,
            attempts=fax.attempts,
            next_attempt_at=fax.next_attempt_at,
            last_error=fax.last_error,
            route=fax.route,
            spool_path=Path(fax.spool_path) if fax.spool_path else None,
            kind=fax.kind,
            size=fax.size,
            sha256=fax.sha256,
            deleted_at=fax.deleted_at,
        )


@dataclass(frozen=True)
class DeliveryRow:
    """One action of a fax's route and whether it has succeeded."""

    id: int
    route: str
    action_index: int
    action_type: str
    target: str
    state: DeliveryState
    detail: str | None

    @property
    def done(self) -> bool:
        return self.state is DeliveryState.DONE

    @classmethod
    def of(cls, delivery: Delivery) -> DeliveryRow:
        return cls(
            id=delivery.id,
            route=delivery.route,
            action_index=delivery.action_index,
            action_type=delivery.action_type,
            target=delivery.target,
            state=DeliveryState(delivery.state),
            detail=delivery.detail,
        )


@dataclass(frozen=True)
class Plan:
    """The route recorded for a fax and its delivery rows, in action order."""

    route: str
    deliveries: tuple[DeliveryRow, ...]


@dataclass(frozen=True)
class CursorRow:
    """Where polling stands for the account."""

    last_recvid: int
    last_poll_at: datetime | None
    last_poll_outcome: str | None
    last_sweep_at: datetime | None
    paused_reason: str | None
