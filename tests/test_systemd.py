"""The systemd unit, sysusers and tmpfiles snippets, checked by systemd's own tools."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SYSTEMD = Path(__file__).resolve().parent.parent / "systemd"
UNIT = SYSTEMD / "faxd.service"

needs_analyze = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None,
    reason="systemd-analyze is not installed (.ci/run installs Debian's systemd package)",
)


def runnable_unit(tmp_path: Path) -> Path:
    """The unit with ExecStart pointing at this checkout's faxd (verify needs it to exist)."""
    faxd = Path(sys.executable).parent / "faxd"
    assert faxd.exists(), f"{faxd} missing: install faxd into this environment (pip install -e .)"
    text = UNIT.read_text().replace("/usr/local/bin/faxd", str(faxd))
    unit = tmp_path / "faxd.service"
    unit.write_text(text)
    return unit


def directives(text: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.lstrip().startswith(("#", "[")):
            key, value = line.split("=", 1)
            found.setdefault(key.strip(), []).append(value.strip())
    return found


def test_unit_promises() -> None:
    """Type=notify with a watchdog, restart on failure, its own user, state and credential."""
    unit = directives(UNIT.read_text())
    expected = {
        "Type": ["notify"], "WatchdogSec": ["60"], "Restart": ["on-failure"],
        "User": ["faxd"], "Group": ["faxd"], "StateDirectory": ["faxd"],
        "ConfigurationDirectory": ["faxd"], "ProtectSystem": ["strict"],
        "LoadCredential": ["faxage-password:/etc/faxd/faxage-password"],
        "ReadWritePaths": ["-/srv/fax"], "TimeoutStopSec": ["15"],
    }
    assert {key: unit.get(key) for key in expected} == expected
    assert unit["ExecStart"][0].split()[1:3] == ["run", "--config"]


def test_unit_lets_faxd_bind_only_the_listener_port() -> None:
    """[http] listens on 8025 by default; the unit allows that bind and no other."""
    from faxd.config.model import HttpSettings

    unit = directives(UNIT.read_text())
    assert unit["SocketBindAllow"] == [f"tcp:{HttpSettings(token='x').listen_port}"]
    assert unit["SocketBindDeny"] == ["any"]


def test_unit_bounds_memory_and_tasks_and_keeps_staff_out_of_the_state() -> None:
    """MemoryMax/TasksMax are set; staff (group fax) are not faxd's group; state is 0700."""
    unit = directives(UNIT.read_text())
    assert re.fullmatch(r"\d+[KMG]", unit["MemoryMax"][-1])
    assert int(unit["TasksMax"][-1]) > 0
    assert unit["Group"] == ["faxd"] and "fax" not in unit.get("SupplementaryGroups", [])
    assert int(unit["StateDirectoryMode"][-1], 8) & 0o077 == 0


@needs_analyze
def test_systemd_analyze_verify(tmp_path: Path) -> None:
    """`systemd-analyze verify` finds nothing wrong with the unit."""
    done = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(runnable_unit(tmp_path))],
        capture_output=True, text=True, timeout=60, check=False,
    )
    problems = [line for line in done.stderr.splitlines() if "faxd.service" in line]
    assert done.returncode == 0 and not problems, done.stderr


@needs_analyze
def test_security_exposure_is_ok_or_better(tmp_path: Path) -> None:
    """`systemd-analyze security --offline=yes` rates the unit 1.4 OK or better (printed)."""
    done = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", str(runnable_unit(tmp_path))],
        capture_output=True, text=True, timeout=60, check=False,
    )
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d+) (\w+)", done.stdout)
    assert found, done.stdout + done.stderr
    score, level = float(found.group(1)), found.group(2)
    print(f"faxd.service exposure: {score} {level}")
    assert level in ("OK", "SAFE") and score <= 1.4  # issue 10: no worse than it was


@pytest.mark.skipif(shutil.which("systemd-sysusers") is None, reason="systemd-sysusers missing")
def test_sysusers_creates_the_faxd_user(tmp_path: Path) -> None:
    """The sysusers snippet creates a system user and group faxd (in a scratch root)."""
    (tmp_path / "etc").mkdir()
    done = subprocess.run(
        ["systemd-sysusers", f"--root={tmp_path}", str(SYSTEMD / "faxd.sysusers")],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stderr
    passwd = (tmp_path / "etc" / "passwd").read_text()
    assert re.search(r"^faxd:x:\d+:\d+:faxd fax server:/var/lib/faxd:/usr/sbin/nologin$",
                     passwd, re.M)
    group = (tmp_path / "etc" / "group").read_text()
    # The staff's group fax, with faxd a member; faxd's own group has no one else.
    assert re.search(r"^fax:x:\d+:faxd$", group, re.M), group
    assert re.search(r"^faxd:x:\d+:$", group, re.M), group


@pytest.mark.skipif(shutil.which("systemd-tmpfiles") is None, reason="systemd-tmpfiles missing")
def test_tmpfiles_creates_the_fax_folders(tmp_path: Path) -> None:
    """The tmpfiles snippet creates /srv/fax and its folders (in a scratch root)."""
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "passwd").write_text("root:x:0:0::/root:/bin/sh\nfaxd:x:990:990::/:/\n")
    (tmp_path / "etc" / "group").write_text("root:x:0:\nfaxd:x:990:\nfax:x:991:faxd\n")
    done = subprocess.run(
        ["systemd-tmpfiles", f"--root={tmp_path}", "--create", str(SYSTEMD / "faxd.tmpfiles")],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stderr
    for folder in ("inbox", "outbox", "sent", "failed"):
        assert (tmp_path / "srv" / "fax" / folder).is_dir()
    assert oct((tmp_path / "srv" / "fax" / "outbox").stat().st_mode & 0o7777) == "0o2770"
    # The office staff's group fax owns /srv/fax; /var/lib/faxd is faxd's alone.
    for folder in ("", "inbox", "outbox", "sent", "failed"):
        assert (tmp_path / "srv" / "fax" / folder).stat().st_gid == 991, folder
    state = (tmp_path / "var" / "lib" / "faxd").stat()
    assert (state.st_uid, state.st_gid) == (990, 990)
    assert state.st_mode & 0o077 == 0, oct(state.st_mode)
