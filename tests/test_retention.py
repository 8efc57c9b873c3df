"""Retention: old files leave sent/ and failed/, old finished rows leave the database.

Files and rows are aged with freezegun: the real files are made now and the
clock is moved past ``sent_days`` / ``failed_days`` / ``records_days``.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from freezegun import freeze_time
from sqlalchemy import event, func, select

from faxd.cli import main
from faxd.config import OutboundSettings, RetentionSettings, load_config
from faxd.errors import ConfigError
from faxd.retention import Retention
from faxd.store.db import Database
from faxd.store.models import Delivery, InboundFax, OutboundJob

NOW = datetime.now(UTC)


@pytest.fixture
def outbound(tmp_path: Path) -> OutboundSettings:
    settings = OutboundSettings(
        hot_folder=tmp_path / "outbox",
        sent_folder=tmp_path / "sent",
        failed_folder=tmp_path / "failed",
        spool_dir=tmp_path / "outspool",
    )
    for folder in (settings.hot_folder, settings.sent_folder, settings.failed_folder):
        folder.mkdir()
    return settings


def add_job(db: Database, state: str, final_path: Path | None, completed: datetime | None,
            updated: datetime | None = None) -> int:  # fmt: skip
    with db.session() as session:
        job = OutboundJob(
            state=state, faxno="3035551212", source_name="x.pdf", spool_path="/nowhere",
            final_path=str(final_path) if final_path else None, completed_at=completed,
            **({"updated_at": updated} if updated is not None else {}),
        )  # fmt: skip
        session.add(job)
        session.flush()
        return job.id


def add_fax(db: Database, recvid: int, state: str, deleted: datetime | None) -> None:
    with db.session() as session:
        fax = InboundFax(
            provider="faxage", account="acme@12345", remote_id=str(recvid),
            recvdate=datetime(2024, 5, 1, 9, 30),
            state=state, deleted_at=deleted, listed_at=NOW - timedelta(days=800),
            updated_at=deleted or NOW - timedelta(days=800),
        )  # fmt: skip
        session.add(fax)
        session.flush()
        session.add(Delivery(fax_id=fax.id, route="r", action_index=0, action_type="folder"))


def write_config(path: Path, body: str) -> Path:
    path.write_text(body)
    path.chmod(0o600)  # it holds a password
    return path


def drop(path: Path, data: bytes = b"%PDF-1.4\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_old_sent_and_failed_files_go_with_their_reason_files(
    db: Database, outbound: OutboundSettings
) -> None:
    """Past their days, a sent file and a failed file (with its .txt) are removed; newer stay."""
    old_sent = drop(outbound.sent_folder / "3035551212.pdf")
    new_sent = drop(outbound.sent_folder / "3035551213.pdf")
    old_failed = drop(outbound.failed_folder / "3035551214.pdf")
    reason = drop(outbound.failed_folder / "3035551214.pdf.txt", b"busy, try again\n")
    add_job(db, "sent", old_sent, NOW - timedelta(days=91))
    add_job(db, "sent", new_sent, NOW - timedelta(days=89))
    add_job(db, "failed", old_failed, NOW - timedelta(days=181))
    settings = RetentionSettings(sent_days=90, failed_days=180, records_days=None)

    report = Retention(db, settings, outbound).run()

    assert not old_sent.exists() and not old_failed.exists() and not reason.exists()
    assert new_sent.exists()
    assert sorted(item.path.name for item in report.files) == ["3035551212.pdf", "3035551214.pdf"]


def test_a_file_whose_job_is_not_finished_is_never_removed(
    db: Database, outbound: OutboundSettings
) -> None:
    """A job retried out of failed/ keeps its file, however old its last finish was."""
    path = drop(outbound.failed_folder / "3035551212.pdf")
    add_job(db, "queued", path, NOW - timedelta(days=400))

    Retention(db, RetentionSettings(failed_days=1), outbound).run()

    assert path.exists()


def test_a_file_without_a_job_ages_from_when_it_arrived(
    db: Database, outbound: OutboundSettings
) -> None:
    """A rejected drop (no job row) counts from its arrival: kept at 179 days, gone at 181."""
    rejected = drop(outbound.failed_folder / "holiday.jpg.exe")
    reason = drop(outbound.failed_folder / "holiday.jpg.exe.txt", b"not a fax type\n")
    settings = RetentionSettings(failed_days=180)

    with freeze_time(NOW + timedelta(days=179)):
        Retention(db, settings, outbound).run()
    assert rejected.exists() and reason.exists()

    with freeze_time(NOW + timedelta(days=181)):
        Retention(db, settings, outbound).run()
    assert not rejected.exists() and not reason.exists()


def test_a_lone_old_reason_file_is_removed_too(db: Database, outbound: OutboundSettings) -> None:
    """A reason file whose document someone already took away does not stay forever."""
    reason = drop(outbound.failed_folder / "gone.pdf.txt", b"why\n")
    with freeze_time(NOW + timedelta(days=200)):
        Retention(db, RetentionSettings(failed_days=180), outbound).run()
    assert not reason.exists()


def test_symlinks_and_folder_action_archives_are_never_touched(
    tmp_path: Path, db: Database, outbound: OutboundSettings
) -> None:
    """Nothing is followed out of sent/, and the office's fax archive is not retention's."""
    archive = drop(tmp_path / "fax" / "sales" / "104729.pdf")
    secret = drop(tmp_path / "elsewhere" / "keep.pdf")
    link = outbound.sent_folder / "link.pdf"
    link.symlink_to(secret)
    nested = drop(outbound.sent_folder / "3035551212" / "report.pdf")

    with freeze_time(NOW + timedelta(days=1000)):
        report = Retention(db, RetentionSettings(), outbound).run()

    assert archive.exists() and secret.exists() and link.is_symlink()
    assert not nested.exists()  # a subfolder's file is retention's, the link is not
    assert [item.path for item in report.files] == [nested]


def test_dry_run_lists_and_removes_nothing(db: Database, outbound: OutboundSettings) -> None:
    """--dry-run names each file and counts the rows, and leaves everything in place."""
    path = drop(outbound.sent_folder / "3035551212.pdf")
    add_job(db, "sent", path, NOW - timedelta(days=500))
    add_fax(db, 1, "done", NOW - timedelta(days=500))

    report = Retention(db, RetentionSettings(), outbound).run(dry_run=True)

    assert path.exists()
    assert [item.path for item in report.files] == [path]
    assert (report.fax_rows, report.job_rows) == (1, 1)
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(InboundFax)) == 1
        assert session.scalar(select(func.count()).select_from(OutboundJob)) == 1
    assert report.lines()[0].startswith(f"would remove {path} (sent, finished ")


def test_only_finished_rows_past_records_days_are_removed(
    db: Database, outbound: OutboundSettings
) -> None:
    """Deleted-and-done faxes and finished jobs go; faxes still on FAXAGE and live jobs stay."""
    old, recent = NOW - timedelta(days=366), NOW - timedelta(days=364)
    add_fax(db, 1, "done", old)  # delivered and deleted on FAXAGE a year ago: goes
    add_fax(db, 2, "done", recent)
    add_fax(db, 3, "done", None)  # kept on FAXAGE: the sweep would list it again
    add_fax(db, 4, "failed", None)
    for state in ("sent", "failed", "cancelled"):
        add_job(db, state, None, old)
    add_job(db, "sent", None, recent)
    live = add_job(db, "submitted", None, None)
    stuck = add_job(db, "submitted", None, None, updated=old)  # waiting on FAXAGE a year

    report = Retention(db, RetentionSettings(records_days=365), outbound).run()

    assert (report.fax_rows, report.job_rows) == (1, 3)
    with db.session() as session:
        assert sorted(session.scalars(select(InboundFax.remote_id))) == ["2", "3", "4"]
        assert session.scalar(select(func.count()).select_from(Delivery)) == 3
        jobs = list(session.scalars(select(OutboundJob.id)))
    assert live in jobs and stuck in jobs and len(jobs) == 3


def test_rows_are_removed_in_small_transactions(db: Database, outbound: OutboundSettings) -> None:
    """Seven old jobs with batches of three: three short deleting transactions, not one."""
    for _ in range(7):
        add_job(db, "sent", None, NOW - timedelta(days=400))
    deletes: list[str] = []

    def count_deletes(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.startswith("DELETE FROM outbound_jobs"):
            deletes.append(statement)

    event.listen(db.engine, "before_cursor_execute", count_deletes)
    report = Retention(db, RetentionSettings(), outbound, batch_size=3).run()

    assert report.job_rows == 7
    assert len(deletes) == 3


def test_retention_section_is_read_and_checked(tmp_path: Path) -> None:
    """Days are numbers; 0 keeps forever; a word is an error naming the key."""
    body = (
        '[faxage]\nusername = "a"\ncompany = "1"\npassword = "secret-pw-1"\n'
        f'[inbound]\nenabled = false\nspool_dir = "{tmp_path}/spool"\n'
        '[retention]\nsent_days = 30\nfailed_days = 0\n'
    )
    path = write_config(tmp_path / "faxd.toml", body)
    settings = load_config(path, env={}).retention
    assert settings == RetentionSettings(sent_days=30, failed_days=None, records_days=365)

    path.write_text(body.replace("sent_days = 30", 'sent_days = "a month"'))
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    assert any("[retention] sent_days" in problem for problem in caught.value.problems)


def test_cleanup_command_dry_run_then_for_real(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """faxd cleanup --dry-run lists the file; faxd cleanup removes it."""
    config = write_config(
        tmp_path / "faxd.toml",
        '[faxage]\nusername = "a"\ncompany = "1"\npassword = "secret-pw-1"\n'
        f'[database]\nurl = "sqlite:///{tmp_path}/faxd.db"\n'
        f'[inbound]\nenabled = false\nspool_dir = "{tmp_path}/spool"\n'
        f'[outbound]\nhot_folder = "{tmp_path}/outbox"\nsent_folder = "{tmp_path}/sent"\n'
        f'failed_folder = "{tmp_path}/failed"\n'
        "[retention]\nsent_days = 90\n",
    )
    db = Database(f"sqlite:///{tmp_path}/faxd.db")
    db.upgrade()
    db.dispose()
    old = drop(tmp_path / "sent" / "3035551212.pdf")

    with freeze_time(NOW + timedelta(days=91)):
        assert main(["--config", str(config), "cleanup", "--dry-run"]) == 0
        assert f"would remove {old} (sent" in capsys.readouterr().out
        assert old.exists()
        assert main(["--config", str(config), "cleanup"]) == 0
    assert f"removed {old} (sent" in capsys.readouterr().out
    assert not old.exists()


def test_cleanup_without_a_retention_section_removes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No [retention]: the command says how to turn it on and touches nothing."""
    config = write_config(
        tmp_path / "faxd.toml",
        '[faxage]\nusername = "a"\ncompany = "1"\npassword = "secret-pw-1"\n'
        f'[inbound]\nenabled = false\nspool_dir = "{tmp_path}/spool"\n',
    )
    assert main(["--config", str(config), "cleanup"]) == 0
    assert "add a [retention] section" in capsys.readouterr().out
    assert os.listdir(tmp_path) == ["faxd.toml"]


