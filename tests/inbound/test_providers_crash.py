"""Crash safety once per provider that receives: a real daemon SIGKILLed again and again.

The simulator runs in this process, so its ``delete_check`` sees every
release; the daemon (``python -m faxd run --config PATH --once``) is a child
process pointed at the simulator through a real config file (the kit's
section), killed at random moments while it drains 60 faxes and started again
each time.  At the end every fax is delivered exactly once, and released once
it was (FAXAGE, VoIP.ms) or kept and never delivered twice (iFax).
"""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pytest
from inbound_helpers import (
    RELEASE_OPERATION,
    Receiver,
    delivered_files,
    kill_while_draining,
    provider_config_file,
    provider_path,
    provider_require_delivered,
    sim_faxes,
    wanted_files,
)
from sqlalchemy.exc import OperationalError

from faxd.config import load_config
from faxd.store.db import Database
from faxd.store.models import InboundFax

KILLS = 22
FAXES = 60

INBOUND = """poll_interval = 1
max_attempts = 50
backoff_base = 0.05
backoff_max = 0.5
concurrency = 2
"""


def finished(receiver: Receiver, db_path: Path) -> bool:
    """Released on the provider (or, when it keeps faxes, recorded done in the database)."""
    if not receiver.keeps:
        return all(f.released for f in sim_faxes(receiver.sim))
    if not db_path.exists():
        return False  # no run got as far as making the database
    db = Database(f"sqlite:///{db_path}")
    try:
        with db.session() as session:
            states = [row.state for row in session.query(InboundFax)]
    except OperationalError:
        return False  # killed before the first migration committed
    finally:
        db.dispose()
    return len(states) == FAXES and set(states) == {"done"}


@pytest.mark.slow
def test_sigkill_at_random_moments_on_every_provider(receiver: Receiver, tmp_path: Path) -> None:
    """>= 20 SIGKILLs while draining 60 faxes: each delivered once, released only after."""
    name, sim = receiver.name, receiver.sim
    config_path = provider_config_file(
        tmp_path, name, receiver.kit.section(sim, timeout=5), inbound=INBOUND
    )
    load_config(config_path)  # the file the daemon reads is valid
    root = tmp_path / "fax"
    log = tmp_path / "daemon.log"
    sim.latency = 0.03  # a run lasts long enough for kills to land mid-drain
    faxes = receiver.seed(FAXES)
    sim.delete_check = provider_require_delivered(root)
    rng = random.Random(f"crash-{name}")

    kills, runs = kill_while_draining(
        config_path, log, sim, lambda: finished(receiver, tmp_path / "faxd.db"), rng, kills=KILLS
    )

    assert kills >= 20, f"only {kills} kills landed; the daemon finished too fast"
    assert sim.violations == []
    assert finished(receiver, tmp_path / "faxd.db"), f"not done after {runs} runs; see {log}"

    assert delivered_files(root) == wanted_files(faxes)  # every fax exactly once, nothing else
    for fax in faxes:
        assert provider_path(root, fax).read_bytes() == fax.data
    if RELEASE_OPERATION[name] is None:
        assert not any(getattr(f, "deleted", False) for f in faxes)  # kept on the server

    db = Database(f"sqlite:///{tmp_path / 'faxd.db'}")
    try:
        with db.session() as session:
            rows = session.query(InboundFax).all()
            assert Counter(r.state for r in rows) == {"done": FAXES}
            assert all((r.deleted_at is None) == receiver.keeps for r in rows)
    finally:
        db.dispose()
