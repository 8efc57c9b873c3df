"""Only one `faxd run` works on a state directory at a time."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from faxd.runlock import AlreadyRunningError, RunLock


def test_second_holder_is_refused_with_the_first_ones_pid(tmp_path: Path) -> None:
    """The message names the holder's pid and what to do."""
    with RunLock(tmp_path), pytest.raises(AlreadyRunningError) as caught:
        RunLock(tmp_path).__enter__()
    assert f"pid {os.getpid()}" in caught.value.message
    assert "systemctl stop faxd" in caught.value.message


def test_lock_is_free_again_after_release(tmp_path: Path) -> None:
    """Leaving the block releases the lock."""
    with RunLock(tmp_path):
        pass
    with RunLock(tmp_path):
        pass


def test_a_killed_holder_leaves_no_stale_lock(tmp_path: Path) -> None:
    """SIGKILL of the holder frees the lock: the kernel drops flocks of dead processes."""
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from pathlib import Path; from faxd.runlock import RunLock\n"
         f"l = RunLock(Path({str(tmp_path)!r})).__enter__(); print('held', flush=True); "
         "time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(AlreadyRunningError):
            RunLock(tmp_path).__enter__()
    finally:
        holder.kill()
        holder.wait(5)
    with RunLock(tmp_path):
        pass