def _site_with_an_old_sent_file(sim: Any, tmp_path: Path) -> tuple[Path, Path]:
    """The demo site's config with ``[retention] sent_days = 1``, and a file in sent/."""
    from faxd.demo import DemoLayout
    from faxd.demo import write_config as write_demo_config

    layout = DemoLayout(tmp_path / "site")
    path = write_demo_config(
        layout, base_url=sim.base_url, username=sim.username, company=sim.company,
        password=sim.password,
    )  # fmt: skip
    with path.open("a") as out:
        out.write("\n[retention]\nsent_days = 1\n")
    return path, drop(layout.sent / "3035551212.pdf")


def test_the_daemon_runs_retention_when_configured(sim: Any, tmp_path: Path) -> None:
    """With [retention], `faxd run` schedules a daily pass, which also runs at start."""
    import threading
    import time

    from faxd.daemon import Daemon

    path, old = _site_with_an_old_sent_file(sim, tmp_path)
    daemon = Daemon(load_config(path))
    with freeze_time(NOW + timedelta(days=2), tick=True):
        runner = threading.Thread(target=daemon.run)
        runner.start()
        try:
            deadline = time.monotonic() + 60
            while old.exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            assert "retention" in daemon.job_ids()
            assert daemon.scheduler is not None
            job = daemon.scheduler.get_job("retention")
            assert job is not None and job.trigger.interval == timedelta(days=1)
        finally:
            daemon.request_stop()
            runner.join(60)
    assert not old.exists()


