"""Run every benchmark in ``bench/`` one after another and print one table.

Each benchmark runs as its own process (so none measures another's leftovers)
and writes ``bench/results/<name>.json``; this script reads those files and
prints the figures against the targets of issues 6, 10 and 11.  ``startup``,
``getfax_memory`` and ``send_memory`` are run too when present;
``ingest_voipms`` and ``ingest_ifax`` are ``ingest.py --provider voipms|ifax``.
Run: ``.venv/bin/python bench/run_all.py [--only ingest idle ...]``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Callable
from typing import Any

from benchlib import BENCH, RESULTS, machine

ORDER = [
    "ingest", "ingest_voipms", "ingest_ifax", "bigfax", "idle", "hotfolder", "startup",
    "getfax_memory", "listfax_batches", "send_memory", "push_latency", "instances",
]
#: Results that come from a script run with arguments (name -> script, arguments).
RUNS = {
    "ingest_voipms": ("ingest", ["--provider", "voipms"]),
    "ingest_ifax": ("ingest", ["--provider", "ifax"]),
}


def _f(value: Any, digits: int = 2) -> str:
    return f"{value:.{digits}f}" if isinstance(value, int | float) else str(value)


#: For each result file: (figure, target, passed) rows.
Rows = list[tuple[str, str, bool | None]]


def ingest_rows(r: dict[str, Any]) -> Rows:
    runs, targets = r["runs"], r["targets"]
    title = "ingest" if r.get("provider", "faxage") == "faxage" else f"ingest {r['provider']}"
    rows: Rows = [
        (f"{title} {name}: {_f(run['seconds'])} s, {_f(run['faxes_per_second'], 1)} faxes/s",
         "", None)
        for name, run in runs.items()
    ]
    for ratio in ("b_a", "c_a"):
        value, target = r[f"ratio_{ratio}"], targets[f"ratio_{ratio}"]
        rows.append((
            f"{title} {ratio.replace('_', '/')} = {_f(value, 3)}",
            "" if target is None else f"<= {target}",
            None if target is None else value <= target,
        ))
    return rows


def bigfax_rows(r: dict[str, Any]) -> Rows:
    return [(
        f"bigfax {r['fax_mb']} MiB: peak RSS rise {_f(r['peak_rise_mb'], 1)} MB "
        f"(before {r['rss_before_mb']} MB)", "< 30 MB", r["passed"],
    )]


def idle_rows(r: dict[str, Any]) -> Rows:
    checks = r["checks"]
    return [
        (f"idle CPU {_f(r['cpu_seconds_per_minute'], 3)} CPU-s/min", "< 0.5", checks["cpu"]),
        (f"idle RSS {_f(r['rss_mb'], 1)} MB", "< 90 MB", checks["rss"]),
        (f"idle requests per empty poll {_f(r['requests_per_poll'])} ({r['polls']} polls)",
         "= 1", checks["requests_per_poll"]),
    ]


def hotfolder_rows(r: dict[str, Any]) -> Rows:
    return [(
        f"hotfolder close->sendfax median {_f(r['median_s'], 3)} s, max {_f(r['max_s'], 3)} s",
        f"median <= {r['target_median_s']:g} s", r["passed"],
    )]


def getfax_memory_rows(r: dict[str, Any]) -> Rows:
    return [(f"getfax_memory peak rise {r['peak_rss_rise_mb']} MB", f"< {r['limit_mb']} MB",
             r["passed"])]


def listfax_batches_rows(r: dict[str, Any]) -> Rows:
    listed, capped = r["listing"], r["getfax_cap"]
    return [
        (f"listfax {listed['lines']} lines: peak RSS rise {listed['peak_rss_rise_mb']} MB",
         "< 60 MB", listed["peak_rss_rise_mb"] < 60),
        (f"listfax longest write transaction {_f(listed['longest_transaction_s'], 3)} s "
         f"({listed['transactions']} in all)", "< 1 s", listed["longest_transaction_s"] < 1),
        (f"getfax cap: at most {capped['most_bytes_on_disk']} bytes on disk, "
         f"fax {capped['state']}", f"<= {capped['cap_bytes']}", capped["passed"]),
    ]


def send_memory_rows(r: dict[str, Any]) -> Rows:
    return [(
        f"send_memory {r['file_mb']} MiB drop: peak RSS rise {_f(r['peak_rise_mb'], 1)} MB "
        f"(before {r['rss_before_mb']} MB)", f"< {r['limit_mb']:g} MB", r["passed"],
    )]


def push_latency_rows(r: dict[str, Any]) -> Rows:
    return [(
        f"push callback->delivered median {_f(r['median_s'], 3)} s, p95 {_f(r['p95_s'], 3)} s "
        f"(poll_interval 300)", "< 1 s, < 2 s", r["passed"],
    )]


def instances_rows(r: dict[str, Any]) -> Rows:
    one, two = r["one"], r["two"]
    return [
        (f"instances drain {r['faxes']} faxes: one {_f(one['drain_seconds'])} s, "
         f"two {_f(two['drain_seconds'])} s, two/one = {_f(r['ratio'], 3)}",
         f"<= {r['targets']['ratio']}", r["checks"]["ratio"]),
        (f"instances listfax per poll interval idle: one {_f(one['listfax_per_interval'])}, "
         f"two {_f(two['listfax_per_interval'])}", "", None),
    ]


ROWS: dict[str, Callable[[dict[str, Any]], Rows]] = {
    "ingest": ingest_rows,
    "ingest_voipms": ingest_rows,
    "ingest_ifax": ingest_rows,
    "bigfax": bigfax_rows,
    "idle": idle_rows,
    "hotfolder": hotfolder_rows,
    "push_latency": push_latency_rows,
    "getfax_memory": getfax_memory_rows,
    "listfax_batches": listfax_batches_rows,
    "send_memory": send_memory_rows,
    "instances": instances_rows,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", choices=ORDER, help="run just these")
    args = parser.parse_args(argv)
    scripts = {n: RUNS.get(n, (n, [])) for n in ORDER}
    names = [
        n for n in ORDER
        if (BENCH / f"{scripts[n][0]}.py").exists() and (not args.only or n in args.only)
    ]
    exit_codes: dict[str, int] = {}
    for name in names:
        script, extra = scripts[name]
        print(f"=== {name}", flush=True)
        exit_codes[name] = subprocess.run(
            [sys.executable, str(BENCH / f"{script}.py"), *extra]
        ).returncode

    rows: Rows = []
    for name in names:
        result = RESULTS / f"{name}.json"
        if name in ROWS and result.exists():
            rows.extend(ROWS[name](json.loads(result.read_text())))
        else:
            rows.append((f"{name} (see its output above)", "", exit_codes[name] == 0))
    width = max(len(figure) for figure, _, _ in rows)
    m = machine()
    print(f"\n{m['cpu']} x{m['cpus']}, Linux {m['kernel']}, Python {m['python']}")
    print(f"{'figure':<{width}}  {'target':<18} result")
    for figure, target, passed in rows:
        mark = "" if passed is None else ("PASS" if passed else "FAIL")
        print(f"{figure:<{width}}  {target:<18} {mark}")
    failed = [n for n, code in exit_codes.items() if code != 0]
    print("\nall targets met" if not failed else f"\nFAIL: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
