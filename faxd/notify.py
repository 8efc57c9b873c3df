"""Tell systemd how the daemon is doing, without libsystemd.

With ``Type=notify`` systemd hands the service a unix datagram socket in
``$NOTIFY_SOCKET`` and reads ``KEY=value`` lines from it: ``READY=1`` once the
database is migrated and the config loaded, ``STATUS=...`` for ``systemctl
status``, ``RELOADING=1`` / ``STOPPING=1`` around a reload and a stop, and
``WATCHDOG=1`` at least every ``WatchdogSec`` — or systemd kills and restarts
the service.  The protocol is a few bytes per datagram, so it is written here
directly (see sd_notify(3)); a name starting with ``@`` is an abstract socket.

:class:`Heartbeat` is the watchdog's own thread: it pings only while a real
health check passes, so a daemon whose scheduler died or whose database stopped
answering is restarted, while a slow download (on another thread) never delays
a ping.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Mapping

import structlog

log = structlog.get_logger(__name__)


class Notifier:
    """Sends sd_notify messages to one socket; does nothing when there is none."""

    def __init__(self, address: str | None) -> None:
        self.address = address or None

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Notifier:
        """The notifier systemd asked for through ``$NOTIFY_SOCKET`` (maybe none)."""
        return cls(env.get("NOTIFY_SOCKET"))

    @property
    def enabled(self) -> bool:
        """Whether there is a socket to talk to."""
        return self.address is not None

    def send(self, *lines: str) -> bool:
        """Send ``lines`` as one datagram; ``False`` (logged) if it could not be sent."""
        if self.address is None:
            return False
        target = "\0" + self.address[1:] if self.address.startswith("@") else self.address
        payload = "\n".join(lines).encode("utf-8")
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                # Never block: a notify socket nobody reads (a harness, a stuck
                # manager) must not hang the job that reports its status.
                sock.setblocking(False)
                sock.sendto(payload, target)
        except OSError as exc:
            log.warning("notify.send_failed", socket=self.address, error=str(exc))
            return False
        return True

    def ready(self, status: str | None = None) -> bool:
        """The service is up: the database is migrated and the config loaded."""
        lines = ["READY=1", f"MAINPID={os.getpid()}"]
        if status:
            lines.append(_status_line(status))
        return self.send(*lines)

    def reloading(self) -> bool:
        """A reload started; systemd waits for the next ``READY=1``."""
        return self.send("RELOADING=1", f"MONOTONIC_USEC={time.monotonic_ns() // 1000}")

    def stopping(self) -> bool:
        """The service is shutting down."""
        return self.send("STOPPING=1")

    def status(self, text: str) -> bool:
        """One line shown by ``systemctl status faxd``."""
        return self.send(_status_line(text))

    def watchdog(self) -> bool:
        """Tell the service manager we are alive and well."""
        return self.send("WATCHDOG=1")


def _status_line(text: str) -> str:
    return "STATUS=" + " ".join(text.split())


def watchdog_interval(
    env: Mapping[str, str] = os.environ, *, pid: int | None = None
) -> float | None:
    """Seconds between watchdog pings (half of ``WATCHDOG_USEC``), or ``None``.

    ``None`` when systemd did not enable the watchdog, or enabled it for
    another process (``WATCHDOG_PID``).
    """
    usec = env.get("WATCHDOG_USEC", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    owner = env.get("WATCHDOG_PID", "")
    if owner and owner != str(pid if pid is not None else os.getpid()):
        return None
    return int(usec) / 2_000_000


class Heartbeat:
    """A thread that sends ``WATCHDOG=1`` every ``interval`` while ``check()`` passes."""

    def __init__(
        self, notifier: Notifier, interval: float, check: Callable[[], bool]
    ) -> None:
        self.notifier = notifier
        self.interval = interval
        self.check = check
        self.beats = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._healthy = True

    def start(self) -> None:
        """Start pinging (the first ping goes out at once if healthy)."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="faxd-watchdog", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop pinging and wait for the thread."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=5)

    def beat(self) -> bool:
        """Run the health check once and ping if it passed; returns the result."""
        try:
            healthy = self.check()
        except Exception as exc:  # a failing check is "unhealthy", never a dead thread
            log.warning("watchdog.check_error", error=str(exc))
            healthy = False
        if healthy != self._healthy:
            if healthy:
                log.info("watchdog.healthy_again")
            else:
                log.error("watchdog.unhealthy", action="not pinging; systemd will restart faxd")
            self._healthy = healthy
        if healthy:
            self.notifier.watchdog()
            self.beats += 1
        return healthy

    def _run(self) -> None:
        while not self._stop.is_set():
            self.beat()
            self._stop.wait(self.interval)
