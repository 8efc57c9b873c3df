"""The sd_notify protocol spoken to a real unix datagram socket the test opens."""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from faxd.notify import Heartbeat, Notifier, watchdog_interval


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[str, socket.socket]]:
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(2.0)
    try:
        yield path, sock
    finally:
        sock.close()


def receive(sock: socket.socket) -> list[str]:
    return sock.recv(4096).decode().split("\n")


def test_ready_carries_pid_and_status(listener: tuple[str, socket.socket]) -> None:
    """READY=1 goes out with MAINPID and the STATUS line in one datagram."""
    path, sock = listener
    assert Notifier(path).ready(status="polled 3 new,\n 0 failed")
    assert receive(sock) == ["READY=1", f"MAINPID={os.getpid()}", "STATUS=polled 3 new, 0 failed"]


def test_each_message_kind(listener: tuple[str, socket.socket]) -> None:
    """STATUS, WATCHDOG, RELOADING (with a monotonic time) and STOPPING are sent as written."""
    path, sock = listener
    notifier = Notifier(path)
    notifier.status("2 jobs pending")
    notifier.watchdog()
    notifier.reloading()
    notifier.stopping()
    assert receive(sock) == ["STATUS=2 jobs pending"]
    assert receive(sock) == ["WATCHDOG=1"]
    reloading = receive(sock)
    assert reloading[0] == "RELOADING=1"
    assert reloading[1].startswith("MONOTONIC_USEC=") and reloading[1].split("=")[1].isdigit()
    assert receive(sock) == ["STOPPING=1"]


def test_abstract_socket_name() -> None:
    """A NOTIFY_SOCKET starting with '@' names an abstract socket."""
    name = f"faxd-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(2.0)
        assert Notifier.from_env({"NOTIFY_SOCKET": "@" + name}).watchdog()
        assert receive(sock) == ["WATCHDOG=1"]


def test_without_socket_nothing_is_sent() -> None:
    """Outside systemd (no NOTIFY_SOCKET) every call is a quiet no-op."""
    notifier = Notifier.from_env({})
    assert not notifier.enabled
    assert notifier.ready() is False


def test_unreachable_socket_is_reported_not_raised(tmp_path: Path) -> None:
    """A socket that went away makes send() return False instead of crashing the daemon."""
    assert Notifier(str(tmp_path / "gone.sock")).status("x") is False


def test_watchdog_interval_is_half_of_watchdog_usec() -> None:
    """Pings go out at WATCHDOG_USEC/2, only for the process WATCHDOG_PID names."""
    assert watchdog_interval({"WATCHDOG_USEC": "60000000"}) == 30.0
    assert watchdog_interval({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "42"}, pid=42) == 1.0
    assert watchdog_interval({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "42"}, pid=43) is None
    assert watchdog_interval({}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "0"}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "soon"}) is None


def test_heartbeat_pings_only_while_healthy(listener: tuple[str, socket.socket]) -> None:
    """No WATCHDOG=1 while the health check fails or raises, so systemd restarts faxd."""
    path, sock = listener
    health: dict[str, bool | None] = {"ok": True}

    def check() -> bool:
        if health["ok"] is None:
            raise RuntimeError("database gone")
        return bool(health["ok"])

    beat = Heartbeat(Notifier(path), 60.0, check)
    assert beat.beat() is True
    assert receive(sock) == ["WATCHDOG=1"]
    health["ok"] = False
    assert beat.beat() is False
    health["ok"] = None
    assert beat.beat() is False
    sock.settimeout(0.2)
    with pytest.raises(TimeoutError):
        sock.recv(4096)
    health["ok"] = True
    assert beat.beat() is True
    assert beat.beats == 2


def test_heartbeat_thread_keeps_pinging(listener: tuple[str, socket.socket]) -> None:
    """The heartbeat runs on its own thread at its interval until stopped."""
    path, sock = listener
    beat = Heartbeat(Notifier(path), 0.05, lambda: True)
    beat.start()
    try:
        pings = [receive(sock) for _ in range(3)]
    finally:
        beat.stop()
    assert pings == [["WATCHDOG=1"]] * 3


def test_a_socket_nobody_reads_never_blocks_the_sender(
    listener: tuple[str, socket.socket],
) -> None:
    """Once the reader's queue is full, send() drops the message and returns False at once."""
    path, _sock = listener  # bound, never read
    notifier = Notifier(path)
    done = threading.Event()
    results: list[bool] = []

    def flood() -> None:
        for _ in range(500):
            results.append(notifier.status("polled 3 new, 0 failed; " + "x" * 1000))
        done.set()

    threading.Thread(target=flood, daemon=True).start()
    assert done.wait(10), "send() blocked on a full notify socket"
    assert results[0] is True and results[-1] is False
