"""A received fax printed through a real CUPS scheduler, end to end.

The simulator's fax goes through the whole inbound pipeline to a private
``cupsd`` (see cupsd_helper); ``delfax`` must follow only a job CUPS really
took, and a paused queue must keep the fax on FAXAGE until it is resumed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cupsd_helper import PrivateCups, unavailable_reason
from inbound_helpers import ManualClock, faxage_inbound, make_config, sim_settings

from faxd.actions.base import Action, build_action
from faxd.config import ActionSpec, PrintSpec, RouteSpec, SmtpSettings
from faxd.inbound.pipeline import InboundPipeline
from faxd.providers.faxage.client import FaxageClient
from faxd.store.models import Delivery
from faxd.store.states import FaxState

pytestmark = pytest.mark.skipif(unavailable_reason() is not None, reason=str(unavailable_reason()))

SALES = "+13035550101"


@pytest.fixture
def cups() -> Iterator[PrivateCups]:
    server = PrivateCups().start()
    try:
        yield server
    finally:
        server.stop()


def pipeline(tmp_path: Path, sim: Any, client: FaxageClient, db: Any, cups: PrivateCups,
             clock: ManualClock) -> InboundPipeline:  # fmt: skip
    route = RouteSpec(
        "sales",
        dnis=(SALES,),
        actions=(PrintSpec(printer="sales-laser", options=("sides=two-sided-long-edge",)),),
    )
    config = make_config(tmp_path, (route,), faxage=sim_settings(sim))

    def actions_for(spec: ActionSpec, *, smtp: SmtpSettings | None) -> Action:
        return build_action(spec, smtp=smtp, env=cups.env)

    return InboundPipeline(
        faxage_inbound(client, config), db, config, actions_for=actions_for, clock=clock
    )


def test_a_fax_is_printed_by_cups_before_it_is_deleted(
    tmp_path: Path, sim: Any, client: FaxageClient, db: Any, cups: PrivateCups, clock: ManualClock
) -> None:
    """The CUPS job id is recorded, the printer gets the fax's bytes, then delfax runs."""
    device = cups.add_queue("sales-laser")
    fax = sim.add_fax(SALES, "(720)555-0142", pagecount=2)
    pipe = pipeline(tmp_path, sim, client, db, cups, clock)

    assert pipe.poll().done == 1

    assert fax.deleted
    with db.session() as session:
        row = session.query(Delivery).filter_by(action_type="print").one()
        assert row.state == "done"
        job = row.detail or ""
    assert job.startswith("sales-laser-")
    cups.wait_for_job(job)
    assert device.read_bytes() == fax.data
    assert "sides=two-sided-long-edge" in cups.job_argv(job)[5].split()


def test_a_paused_printer_keeps_the_fax_until_it_is_resumed(
    tmp_path: Path, sim: Any, client: FaxageClient, db: Any, cups: PrivateCups, clock: ManualClock
) -> None:
    """Paused queue: nothing queued, fax kept and pending; after cupsenable it prints once."""
    device = cups.add_queue("sales-laser")
    cups.run("cupsdisable", "-r", "paper jam", "sales-laser")
    fax = sim.add_fax(SALES, "(720)555-0142")
    pipe = pipeline(tmp_path, sim, client, db, cups, clock)

    outcome = pipe.poll()
    assert outcome.done == 0 and outcome.errors == 1
    assert not fax.deleted
    row = pipe.ledger.get(fax.remote_id)
    assert row is not None and row.state is FaxState.DOWNLOADED
    assert row.last_error is not None and "paper jam" in row.last_error
    assert "cupsenable sales-laser" in row.last_error
    assert cups.run("lpstat", "-o", "sales-laser", check=False).stdout == ""

    cups.run("cupsenable", "sales-laser")
    clock.advance(300.0)
    assert pipe.poll().done == 1
    assert fax.deleted
    with db.session() as session:
        job = session.query(Delivery).filter_by(action_type="print").one().detail or ""
    cups.wait_for_job(job)
    assert device.read_bytes() == fax.data
