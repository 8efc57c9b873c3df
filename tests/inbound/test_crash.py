"""Crash safety: a real daemon process killed with SIGKILL again and again.

The simulator runs in this process, so its ``delete_check`` sees every delfax;
the daemon (``python -m faxd run --config PATH --once``) is a child process
pointed at ``sim.base_url`` through a real config file, killed at random
moments while it works and started again each time.
"""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from inbound_helpers import (
    MAIN,
    SALES,
    SUPPORT,
    delivered_files,
    expected_path,
    kill_while_draining,
    require_delivered,
    wanted_files,
    write_config,
)

from faxd.config import load_config
from faxd.store.db import Database
from faxd.store.models import InboundFax

KILLS = 22
FAXES = 100


def daemon_config(tmp_path: Path, sim: Any, *, concurrency: int = 1) -> Path:
    root = tmp_path / "fax"
    return write_config(
        tmp_path / "faxd.toml",
        f"""
[faxage]
username = "{sim.username}"
company = "{sim.company}"
password = "{sim.password}"
base_url = "{sim.base_url}"
timeout = 5

[database]
url = "sqlite:///{tmp_path / "faxd.db"}"

[inbound]
poll_interval = 1
spool_dir = "{tmp_path / "spool"}"
max_attempts = 50
backoff_base = 0.05
backoff_max = 0.5
concurrency = {concurrency}

[outbound]
enabled = false

[[routes]]
name = "sales"
dnis = ["{SALES}"]
actions = [{{ type = "folder", path = "{root}/sales/{{recvid}}.{{ext}}" }}]

[[routes]]
name = "support"
dnis = ["{SUPPORT}"]
actions = [{{ type = "folder", path = "{root}/support/{{received:%Y-%m}}/fax-{{recvid}}.pdf" }}]

[[routes]]
name = "default"
actions = [{{ type = "folder", path = "{root}/inbox/{{dnis}}-{{recvid}}.{{ext}}" }}]
""",
    )


@pytest.mark.slow
@pytest.mark.parametrize("concurrency", [1, 4])
def test_sigkill_at_random_moments_loses_and_duplicates_nothing(
    tmp_path: Path, sim: Any, concurrency: int
) -> None:
    """>= 20 SIGKILLs while draining 100 faxes (1 or 4 at a time): each once, all deleted."""
    config_path = daemon_config(tmp_path, sim, concurrency=concurrency)
    load_config(config_path)  # the file the daemon reads is valid
    root = tmp_path / "fax"
    log = tmp_path / "daemon.log"
    # Slower answers when four run at once, so a run lasts about as long and
    # the kills land as often as with one.
    sim.latency = 0.02 * concurrency
    faxes = sim.seed_inbound(FAXES, dnis=(SALES, SUPPORT, MAIN))
    sim.delete_check = require_delivered(root)
    rng = random.Random(20240304 + concurrency)

    kills, runs = kill_while_draining(
        config_path, log, sim, lambda: all(f.deleted for f in faxes), rng, kills=KILLS
    )

    assert kills >= 20, f"only {kills} kills landed; the daemon finished too fast"
    assert sim.violations == []
    assert all(f.deleted for f in faxes), f"not all deleted after {runs} runs; see {log}"

    assert delivered_files(root) == wanted_files(faxes)  # every fax exactly once, nothing else
    for fax in faxes:
        assert expected_path(root, fax).read_bytes() == fax.data

    db = Database(f"sqlite:///{tmp_path / 'faxd.db'}")
    try:
        with db.session() as session:
            assert Counter(r.state for r in session.query(InboundFax)) == {"done": FAXES}
    finally:
        db.dispose()
