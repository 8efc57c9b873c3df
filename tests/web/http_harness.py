"""A faxd daemon with ``[http]`` in a thread, against the simulator, for the web tests."""

from __future__ import annotations

import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

from faxd.config import load_config
from faxd.daemon import Daemon
from faxd.demo import DemoLayout, write_config

ROUTES = """
[[routes]]
name = "default"
actions = [{ type = "folder", path = "in/{recvid}.{ext}" }]
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


@dataclass
class Running:
    daemon: Daemon
    layout: DemoLayout
    url: str  # http://127.0.0.1:port
    token: str

    @property
    def hook(self) -> str:
        return f"{self.url}/hook/{self.token}/faxage"

    def delivered(self, recvid: int) -> bool:
        return (self.layout.root / "in" / f"{recvid}.pdf").exists()

    def poll_now(self) -> None:
        """What the interval would do at the next poll."""
        self.daemon.scheduler.modify_job("inbound-poll", next_run_time=datetime.now(UTC))

    def metrics(self) -> str:
        return requests.get(f"{self.url}/metrics", timeout=10).text


def listfax_count(sim: Any) -> int:
    return sum(1 for r in list(sim.requests) if r.operation == "listfax")


@contextmanager
def running_daemon(
    tmp_path: Path, sim: Any, *, interval: float = 300.0, http: bool = True
) -> Iterator[Running]:
    """Start faxd (first poll at once), wait for that poll to finish, stop it afterwards."""
    layout = DemoLayout(tmp_path / "site")
    port = free_port()
    token = secrets.token_hex(16)
    extra = (
        f'\n[http]\nlisten = "127.0.0.1:{port}"\npublic_url = "http://127.0.0.1:{port}"\n'
        f'token = "{token}"\n'
        if http
        else ""
    )
    path = write_config(
        layout, base_url=sim.base_url, username=sim.username, company=sim.company,
        password=sim.password, interval=interval, routes=ROUTES, extra=extra,
    )  # fmt: skip
    daemon = Daemon(load_config(path))
    runner = threading.Thread(target=daemon.run, daemon=True)
    runner.start()
    try:
        wait_until(lambda: daemon.scheduler is not None and daemon.scheduler.running)
        wait_until(lambda: listfax_count(sim) >= 1 and not daemon._inbound_busy.locked())
        yield Running(daemon, layout, f"http://127.0.0.1:{port}", token)
    finally:
        daemon.request_stop()
        runner.join(30)
    assert not runner.is_alive()
