"""Benchmark: what the daemon costs while nothing happens.

Starts the real daemon (``faxd run``) against the FAXAGE simulator with
``poll_interval = 5`` and the hot-folder watcher on, waits until it is READY
and has settled, then watches it idle for 60 s: CPU seconds (user + system,
from ``/proc/<pid>/stat``), resident memory, and the HTTP requests FAXAGE
saw, per poll.  Nothing arrives and nothing is dropped in the hot folder.

Targets (issue 6): < 0.5 CPU-seconds per minute, RSS < 90 MB, and exactly
1 request per empty poll (the ``listfax``).
Run: ``.venv/bin/python bench/idle.py [--seconds 60]``.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from benchlib import (
    SIM_LOGIN,
    Daemon,
    cpu_seconds,
    faxd_config,
    outbound_table,
    proc_status_kb,
    verdict,
    write_results,
)

CPU_PER_MINUTE = 0.5
RSS_MB = 90.0
POLL_INTERVAL = 5


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="idle time watched (60)")
    args = parser.parse_args(argv)

    from faxd.logs import configure_logging
    from faxd.sim import FaxageSimulator

    configure_logging(level="warning")
    with FaxageSimulator(*SIM_LOGIN) as sim, tempfile.TemporaryDirectory(
        prefix="faxd-idle-"
    ) as tmp:
        listed_at: list[float] = []  # when each listfax arrived
        record = sim.log_request

        def log_request(request: Any) -> None:
            if request.operation == "listfax":
                listed_at.append(time.monotonic())
            record(request)

        sim.log_request = log_request  # type: ignore[method-assign]
        work = Path(tmp)
        config = faxd_config(
            work / "faxd.toml",
            base_url=sim.base_url,
            work=work,
            inbound=f"poll_interval = {POLL_INTERVAL}",
            outbound=outbound_table(work),
        )
        with Daemon(config, work / "faxd.log") as daemon:
            ready = daemon.start()
            time.sleep(2 * POLL_INTERVAL)  # start-up work (first poll, sweep, scan) is over
            seen = len(sim.requests)
            cpu_before = cpu_seconds(daemon.pid)
            started = time.monotonic()
            time.sleep(args.seconds)
            cpu = cpu_seconds(daemon.pid) - cpu_before
            elapsed = time.monotonic() - started
            rss_mb = proc_status_kb("VmRSS", daemon.pid) / 1024
            window = sim.requests[seen:]
            alive = daemon.proc is not None and daemon.proc.poll() is None
    operations = Counter(r.operation for r in window)
    stamps = [t for t in listed_at if started <= t <= started + elapsed]
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    mean_gap = sum(gaps) / len(gaps) if gaps else float("nan")
    polls = operations["listfax"]
    per_poll = len(window) / polls if polls else float("inf")
    per_minute = cpu * 60.0 / elapsed
    checks = {
        "cpu": per_minute < CPU_PER_MINUTE,
        "rss": rss_mb < RSS_MB,
        "requests_per_poll": polls > 0 and per_poll == 1.0,
        "alive": alive,
        # The daemon kept polling all along (a stuck poll job would show here).
        "polled_on_time": polls >= int(elapsed // POLL_INTERVAL) - 1,
    }
    print(f"idle: faxd run, poll_interval {POLL_INTERVAL} s, hot folder watched, "
          f"{elapsed:.0f} s watched (READY after {ready:.2f} s)")
    print(f"  CPU {cpu:.3f} s = {per_minute:.3f} CPU-s/min (target < {CPU_PER_MINUTE}): "
          f"{verdict(checks['cpu'])}")
    print(f"  RSS {rss_mb:.1f} MB (target < {RSS_MB:.0f}): {verdict(checks['rss'])}")
    print(f"  {len(window)} requests in {polls} polls = {per_poll:.2f} per poll "
          f"({dict(operations)}) (target 1): {verdict(checks['requests_per_poll'])}")
    print(f"  {polls} polls {mean_gap:.2f} s apart on average (poll_interval {POLL_INTERVAL}): "
          f"{verdict(checks['polled_on_time'])}")
    passed = all(checks.values())
    path = write_results(
        "idle",
        {
            "seconds_watched": round(elapsed, 1),
            "poll_interval": POLL_INTERVAL,
            "ready_seconds": round(ready, 3),
            "cpu_seconds": round(cpu, 3),
            "cpu_seconds_per_minute": round(per_minute, 3),
            "rss_mb": round(rss_mb, 1),
            "requests": len(window),
            "polls": polls,
            "mean_poll_gap_s": round(mean_gap, 2),
            "requests_per_poll": round(per_poll, 3),
            "operations": dict(operations),
            "targets": {"cpu_seconds_per_minute": CPU_PER_MINUTE, "rss_mb": RSS_MB,
                        "requests_per_poll": 1},
            "checks": checks,
            "passed": passed,
        },
    )
    print(f"{verdict(passed)}  (wrote {path})")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
