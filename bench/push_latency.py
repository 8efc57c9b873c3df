"""Benchmark: how soon after FAXAGE's callback a fax is delivered, with polls 5 minutes apart.

Starts the real daemon (``faxd run``) with ``poll_interval = 300`` and an
``[http]`` listener, points the simulator's inbound push at faxd's hook URL,
then adds faxes one at a time, 1.5 s apart (farther than the one-second
coalescing window, so each is measured alone).  The latency of a fax is from
the moment the simulator received it (and began its callback post) to the
moment its file appeared in the route's folder, both on this machine's clock.
Without the callback each would wait for the next poll, up to 300 s.

Target (issue 12): median < 1 s and p95 < 2 s.
Run: ``.venv/bin/python bench/push_latency.py [--faxes 20]``.
"""

from __future__ import annotations

import argparse
import secrets
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

from benchlib import SIM_LOGIN, Daemon, faxd_config, verdict, write_results

GAP = 1.5
MEDIAN_TARGET = 1.0
P95_TARGET = 2.0
DNIS = "3035550101"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faxes", type=int, default=20, help="faxes pushed (20)")
    args = parser.parse_args(argv)

    from faxd.logs import configure_logging
    from faxd.sim import FaxageSimulator

    configure_logging(level="warning")
    latencies: list[float] = []
    missing = 0
    with FaxageSimulator(*SIM_LOGIN) as sim, tempfile.TemporaryDirectory(
        prefix="faxd-push-"
    ) as tmp:
        work = Path(tmp)
        port, token = _free_port(), secrets.token_hex(16)
        config = faxd_config(
            work / "faxd.toml", base_url=sim.base_url, work=work,
            inbound="poll_interval = 300\nsweep_interval = 3600",
        )  # fmt: skip
        with config.open("a") as out:
            out.write(f'\n[http]\nlisten = "127.0.0.1:{port}"\ntoken = "{token}"\n')
        with Daemon(config, work / "faxd.log") as daemon:
            daemon.start()
            time.sleep(2.0)  # the first poll, at start, is over
            sim.push_url = f"http://127.0.0.1:{port}/hook/{token}/faxage"
            for _ in range(args.faxes):
                added = time.time()
                fax = sim.add_fax(DNIS)
                target = work / "fax" / DNIS / f"{fax.recvid}.pdf"
                deadline = time.monotonic() + 30
                while not target.exists() and time.monotonic() < deadline:
                    time.sleep(0.005)
                if target.exists():
                    latencies.append(time.time() - added)
                else:
                    missing += 1
                time.sleep(GAP)
            polls = sum(1 for r in list(sim.requests) if r.operation == "listfax")
    latencies.sort()
    median = statistics.median(latencies) if latencies else float("inf")
    p95 = latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))] if latencies else float(
        "inf"
    )
    passed = not missing and median < MEDIAN_TARGET and p95 < P95_TARGET
    print(f"push_latency: {args.faxes} faxes pushed {GAP} s apart, poll_interval 300 s")
    print(f"  callback -> delivered: median {median:.3f} s (target < {MEDIAN_TARGET:g} s), "
          f"p95 {p95:.3f} s (target < {P95_TARGET:g} s), max "
          f"{max(latencies, default=float('inf')):.3f} s; {missing} never delivered")
    print(f"  {polls} listfax requests in all (1 at start + about 1 per callback)")
    path = write_results(
        "push_latency",
        {
            "faxes": args.faxes,
            "median_s": round(median, 3),
            "p95_s": round(p95, 3),
            "max_s": round(max(latencies, default=float("inf")), 3),
            "missing": missing,
            "listfax_requests": polls,
            "passed": passed,
        },
    )
    print(f"{verdict(passed)}  (wrote {path})")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
