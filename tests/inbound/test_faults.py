"""Faults on the wire: every fax is delivered eventually and none deleted before."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from inbound_helpers import (
    ManualClock,
    expected_path,
    faxage_inbound,
    make_config,
    office_routes,
    require_delivered,
    rounds_until,
    sim_settings,
)

from faxd.inbound.pipeline import InboundPipeline
from faxd.providers.faxage.client import FaxageClient
from faxd.store.models import InboundFax

FAULTS = ("http500", "err01", "reset", "slow", "truncate", "err13")


@pytest.fixture
def fast_client(sim: Any) -> Iterator[FaxageClient]:
    """A client whose read timeout is shorter than the simulator's ``slow`` fault."""
    sim.slow_seconds = 0.5
    client = FaxageClient(
        sim.username,
        sim.company,
        sim.password,
        base_url=sim.base_url,
        timeout=0.2,
        retries=2,
        backoff=0.0,
        sleep=lambda _s: None,
    )
    yield client
    client.close()


def test_faults_on_a_fifth_of_requests_delay_but_never_lose_a_fax(
    tmp_path: Path, sim: Any, fast_client: FaxageClient, db: Any, clock: ManualClock
) -> None:
    """HTTP 500, ERR01, resets, timeouts, truncated downloads and ERR13, each on 20%."""
    root = tmp_path / "fax"
    config = make_config(
        tmp_path,
        office_routes(root),
        faxage=sim_settings(sim),
        max_attempts=100,
        backoff_base=5.0,
        backoff_max=60.0,
    )
    faxes = sim.seed_inbound(15, dnis=("3035550101", "3035550102", "3035550103"))
    sim.delete_check = require_delivered(root)
    # Deleted, answer lost: once for certain (the first delfax), then on a fifth
    # of the rest.  Injected first, so the general http500 cannot shadow it.
    lost_answers = [
        sim.inject("http500", operation="delfax", times=1, after=True),
        sim.inject("http500", operation="delfax", rate=0.2, after=True),
    ]
    general = [sim.inject(kind, rate=0.2) for kind in FAULTS]
    pipe = InboundPipeline(faxage_inbound(fast_client, config), db, config, clock=clock)

    def finished() -> bool:
        # A delfax whose answer was lost has deleted the fax on FAXAGE while the
        # database still says delivered: the next round must find it gone.
        with db.session() as session:
            states = {row.state for row in session.query(InboundFax)}
        return all(f.deleted for f in faxes) and states == {"done"}

    rounds = rounds_until(pipe, clock, finished)

    fired = {f.kind: f.fired for f in general}
    assert all(count > 0 for count in fired.values()), fired  # each fault really happened
    assert lost_answers[0].fired == 1, "no delfax answer was lost"
    assert sim.violations == []
    assert all(f.deleted for f in faxes), f"undelivered after {rounds} rounds"
    for fax in faxes:
        assert expected_path(root, fax).read_bytes() == fax.data
    with db.session() as session:
        assert {row.state for row in session.query(InboundFax)} == {"done"}
