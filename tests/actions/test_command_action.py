"""The command action, running real scripts written into tmp_path."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from faxd.actions.base import Deliverable
from faxd.actions.command import CommandAction
from faxd.config import CommandSpec
from faxd.errors import ConfigError, DeliveryError

MakeItem = Callable[..., Deliverable]

_RECORDER = """#!{python}
import json, os, sys
record = {{
    "argv": sys.argv[1:],
    "cwd": os.getcwd(),
    "env": {{k: v for k, v in os.environ.items() if k.startswith(("FAXD_", "OFFICE_"))}},
}}
with open({out!r}, "w") as f:
    json.dump(record, f)
"""


def write_script(path: Path, text: str) -> str:
    path.write_text(text)
    path.chmod(0o755)
    return str(path)


@pytest.fixture
def recorder(tmp_path: Path) -> tuple[str, Path]:
    out = tmp_path / "record.json"
    script = write_script(
        tmp_path / "record", _RECORDER.format(python=sys.executable, out=str(out))
    )
    return script, out


def test_program_gets_the_fax_in_env_cwd_and_last_argument(
    recorder: tuple[str, Path], make_item: MakeItem
) -> None:
    """FAXD_* describe the fax, cwd is the spool folder, the path is appended to argv."""
    script, out = recorder
    item = make_item(recvid=4711, dnis="+13035550101", cid="", pages=None, route="night")
    action = CommandAction(CommandSpec(argv=(script, "--mode", "ocr")), env={"OFFICE_X": "1"})

    assert action.deliver(item) == "exit 0"

    record = json.loads(out.read_text())
    assert record["argv"] == ["--mode", "ocr", str(item.path)]
    assert record["cwd"] == str(item.path.parent)
    assert record["env"] == {
        "OFFICE_X": "1",
        "FAXD_FILE": str(item.path),
        "FAXD_RECVID": "4711",
        "FAXD_DNIS": "3035550101",  # as before numbers were stored as E.164
        "FAXD_CID": "",
        "FAXD_DNIS_E164": "+13035550101",
        "FAXD_CID_E164": "",
        "FAXD_PAGES": "",
        "FAXD_RECEIVED": "2024-03-04T09:15:30",
        "FAXD_ROUTE": "night",
        "FAXD_SHA256": item.sha256,
        "FAXD_KIND": "pdf",
    }


def test_faxd_passwords_in_faxds_environment_do_not_reach_the_program(
    recorder: tuple[str, Path], make_item: MakeItem
) -> None:
    """FAXD_FAXAGE_PASSWORD and FAXD_SMTP_PASSWORD are removed from a child's environment."""
    script, out = recorder
    env = {"FAXD_FAXAGE_PASSWORD": "fx-pw-1", "FAXD_SMTP_PASSWORD": "smtp-pw-2", "OFFICE_X": "1"}
    action = CommandAction(CommandSpec(argv=(script,)), env=env)

    action.deliver(make_item())

    seen = json.loads(out.read_text())["env"]
    assert seen["OFFICE_X"] == "1"
    assert "FAXD_FAXAGE_PASSWORD" not in seen
    assert "FAXD_SMTP_PASSWORD" not in seen


def test_the_credentials_directory_does_not_reach_the_program(
    tmp_path: Path, make_item: MakeItem
) -> None:
    """Issue 10 #8: CREDENTIALS_DIRECTORY (where systemd put faxd's password files) and any
    FAXD_*_PASSWORD / _TOKEN / _CODE stay with faxd; the fax's own FAXD_* fields go."""
    out = tmp_path / "environ.json"
    script = write_script(
        tmp_path / "dump-env",
        f"#!{sys.executable}\nimport json, os\n"
        f"json.dump(dict(os.environ), open({str(out)!r}, 'w'))\n",
    )
    env = {
        "CREDENTIALS_DIRECTORY": "/run/credentials/faxd.service",
        "FAXD_VOIPMS_PASSWORD": "vp-pw-3",
        "FAXD_IFAX_TOKEN": "tok-4",
        "FAXD_FAXNUMMER_CODE": "code-5",
        "OFFICE_X": "1",
    }
    CommandAction(CommandSpec(argv=(script,)), env=env).deliver(make_item())
    seen = json.loads(out.read_text())
    assert seen["OFFICE_X"] == "1" and seen["FAXD_RECVID"] == "4711"
    assert not (set(env) - {"OFFICE_X"}) & set(seen), seen


