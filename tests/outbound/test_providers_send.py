"""End to end, once per sending provider: drops in the outbox become faxes, filed where they end.

Real files in a real hot folder (watchdog events), the service
:func:`faxd.app.build_app` builds from a TOML file, the provider's simulator
over HTTP.  Each drop is posted once, followed to its final status, and moved
to sent/ or (for the number the simulator fails) to failed/ with a reason; the
bytes the simulator received are the bytes dropped; the database row ends
``sent``/``failed`` with the provider and the simulator's id for that send —
also for VoIP.ms, whose send answer carries no id (found in its SENT folder),
with two drops to one number that must not be taken for each other.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from send_helpers import (
    FAIL_NUMBER,
    SENDERS,
    Folders,
    all_settled,
    check_rows,
    drive,
    reason_of,
    sends_per_drop,
    start_sim,
    write_config,
)

from faxd.app import App, build_app
from faxd.config import load_config
from faxd.sim.documents import make_pdf

#: File name -> pages; two go to one number, one to the number the simulator fails.
DROPS = {
    "3035550101 - Acme.pdf": 1,
    "303-555-0102.pdf": 2,
    "3035550103/report.pdf": 1,
    "3035550150 - first.pdf": 1,
    "3035550150 - second.pdf": 3,
    f"{FAIL_NUMBER} - Nobody.pdf": 1,
}


@pytest.fixture(params=SENDERS)
def running(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Any, App]]:
    name: str = request.param
    sim = start_sim(name)
    folders = Folders.under(tmp_path)
    app = build_app(load_config(write_config(tmp_path, name, sim, folders)))
    try:
        yield name, sim, app
    finally:
        if app.outbound is not None:
            app.outbound.stop()
        app.close()
        sim.stop()


def test_every_drop_is_sent_once_and_filed(running: tuple[str, Any, App], tmp_path: Path) -> None:
    name, sim, app = running
    service = app.outbound
    assert service is not None
    folders = Folders.under(tmp_path)
    service.start()
    drops: dict[str, bytes] = {}
    for relpath, pages in DROPS.items():
        data = make_pdf(f"{name} {relpath} {os.urandom(6).hex()}", pages)
        path = folders.hot / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        drops[Path(relpath).name] = data

    def passes() -> None:
        service.submit_pending()
        service.follow_up()

    assert drive(passes, lambda: all_settled(folders, drops), timeout=120), sorted(
        p.name for p in folders.sent.iterdir()
    )

    assert sends_per_drop(sim, drops) == {file: 1 for file in drops}
    for file, data in drops.items():
        if file.startswith(FAIL_NUMBER):
            assert not (folders.sent / file).exists()
            assert (folders.failed / file).read_bytes() == data
            reason = reason_of(folders, file)
            assert reason is not None and "could not deliver the fax" in reason, reason
        else:
            assert (folders.sent / file).read_bytes() == data, file
    assert not [p for p in folders.hot.rglob("*") if p.is_file()]
    check_rows(app.db, name, sim, folders, drops)
