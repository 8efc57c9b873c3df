"""Benchmark: does sending one 200 MB outbox file stay out of memory?

Issue 10 finding 3: building the sendfax form held the file several times
over (bytes, base64, URL-encoded, the request), about 688 MB for a 50 MB
scan.  Now intake copies the file into the spool in pieces and the sendfax
body is streamed from disk (:mod:`faxd.providers.faxage.formbody`).

The FAXAGE simulator runs in this process (it reads the whole POST into
memory to decode it, which is fine for a simulator and is why it is not in
the child).  A child process builds faxd the way ``faxd run`` does, with
``[outbound] max_file_mb`` raised above the file's size, finds a 200 MB file
in its outbox and runs one outbound pass: intake (hash, copy into the spool),
sendfax, status.  The child measures its own memory: resident memory before
the pass, then the peak (``VmHWM``, reset to the current size just before
the pass) while it works.  The parent checks that the simulator got the
file's exact bytes.

Target (issue 10): peak RSS rise < 30 MB.
Run: ``.venv/bin/python bench/send_memory.py [--size-mb 200]``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchlib import (
    SIM_LOGIN,
    MiB,
    child_env,
    faxd_config,
    outbound_table,
    proc_status_kb,
    reset_peak_rss,
    verdict,
    write_results,
)
from bigfax import write_big_pdf  # the same 200 MB "PDF": every byte value, + and / in base64

LIMIT_MB = 30.0
NUMBER = "3035550101"


def child(base_url: str, work: Path, size_mb: int) -> dict[str, Any]:
    """One outbound pass with faxd's own service; report memory before and at the peak."""
    from faxd.app import build_app
    from faxd.config import load_config
    from faxd.logs import configure_logging

    log = (work / "faxd.log").open("w")
    configure_logging(level="info", stream=log, json=True)
    table = outbound_table(work, settle_seconds=0.2) + f"max_file_mb = {size_mb + 1}\n"
    config = load_config(
        faxd_config(work / "faxd.toml", base_url=base_url, work=work, outbound=table), env={}
    )
    app = build_app(config)
    assert app.outbound is not None
    (work / "big.pdf").rename(work / "outbox" / f"{NUMBER}.pdf")
    before_kb = proc_status_kb("VmRSS")
    reset = reset_peak_rss()
    baseline_kb = proc_status_kb("VmHWM")
    started = time.perf_counter()
    app.outbound.run_once()
    seconds = time.perf_counter() - started
    peak_kb = proc_status_kb("VmHWM")
    from faxd.outbound.service import list_jobs

    states = [job.state for job in list_jobs(app.db)]
    app.close()
    log.close()
    return {
        "rss_before_mb": round(before_kb / 1024, 1),
        "peak_before_mb": round(baseline_kb / 1024, 1),
        "peak_during_mb": round(peak_kb / 1024, 1),
        "peak_reset": reset,
        "seconds": round(seconds, 2),
        "job_states": states,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=200, help="file size in MiB (200)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.base_url, Path(args.work), args.size_mb)))
        return 0

    from faxd.logs import configure_logging
    from faxd.sim import FaxageSimulator

    configure_logging(level="warning")
    with tempfile.TemporaryDirectory(prefix="faxd-send-memory-") as tmp:
        work = Path(tmp)
        expected = write_big_pdf(work / "big.pdf", args.size_mb * MiB)
        with FaxageSimulator(*SIM_LOGIN) as sim:
            answer = subprocess.run(
                [sys.executable, __file__, "--child", "--base-url", sim.base_url,
                 "--work", str(work), "--size-mb", str(args.size_mb)],
                env=child_env(), capture_output=True, text=True, check=False,
            )
            if answer.returncode != 0:
                raise SystemExit(f"child failed:\n{answer.stderr[-3000:]}")
            figures: dict[str, Any] = json.loads(answer.stdout.strip().splitlines()[-1])
            received = [
                hashlib.sha256(data).hexdigest()
                for job in sim.jobs.values()
                for _name, data in job.files
            ]
            posts = sim.sendfax_posts
    rise = figures["peak_during_mb"] - figures["peak_before_mb"]
    intact = received == [expected]
    passed = rise < LIMIT_MB and intact and posts == 1
    print(f"send_memory: one {args.size_mb} MiB outbox file, intake -> spool -> sendfax "
          f"in {figures['seconds']} s")
    print(f"  RSS before {figures['rss_before_mb']} MB, peak during {figures['peak_during_mb']} "
          f"MB: rise {rise:.1f} MB (target < {LIMIT_MB:g}): {verdict(rise < LIMIT_MB)}")
    print(f"  sendfax POSTs: {posts}; simulator got the exact bytes: {intact}; "
          f"job states: {figures['job_states']}")
    path = write_results(
        "send_memory",
        {**figures, "file_mb": args.size_mb, "peak_rise_mb": round(rise, 1),
         "received_intact": intact, "sendfax_posts": posts, "limit_mb": LIMIT_MB,
         "passed": passed},
    )
    print(f"{verdict(passed)}  (wrote {path})")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
