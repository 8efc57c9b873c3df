"""Frozen snapshots of the inbound rows, handed out by the ledger.

The ledger never lets a live ORM object (or a Core result row) out of its
transaction: each method returns one of these, read inside the transaction
that wrote it.  Faxes
processed on different threads therefore share nothing but the database, and
no snapshot can lazily load (and so open a connection) after its session has
closed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from faxd.store.models import Delivery, InboundFax
from faxd.store.states import DeliveryState, FaxState


@dataclass(frozen=True)
class FaxRow:
    """What the database knows about one inbound fax, at one moment."""

    id: int  # the row's key: what a claim on it names (faxd.store.claims)
    provider: str
    remote_id: str
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
            id=fax.id,
            provider=fax.provider,
            remote_id=fax.remote_id,
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

    @classmethod
    def from_mapping(cls, row: Mapping[Any, Any]) -> FaxRow:
        """From a Core result row of ``inbound_faxes`` (``row._mapping``)."""
        spool_path = row["spool_path"]
        return cls(
            id=row["id"],
            provider=row["provider"],
            remote_id=row["remote_id"],
            state=FaxState(row["state"]),
            recvdate=row["recvdate"],
            cid=row["cid"],
            dnis=row["dnis"],
            pagecount=row["pagecount"],
            server_filename=row["server_filename"],
            attempts=row["attempts"],
            next_attempt_at=row["next_attempt_at"],
            last_error=row["last_error"],
            route=row["route"],
            spool_path=Path(spool_path) if spool_path else None,
            kind=row["kind"],
            size=row["size"],
            sha256=row["sha256"],
            deleted_at=row["deleted_at"],
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

    @classmethod
    def from_mapping(cls, row: Mapping[Any, Any]) -> DeliveryRow:
        """From a Core result row of ``deliveries`` (``row._mapping``)."""
        return cls(
            id=row["id"],
            route=row["route"],
            action_index=row["action_index"],
            action_type=row["action_type"],
            target=row["target"],
            state=DeliveryState(row["state"]),
            detail=row["detail"],
        )


@dataclass(frozen=True)
class Plan:
    """The route recorded for a fax and its delivery rows, in action order."""

    route: str
    deliveries: tuple[DeliveryRow, ...]


@dataclass(frozen=True)
class CursorRow:
    """Where polling stands for one provider account."""

    cursor: str | None  # what the provider's adapter starts its next listing from
    last_poll_at: datetime | None
    last_poll_outcome: str | None
    last_sweep_at: datetime | None
    paused_reason: str | None
