"""Faults at 20 %, once per sending provider: no drop is sent twice, none is silently dropped.

The simulator answers 500, resets the connection, answers slowly, loses the
send answer after the send went through, or answers with the provider's own
error (FAXAGE ERR01, VoIP.ms api_limit_exceeded, iFax 429, faxnummer.de's
"Failed to send Fax"), each on a fifth of the requests.  Whatever happens,
the simulator holds each dropped file's bytes at most once, every sent file
exactly once, and every drop ends in sent/ or in failed/ with a reason.

A lost send answer is where the providers differ: FAXAGE and iFax find the
job in their status lists, VoIP.ms in its SENT folder, and faxnummer.de,
which has no list to ask (``Capabilities.reconcile`` false), fails the job
with a reason telling the user to check the portal — never a second POST.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import timedelta
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
    jobs_by_file,
    outcome,
    reason_of,
    sends_per_drop,
    start_sim,
    write_config,
)

from faxd.app import App, build_app
from faxd.config import load_config
from faxd.outbound.service import Outbound
from faxd.outbound.submitter import lost_answer_reason
from faxd.sim.documents import make_pdf

#: Each simulator's name for the send operation (where a lost answer matters).
SEND_OPERATION = {
    "faxage": "sendfax",
    "voipms": "sendFaxMessage",
    "ifax": "fax-send",
    "faxnummer": "SendFax",
}
#: Each provider's own error answer, as its simulator's fault kind.
OWN_ERROR = {"faxage": "err01", "voipms": "api_limit", "ifax": "rate_limit", "faxnummer": "failed"}
#: What is injected: (name, kind or None for the provider's own, on the send only, after).
FAULTS = {
    "http500": ("http500", False, False),
    "reset": ("reset", False, False),
    "slow": ("slow", False, False),
    "own": (None, False, False),
    "lost_reset": ("reset", True, True),
    "lost_500": ("http500", True, True),
}
RATE = 0.2

DROPS = (
    "3035550101 - Acme.pdf",
    "3035550102.pdf",
    "3035550103.pdf",
    "3035550104.pdf",
    "3035550105.pdf",
    "3035550150 - first.pdf",
    "3035550150 - second.pdf",
    f"{FAIL_NUMBER} - Nobody.pdf",
)


@pytest.fixture
def started(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Any, App]]:
    name: str = request.param
    sim = start_sim(name, seed=7)
    sim.slow_seconds = 0.3
    folders = Folders.under(tmp_path)
    config = write_config(tmp_path, name, sim, folders, outbound="max_attempts = 10\n", timeout=2)
    app = build_app(load_config(config))
    service = app.outbound
    assert service is not None
    # Faster retries than an office wants, so the test takes seconds, not hours.
    service.submitter.backoff_base = 0.1
    service.submitter.backoff_max = 0.5
    service.submitter.lost_grace = service.follow.lost_grace = timedelta(seconds=3)
    client = service.provider.client  # type: ignore[attr-defined]
    client.backoff = 0.05
    if hasattr(client, "rate_limit_backoff"):  # VoIP.ms waits a minute after api_limit_exceeded
        client.rate_limit_backoff = 0.2
    try:
        yield name, sim, app
    finally:
        service.stop()
        app.close()
        sim.stop()


def drop_all(folders: Folders, names: tuple[str, ...], tag: str) -> dict[str, bytes]:
    drops = {}
    for file in names:
        data = make_pdf(f"{tag} {file} {os.urandom(6).hex()}", 1)
        (folders.hot / file).write_bytes(data)
        drops[file] = data
    return drops


def run_until_settled(service: Outbound, folders: Folders, drops: dict[str, bytes]) -> None:
    def passes() -> None:
        service.submit_pending()
        service.follow_up()

    settled = drive(passes, lambda: all_settled(folders, drops), timeout=180)
    assert settled, {file: outcome(folders, file) for file in drops}
    # Later passes (reconcile, follow-up) must not post anything again.
    drive(passes, lambda: False, timeout=1.0)


@pytest.mark.parametrize("fault", sorted(FAULTS))
@pytest.mark.parametrize("started", SENDERS, indirect=True)
def test_faults_at_20_percent_send_nothing_twice_and_lose_nothing(
    started: tuple[str, Any, App], tmp_path: Path, fault: str
) -> None:
    name, sim, app = started
    service = app.outbound
    assert service is not None
    folders = Folders.under(tmp_path)
    kind, send_only, after = FAULTS[fault]
    sim.inject(
        kind or OWN_ERROR[name],
        operation=SEND_OPERATION[name] if send_only else None,
        rate=RATE,
        after=after,
    )
    service.start()
    drops = drop_all(folders, DROPS, f"{name} {fault}")
    run_until_settled(service, folders, drops)
    fired = sum(f.fired for f in sim.faults.active)

    counts = sends_per_drop(sim, drops)
    assert max(counts.values()) <= 1, counts  # never twice
    for file, data in drops.items():
        if outcome(folders, file) == "sent":
            assert counts[file] == 1, file
            assert (folders.sent / file).read_bytes() == data
        else:
            assert (folders.failed / file).read_bytes() == data
            assert reason_of(folders, file), file
    assert (folders.failed / f"{FAIL_NUMBER} - Nobody.pdf").exists()
    check_rows(app.db, name, sim, folders, drops)
    assert fired > 0, "no fault fired: the test proved nothing"


@pytest.mark.parametrize("started", SENDERS, indirect=True)
def test_lost_send_answer_is_reconciled_or_failed_never_resent(
    started: tuple[str, Any, App], tmp_path: Path
) -> None:
    """The send went through, its answer was lost: found in the provider's lists, or failed.

    faxnummer.de cannot be asked, so its job fails with the "check the portal"
    reason; the others find the job and follow it to ``sent``.  Either way the
    simulator received the file exactly once.
    """
    name, sim, app = started
    service = app.outbound
    assert service is not None
    folders = Folders.under(tmp_path)
    lost = sim.inject("reset", operation=SEND_OPERATION[name], times=1, after=True)
    service.start()
    drops = drop_all(folders, ("3035550101 - Acme.pdf",), name)
    run_until_settled(service, folders, drops)

    assert lost.fired == 1
    assert sends_per_drop(sim, drops) == {"3035550101 - Acme.pdf": 1}
    ((row,),) = jobs_by_file(app.db).values()
    if sim_can_be_asked := service.provider.capabilities.reconcile:
        assert outcome(folders, "3035550101 - Acme.pdf") == "sent"
        assert (row.state, row.resends) == ("sent", 0)
    else:
        assert name == "faxnummer"
        reason = reason_of(folders, "3035550101 - Acme.pdf")
        assert reason is not None and lost_answer_reason(name) in reason, reason
        assert (row.state, row.resends, row.last_error) == ("failed", 0, lost_answer_reason(name))
    assert sim_can_be_asked == (name != "faxnummer")
    check_rows(app.db, name, sim, folders, drops)
