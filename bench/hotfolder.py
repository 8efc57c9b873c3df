"""Benchmark: how soon a file dropped in the hot folder becomes a sendfax POST.

Starts the real daemon (``faxd run``) against the FAXAGE simulator with
``settle_seconds = 1``, then writes 50 PDF files into the hot folder one by
one (a quarter second apart), each named for its own destination number.
The latency of a file is from the moment it was closed to the moment its
``sendfax`` POST reached the simulator (``on_sendfax``), both on this
machine's clock.  A file may not be taken before it has been still for
``settle_seconds``, so that is the floor.

Target (issue 6): median <= settle_seconds + 0.5 s.
Run: ``.venv/bin/python bench/hotfolder.py [--files 50]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from benchlib import SIM_LOGIN, Daemon, faxd_config, outbound_table, verdict, write_results

SETTLE = 1.0
SLACK = 0.5
GAP = 0.25


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=50, help="files dropped (50)")
    args = parser.parse_args(argv)

    from faxd.logs import configure_logging
    from faxd.sim import FaxageSimulator
    from faxd.sim.documents import make_pdf

    configure_logging(level="warning")
    closed: dict[str, float] = {}
    posted: dict[str, float] = {}
    all_posted = threading.Event()

    def on_sendfax(job: Any) -> None:
        posted.setdefault(job.faxno, time.time())
        if len(posted) >= args.files:
            all_posted.set()

    with FaxageSimulator(*SIM_LOGIN) as sim, tempfile.TemporaryDirectory(
        prefix="faxd-hotfolder-"
    ) as tmp:
        sim.on_sendfax = on_sendfax
        work = Path(tmp)
        config = faxd_config(
            work / "faxd.toml",
            base_url=sim.base_url,
            work=work,
            inbound="enabled = false",
            outbound=outbound_table(work, settle_seconds=SETTLE),
        )
        document = make_pdf("hot folder benchmark", 1)
        with Daemon(config, work / "faxd.log") as daemon:
            daemon.start()
            time.sleep(1.0)
            for i in range(args.files):
                number = f"303555{1000 + i:04d}"
                path = work / "outbox" / f"{number} - bench {i}.pdf"
                with path.open("wb") as out:
                    out.write(document)
                closed[number] = time.time()  # right after close()
                time.sleep(GAP)
            all_posted.wait(timeout=SETTLE * 4 + 60)
            posts = sim.sendfax_posts
    missing = sorted(set(closed) - set(posted))
    latencies = sorted(posted[n] - closed[n] for n in closed if n in posted)
    median = statistics.median(latencies) if latencies else float("inf")
    worst = max(latencies) if latencies else float("inf")
    target = SETTLE + SLACK
    passed = not missing and median <= target and posts == args.files
    print(f"hotfolder: {args.files} files, settle_seconds {SETTLE:g}, one every {GAP} s")
    print(f"  close -> sendfax POST: median {median:.3f} s, max {worst:.3f} s, "
          f"min {min(latencies, default=float('inf')):.3f} s "
          f"(target median <= {target:g} s): {verdict(median <= target)}")
    print(f"  {posts} sendfax POSTs for {args.files} files; {len(missing)} never posted")
    path = write_results(
        "hotfolder",
        {
            "files": args.files,
            "settle_seconds": SETTLE,
            "median_s": round(median, 3),
            "max_s": round(worst, 3),
            "min_s": round(min(latencies, default=float("inf")), 3),
            "sendfax_posts": posts,
            "missing": missing,
            "target_median_s": target,
            "passed": passed,
        },
    )
    print(f"{verdict(passed)}  (wrote {path})")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
