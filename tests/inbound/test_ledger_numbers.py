"""Numbers a listing reports enter the ledger as E.164 (real migrated SQLite database)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from inbound_helpers import ManualClock

from faxd.inbound.ledger import Ledger
from faxd.providers.base import RemoteFax


def test_listed_numbers_are_stored_as_e164(db: Any, clock: ManualClock) -> None:
    """FAXAGE's 10 digits become +1 numbers; unknown stays ""; a number abroad keeps its +."""
    ledger = Ledger(db, "faxage", "acme@12345", clock=clock)
    listed = [
        RemoteFax(remote_id, datetime(2024, 3, 4, 9, 0), caller_id=cid, dnis=dnis, pages=1)
        for remote_id, cid, dnis in (
            ("1", "3035550100", "3035550101"),
            ("2", "", "3035550102"),
            ("3", "+442079460018", "3035550101"),
        )
    ]
    assert ledger.record_listing(listed, None) == ["1", "2", "3"]
    stored = [(row.cid, row.dnis) for row in (ledger.get(n) for n in ("1", "2", "3")) if row]
    assert stored == [
        ("+13035550100", "+13035550101"),
        ("", "+13035550102"),
        ("+442079460018", "+13035550101"),
    ]
