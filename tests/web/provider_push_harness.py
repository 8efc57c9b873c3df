"""faxd with ``[http]`` in a thread, FAXAGE plus one other provider's simulator, for push tests.

The config comes from :data:`faxd.sim.kits.KITS` (each simulator's own
section); FAXAGE is always configured too, so a test can see that a callback
from one provider polls that provider and leaves the other alone.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from http_harness import free_port, listfax_count, wait_until

from faxd.config import load_config
from faxd.daemon import Daemon
from faxd.demo import DemoLayout, write_config
from faxd.sim.kits import KITS

ROUTES = """
[[routes]]
name = "default"
actions = [{ type = "folder", path = "in/{provider}-{recvid}.{ext}" }]
"""


@dataclass
class Pushing:
    daemon: Daemon
    layout: DemoLayout
    url: str
    token: str

    def hook(self, provider: str) -> str:
        return f"{self.url}/hook/{self.token}/{provider}"

    def delivered(self, provider: str) -> list[Path]:
        return sorted((self.layout.root / "in").glob(f"{provider}-*"))


@contextmanager
def running_with(
    tmp_path: Path,
    faxage: Any,
    other: Any,
    name: str,
    *,
    inbound: tuple[str, ...],
    outbound: str = "faxage",
) -> Iterator[Pushing]:
    """faxd polling every 300 s (first poll at once), ``[http]`` on a free port."""
    layout = DemoLayout(tmp_path / "site")
    port = free_port()
    token = secrets.token_hex(16)
    providers = ", ".join(f'"{p}"' for p in inbound)
    extra = (
        f'provider = "{outbound}"\n\n'
        f'[http]\nlisten = "127.0.0.1:{port}"\npublic_url = "http://127.0.0.1:{port}"\n'
        f'token = "{token}"\n\n' + KITS[name].section(other)
    )
    path = write_config(
        layout, base_url=faxage.base_url, username=faxage.username, company=faxage.company,
        password=faxage.password, interval=300.0, routes=ROUTES,
        extra_inbound=f"providers = [{providers}]", extra=extra,
    )  # fmt: skip
    daemon = Daemon(load_config(path))
    runner = threading.Thread(target=daemon.run, daemon=True)
    runner.start()
    try:
        wait_until(lambda: daemon.scheduler is not None and daemon.scheduler.running)
        wait_until(lambda: daemon.last_poll != "not polled yet")
        wait_until(lambda: not daemon._inbound_busy.locked())
        if "faxage" in inbound:
            assert listfax_count(faxage) >= 1
        yield Pushing(daemon, layout, f"http://127.0.0.1:{port}", token)
    finally:
        daemon.request_stop()
        runner.join(30)
    assert not runner.is_alive()
