"""Benchmark: does downloading a 100 MB fax stay out of memory?

``FaxageClient.getfax`` must stream a received fax to disk in chunks (DESIGN
invariant 4; ARCHITECTURE ``transport.download``).  This script proves it on a
deliberately large fax: it writes a 100 MB file (a valid PDF header plus
padding) to a temporary directory, serves it from the FAXAGE simulator (which
streams ``data_path`` files from disk), downloads it with the real client, and
compares the process's peak resident memory (``VmHWM``) before and after.

Run: ``.venv/bin/python bench/getfax_memory.py [--size-mb 100] [--limit-mb 60]``.
Prints the figures, writes ``bench/results/getfax_memory.json`` and exits 0 on
PASS (peak rise below the limit), 1 on FAIL.  Not a test: it is slow-ish and
measures the machine.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

from faxd.providers.faxage import FaxageClient
from faxd.sim import FaxageSimulator

RESULTS = Path(__file__).resolve().parent / "results" / "getfax_memory.json"
MiB = 1024 * 1024


def peak_rss_bytes() -> int:
    """The process's peak resident set size so far (VmHWM, else ru_maxrss)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def write_big_pdf(path: Path, size: int) -> str:
    """Write a ``size``-byte file that starts like a PDF, in 1 MiB pieces; return its sha256."""
    digest = hashlib.sha256()
    header = b"%PDF-1.4\n% faxd getfax memory benchmark padding\n"
    block = bytes(range(256)) * 4096  # 1 MiB
    with path.open("wb") as out:
        out.write(header)
        digest.update(header)
        remaining = size - len(header)
        while remaining > 0:
            piece = block[: min(len(block), remaining)]
            out.write(piece)
            digest.update(piece)
            remaining -= len(piece)
    return digest.hexdigest()


def run(size_mb: int, limit_mb: float) -> dict[str, object]:
    """Serve and download one ``size_mb`` fax; return the measurements."""
    with tempfile.TemporaryDirectory(prefix="faxd-bench-") as tmp:
        work = Path(tmp)
        source = work / "big.pdf"
        expected_sha = write_big_pdf(source, size_mb * MiB)
        with FaxageSimulator("bench", "1", "bench-password") as sim:
            fax = sim.add_fax("4158006052", data_path=source)
            client = FaxageClient(
                "bench", "1", "bench-password", base_url=sim.base_url, timeout=60.0
            )
            before = peak_rss_bytes()
            started = time.perf_counter()
            result = client.getfax(fax.recvid, work / "downloaded.pdf")
            seconds = time.perf_counter() - started
            after = peak_rss_bytes()
            client.close()
        rise_mb = (after - before) / MiB
        return {
            "benchmark": "getfax_memory",
            "fax_bytes": result.size,
            "sha256_ok": result.sha256 == expected_sha,
            "kind": result.kind,
            "peak_rss_before_mb": round(before / MiB, 1),
            "peak_rss_after_mb": round(after / MiB, 1),
            "peak_rss_rise_mb": round(rise_mb, 1),
            "limit_mb": limit_mb,
            "seconds": round(seconds, 2),
            "throughput_mb_s": round(result.size / MiB / seconds, 1) if seconds else None,
            "passed": rise_mb < limit_mb and result.sha256 == expected_sha,
            "python": platform.python_version(),
            "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=100, help="fax size in MiB (100)")
    parser.add_argument("--limit-mb", type=float, default=60.0, help="allowed peak rise (60)")
    args = parser.parse_args(argv)
    figures = run(args.size_mb, args.limit_mb)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n")
    print(
        f"getfax of {figures['fax_bytes']} bytes in {figures['seconds']} s: "
        f"peak RSS {figures['peak_rss_before_mb']} -> {figures['peak_rss_after_mb']} MiB "
        f"(rise {figures['peak_rss_rise_mb']} MiB, limit {args.limit_mb} MiB), "
        f"sha256 {'ok' if figures['sha256_ok'] else 'MISMATCH'}"
    )
    print("PASS" if figures["passed"] else "FAIL")
    print(f"wrote {RESULTS}")
    return 0 if figures["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
