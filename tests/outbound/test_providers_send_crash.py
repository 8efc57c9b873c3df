"""The real daemon SIGKILLed over and over while it sends, once per sending provider.

``faxd run`` runs in its own process against the provider's simulator (here,
over HTTP) and is killed with SIGKILL at random moments, at least 20 times
(half of them just after a send reached the simulator, before its answer
can be recorded),
while 60 files are dropped in the outbox and sent; it is restarted after each
kill.  At the end every drop is in sent/ (the simulator received its bytes
exactly once) or in failed/ with a reason saying why (received at most once:
faxnummer.de cannot be asked about a send whose answer a kill cut off, so that
job fails with the "check the portal" reason).  Nothing is sent twice,
nothing is lost, and each drop is one database row.

After the last kill the remaining work is drained by the same service,
built in this process from the same config, with VoIP.ms's 15-minute grace
for a job its SENT folder does not list (one killed after its claim but
before the POST) shortened to seconds; nothing else differs from the daemon.
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
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

from faxd.app import build_app
from faxd.config import load_config
from faxd.outbound.service import Outbound, list_jobs
from faxd.sim.documents import make_pdf
from faxd.store.models import OutboundJob
from faxd.store.states import JobState

KILLS = 20
FILES = 60


def numbered(index: int) -> str:
    """Drop ``index``'s file name: some numbers repeat, two go to the failing number."""
    if index in (17, 43):
        return f"{FAIL_NUMBER} - crash {index:02d}.pdf"
    return f"30355501{index % 45:02d} - crash {index:02d}.pdf"


def described(root: Path, names: list[str]) -> list[tuple[Any, ...]]:
    """The rows of jobs taken from ``names`` (ids, state, resends, remote id), for a failure."""
    app = build_app(load_config(root / "faxd.toml"))
    try:
        return [
            (job.id, job.source_name, job.state, job.resends, job.attempts, job.remote_jobid)
            for file, jobs in jobs_by_file(app.db).items()
            if file in names
            for job in jobs
        ]
    finally:
        app.close()


def wait_started(log: Path, times: int) -> bool:
    """Wait until the daemon has started ``times`` times (its scheduler runs), however slow."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if log.read_bytes().count(b"Scheduler started") >= times:
            return True
        time.sleep(0.02)
    return False


def wait_new_send(sim: Any, timeout: float) -> None:
    """Return as soon as the simulator holds one more send than now, or after ``timeout``."""
    before = len(sim.jobs)
    deadline = time.monotonic() + timeout
    while len(sim.jobs) == before and time.monotonic() < deadline:
        time.sleep(0.001)


def start_daemon(config: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "faxd", "run", "--config", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )


@pytest.mark.parametrize("name", SENDERS)
def test_sigkill_while_sending_sends_each_drop_at_most_once(name: str, tmp_path: Path) -> None:
    seed = int.from_bytes(os.urandom(4), "big")
    rng = random.Random(seed)
    sim = start_sim(name, settle_seconds=0.5)
    folders = Folders.under(tmp_path)
    config = write_config(tmp_path, name, sim, folders)
    log = tmp_path / "daemon.log"
    drops: dict[str, bytes] = {}
    per_round = FILES // KILLS
    try:
        for kill in range(KILLS):
            for index in range(kill * per_round, (kill + 1) * per_round):
                file = numbered(index)
                drops[file] = make_pdf(f"{name} {file} {os.urandom(6).hex()}", 1 + index % 3)
                (folders.hot / file).write_bytes(drops[file])
            daemon = start_daemon(config, log)
            assert wait_started(log, kill + 1), (seed, log.read_text()[-3000:])
            if kill % 2:
                time.sleep(rng.uniform(0.0, 1.5))  # intake, POSTs, status passes
            else:  # the moment that matters most: a send arrived, its answer not yet recorded
                wait_new_send(sim, rng.uniform(0.5, 3.0))
            daemon.send_signal(signal.SIGKILL)
            assert daemon.wait(timeout=30) == -signal.SIGKILL, (seed, log.read_text()[-3000:])
        # Sending went on between kills: the test is not a restart after one big crash.
        assert len(sim.jobs) > 0, (seed, log.read_text()[-3000:])
        drain(config, folders, drops, seed, log)
        counts = sends_per_drop(sim, drops)
        twice = [file for file, count in counts.items() if count > 1]
        assert not twice, (seed, described(tmp_path, twice), log.read_text()[-20000:])
        for file, data in drops.items():
            if outcome(folders, file) == "sent":
                assert counts[file] == 1, (seed, file)
                assert (folders.sent / file).read_bytes() == data
            else:
                assert (folders.failed / file).read_bytes() == data, (seed, file)
                reason = reason_of(folders, file)
                assert reason, (seed, file)
                if not file.startswith(FAIL_NUMBER):
                    # Only a kill that cut off a send answer may fail a good number, and
                    # only where it cannot be reconciled (faxnummer.de).
                    assert name == "faxnummer" and "check the sent faxes" in reason, (seed, reason)
        assert not [p for p in folders.hot.rglob("*") if p.is_file()]
        app = build_app(load_config(config))
        try:
            check_rows(app.db, name, sim, folders, drops)
        finally:
            app.close()
    finally:
        sim.stop()


def drain(config: Path, folders: Folders, drops: dict[str, bytes], seed: int, log: Path) -> None:
    """Send and file what the kills left, with the service the daemon runs."""
    app = build_app(load_config(config))
    service = app.outbound
    assert service is not None
    service.submitter.lost_grace = service.follow.lost_grace = timedelta(seconds=2)
    service.start()

    def passes() -> None:
        service.submit_pending()
        service.follow_up()

    try:
        settled = drive(passes, lambda: all_settled(folders, drops), timeout=180)
        assert settled, (
            seed,
            {file: outcome(folders, file) for file in drops if outcome(folders, file) is None},
            log.read_text()[-3000:],
        )
        drive(passes, lambda: False, timeout=1.0)  # nothing is posted again afterwards
    finally:
        service.stop()
        app.close()


def test_crash_between_spool_copy_and_source_removal_makes_one_job(
    make_outbound: Callable[..., Outbound], folders: Any, db: Any, sim: Any
) -> None:
    """Killed after the spool copy was complete but before the outbox file was removed.

    The restart must finish the move (source removed, copy in place), not just
    rename the copy: the source left behind became a second job and a second
    fax, which the SIGKILL test above found.
    """
    data = b"%PDF-1.4 copied, source not yet removed"
    source = folders.hot / "3035551212.pdf"
    source.write_bytes(data)
    spool = folders.spool / "1-3035551212.pdf"
    (folders.spool / ".1-3035551212.pdf.faxd-tmp").write_bytes(data)  # the complete copy
    with db.session() as session:
        session.add(
            OutboundJob(
                state=JobState.QUEUED.value,
                faxno="3035551212",
                source_name="3035551212.pdf",
                source_relpath="3035551212.pdf",
                spool_path=str(spool),
                size=len(data),
                sha256=hashlib.sha256(data).hexdigest(),
            )
        )
    service = make_outbound()
    assert spool.read_bytes() == data
    assert not source.exists()
    service.rescan()
    time.sleep(1.5)  # several settle periods: a second job would have appeared
    assert len(list_jobs(db)) == 1
    service.submit_pending()
    assert sim.sendfax_posts == 1
