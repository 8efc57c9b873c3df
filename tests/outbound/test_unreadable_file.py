"""An outbox file faxd may not read is rejected with a reason, proven even when tests run as root.

Root reads any file whatever its mode, so a chmod-000 file proves nothing under
root (and CI runs as root).  Here a forked child drops to the ``nobody`` user
*after* faxd is imported (the interpreter may live where ``nobody`` cannot
read it) and runs one real pass of the outbound service over a hot folder
holding another user's mode-000 file.  The child reports back in a JSON file;
the parent checks the folders and the database it left behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import signal
import stat
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from faxd.config import OutboundSettings
from faxd.outbound.service import Outbound, list_jobs
from faxd.providers.faxage.provider import FaxageOutbound
from faxd.providers.faxage.records import StatusRecord, StatusResult
from faxd.store.db import Database

CHILD_TIMEOUT_SECONDS = 30.0


class NoCallsClient:
    """A FAXAGE client that only counts calls: nothing should reach the provider."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def sendfax(self, faxno: str, recipname: str, files: Sequence[Any], **_: Any) -> int:
        self.calls.append(f"sendfax {faxno}")
        return 1

    account = "acme@12345"

    def status(self, jobids: Sequence[int] | None = None, **_: Any) -> list[StatusRecord]:
        self.calls.append("status")
        return []

    def status_result(self, jobids: Sequence[int] | None = None, **_: Any) -> StatusResult:
        self.calls.append("status")
        return StatusResult(records=())

    def clear(self, jobid: int) -> None:
        self.calls.append("clear")

    def stopfax(self, jobid: int) -> None:
        self.calls.append("stopfax")


def unprivileged_ids() -> tuple[int, int]:
    """uid and gid of ``nobody`` (skips the test when there is no such user)."""
    try:
        entry = pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no 'nobody' user on this machine to drop privileges to")
    if entry.pw_uid == 0:
        pytest.skip("'nobody' is uid 0 here, so it could read any file")
    return entry.pw_uid, entry.pw_gid


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A temp folder another user can reach (pytest's tmp_path sits under a root-only dir)."""
    base = Path(tempfile.mkdtemp(prefix="faxd-unreadable-"))
    try:
        for ancestor in base.parents:
            if not ancestor.stat().st_mode & stat.S_IXOTH:
                pytest.skip(f"{ancestor} cannot be entered by other users; set TMPDIR elsewhere")
        base.chmod(0o777)
        yield base
    finally:
        shutil.rmtree(base)


def run_as(uid: int, gid: int, work: Callable[[], dict[str, Any]], report: Path) -> dict[str, Any]:
    """Run ``work`` in a forked child as ``uid``/``gid``; return what it wrote to ``report``."""
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 70
        try:
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
            report.write_text(json.dumps(work()))
            code = 0
        except BaseException:
            with contextlib.suppress(BaseException):
                report.write_text(json.dumps({"error": traceback.format_exc()}))
        finally:
            os._exit(code)
    deadline = time.monotonic() + CHILD_TIMEOUT_SECONDS
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail(f"the unprivileged child did not finish in {CHILD_TIMEOUT_SECONDS} s")
        time.sleep(0.05)
    code = os.waitstatus_to_exitcode(status)
    assert report.exists(), f"the child wrote no report (exit code {code})"
    outcome: dict[str, Any] = json.loads(report.read_text())
    assert "error" not in outcome, outcome.get("error")
    assert code == 0
    return outcome


@pytest.mark.skipif(
    os.geteuid() != 0,
    reason="needs root to switch users; test_file_without_read_permission_is_rejected runs here",
)
def test_unreadable_file_is_rejected_for_an_unprivileged_faxd(
    shared_dir: Path, make_settings: Callable[..., OutboundSettings]
) -> None:
    """Another user's mode-000 file ends in failed/ with a one-line 'read permission' reason."""
    uid, gid = unprivileged_ids()
    hot, sent, failed, spool, data = (
        shared_dir / name for name in ("outbox", "sent", "failed", "spool", "data")
    )
    for folder in (hot, sent, failed, spool, data):
        folder.mkdir()
        folder.chmod(0o777)
    url = f"sqlite:///{data / 'faxd.db'}"
    setup = Database(url)
    setup.upgrade()
    setup.dispose()
    for made in data.iterdir():
        os.chown(made, uid, gid)
    name = "3035551212 - Payroll.pdf"
    locked = hot / name
    locked.write_bytes(b"%PDF-1.4 payroll")
    locked.chmod(0)  # owned by root: nobody has no way to read it
    settings = make_settings(
        hot_folder=hot, sent_folder=sent, failed_folder=failed, spool_dir=spool, settle_seconds=0.1
    )

    def one_pass_as_nobody() -> dict[str, Any]:
        try:
            locked.open("rb").close()
            could_read = True
        except PermissionError:
            could_read = False
        db = Database(url)
        client = NoCallsClient()
        try:
            Outbound(settings, db, FaxageOutbound(client, settings)).run_once()
        finally:
            db.dispose()
        return {"euid": os.geteuid(), "could_read": could_read, "provider_calls": client.calls}

    outcome = run_as(uid, gid, one_pass_as_nobody, shared_dir / "child.json")

    assert outcome["euid"] == uid
    assert outcome["could_read"] is False  # otherwise this test would prove nothing
    assert outcome["provider_calls"] == []
    assert not os.path.lexists(locked)
    assert (failed / name).read_bytes() == b"%PDF-1.4 payroll"  # moved whole, not copied
    reason = (failed / f"{name}.txt").read_text()
    assert reason.endswith("\n") and reason.count("\n") == 1, reason
    assert f"{name!r} cannot be read (Permission denied)" in reason, reason
    assert "give the faxd user read permission on it" in reason, reason
    assert sorted(os.listdir(failed)) == [name, f"{name}.txt"]
    assert os.listdir(spool) == []
    verify = Database(url)
    try:
        assert list_jobs(verify) == []
    finally:
        verify.dispose()
