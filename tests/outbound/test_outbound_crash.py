"""A job is never posted twice: crashes around sendfax, lost answers, interrupted moves."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from faxd.outbound.service import Outbound, list_jobs
from faxd.providers.faxage.client import FaxFile
from faxd.providers.faxage.provider import FaxageOutbound
from faxd.sim.documents import make_pdf
from faxd.store.db import Database
from faxd.store.models import OutboundJob
from faxd.store.states import JobState

SIM_PASSWORD = "s3cr3t-Pa55word-x9"


def write_config(tmp_path: Path, folders: Any, sim: Any) -> Path:
    """A real faxd.toml for `faxd run --once`, pointing at the simulator."""
    path = tmp_path / "faxd.toml"
    path.write_text(
        f"""
[faxage]
username = "acme"
company = "12345"
password = "{SIM_PASSWORD}"
base_url = "{sim.base_url}"
timeout = 5

[database]
url = "sqlite:///{tmp_path / "faxd.db"}"

[inbound]
enabled = false
spool_dir = "{tmp_path / "inbound-spool"}"

[[routes]]
name = "default"
actions = [{{ type = "folder", path = "{tmp_path / "inbox"}/{{recvid}}.{{ext}}" }}]

[outbound]
enabled = true
hot_folder = "{folders.hot}"
sent_folder = "{folders.sent}"
failed_folder = "{folders.failed}"
spool_dir = "{folders.spool}"
settle_seconds = 0.3
status_interval = 5
clear_after_status = true
"""
    )
    path.chmod(0o600)  # it holds a password: faxd refuses a world-readable one
    return path


def run_faxd_once(config: Path) -> subprocess.Popen[bytes]:
    """`faxd run --once` in its own process, so the test can SIGKILL it."""
    return subprocess.Popen(
        [sys.executable, "-m", "faxd", "run", "--config", str(config), "--once"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def killed_after_the_post(config: Path, sim: Any) -> None:
    """`faxd run --once`, SIGKILLed after FAXAGE recorded the job, before its answer."""
    running: list[subprocess.Popen[bytes]] = []
    sim.on_sendfax = lambda _job: os.kill(running[0].pid, signal.SIGKILL)
    running.append(run_faxd_once(config))
    output = running[0].communicate(timeout=60)[0].decode(errors="replace")
    assert running[0].returncode == -signal.SIGKILL, output
    assert sim.sendfax_posts == 1
    sim.on_sendfax = None


def restart_twice(config: Path, sim: Any) -> str:
    """Restart: a pass that reconciles, then one that follows the job to the end; the logs."""
    output = ""
    for _ in range(2):
        again = run_faxd_once(config)
        output += again.communicate(timeout=60)[0].decode(errors="replace")
        assert again.returncode == 0, output
    return output


@pytest.mark.parametrize(
    "csid", ["ACME FAX 01", "3035551212", ""], ids=["letters", "digits", "none"]
)
def test_sigkill_after_sendfax_post_does_not_send_twice(
    tmp_path: Path, folders: Any, sim: Any, csid: str
) -> None:
    """Killed after FAXAGE recorded the job but before the JOBID was saved: no second POST.

    FAXAGE's status answer uses the 2014 column order and the remote station's
    CSID has letters, digits or nothing: the job is still found and reconciled
    (a dropped status line would resend it), with the right page counts.
    """
    config = write_config(tmp_path, folders, sim)
    data = make_pdf("crash test " + os.urandom(8).hex(), 2)
    (folders.hot / "3035551212 - Acme.pdf").write_bytes(data)
    sim.job_seconds = 0.1
    sim.remote_csids["3035551212"] = csid
    assert sim.status_order == "2014"
    killed_after_the_post(config, sim)
    db = Database(f"sqlite:///{tmp_path / 'faxd.db'}")
    try:
        (job,) = list_jobs(db)
        assert job.state == JobState.SUBMITTING.value  # committed before the POST
        assert job.remote_jobid is None

        restart_twice(config, sim)
        assert sim.sendfax_posts == 1
        (sim_job,) = sim.jobs.values()
        (job,) = list_jobs(db)
        assert (job.provider, job.remote_jobid) == ("faxage", str(sim_job.jobid))
        assert job.resends == 0
        assert job.state == JobState.SENT.value
        assert (folders.sent / "3035551212 - Acme.pdf").read_bytes() == data
        (shown,) = faxd_jobs_json(config)
        assert (shown["state"], shown["pages"], shown["xmitpages"]) == ("sent", 2, 2)
        assert shown["csid"] == (csid or None)
    finally:
        db.engine.dispose()


@pytest.mark.parametrize(
    "sendtime", ["2026-13-45 99:99:99", "0000-00-00 00:00:00"], ids=["unreadable", "zero"]
)
def test_sigkill_after_sendfax_post_with_unknown_sendtime_does_not_send_twice(
    tmp_path: Path, folders: Any, sim: Any, sendtime: str
) -> None:
    """The lost answer's status record has a sendtime faxd cannot read: matched, not resent.

    It is the only record for the number, so it is the job; resending because
    its time is unknown would put the same fax out twice (invariant 5).
    """
    config = write_config(tmp_path, folders, sim)
    data = make_pdf("unknown sendtime " + os.urandom(8).hex(), 1)
    (folders.hot / "3035551212 - Acme.pdf").write_bytes(data)
    sim.job_seconds = 0.1
    sim.sendtime_text = sendtime
    killed_after_the_post(config, sim)

    output = restart_twice(config, sim)
    assert sim.sendfax_posts == 1, output
    (sim_job,) = sim.jobs.values()
    (shown,) = faxd_jobs_json(config)
    assert (shown["remote_jobid"], shown["state"]) == (str(sim_job.jobid), "sent")
    assert (folders.sent / "3035551212 - Acme.pdf").read_bytes() == data


def faxd_jobs_json(config: Path) -> list[dict[str, Any]]:
    """What `faxd jobs --json` shows, from its own process."""
    shown = subprocess.run(
        [sys.executable, "-m", "faxd", "jobs", "--config", str(config), "--json"],
        capture_output=True,
        check=True,
        timeout=60,
    )
    rows: list[dict[str, Any]] = json.loads(shown.stdout)
    return rows


def _submitting_job(db: Any, folders: Any, faxno: str, created: datetime) -> int:
    """A job left ``submitting`` by a crash, with its file in the spool."""
    spool = folders.spool / "1-report.pdf"
    spool.write_bytes(b"%PDF-1.4 left behind")
    with db.session() as session:
        job = OutboundJob(
            state=JobState.SUBMITTING.value,
            faxno=faxno,
            recipname="",
            source_name="report.pdf",
            source_relpath="report.pdf",
            spool_path=str(spool),
            size=20,
            created_at=created,
            updated_at=created,
            attempts=1,
        )
        session.add(job)
        session.flush()
        return job.id


def test_submitting_job_unknown_to_faxage_is_resent_once(
    make_settings: Callable[..., Any], folders: Any, sim: Any, db: Any, client: Any
) -> None:
    """No status record matches a submitting job: it is resent once, and the log says so."""
    job_id = _submitting_job(db, folders, "3035551212", datetime.now(UTC))
    service = Outbound(make_settings(), db, FaxageOutbound(client, make_settings()))
    with capture_logs() as logs:
        service.submit_pending()
    assert sim.sendfax_posts == 1
    (job,) = list_jobs(db)
    assert (job.id, job.state, job.resends) == (job_id, JobState.SUBMITTED.value, 1)
    assert any(entry["event"] == "outbound.resending_once" for entry in logs)
    service.submit_pending()
    assert sim.sendfax_posts == 1


def test_reconcile_ignores_records_owned_or_too_old(
    make_settings: Callable[..., Any], folders: Any, sim: Any, db: Any, client: Any
) -> None:
    """A record for the same number that another job owns is not taken as this job's."""
    other = client.sendfax("3035551212", "", [FaxFile.from_bytes("x.pdf", b"%PDF-1.4 other")])
    with db.session() as session:
        session.add(
            OutboundJob(
                state=JobState.SUBMITTED.value,
                faxno="3035551212",
                source_name="other.pdf",
                spool_path=str(folders.spool / "other.pdf"),
                remote_jobid=str(other),
            )
        )
    job_id = _submitting_job(db, folders, "3035551212", datetime.now(UTC))
    Outbound(make_settings(), db, FaxageOutbound(client, make_settings())).submit_pending()
    assert sim.sendfax_posts == 2  # the other job's POST and one resend of ours
    with db.session() as session:
        job = session.get(OutboundJob, job_id)
        assert job is not None
        assert job.remote_jobid not in (None, str(other))
        assert job.resends == 1


