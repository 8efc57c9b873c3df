"""Benchmark: does receiving one 200 MB fax stay out of memory?

The FAXAGE simulator (in this process) serves one 200 MB fax straight from
a file (``add_fax(data_path=...)``: never loaded into memory).  A child
process builds faxd the way ``faxd run`` does and polls once: listfax,
getfax into the spool, verification, a folder action, delfax.  The child
measures its own memory, so the figure is the pipeline's alone: resident
memory before the poll, then the peak (``VmHWM``, reset to the current
size just before the poll) while it works.

Target (issue 6): peak RSS rise < 30 MB.
Run: ``.venv/bin/python bench/bigfax.py [--size-mb 200]``.
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
    proc_status_kb,
    reset_peak_rss,
    verdict,
    write_results,
)

LIMIT_MB = 30.0


def child(base_url: str, work: Path) -> dict[str, Any]:
    """Poll once with faxd's own pipeline; report memory before and at the peak."""
    from faxd.app import build_app
    from faxd.config import load_config
    from faxd.logs import configure_logging

    log = (work / "faxd.log").open("w")
    configure_logging(level="info", stream=log, json=True)
    config = load_config(faxd_config(work / "faxd.toml", base_url=base_url, work=work), env={})
    app = build_app(config)
    assert app.pipeline is not None
    before_kb = proc_status_kb("VmRSS")
    reset = reset_peak_rss()
    baseline_kb = proc_status_kb("VmHWM")
    started = time.perf_counter()
    outcome = app.pipeline.poll()
    seconds = time.perf_counter() - started
    peak_kb = proc_status_kb("VmHWM")
    app.close()
    log.close()
    return {
        "rss_before_mb": round(before_kb / 1024, 1),
        "peak_before_mb": round(baseline_kb / 1024, 1),
        "peak_during_mb": round(peak_kb / 1024, 1),
        "peak_reset": reset,
        "seconds": round(seconds, 2),
        "done": outcome.done,
    }


def write_big_pdf(path: Path, size: int) -> str:
    """A ``size``-byte file that starts like a PDF, written in 1 MiB pieces; its sha256."""
    digest = hashlib.sha256()
    block = bytes(range(256)) * 4096
    with path.open("wb") as out:
        head = b"%PDF-1.4\n% faxd bigfax benchmark padding\n"
        out.write(head)
        digest.update(head)
        left = size - len(head)
        while left > 0:
            piece = block[: min(len(block), left)]
            out.write(piece)
            digest.update(piece)
            left -= len(piece)
    return digest.hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=200, help="fax size in MiB (200)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.base_url, Path(args.work))))
        return 0

    from faxd.logs import configure_logging
    from faxd.sim import FaxageSimulator

    configure_logging(level="warning")
    with tempfile.TemporaryDirectory(prefix="faxd-bigfax-") as tmp:
        work = Path(tmp)
        source = work / "big.pdf"
        expected = write_big_pdf(source, args.size_mb * MiB)
        with FaxageSimulator(*SIM_LOGIN) as sim:
            fax = sim.add_fax("3035550101", data_path=source)
            answer = subprocess.run(
                [sys.executable, __file__, "--child", "--base-url", sim.base_url,
                 "--work", str(work)],
                env=child_env(), capture_output=True, text=True, check=False,
            )
            if answer.returncode != 0:
                raise SystemExit(f"child failed:\n{answer.stderr[-3000:]}")
            figures: dict[str, Any] = json.loads(answer.stdout.strip().splitlines()[-1])
            deleted = fax.deleted
        delivered = work / "fax" / "3035550101" / f"{fax.recvid}.pdf"
        intact = delivered.is_file() and _sha256(delivered) == expected
    rise = figures["peak_during_mb"] - figures["peak_before_mb"]
    passed = rise < LIMIT_MB and intact and deleted and figures["done"] == 1
    print(f"bigfax: one {args.size_mb} MiB fax, listfax -> getfax -> folder -> delfax "
          f"in {figures['seconds']} s")
    print(f"  RSS before {figures['rss_before_mb']} MB, peak during {figures['peak_during_mb']} "
          f"MB: rise {rise:.1f} MB (target < {LIMIT_MB:g}): {verdict(rise < LIMIT_MB)}")
    print(f"  delivered intact: {intact}; deleted on FAXAGE: {deleted}")
    path = write_results(
        "bigfax",
        {**figures, "fax_mb": args.size_mb, "peak_rise_mb": round(rise, 1),
         "delivered_intact": intact, "deleted": deleted, "limit_mb": LIMIT_MB,
         "passed": passed},
    )
    print(f"{verdict(passed)}  (wrote {path})")
    return 0 if passed else 1


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


if __name__ == "__main__":
    sys.exit(main())
