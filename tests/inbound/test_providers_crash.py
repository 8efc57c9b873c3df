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
import socket
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from inbound_helpers import (
    Receiver,
    delivered_files,
    kill_while_draining,
    operations,
    provider_config_file,
    provider_path,
    provider_require_delivered,
    sim_faxes,
    wanted_files,
)
from sqlalchemy.exc import OperationalError

from faxd.config import load_config
from faxd.sim.kits import KITS
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


def drain_under_kills(receiver: Receiver, tmp_path: Path, *, extra: str = "") -> list[Any]:
    """Drain 60 faxes through >= 20 SIGKILLed daemons; check each delivered once; the faxes."""
    name, sim = receiver.name, receiver.sim
    section = receiver.kit.section(sim, timeout=5)
    config_path = provider_config_file(tmp_path, name, section, inbound=INBOUND, extra=extra)
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

    db = Database(f"sqlite:///{tmp_path / 'faxd.db'}")
    try:
        with db.session() as session:
            rows = session.query(InboundFax).all()
            assert Counter(r.state for r in rows) == {"done": FAXES}
            assert all((r.deleted_at is None) == receiver.keeps for r in rows)
    finally:
        db.dispose()
    return faxes


@pytest.mark.slow
def test_sigkill_at_random_moments_on_every_provider(receiver: Receiver, tmp_path: Path) -> None:
    """>= 20 SIGKILLs while draining 60 faxes: each delivered once, released only after."""
    faxes = drain_under_kills(receiver, tmp_path)
    if receiver.keeps:  # kept on the server: nothing ever asked to release a fax
        assert set(operations(receiver.sim)) == {"fax-list-all", "fax-download"}
    else:
        assert all(f.released for f in faxes)


@pytest.mark.slow
def test_sigkill_while_voipms_moves_faxes_to_the_archive(tmp_path: Path) -> None:
    """after_delivery = "move" under SIGKILL: each fax delivered once, moved, none deleted."""
    kit = KITS["voipms"]
    sim = kit.start()
    try:
        moving = 'after_delivery = "move"\narchive_folder = "ARCHIVE"\n'
        faxes = drain_under_kills(Receiver("voipms", kit, sim), tmp_path, extra=moving)
        archive = sim.folder_id("ARCHIVE")
        assert all(f.moved_to == archive and not f.deleted for f in faxes)
        assert "deleteFaxMessage" not in operations(sim)
    finally:
        sim.stop()


def cut_request(receiver: Receiver, fax: Any) -> tuple[str, dict[str, str], bytes]:
    """A request releasing (or on iFax listing) ``fax``: path, headers, body whose
    first part alone is already a request the provider would act on."""
    sim = receiver.sim
    if receiver.name == "faxage":
        form = (
            f"username={sim.username}&company={sim.company}&password={sim.password}"
            f"&operation=delfax&faxid={fax.remote_id}"
        )
        return "/httpsfax.php", {"Content-Type": "application/x-www-form-urlencoded"}, form.encode()
    if receiver.name == "voipms":
        form = (
            f"api_username={sim.username}&api_password={sim.password}"
            f"&method=deleteFaxMessage&id={fax.remote_id}"
        )
        path = "/" + sim.base_url.split("/", 3)[3]
        return path, {"Content-Type": "application/x-www-form-urlencoded"}, form.encode()
    body = b'{"startDate": "01/01/2020", "endDate": "01/01/2030"}'
    headers = {"Content-Type": "application/json", "accessToken": sim.token}
    return "/v1/customer/inbound/fax-list-all", headers, body


def test_a_request_cut_off_by_a_kill_is_never_run(receiver: Receiver) -> None:
    """A client killed mid-body: the simulator, like a web server, runs nothing of it.

    Otherwise a killed daemon's half-sent request could release a fax (or, on
    iFax, count as the client breaking the wire rules) and fail the crash test.
    """
    sim = receiver.sim
    fax = receiver.seed(1)[0]
    path, headers, body = cut_request(receiver, fax)
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(body) + 40}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    with socket.create_connection((sim.host, sim.port), timeout=10) as conn:
        conn.sendall(head.encode() + body)  # 40 bytes short: the sender died here
        conn.shutdown(socket.SHUT_WR)
        while conn.recv(4096):  # until the simulator is done with the connection
            pass
    assert not getattr(fax, "deleted", False)
    assert sim.violations == []
    assert operations(sim) == []