def test_sent_notifications_older_than_records_days_go_with_their_events(
    db: Database, outbound: OutboundSettings
) -> None:
    """Admin mails sent long ago leave with their events; unsent ones and recent ones stay."""
    from faxd.store.models import AdminEvent, AdminNotification

    with db.session() as session:
        for sent in (NOW - timedelta(days=400), NOW - timedelta(days=10), None):
            mail = AdminNotification(kind="fax_failed", message_id="<x@y>", sent_at=sent)
            session.add(mail)
            session.flush()
            session.add(AdminEvent(kind="fax_failed", subject="fax 1", summary="s",
                                   notification_id=mail.id))  # fmt: skip

    report = Retention(db, RetentionSettings(records_days=365), outbound).run()

    assert report.notice_rows == 1
    with db.session() as session:
        kept = sorted(str(m.sent_at) for m in session.scalars(select(AdminNotification)))
        assert len(kept) == 2 and "None" in kept
        assert session.scalar(select(func.count()).select_from(AdminEvent)) == 2


def test_only_the_server_holding_the_retention_role_cleans(sim: Any, tmp_path: Path) -> None:
    """Two servers sharing a database: retention runs on the one holding the role, once."""
    from datetime import timedelta as td

    from faxd.app import build_app
    from faxd.daemon import Daemon
    from faxd.store.claims import RETENTION_ROLE, Claims, Instance

    path, old = _site_with_an_old_sent_file(sim, tmp_path)
    config = load_config(path)
    daemon = Daemon(config)
    with freeze_time(NOW + timedelta(days=2), tick=True):
        daemon.app = build_app(config)
        try:
            other = Claims(daemon.app.db, Instance("other-server", td(seconds=60)))
            assert other.hold(RETENTION_ROLE)
            daemon._retention_job()
            assert old.exists()  # the other server cleans
            other.let_go(RETENTION_ROLE)
            daemon._retention_job()
            assert not old.exists()
        finally:
            daemon.app.close()
