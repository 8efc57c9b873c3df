"""How fast faxd starts: `faxd --help` wall time, and `faxd run` until READY=1.

Run: .venv/bin/python bench/startup.py
`faxd --help` must answer in under 0.5 s (mean of 10 runs), which keeps every
heavy import inside the sub-command handlers.  The second figure is the time
from exec to READY=1 on a notify socket for a daemon against the simulator
with a fresh database (migration included); it is reported, not judged.
"""

from __future__ import annotations

import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from faxd.demo import DemoLayout, write_config
from faxd.sim import FaxageSimulator

HELP_BUDGET = 0.5
RUNS = 10


def faxd_command() -> list[str]:
    script = Path(sys.executable).parent / "faxd"
    return [str(script)] if script.exists() else [sys.executable, "-m", "faxd"]


def time_help() -> list[float]:
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        subprocess.run([*faxd_command(), "--help"], stdout=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - started)
    return times


def time_ready() -> float:
    name = f"faxd-bench-{uuid.uuid4().hex}"
    with FaxageSimulator() as sim, tempfile.TemporaryDirectory() as folder, socket.socket(
        socket.AF_UNIX, socket.SOCK_DGRAM
    ) as sock:
        sock.bind("\0" + name)
        sock.settimeout(60)
        config = write_config(DemoLayout(Path(folder)), base_url=sim.base_url)
        env = {**os.environ, "NOTIFY_SOCKET": "@" + name}
        started = time.perf_counter()
        proc = subprocess.Popen(
            [*faxd_command(), "run", "--config", str(config)],
            env=env, stderr=subprocess.DEVNULL,
        )
        try:
            while not sock.recv(4096).startswith(b"READY=1"):
                pass
            return time.perf_counter() - started
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(15)


def main() -> int:
    times = time_help()
    mean = statistics.mean(times)
    verdict = "PASS" if mean < HELP_BUDGET else "FAIL"
    print(f"faxd --help: mean {mean:.3f}s, max {max(times):.3f}s over {RUNS} runs "
          f"(budget {HELP_BUDGET}s): {verdict}")
    print(f"faxd run until READY=1 (fresh database): {time_ready():.3f}s")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