def test_file_placeholder_puts_the_path_where_asked(
    recorder: tuple[str, Path], make_item: MakeItem
) -> None:
    """An argv item that is exactly {file} is replaced, and nothing is appended."""
    script, out = recorder
    item = make_item()
    CommandAction(CommandSpec(argv=(script, "{file}", "--done"))).deliver(item)
    assert json.loads(out.read_text())["argv"] == [str(item.path), "--done"]


def test_hostile_caller_id_never_becomes_an_argument(
    recorder: tuple[str, Path], make_item: MakeItem
) -> None:
    """Fax values travel in the environment only, numbers as digits; argv is the configured one."""
    script, out = recorder
    item = make_item(cid="7; rm -rf / $(reboot) 2")
    CommandAction(CommandSpec(argv=(script,))).deliver(item)
    record = json.loads(out.read_text())
    assert record["argv"] == [str(item.path)]
    assert (record["env"]["FAXD_CID"], record["env"]["FAXD_CID_E164"]) == ("72", "72")


def test_nonzero_exit_reports_code_and_last_stderr_line(
    tmp_path: Path, make_item: MakeItem
) -> None:
    """A failing program is a transient error with its exit code and last stderr line."""
    script = write_script(
        tmp_path / "fail",
        "#!/bin/sh\necho 'starting upload' >&2\necho 'upload: server said 503' >&2\nexit 3\n",
    )
    with pytest.raises(DeliveryError) as caught:
        CommandAction(CommandSpec(argv=(script,))).deliver(make_item())
    message = str(caught.value)
    assert "exit code 3" in message
    assert message.endswith("upload: server said 503")
    assert caught.value.transient is True


def _alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie waiting to be reaped is dead)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def test_slow_program_and_its_children_are_killed(tmp_path: Path, make_item: MakeItem) -> None:
    """A program past its timeout is killed with its children; the error is transient.

    The child writes its pid, and the test then waits (generously) for that very
    process to be gone, instead of sleeping a fixed time for a marker file.
    """
    pidfile = tmp_path / "child.pid"
    script = write_script(
        tmp_path / "slow",
        f"#!/bin/sh\nsleep 600 &\necho $! > '{pidfile}.part'\nmv '{pidfile}.part' '{pidfile}'\n"
        "wait\n",
    )
    # 10 s: long enough for sh to start its child and write the pid on a starved machine.
    action = CommandAction(CommandSpec(argv=(script,), timeout=10.0))
    with pytest.raises(DeliveryError, match=r"did not finish within 10 s") as caught:
        action.deliver(make_item())
    assert caught.value.transient is True
    assert pidfile.exists(), "the script did not start its child within its 10 s timeout"
    child = int(pidfile.read_text())
    deadline = time.monotonic() + 60
    try:
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(child), f"the child {child} outlived the killed program"
    finally:
        if _alive(child):
            os.kill(child, signal.SIGKILL)  # the child this test started, by its pid


def test_missing_program_is_a_permanent_error(tmp_path: Path, make_item: MakeItem) -> None:
    """A program that does not exist is named; retrying cannot help."""
    missing = str(tmp_path / "no-such-tool")
    with pytest.raises(DeliveryError, match="no-such-tool") as caught:
        CommandAction(CommandSpec(argv=(missing,))).deliver(make_item())
    assert caught.value.transient is False


def test_non_executable_program_is_a_permanent_error(tmp_path: Path, make_item: MakeItem) -> None:
    """A script without the execute bit is reported as not runnable."""
    script = tmp_path / "plain"
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(0o644)
    with pytest.raises(DeliveryError, match="permission denied") as caught:
        CommandAction(CommandSpec(argv=(str(script),))).deliver(make_item())
    assert caught.value.transient is False


def test_empty_argv_is_a_config_error() -> None:
    """A command action must name a program."""
    with pytest.raises(ConfigError, match="argv"):
        CommandAction(CommandSpec(argv=()))
