"""disk_low is a condition of one server's disk: another server's free disk does not clear it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from inbound_helpers import ManualClock
from pg_helper import ON_BOTH
from sqlalchemy import select

from faxd.config import NotifySettings
from faxd.inbound.ledger import Ledger
from faxd.store.claims import Claims, Instance
from faxd.store.models import AdminCondition, AdminEvent


def server_ledger(db: Any, name: str, clock: ManualClock) -> Ledger:
    claims = Claims(db, Instance(name, timedelta(seconds=60)), clock=clock)
    notify = NotifySettings(email=("admin@example.com",))
    return Ledger(db, "faxage", "acme@12345", clock=clock, notify=notify, claims=claims.faxes)


@ON_BOTH
def test_one_servers_low_disk_is_not_recovered_by_the_other(db: Any) -> None:
    clock = ManualClock()
    full, roomy = server_ledger(db, "fax1", clock), server_ledger(db, "fax2", clock)
    full.set_disk_low("only 3 MB free in /var/lib/faxd/spool", folder="/var/lib/faxd/spool")
    roomy.set_disk_low(None)  # fax2 checks its own disk: plenty
    with db.session() as session:
        keys = list(session.scalars(select(AdminCondition.key)))
        kinds = list(session.scalars(select(AdminEvent.kind).order_by(AdminEvent.id)))
    assert keys == ["disk_low:faxage:acme@12345@fax1"]
    assert kinds == ["disk_low"]  # no "recovered" from the other server
    full.set_disk_low(None)
    with db.session() as session:
        assert list(session.scalars(select(AdminCondition.key))) == []
        kinds = list(session.scalars(select(AdminEvent.kind).order_by(AdminEvent.id)))
    assert kinds == ["disk_low", "recovered"]
