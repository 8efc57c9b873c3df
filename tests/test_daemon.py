"""`faxd run` as systemd runs it: a subprocess, a notify socket, signals, the simulator."""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from faxd.demo import DemoLayout, write_config

ROUTES_A = """
[[routes]]
name = "default"
actions = [{ type = "folder", path = "in-a/{recvid}.{ext}" }]
"""
ROUTES_B = ROUTES_A.replace('"default"', '"second"').replace("in-a/", "in-b/")


class NotifySocket:
    """An abstract unix datagram socket standing in for systemd's notify socket.

    A thread reads it all the time, as systemd does: the kernel holds only a few
    datagrams for a reader (``net.unix.max_dgram_qlen``, 10 by default) and faxd
    sends without blocking, so reading only when the test looks would drop
    STOPPING=1 behind watchdog pings whenever a loaded machine makes a stop slow.
    """

    def __init__(self) -> None:
        self.name = f"@faxd-test-{uuid.uuid4().hex}"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + self.name[1:])
        self.sock.settimeout(0.2)
        self.messages: list[str] = []
        self._inbox: queue.Queue[str] = queue.Queue()
        self._closed = threading.Event()
        self._reader = threading.Thread(target=self._read, name="notify-reader", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while not self._closed.is_set():
            try:
                self._inbox.put(self.sock.recv(4096).decode())
            except TimeoutError:
                continue

    def next(self, timeout: float) -> str | None:
        try:
            data = self._inbox.get(timeout=timeout)
        except queue.Empty:
            return None
        self.messages.append(data)
        return data

    def wait_for(self, predicate: Callable[[str], bool], timeout: float = 15.0) -> list[str]:
        """Datagrams received until one matches ``predicate`` (inclusive)."""
        got: list[str] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            message = self.next(max(0.05, deadline - time.monotonic()))
            if message is None:
                break
            got.append(message)
            if predicate(message):
                return got
        raise AssertionError(f"no matching notify message within {timeout}s; got {got}")

    def close(self) -> None:
        self._closed.set()
        self._reader.join()
        self.sock.close()


class Faxd:
    """One `python -m faxd run` subprocess with its logs in files."""

    def __init__(self, config: Path, notify: NotifySocket, watchdog_usec: int = 600_000) -> None:
        self.log = config.parent / f"stderr-{uuid.uuid4().hex[:6]}.log"
        env = {
            **os.environ,
            "NOTIFY_SOCKET": notify.name,
            "WATCHDOG_USEC": str(watchdog_usec),
        }
        env.pop("FAXD_CONFIG", None)
        with self.log.open("wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "faxd", "run", "--config", str(config)],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def stop(self, timeout: float = 120.0) -> int:
        """SIGTERM, then the exit code (a generous wait: a loaded machine is slow, not wrong)."""
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def events(self) -> list[str]:
        """The ``event`` of every JSON log line, in order."""
        found = []
        for line in self.stderr().splitlines():
            try:
                found.append(str(json.loads(line).get("event")))
            except (ValueError, AttributeError):
                continue
        return found

    def stderr(self) -> str:
        return self.log.read_text(errors="replace")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


@pytest.fixture
def notify() -> Iterator[NotifySocket]:
    sock = NotifySocket()
    yield sock
    sock.close()


@pytest.fixture
def layout(tmp_path: Path) -> DemoLayout:
    return DemoLayout(tmp_path / "site")


@pytest.fixture
def started() -> Iterator[list[Faxd]]:
    daemons: list[Faxd] = []
    yield daemons
    for daemon in daemons:
        daemon.kill()


def configure(layout: DemoLayout, sim: Any, routes: str = ROUTES_A) -> Path:
    return write_config(
        layout, base_url=sim.base_url, username=sim.username, company=sim.company,
        password=sim.password, interval=1.0, routes=routes,
    )


def wait_until(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.1)


def assert_stopped_by_shutdown(faxd: Faxd) -> None:
    """The log shows the stop path ran to its end: stopped cleanly or by the stop deadline.

    With a download hung for 10 minutes, an exit within the caller's 120 s wait
    can only come from faxd's own stop (STOP_DEADLINE_SECONDS is 8).
    """
    events = faxd.events()
    assert "daemon.stopping" in events, faxd.stderr()
    ended = set(events[events.index("daemon.stopping"):])
    assert {"daemon.stopped", "daemon.stop_deadline"} & ended, faxd.stderr()


def getfax_requested(sim: Any) -> bool:
    return any(r.operation == "getfax" for r in list(sim.requests))


def test_notify_messages_in_order_then_clean_stop(
    sim: Any, layout: DemoLayout, notify: NotifySocket, started: list[Faxd]
) -> None:
    """READY=1 comes first, then STATUS and WATCHDOG=1; SIGTERM gives STOPPING=1 and exit 0."""
    sim.seed_inbound(3, dnis=("3035550101",))
    faxd = Faxd(configure(layout, sim), notify)
    started.append(faxd)
    first = notify.next(timeout=20)
    assert first is not None and first.startswith("READY=1\n"), faxd.stderr()
    assert f"MAINPID={faxd.proc.pid}" in first
    status = notify.wait_for(lambda m: m.startswith("STATUS=polled 3 new"))[-1]
    assert status == "STATUS=polled 3 new, 0 failed; 0 jobs pending"
    notify.wait_for(lambda m: m == "WATCHDOG=1")
    code = faxd.stop()
    assert code == 0, faxd.stderr()
    # Stopped cleanly by itself, not by the stop deadline's forced exit (that would
    # be logged as daemon.stop_deadline): no wall-clock budget needed to tell.
    own = [e for e in faxd.events() if e.startswith("daemon.")]
    assert own[-2:] == ["daemon.stopping", "daemon.stopped"], faxd.stderr()
    assert "daemon.stop_deadline" not in own
    assert "STOPPING=1" in notify.wait_for(lambda m: m == "STOPPING=1", timeout=30)
    assert sorted(p.name for p in (layout.root / "in-a").iterdir()) == sorted(
        f"{f.recvid}.pdf" for f in sim.faxes.values()
    )


@pytest.mark.slow
def test_watchdog_keeps_pinging_during_slow_download(
    sim: Any, layout: DemoLayout, notify: NotifySocket, started: list[Faxd]
) -> None:
    """WATCHDOG=1 keeps coming while getfax hangs on a slow FAXAGE.

    Five pings must arrive while the download still hangs (it would for 10
    minutes); how fast they come is not judged, so a loaded machine is not red.
    """
    sim.slow_seconds = 600.0
    sim.inject("slow", operation="getfax", times=1)
    (fax,) = sim.seed_inbound(1, dnis=("3035550101",))
    faxd = Faxd(configure(layout, sim), notify, watchdog_usec=400_000)
    started.append(faxd)
    notify.wait_for(lambda m: m.startswith("READY=1"), timeout=20)
    wait_until(lambda: getfax_requested(sim))
    pings = 0

    def fifth_ping(message: str) -> bool:
        nonlocal pings
        pings += message == "WATCHDOG=1"
        return pings >= 5

    notify.wait_for(fifth_ping, timeout=120)
    assert not (layout.root / "in-a" / f"{fax.recvid}.pdf").exists()  # still downloading
    assert not sim.faxes[fax.recvid].deleted
    code = faxd.stop()
    assert code == 0


@pytest.mark.slow
def test_sigterm_during_download_exits_zero_and_next_start_resumes(
    sim: Any, layout: DemoLayout, notify: NotifySocket, started: list[Faxd]
) -> None:
    """SIGTERM mid-download exits 0 (by the stop path, not the hung download's end);
    the next run delivers the fax from the DB."""
    sim.slow_seconds = 600.0
    sim.inject("slow", operation="getfax", times=1)
    faxes = sim.seed_inbound(2, dnis=("3035550101",))
    config = configure(layout, sim)
    faxd = Faxd(config, notify)
    started.append(faxd)
    notify.wait_for(lambda m: m.startswith("READY=1"), timeout=20)
    wait_until(lambda: getfax_requested(sim))
    code = faxd.stop(timeout=120)
    assert code == 0, faxd.stderr()
    assert_stopped_by_shutdown(faxd)
    # The fax whose download hung is neither delivered nor deleted (others may be).
    hung = [f for f in faxes if not (layout.root / "in-a" / f"{f.recvid}.pdf").exists()]
    assert hung and not any(sim.faxes[f.recvid].deleted for f in hung)

    sim.clear_faults()
    once = subprocess.run(
        [sys.executable, "-m", "faxd", "run", "--once", "--config", str(config)],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert once.returncode == 0, once.stderr
    for fax in faxes:
        assert (layout.root / "in-a" / f"{fax.recvid}.pdf").read_bytes() == fax.data
        assert sim.faxes[fax.recvid].deleted


def test_sighup_reload_applies_new_routes(
    sim: Any, layout: DemoLayout, notify: NotifySocket, started: list[Faxd]
) -> None:
    """After SIGHUP with a good new config, the next fax follows the new route."""
    (first,) = sim.seed_inbound(1, dnis=("3035550101",))
    config = configure(layout, sim)
    faxd = Faxd(config, notify)
    started.append(faxd)
    wait_until(lambda: (layout.root / "in-a" / f"{first.recvid}.pdf").exists())
    configure(layout, sim, routes=ROUTES_B)
    faxd.signal(signal.SIGHUP)
    notify.wait_for(lambda m: m.startswith("RELOADING=1"))
    notify.wait_for(lambda m: m.startswith("READY=1"))
    second = sim.add_fax("3035550101")
    wait_until(lambda: (layout.root / "in-b" / f"{second.recvid}.pdf").exists())
    assert not (layout.root / "in-a" / f"{second.recvid}.pdf").exists()
    code = faxd.stop()
    assert code == 0
    assert "config.reloaded" in faxd.stderr()


def test_sighup_with_bad_config_keeps_the_old_one(
    sim: Any, layout: DemoLayout, notify: NotifySocket, started: list[Faxd]
) -> None:
    """A config that does not load is refused with its problem logged; the old routes stay."""
    config = configure(layout, sim)
    faxd = Faxd(config, notify)
    started.append(faxd)
    notify.wait_for(lambda m: m.startswith("READY=1"), timeout=20)
    good = config.read_text()
    config.write_text(good.replace("[inbound]", "[inbound]\npoll_intervall = 5"))
    faxd.signal(signal.SIGHUP)
    refused = notify.wait_for(lambda m: m.startswith("READY=1"))
    assert "STATUS=config reload refused (1 problems)" in refused[-1]
    fax = sim.add_fax("3035550101")
    wait_until(lambda: (layout.root / "in-a" / f"{fax.recvid}.pdf").exists())
    code = faxd.stop()
    assert code == 0
    log = faxd.stderr()
    assert "config.reload_refused" in log and "poll_intervall" in log
    assert sim.password not in log


def test_run_once_polls_delivers_and_submits(sim: Any, layout: DemoLayout) -> None:
    """`faxd run --once` delivers every waiting fax and submits the files in the outbox."""
    faxes = sim.seed_inbound(2, dnis=("3035550101",))
    config = configure(layout, sim)
    layout.outbox.mkdir(parents=True)
    from faxd.sim.documents import make_pdf

    (layout.outbox / "3035551212.pdf").write_bytes(make_pdf("hello"))
    done = subprocess.run(
        [sys.executable, "-m", "faxd", "run", "--once", "--config", str(config)],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert {p.name for p in (layout.root / "in-a").iterdir()} == {
        f"{f.recvid}.pdf" for f in faxes
    }
    assert [job.faxno for job in sim.jobs.values()] == ["3035551212"]


def test_run_once_with_faxage_unreachable_exits_1(tmp_path: Path) -> None:
    """An unreachable FAXAGE is a runtime failure: exit 1 and one clear line, no traceback."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    layout = DemoLayout(tmp_path / "site")
    config = write_config(layout, base_url=f"http://127.0.0.1:{port}", routes=ROUTES_A)
    config.write_text(config.read_text().replace("[outbound]", "[outbound]\nenabled = false"))
    done = subprocess.run(
        [sys.executable, "-m", "faxd", "run", "--once", "--config", str(config)],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("faxd: inbound faxage: ") and "Traceback" not in done.stderr


def test_health_check_fails_when_a_part_dies(sim: Any, layout: DemoLayout) -> None:
    """is_healthy() needs the scheduler, the outbox watcher and the database; each can fail it."""
    import threading

    from faxd.config import load_config
    from faxd.daemon import Daemon

    daemon = Daemon(load_config(configure(layout, sim)))
    runner = threading.Thread(target=daemon.run)
    runner.start()
    try:
        wait_until(lambda: daemon.scheduler is not None and daemon.scheduler.running)
        assert daemon.is_healthy()
        assert daemon.app is not None and daemon.app.outbound is not None
        daemon.app.outbound.watcher.stop()  # the observer thread dies
        assert not daemon.is_healthy()
    finally:
        daemon.request_stop()
        runner.join(15)
    assert not runner.is_alive()
    assert not daemon.is_healthy()  # scheduler shut down


@pytest.mark.slow
def test_sighup_then_sigterm_during_download_exits_in_time(
    sim: Any, layout: DemoLayout, notify: NotifySocket, started: list[Faxd]
) -> None:
    """A reload while a download hangs does not wait for it, and a SIGTERM still exits 0.

    The download would hang for 10 minutes, so only faxd's own promise can end the
    process: abandoning the download at the stop, or the stop deadline
    (``STOP_DEADLINE_SECONDS``, below systemd's TimeoutStopSec) forcing the exit.
    The waits are generous multiples of that deadline, not a wall-clock budget.
    """
    sim.slow_seconds = 600.0
    sim.inject("slow", operation="getfax", times=1)
    sim.seed_inbound(1, dnis=("3035550101",))
    config = configure(layout, sim)
    faxd = Faxd(config, notify)
    started.append(faxd)
    notify.wait_for(lambda m: m.startswith("READY=1"), timeout=20)
    wait_until(lambda: getfax_requested(sim))
    configure(layout, sim, routes=ROUTES_B)
    faxd.signal(signal.SIGHUP)
    reloaded = notify.wait_for(lambda m: m.startswith("READY=1"), timeout=120)
    assert "STATUS=config reload refused" not in reloaded[-1]
    assert getfax_requested(sim) and not any(f.deleted for f in sim.faxes.values())
    code = faxd.stop(timeout=120)
    assert code == 0, faxd.stderr()
    assert_stopped_by_shutdown(faxd)


class _Blocking:
    """A pipeline/outbound stand-in whose passes block until released, recording calls."""

    def __init__(self) -> None:
        import threading

        self.entered = threading.Event()
        self.release = threading.Event()
        self.calls: list[str] = []

    def _pass(self, name: str) -> None:
        self.calls.append(name)
        self.entered.set()
        assert self.release.wait(10)

    def poll(self, *, pushed: bool = False) -> Any:
        self._pass("poll")
        from types import SimpleNamespace

        return SimpleNamespace(paused=False, new=0, failed=0, summary=lambda: "")

    def sweep(self) -> None:
        self._pass("sweep")

    def submit_pending(self) -> None:
        self._pass("submit")

    def follow_up(self) -> None:
        self._pass("follow")


def test_passes_never_overlap_even_across_a_reload(sim: Any, layout: DemoLayout) -> None:
    """A sweep waits for a running poll, and an outbound pass for the one in flight,
    also when a reload has meanwhile put new objects in place."""
    import threading
    from types import SimpleNamespace

    from faxd.config import load_config
    from faxd.daemon import Daemon

    daemon = Daemon(load_config(configure(layout, sim)))
    old, new = _Blocking(), _Blocking()
    daemon.app = SimpleNamespace(pipelines={"faxage": old}, outbound=old)  # type: ignore[assignment]
    threads = [threading.Thread(target=job) for job in (daemon._poll_job, daemon._submit_job)]
    threads[0].start()
    assert old.entered.wait(5)
    old.entered.clear()
    threads[1].start()
    assert old.entered.wait(5)
    daemon.app = SimpleNamespace(pipelines={"faxage": new}, outbound=new)  # type: ignore[assignment]
    later = [threading.Thread(target=job) for job in (daemon._sweep_job, daemon._follow_job)]
    for thread in later:
        thread.start()
    time.sleep(0.8)
    assert new.calls == []  # both wait for the passes in flight
    old.release.set()
    new.release.set()
    for thread in threads + later:
        thread.join(10)
    assert sorted(old.calls) == ["poll", "submit"]
    assert sorted(new.calls) == ["follow", "sweep"]


def test_stop_during_startup_starts_nothing(sim: Any, layout: DemoLayout) -> None:
    """A stop requested before the database is ready: no READY=1, no scheduler, no watcher."""
    from faxd.config import load_config
    from faxd.daemon import Daemon
    from faxd.notify import Notifier

    class Recorder(Notifier):
        def __init__(self) -> None:
            super().__init__(None)
            self.sent: list[str] = []

        def send(self, *lines: str) -> bool:
            self.sent.extend(lines)
            return True

    notifier = Recorder()
    daemon = Daemon(load_config(configure(layout, sim)), notifier=notifier)
    daemon.request_stop()  # as a SIGTERM arriving while the database migrates
    assert daemon.run() == 0
    assert daemon.scheduler is None
    assert "READY=1" not in notifier.sent and "STOPPING=1" in notifier.sent
    assert not any(r.operation == "listfax" for r in sim.requests)


def test_a_normal_stop_is_not_logged_as_unhealthy(sim: Any, layout: DemoLayout) -> None:
    """The watchdog stops before the parts it checks, so a clean stop logs no 'unhealthy'."""
    import threading

    from structlog.testing import capture_logs

    from faxd.config import load_config
    from faxd.daemon import Daemon

    sim.slow_seconds = 1.5  # a download still running while the daemon stops
    sim.inject("slow", operation="getfax", times=1)
    sim.seed_inbound(1, dnis=("3035550101",))
    daemon = Daemon(load_config(configure(layout, sim)), watchdog_seconds=0.02)
    with capture_logs() as logs:
        runner = threading.Thread(target=daemon.run)
        runner.start()
        wait_until(lambda: getfax_requested(sim))
        daemon.request_stop()
        runner.join(15)
    assert not runner.is_alive()
    assert [e for e in logs if e["event"] == "watchdog.unhealthy"] == []


def test_a_second_faxd_run_on_the_same_state_is_refused(
    sim: Any, layout: DemoLayout, notify: NotifySocket, started: list[Faxd]
) -> None:
    """`faxd run --once` beside a running daemon is refused (exit 1) until it stops."""
    config = configure(layout, sim)
    daemon = Faxd(config, notify)
    started.append(daemon)
    notify.wait_for(lambda m: "READY=1" in m)
    second = subprocess.run(
        [sys.executable, "-m", "faxd", "run", "--once", "--config", str(config)],
        capture_output=True, text=True, timeout=30, check=False,
    )
    assert second.returncode == 1
    assert "another faxd run" in second.stderr and f"pid {daemon.proc.pid}" in second.stderr
    code = daemon.stop()
    assert code == 0
    again = subprocess.run(
        [sys.executable, "-m", "faxd", "run", "--once", "--config", str(config)],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert again.returncode == 0, again.stderr  # the lock went with the daemon
