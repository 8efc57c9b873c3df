"""Private by default, whatever the umask (issue 10, finding 5).

A real ``faxd run`` is started from a shell with ``umask 022`` (as cron or an
admin's shell would) and receives real faxes from the simulator.  While it runs
(so SQLite's -wal and -shm exist) every file and folder it made is checked:
state (database, both spools, lock) 0600 in folders 0700; delivered faxes 0640
in folders 0750, or what the folder action's ``mode``/``group`` ask for.  The
outbox runs too: a document dropped there is spooled and sent, another one is
rejected, and nothing faxd writes for them is readable by other users.
"""

from __future__ import annotations

import shlex
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from faxd.outbound.claimfolder import CLAIMS_DIR

SIM_PASSWORD = "s3cr3t-Pa55word-x9"  # what the ``sim`` fixture expects


def wait_until(check: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out waiting for faxd"
        time.sleep(0.1)


def snapshot(root: Path, *, skip: set[Path]) -> dict[Path, tuple[bool, int, int]]:
    """(is a folder, permission bits, group) of everything under ``root`` now."""
    found: dict[Path, tuple[bool, int, int]] = {}
    for path in root.rglob("*"):
        try:
            info = path.lstat()
        except FileNotFoundError:  # faxd is running: a spool file may just have gone
            continue
        if path not in skip:
            found[path] = (stat.S_ISDIR(info.st_mode), stat.S_IMODE(info.st_mode), info.st_gid)
    return found


def test_everything_faxd_creates_is_private_under_umask_022(
    tmp_path: Path, sim: Any, office_group: tuple[str, int]
) -> None:
    group, gid = office_group
    plain = sim.add_fax("3035550101")
    shared = sim.add_fax("3035550102")
    state, faxes = tmp_path / "state", tmp_path / "faxes"
    config = tmp_path / "faxd.toml"
    config.write_text(f"""
[faxage]
username = "acme"
company = "12345"
password = "{SIM_PASSWORD}"
base_url = "{sim.base_url}"
timeout = 10

[database]
url = "sqlite:///{state}/db/faxd.db"

[inbound]
poll_interval = 1
spool_dir = "{state}/spool"

[[routes]]
name = "private"
dnis = ["3035550101"]
actions = [{{ type = "folder", path = "{faxes}/private/{{route}}/{{recvid}}.{{ext}}" }}]

[[routes]]
name = "office"
[[routes.actions]]
type = "folder"
path = "{faxes}/office/{{dnis}}/{{recvid}}.{{ext}}"
mode = "0660"
group = "{group}"

[outbound]
hot_folder = "{faxes}/outbox"
sent_folder = "{faxes}/sent"
failed_folder = "{faxes}/failed"
spool_dir = "{state}/outbound"
settle_seconds = 0.3
""")
    config.chmod(0o600)
    faxes.mkdir(mode=0o755)  # the admin's (/srv/fax); each route's own root is faxd's to make
    outbox, sent, failed = faxes / "outbox", faxes / "sent", faxes / "failed"
    for office in (outbox, sent, failed):  # the office's folders (tmpfiles makes them)
        office.mkdir(mode=0o750)
    document = b"%PDF-1.4 to be faxed under umask 022"
    (outbox / "3035550199.pdf").write_bytes(document)  # the staff's file: 0644 under 022
    (outbox / "3035550199 notes.exe").write_bytes(b"MZ not a document")  # rejected
    rejected = failed / "3035550199 notes.exe"  # the staff's file, moved: keeps its mode
    command = f"umask 022; exec {shlex.quote(sys.executable)} -m faxd run --config {config}"
    faxd = subprocess.Popen(
        ["sh", "-c", command], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    delivered_private = faxes / "private" / "private" / f"{plain.recvid}.pdf"
    delivered_shared = faxes / "office" / "3035550102" / f"{shared.recvid}.pdf"
    try:
        wait_until(
            lambda: (
                faxd.poll() is not None
                or (
                    delivered_private.exists()
                    and delivered_shared.exists()
                    and sim.faxes[shared.recvid].deleted
                    and sim.faxes[plain.recvid].deleted
                    and any(f[1] == document for job in sim.jobs.values() for f in job.files)
                    and rejected.with_name(rejected.name + ".txt").exists()
                )
            )
        )
        assert faxd.poll() is None, faxd.communicate()[1]
        modes = snapshot(tmp_path, skip={config, faxes, outbox, sent, failed, rejected})
    finally:
        faxd.send_signal(signal.SIGTERM)
        _out, err = faxd.communicate(timeout=60)
    assert faxd.returncode == 0, err

    db = state / "db" / "faxd.db"
    assert {db, db.with_name("faxd.db-wal"), db.with_name("faxd.db-shm")} <= set(modes)
    wrong: list[str] = []
    for path, (is_dir, mode, owner_group) in modes.items():
        if path.is_relative_to(state):
            want, want_gid = (0o700 if is_dir else 0o600), None
        elif path.is_relative_to(faxes / "office"):
            want, want_gid = (0o770 if is_dir else 0o660), gid
        elif path.is_relative_to(faxes / "private"):
            want, want_gid = (0o750 if is_dir else 0o640), None
        elif path.is_relative_to(outbox / CLAIMS_DIR):  # claim folders, faxd's own
            want, want_gid = (0o700 if is_dir else -1), None
        elif path.is_relative_to(failed):  # the reason beside the rejected file
            want, want_gid = 0o640, None
        elif path.is_relative_to(sent):  # the spool file, moved there once it was sent
            want, want_gid = 0o600, None
        else:
            want, want_gid = -1, None
        if mode != want or (want_gid is not None and owner_group != want_gid):
            wrong.append(f"{path.relative_to(tmp_path)}: {mode:04o} gid {owner_group}")
    assert not wrong, f"not as private as promised: {wrong}"
    assert delivered_private.read_bytes() == plain.data
    assert state / "outbound" in modes  # the outbound spool was looked at too