def test_crash_between_job_commit_and_spool_rename_makes_one_job(
    make_outbound: Callable[..., Outbound],
    make_settings: Callable[..., Any],
    folders: Any,
    db: Any,
) -> None:
    """A queued row whose file never reached the spool is finished at start-up, not duplicated."""
    source = folders.hot / "3035551212.pdf"
    source.write_bytes(b"%PDF-1.4 half-moved")
    spool = folders.spool / "1-3035551212.pdf"
    with db.session() as session:
        session.add(
            OutboundJob(
                state=JobState.QUEUED.value,
                faxno="3035551212",
                source_name="3035551212.pdf",
                source_relpath="3035551212.pdf",
                spool_path=str(spool),
                size=source.stat().st_size,
            )
        )
    make_outbound()
    assert spool.read_bytes() == b"%PDF-1.4 half-moved"
    assert not source.exists()
    time.sleep(1.5)  # several settle periods: a second job would have appeared
    assert len(list_jobs(db)) == 1


def test_permanent_refusal_fails_the_job_with_faxage_reason(
    make_outbound: Callable[..., Outbound], folders: Any, sim: Any, db: Any
) -> None:
    """ERR05 (blocked number) fails the job at once: file in failed/ with FAXAGE's reason."""
    sim.blocked_numbers.add("9005551212")
    service = make_outbound()
    (folders.hot / "9005551212.pdf").write_bytes(b"%PDF-1.4 premium")
    deadline = time.monotonic() + 120
    while len(list_jobs(db)) != 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    service.submit_pending()
    service.submit_pending()
    assert sim.sendfax_posts == 1
    (job,) = list_jobs(db)
    assert job.state == JobState.FAILED.value
    reason = (folders.failed / "9005551212.pdf.txt").read_text()
    assert "FAXAGE refused the fax" in reason and "ERR05" in reason
