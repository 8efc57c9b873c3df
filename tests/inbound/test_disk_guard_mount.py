"""The low-disk guard on a real small file system: a tmpfs of a few MB mounted by the test.

The spool and a folder action's root live on the tmpfs; a ballast file eats
its space.  The pipeline talks to the FAXAGE simulator over HTTP, admin mails
go to aiosmtpd on loopback.  Shown: below ``[inbound] min_free_mb`` downloads
pause (no getfax, no delfax, no attempt counted), said once in the log and by
``disk_low``, and resume by themselves when the ballast goes; a disk that
fills during a download or a folder delivery leaves no partial file, counts
no attempt, and the fax is delivered once space returns.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from email import message_from_bytes
from email.policy import default
from pathlib import Path
from typing import Any

import pytest
from inbound_helpers import SALES, ManualClock, faxage_inbound, make_config, sim_settings
from sqlalchemy import select

from faxd.alerts.mailer import AdminMailer
from faxd.config import Config, FolderSpec, NotifySettings, RouteSpec, SmtpSettings
from faxd.inbound.diskguard import statvfs_free
from faxd.inbound.pipeline import InboundPipeline
from faxd.providers.faxage.client import FaxageClient
from faxd.smtp import SmtpSender
from faxd.store.models import Delivery
from faxd.store.states import FaxState
from faxd.tables import render_status, status_report

MiB = 1024 * 1024
NOTIFY = NotifySettings(email=("it@example.com",), min_interval=0)
#: A fax larger than what the ballast leaves free.
BIG = b"%PDF-1.4\n" + os.urandom(2 * MiB)


@contextmanager
def tmpfs(mount: Path, options: str) -> Iterator[Path]:
    """A fresh tmpfs at ``mount`` (made), unmounted afterwards whatever the test did."""
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root; the low-disk tests need a small real disk")
    try:
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"{options},mode=0755", "tmpfs", str(mount)],
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError as exc:
        pytest.skip(f"cannot run mount(8) to make a small tmpfs: {exc}")
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip() or done.returncode})")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """An 8 MB tmpfs for this test."""
    with tmpfs(tmp_path / "small", "size=8m") as mount:
        yield mount


def ballast(disk: Path, *, leave: int) -> Path:
    """A file that leaves about ``leave`` bytes free on ``disk``."""
    path = disk / "ballast"
    size = statvfs_free(disk) - leave
    with path.open("wb") as out:
        out.write(b"\0" * size)
    assert abs(statvfs_free(disk) - leave) < 64 * 1024
    return path


def config_for(tmp_path: Path, sim: Any, spool: Path, folder: Path, **inbound: Any) -> Config:
    routes = (RouteSpec("sales", dnis=(SALES,), actions=(FolderSpec(f"{folder}/{{recvid}}.pdf"),)),)
    return make_config(tmp_path, routes, faxage=sim_settings(sim), spool_dir=spool, **inbound)


def events_of(logs: list[Any], name: str) -> list[Any]:
    return [e for e in logs if e["event"] == name]


def test_below_min_free_downloads_pause_once_and_resume_by_themselves(
    tmp_path: Path, small_disk: Path, sim: Any, client: FaxageClient, db: Any,
    smtp_server: Any, clock: ManualClock, logs: list[Any],
) -> None:  # fmt: skip
    """512 KiB free, min_free_mb = 1: no getfax, no attempt, one log line, one disk_low mail."""
    spool, folder = small_disk / "spool", small_disk / "fax"
    smtp = SmtpSettings(host=smtp_server.host, port=smtp_server.port, from_addr="faxd@example.com")
    config = replace(
        config_for(tmp_path, sim, spool, folder, min_free_mb=1), smtp=smtp, notify=NOTIFY
    )
    pipeline = InboundPipeline(faxage_inbound(client, config), db, config, clock=clock)
    mailer = AdminMailer(db, NOTIFY, SmtpSender(smtp), clock=clock, hostname="faxbox")
    weight = ballast(small_disk, leave=512 * 1024)
    fax = sim.add_fax(SALES, "(720)555-0142")

    for _ in range(3):
        pipeline.poll()
        clock.advance(60)
    row = pipeline.ledger.get(fax.remote_id)
    assert row is not None and row.state is FaxState.LISTED
    assert row.attempts == 0 and row.next_attempt_at is None and row.last_error is None
    assert fax.getfax_count == 0 and not fax.deleted
    (line,) = events_of(logs, "inbound.disk_low")
    assert str(spool) in line["message"] and "min_free_mb = 1" in line["message"]

    assert mailer.send_due() == 1
    (mail,) = [message_from_bytes(raw, policy=default) for _f, _t, raw in smtp_server.messages]
    assert mail["X-Faxd-Event"] == "disk_low"
    assert mail["Subject"] == f"[faxd on faxbox] {spool} is low on disk"
    body = str(mail.get_body(("plain",)).get_content())
    assert f"{spool} has 0.5 MB free, below [inbound] min_free_mb = 1" in " ".join(body.split())
    status = " ".join(render_status(status_report(db, config)).split())
    assert f"downloads paused: {spool} has 0.5 MB free, below [inbound] min_free_mb = 1" in status

    weight.unlink()
    pipeline.poll()
    assert fax.deleted and (folder / f"{fax.recvid}.pdf").read_bytes() == fax.data
    assert len(events_of(logs, "inbound.disk_ok")) == 1
    assert len(events_of(logs, "inbound.disk_low")) == 1
    assert "DISK:" not in render_status(status_report(db, config))
    assert mailer.send_due() == 1
    recovered = message_from_bytes(smtp_server.messages[-1][2], policy=default)
    assert recovered["X-Faxd-Event"] == "recovered"
    assert "recovered: downloads paused" in str(recovered.get_body(("plain",)).get_content())


def too_big_for(
    disk: Path, tmp_path: Path, sim: Any, client: FaxageClient, db: Any, clock: ManualClock,
    spool: Path, folder: Path,
) -> tuple[InboundPipeline, Path, Any]:  # fmt: skip
    """``min_free_mb = 0``, 1 MiB left free on ``disk``, and a 2 MiB fax waiting."""
    config = config_for(tmp_path, sim, spool, folder, min_free_mb=0)
    pipeline = InboundPipeline(faxage_inbound(client, config), db, config, clock=clock)
    return pipeline, ballast(disk, leave=MiB), sim.add_fax(SALES, data=BIG)


def test_a_disk_that_fills_during_a_download_loses_nothing(
    tmp_path: Path, small_disk: Path, sim: Any, client: FaxageClient, db: Any,
    clock: ManualClock, logs: list[Any],
) -> None:  # fmt: skip
    """A 2 MiB fax into a spool with 1 MiB free: no partial, no attempt, delivered later."""
    spool, folder = small_disk / "spool", tmp_path / "fax"
    pipeline, weight, fax = too_big_for(small_disk, tmp_path, sim, client, db, clock, spool, folder)

    pipeline.poll()
    tried = fax.getfax_count
    assert tried >= 1 and not fax.deleted
    assert list(spool.iterdir()) == []  # the partial file was removed
    row = pipeline.ledger.get(fax.remote_id)
    assert row is not None and row.state is FaxState.LISTED
    assert row.attempts == 0 and row.next_attempt_at is None
    assert len(events_of(logs, "inbound.download_disk_full")) == 1
    (line,) = events_of(logs, "inbound.disk_low")
    assert f"{spool} filled up while faxd wrote to it" in line["message"]

    clock.advance(3600)
    pipeline.poll()  # still no room: no download is tried
    assert fax.getfax_count == tried and not fax.deleted

    weight.unlink()
    pipeline.poll()
    assert fax.deleted and (folder / f"{fax.recvid}.pdf").read_bytes() == BIG
    row = pipeline.ledger.get(fax.remote_id)
    assert row is not None and row.state is FaxState.DONE and row.attempts == 0
    assert len(events_of(logs, "inbound.disk_ok")) == 1


def test_a_folder_delivery_that_fills_the_disk_waits_and_loses_nothing(
    tmp_path: Path, small_disk: Path, sim: Any, client: FaxageClient, db: Any,
    clock: ManualClock, logs: list[Any],
) -> None:  # fmt: skip
    """A 2 MiB fax into a folder with 1 MiB free: no temporary left, no attempt, no delfax."""
    spool, folder = tmp_path / "spool", small_disk / "fax"
    pipeline, weight, fax = too_big_for(small_disk, tmp_path, sim, client, db, clock, spool, folder)

    for _ in range(2):
        pipeline.poll()
        clock.advance(3600)
    assert os.listdir(folder) == []  # not even a hidden temporary
    row = pipeline.ledger.get(fax.remote_id)
    assert row is not None and row.state is FaxState.DOWNLOADED
    assert row.attempts == 0 and row.next_attempt_at is None
    with db.session() as session:
        tries = [(d.attempts, d.last_error) for d in session.scalars(select(Delivery))]
    assert tries == [(0, None)]
    assert not fax.deleted and fax.getfax_count == 1
    assert len(events_of(logs, "inbound.delivery_disk_full")) == 1  # then it waits
    (line,) = events_of(logs, "inbound.disk_low")
    assert f"{folder} filled up while faxd wrote to it" in line["message"]

    weight.unlink()
    pipeline.poll()
    assert fax.deleted and (folder / f"{fax.recvid}.pdf").read_bytes() == BIG
    assert fax.getfax_count == 1
    row = pipeline.ledger.get(fax.remote_id)
    assert row is not None and row.state is FaxState.DONE and row.attempts == 0


def test_a_spool_out_of_inodes_waits_until_a_file_is_removed(
    tmp_path: Path, sim: Any, client: FaxageClient, db: Any, clock: ManualClock,
    logs: list[Any],
) -> None:  # fmt: skip
    """Bytes to spare but no file left to make: no attempt; one file removed and it goes on."""
    with tmpfs(tmp_path / "tiny", "size=8m,nr_inodes=16") as disk:
        spool, folder = disk / "spool", tmp_path / "fax"
        spool.mkdir()
        fillers: list[Path] = []
        with pytest.raises(OSError, match="No space left"):
            while True:
                fillers.append(disk / f"filler-{len(fillers)}")
                fillers[-1].touch()
        config = config_for(tmp_path, sim, spool, folder, min_free_mb=1)
        pipeline = InboundPipeline(faxage_inbound(client, config), db, config, clock=clock)
        fax = sim.add_fax(SALES)

        pipeline.poll()
        clock.advance(3600)
        pipeline.poll()
        row = pipeline.ledger.get(fax.remote_id)
        assert row is not None and row.state is FaxState.LISTED
        assert row.attempts == 0 and row.next_attempt_at is None
        assert fax.getfax_count == 0 and not fax.deleted
        (line,) = events_of(logs, "inbound.disk_low")
        assert f"{spool} filled up while faxd wrote to it" in line["message"]

        fillers[0].unlink()
        pipeline.poll()
        assert fax.deleted and (folder / f"{fax.recvid}.pdf").read_bytes() == fax.data
