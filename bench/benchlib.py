"""Shared plumbing of the benchmark scripts: configs, memory figures, results.

The scripts in ``bench/`` are run by hand (not in CI, not as tests).  Each
prints its figures, writes them to ``bench/results/<name>.json`` with the
machine they came from, and prints PASS or FAIL against the targets of
issue 6.  This module holds what they share so each script reads as the
measurement it makes.
"""

from __future__ import annotations

import json
import os
import platform
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"
MiB = 1024 * 1024

#: The simulator's login in every benchmark (a throwaway, loopback only).
SIM_LOGIN = ("bench", "4242", "bench-Pa55word")


def faxd_command() -> list[str]:
    """How to start the installed ``faxd`` (the venv's script, else ``-m faxd``)."""
    script = Path(sys.executable).parent / "faxd"
    return [str(script)] if script.exists() else [sys.executable, "-m", "faxd"]


def child_env() -> dict[str, str]:
    """The environment for a faxd child: no FAXD_* overrides from the caller's shell."""
    return {k: v for k, v in os.environ.items() if not k.startswith("FAXD_")}


def machine() -> dict[str, Any]:
    """Where the figures came from."""
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "host": platform.node(),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


def write_results(name: str, figures: Mapping[str, Any]) -> Path:
    """Write ``bench/results/<name>.json`` (figures, verdict, machine, time)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    body = {
        "benchmark": name,
        **figures,
        "machine": machine(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    path.write_text(json.dumps(body, indent=2) + "\n")
    return path


def verdict(passed: bool) -> str:
    return "PASS" if passed else "FAIL"


def proc_status_kb(field: str, pid: int | str = "self") -> int:
    """A ``kB`` field of ``/proc/<pid>/status`` (``VmRSS``, ``VmHWM``), in kB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise LookupError(f"{field} not in /proc/{pid}/status")


def reset_peak_rss() -> bool:
    """Reset this process's VmHWM to its current RSS (Linux >= 4.0); False if refused."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` so far, from ``/proc/<pid>/stat``."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of stat(5)
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


def faxd_config(
    path: Path,
    *,
    base_url: str,
    work: Path,
    inbound: str = "",
    outbound: str | None = None,
    section: str | None = None,
) -> Path:
    """A faxd.toml for the simulator: database and spool under ``work``, one folder route.

    ``inbound`` adds lines to ``[inbound]``; ``outbound`` is the body of
    ``[outbound]`` (``None`` disables it); ``section`` replaces the
    ``[faxage]`` section (another provider's, from :mod:`faxd.sim.kits`).
    """
    username, company, password = SIM_LOGIN
    outbound_table = "enabled = false" if outbound is None else outbound
    if section is None:
        section = f"""[faxage]
username = "{username}"
company = "{company}"
password = "{password}"
base_url = "{base_url}"
timeout = 60
"""
    path.write_text(
        f"""
{section}
[database]
url = "sqlite:///{work / "faxd.db"}"

[inbound]
spool_dir = "{work / "spool"}"
{inbound}

[[routes]]
name = "default"
actions = [{{ type = "folder", path = "{work / "fax"}/{{dnis}}/{{recvid}}.{{ext}}" }}]

[outbound]
{outbound_table}
"""
    )
    path.chmod(0o600)
    return path


def outbound_table(work: Path, *, settle_seconds: float = 2.0) -> str:
    """The body of an ``[outbound]`` table with every folder under ``work``."""
    for name in ("outbox", "sent", "failed", "outspool"):
        (work / name).mkdir(parents=True, exist_ok=True)
    return (
        f'hot_folder = "{work / "outbox"}"\n'
        f'sent_folder = "{work / "sent"}"\n'
        f'failed_folder = "{work / "failed"}"\n'
        f'spool_dir = "{work / "outspool"}"\n'
        f"settle_seconds = {settle_seconds}\n"
    )


class Daemon:
    """``faxd run --config PATH`` as a child process, started until READY=1.

    The child gets a private ``NOTIFY_SOCKET`` (an abstract unix socket) so
    the benchmark knows when it is up, exactly as systemd would.
    """

    def __init__(self, config: Path, log: Path) -> None:
        self.config = config
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self._sock: socket.socket | None = None
        #: Every notify message after READY=1 (STATUS=, WATCHDOG=1, STOPPING=1).
        self.messages: list[bytes] = []

    def start(self, timeout: float = 60.0) -> float:
        """Start the daemon; return the seconds until it said READY=1."""
        name = f"faxd-bench-{uuid.uuid4().hex}"
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind("\0" + name)
        self._sock.settimeout(1.0)
        env = {**child_env(), "NOTIFY_SOCKET": "@" + name}
        started = time.perf_counter()
        deadline = started + timeout
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [*faxd_command(), "run", "--config", str(self.config)],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        while True:
            try:
                message = self._sock.recv(4096)
            except TimeoutError:
                if time.perf_counter() < deadline and self.proc.poll() is None:
                    continue
                self.stop()
                raise SystemExit(
                    f"faxd run did not say READY=1 in {timeout} s; see {self.log}"
                ) from None
            if b"READY=1" in message.split(b"\n"):
                ready = time.perf_counter() - started
                # Keep reading, as systemd does: a notify socket nobody reads
                # fills up, and the daemon's next STATUS= would block on it.
                threading.Thread(target=self._drain, name="notify-reader", daemon=True).start()
                return ready

    def _drain(self) -> None:
        sock = self._sock
        while sock is not None and sock.fileno() != -1:
            try:
                self.messages.append(sock.recv(4096))
            except TimeoutError:
                continue
            except OSError:
                return

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stop(self) -> None:
        """SIGTERM, and wait for the daemon to finish."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> Daemon:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
